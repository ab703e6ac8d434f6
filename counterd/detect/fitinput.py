"""Fit a YOLO model's input to the camera's aspect ratio: a graph rewrite in memory.

A 4:3 camera letterboxed into a square 416x416 input spends a quarter of every inference on grey
padding, a 16:9 one 44 %. The network is convolutional, so the same weights run on a 416x320
input at the same scale: the frame drawn as large as before, the padding gone (detector.fit_input,
`counterd model optimize`). Only what the graph bakes in for one grid has to follow:

- the input's dimensions (YOLOX needs nothing else: its head is a Reshape to [1, 85, -1]);
- an Ultralytics YOLOv8/YOLO11 export decodes boxes inside the graph with constants made for the
  square grid: the anchor points (cell centres, x + 0.5 and y + 0.5, shape (1, 2, N)) and each
  anchor's stride ((1, N)), which are recomputed for the new grid; Reshape targets that name the
  anchor count (the DFL's [1, 4, 16, N] and [1, 4, N]), a level's cell count or its height and
  width (YOLO11's attention block: [1, 2, 128, H*W], [1, 128, H, W]), which are rewritten and
  checked against the shape of the tensor they reshape at the new size.

Constants are recognised by what they hold (values that follow from the stride 8/16/32 grid of the
model's own input), not by node names. A constant that follows the grid in a way this module does
not know (an unfamiliar float table of N rows, a shape vector outside a Reshape) raises
GraphNotFitted, and the caller keeps the square input.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from counterd.detect import first_line

STRIDES = (8, 16, 32)         # the P3-P5 heads of every YOLOv8/YOLO11/YOLOX detection model
ANCHOR_OFFSET = 0.5           # Ultralytics' make_anchors: a cell's anchor is its centre
# Operators whose constant inputs are learned weights: their sizes are channels and kernels, never
# the grid, even where a number happens to equal a level's cell count.
WEIGHT_OPS = {"Conv", "ConvInteger", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "BatchNormalization",
              "QLinearConv", "DequantizeLinear", "QuantizeLinear"}


class GraphNotFitted(Exception):
    """The graph cannot be given another input size; the message says why, in one line."""


def fitted_size(model_size: tuple[int, int], frame_size: tuple[int, int], stride: int = STRIDES[-1]) -> tuple[int, int]:
    """The model's input cut down to the frames' aspect ratio: the frame scaled as the square
    input scales it, each side rounded up to a multiple of the network's largest stride.
    model_size is (height, width), frame_size (width, height); returns (height, width)."""
    (mh, mw), (fw, fh) = model_size, frame_size
    scale = min(mh / fh, mw / fw)
    return (min(mh, -(-round(fh * scale) // stride) * stride), min(mw, -(-round(fw * scale) // stride) * stride))


def input_size(model) -> tuple[int, int] | None:
    """(height, width) of an onnx ModelProto's image input; None where it is not fixed."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        return None
    nhwc = dims[1].dim_value not in (0, 3)
    h, w = (dims[1], dims[2]) if nhwc else (dims[2], dims[3])
    return (h.dim_value, w.dim_value) if h.dim_value and w.dim_value else None


def reshape_input(model, height: int, width: int) -> None:
    """Give the image input a new fixed (height, width), in place. Intermediate shapes recorded in
    the file are dropped (ONNX Runtime infers them again); nothing else in the graph changes
    (fit_model also rewrites the grid's constants)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    nhwc = dims[1].dim_value not in (0, 3)     # [1, H, W, 3] instead of [1, 3, H, W]
    hw = (dims[1], dims[2]) if nhwc else (dims[2], dims[3])
    hw[0].dim_value, hw[1].dim_value = height, width
    del model.graph.value_info[:]
    for output in model.graph.output:
        for k, dim in enumerate(output.type.tensor_type.shape.dim):
            dim.dim_param = f"out{k}"


@dataclass(frozen=True)
class Grid:
    """The stride 8/16/32 cells of an input of (height, width), in the order the heads emit them."""

    height: int
    width: int

    @property
    def levels(self) -> list[tuple[int, int, int]]:
        return [(self.height // s, self.width // s, s) for s in STRIDES]

    @property
    def anchors(self) -> int:
        return sum(h * w for h, w, _ in self.levels)

    def spans(self) -> list[tuple[int, int]]:
        """(start, stop) anchor rows of the whole grid, then of each level."""
        out, start = [(0, self.anchors)], 0
        for h, w, _ in self.levels:
            out.append((start, start + h * w))
            start += h * w
        return out

    def points(self) -> np.ndarray:
        """(2, N): each anchor's cell centre x, y in cells of its level."""
        cells = []
        for h, w, _ in self.levels:
            ys, xs = np.mgrid[0:h, 0:w]
            cells.append(np.stack([xs.ravel(), ys.ravel()]) + ANCHOR_OFFSET)
        return np.concatenate(cells, axis=1).astype(np.float32)

    def strides(self) -> np.ndarray:
        """(N,): each anchor's stride in input pixels."""
        return np.concatenate([np.full(h * w, s, np.float32) for h, w, s in self.levels])


def fit_model(model, size: tuple[int, int]):
    """A copy of an onnx ModelProto whose input is size=(height, width), its grid constants
    rewritten for it; the model itself when size is already its input. Raises GraphNotFitted."""
    old_size = input_size(model)
    if old_size is None:
        raise GraphNotFitted("its input size is not fixed in the graph")
    if old_size == tuple(size):
        return model
    if any(side % STRIDES[-1] for side in (*old_size, *size)):
        raise GraphNotFitted(f"input {old_size} or {tuple(size)} is not a multiple of the stride {STRIDES[-1]}")
    fitted = copy.deepcopy(model)
    _Rewrite(fitted, Grid(*old_size), Grid(*size)).run()
    return fitted


class _Rewrite:
    """One pass over a graph: reshape its input, then every constant that follows the grid."""

    def __init__(self, model, old: Grid, new: Grid):
        self.model, self.old, self.new = model, old, new
        self.graph = model.graph
        self.tensors = {i.name: i for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.tensors[node.output[0]] = node.attribute[0].t

    def run(self) -> None:
        old_shapes = _inferred_shapes(self.model)
        reshape_input(self.model, self.new.height, self.new.width)
        reshapes = [n for n in self.graph.node if n.op_type == "Reshape" and n.input[1] in self.tensors
                    and n.input[0] not in self.tensors]
        handled = {n.input[1] for n in reshapes}
        handled |= {i for n in self.graph.node if n.op_type in WEIGHT_OPS for i in n.input[1:]}
        new_shapes = None
        for node in reshapes:                  # graph order is topological: each sees its inputs' fixes
            if new_shapes is None:
                new_shapes = _inferred_shapes(self.model)
            if self._fit_reshape(node, old_shapes.get(node.input[0]), new_shapes.get(node.input[0])):
                new_shapes = None              # shapes downstream of this Reshape change
        for name, tensor in self.tensors.items():
            if name not in handled:
                self._fit_constant(name, tensor)
        used = {i for n in self.graph.node for i in n.input}
        kept = [i for i in self.graph.initializer if i.name in used]   # targets replaced above
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)

    def _fit_reshape(self, node, old_in: list | None, new_in: list | None) -> bool:
        """Rewrite one Reshape's target for the new grid; True when it changed."""
        from onnx import numpy_helper

        if old_in is None or new_in is None or None in old_in or None in new_in:
            raise GraphNotFitted(f"the shape reaching Reshape {node.name or node.output[0]} is unknown")
        if old_in == new_in:
            return False
        target = numpy_helper.to_array(self.tensors[node.input[1]]).astype(np.int64)
        wanted = self._regrid_shape(target)
        if not _fits(wanted, new_in) or not _fits(target, old_in):
            raise GraphNotFitted(f"Reshape {node.name or node.output[0]} to {target.tolist()} follows the grid "
                                 f"in a way counterd does not know (input {old_in} -> {new_in})")
        if np.array_equal(wanted, target):
            return False
        name = f"{node.input[1]}_fit_{len(self.graph.initializer)}"   # the target may be shared
        self.graph.initializer.append(numpy_helper.from_array(wanted, name))
        node.input[1] = name
        return True

    def _regrid_shape(self, shape: np.ndarray) -> np.ndarray:
        """A shape vector for the new grid: a trailing (H, W) of a level becomes the new level's,
        a level's cell count or the anchor count becomes the new one."""
        out = shape.copy()
        sides = {(h, w): (h1, w1) for (h, w, _), (h1, w1, _) in zip(self.old.levels, self.new.levels)}
        tail = len(out)
        if len(out) >= 3 and tuple(out[-2:]) in sides:
            out[-2:] = sides[tuple(out[-2:])]
            tail -= 2
        counts = self._count_map()
        out[:tail] = [counts.get(int(v), int(v)) for v in out[:tail]]
        return out

    def _count_map(self) -> dict[int, int]:
        return {stop - start: new_stop - new_start
                for (start, stop), (new_start, new_stop) in zip(self.old.spans(), self.new.spans())}

    def _fit_constant(self, name: str, tensor) -> None:
        """An anchor-point or anchor-stride table is recomputed; any other constant that follows
        the grid is not understood."""
        from onnx import numpy_helper

        value = numpy_helper.to_array(tensor)
        counts = self._count_map()
        if value.dtype in (np.int64, np.int32):     # shape vectors (not int8 weights or zero points)
            if value.ndim == 1 and len(value) > 1 and (any(int(v) in counts for v in value)
                                                       or tuple(value[-2:]) in self._sides()):
                raise GraphNotFitted(f"shape constant {name} {value.tolist()} names the grid outside a Reshape")
            return
        if value.dtype.kind != "f" or not any(d in counts for d in value.shape):
            return
        replaced = self._regrid_table(value)
        if replaced is None:
            raise GraphNotFitted(f"constant {name} of shape {list(value.shape)} follows the grid but is not "
                                 "an anchor-point or stride table")
        tensor.CopyFrom(numpy_helper.from_array(replaced.astype(value.dtype), tensor.name))

    def _sides(self) -> set[tuple[int, int]]:
        return {(h, w) for h, w, _ in self.old.levels}

    def _regrid_table(self, value: np.ndarray) -> np.ndarray | None:
        """The new grid's version of an anchor table over the whole grid or one level: points
        (2, n) or (n, 2), strides (n,), with any leading or trailing unit axes."""
        squeezed = value.squeeze()
        old_points, new_points = self.old.points(), self.new.points()
        old_strides, new_strides = self.old.strides(), self.new.strides()
        for (start, stop), (new_start, new_stop) in zip(self.old.spans(), self.new.spans()):
            n, new_n = stop - start, new_stop - new_start
            if squeezed.shape == (2, n) and np.allclose(squeezed, old_points[:, start:stop]):
                table = new_points[:, new_start:new_stop]
            elif squeezed.shape == (n, 2) and n != 2 and np.allclose(squeezed, old_points[:, start:stop].T):
                table = new_points[:, new_start:new_stop].T
            elif squeezed.shape == (n,) and np.allclose(squeezed, old_strides[start:stop]):
                table = new_strides[new_start:new_stop]
            else:
                continue
            return table.reshape([new_n if d == n else d for d in value.shape])
        return None


def _fits(shape: np.ndarray, data_shape: list) -> bool:
    """Whether Reshape to `shape` is valid for data of data_shape (0 copies, -1 fills in)."""
    if any(not isinstance(d, int) for d in data_shape):
        return False
    total = int(np.prod(data_shape))
    dims = [data_shape[k] if v == 0 else int(v) for k, v in enumerate(shape)]
    known = int(np.prod([d for d in dims if d != -1]))
    if dims.count(-1) > 1 or known == 0:
        return False
    return total % known == 0 if -1 in dims else total == known


def _inferred_shapes(model) -> dict[str, list]:
    """Every tensor's shape (ints, or None for an unknown dimension), by ONNX shape inference."""
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and friends on a graph it cannot follow
        raise GraphNotFitted(f"ONNX shape inference fails on it: {first_line(exc)}") from None
    shapes = {}
    for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes
