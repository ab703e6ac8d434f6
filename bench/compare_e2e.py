"""End to end on the PETS clip: video -> detector -> tracker -> line counts, three ways.

Run as a script, one pipeline per process (so each starts cold and can be pinned to one core):

    python bench/compare_e2e.py ultralytics --out u.json [--record dets.npz] [--frames N]
    python bench/compare_e2e.py supervision --out s.json --detections dets.npz [--frames N]
    python bench/compare_e2e.py counterd    --out c.json

- ultralytics: solutions.ObjectCounter's own extract_tracks() (YOLO(onnx).track with bytetrack.yaml,
  classes=[0], conf 0.25), then its per-track history and count_objects() for every line (one
  ObjectCounter per line; its drawing is left out, which favours it). The detections its tracker is
  fed are recorded, so supervision is fed exactly the same ones.
- supervision: LineZone (bottom-centre anchor, and its default four-corner anchors) behind
  sv.ByteTrack(frame_rate=10), fed those recorded detections for the counts; its frames/s is
  measured on a pass of its documented pipeline, YOLO(onnx).predict -> Detections.from_ultralytics
  -> ByteTrack -> LineZone.trigger.
- counterd: the loop of `counterd process VIDEO --config <toml>` (open_source -> Pipeline.step).

Speed is reported as wall-clock frames/s and as frames per CPU-second (process CPU time, all
threads); on a machine shared with other work the second is the steadier basis for ratios.

Each pipeline counts all LINE_SETS' lines at once (the same work for each); accuracy is reported
per line set against the ground truth derived by bench/groundtruth.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("COUNTERD_SHARED", REPO.parent / "shared"))
VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"
GT = SHARED / "data" / "pets09_s2l1" / "gt_480x360.txt"
MODEL = SHARED / "models" / "yolov8n_int8_640.onnx"
VIDEO_FPS = 10
CONFIDENCE = 0.25          # ultralytics' default predict conf; counterd's default detector.confidence
NMS_IOU = 0.45

# Line sets on the 480x360 frame: name -> [(line, start, end)], some drawn right to left or bottom
# to top so that each anchor's direction mapping is exercised (`python bench/compare.py --list-lines`).
LINE_SETS = {
    "vertical": [("x120", (120, 0), (120, 360)), ("x240", (240, 0), (240, 360)), ("x360", (360, 0), (360, 360))],
    "horizontal": [("y120", (0, 120), (480, 120)), ("y180", (0, 180), (480, 180)), ("y240", (0, 240), (480, 240))],
    "diagonal": [("d_down", (0, 0), (480, 360)), ("d_up", (0, 360), (480, 0)), ("d_short", (300, 100), (420, 220))],
    "edges": [("x20", (20, 0), (20, 360)), ("x440", (440, 360), (440, 0)), ("y330", (480, 330), (0, 330))],
}
# No line nearer the right edge than x = 440: the ground truth's tracks of people entering there start
# with their feet already 3-25 px inside the picture (tracks 1, 2, 4, 5, 7, 8 start at x = 439-457),
# so a line at x = 460 has crossings every detector sees and the annotation lacks (all three
# pipelines counted 11-13 'in' there against 7 true).
ALL_LINES = [line for lines in LINE_SETS.values() for line in lines]


def true_counts() -> dict[str, dict[str, int]]:
    sys.path.insert(0, str(HERE))
    from groundtruth import crossing_totals, read_mot, true_crossings
    gt = read_mot(GT)
    return {name: crossing_totals(true_crossings(gt, a, b)) for name, a, b in ALL_LINES}


def accuracy_by_set(counted: dict, truth: dict) -> dict[str, float]:
    """1 - sum|counted - true| / sum(true) over both directions, per line set and over all lines."""
    out = {}
    for set_name, lines in list(LINE_SETS.items()) + [("all", ALL_LINES)]:
        err = sum(abs(counted[n][d] - truth[n][d]) for n, _, _ in lines for d in ("in", "out"))
        total = sum(truth[n][d] for n, _, _ in lines for d in ("in", "out"))
        out[set_name] = round(1.0 - err / total, 4)
    return out


def pin(core: int | None, threads: int = 1) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def single_thread_onnxruntime() -> None:
    """Sessions made without options get counterd's: one intra-op and one inter-op thread.

    ultralytics' ONNX backend passes no SessionOptions, so ONNX Runtime would size its pool to the
    machine's cores; pinned to one core, the extra threads only spin and steal from the one doing the
    work. The same engine with the same threads on the same weights is the fair comparison."""
    import onnxruntime as ort
    original = ort.InferenceSession.__init__

    def init(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kw):
        if sess_options is None:
            sess_options = ort.SessionOptions()
            sess_options.intra_op_num_threads = 1
            sess_options.inter_op_num_threads = 1
        original(self, path_or_bytes, sess_options, providers, provider_options, **kw)

    ort.InferenceSession.__init__ = init


def frames(limit: int | None):
    import cv2
    cap = cv2.VideoCapture(str(VIDEO))
    n = 0
    while limit is None or n < limit:
        ok, image = cap.read()
        if not ok:
            break
        yield image
        n += 1
    cap.release()


# ---------------------------------------------------------------------------------------------


def run_ultralytics(args) -> dict:
    import torch
    torch.set_num_threads(1)
    single_thread_onnxruntime()
    from compare_hotloop import feed_object_counter, make_object_counter, object_counter_counts
    from ultralytics.trackers.byte_tracker import BYTETracker

    recorded: list[np.ndarray] = []
    original_update = BYTETracker.update

    def recording_update(self, results, img=None, feats=None, **kw):
        recorded.append(np.asarray(results.data, np.float32).copy())
        return original_update(self, results, img, feats, **kw)

    BYTETracker.update = recording_update
    shipped = [make_object_counter(str(MODEL), a, b) for _, a, b in ALL_LINES]
    bottom = [make_object_counter(str(MODEL), a, b, anchor="bottom") for _, a, b in ALL_LINES]
    runner = shipped[0]
    runner.CFG.update(conf=CONFIDENCE, iou=NMS_IOU)
    runner.track_add_args.update(conf=CONFIDENCE, iou=NMS_IOU, imgsz=640, device="cpu")

    n, timed, cpu = 0, 0.0, 0.0
    started = time.perf_counter()
    decode_t, decode_c = time.perf_counter(), time.process_time()
    for image in frames(args.frames):
        t0, c0 = time.perf_counter(), time.process_time()
        timed += t0 - decode_t                      # decoding this frame
        cpu += c0 - decode_c
        runner.extract_tracks(image)                # YOLO(onnx).track + the Boxes it hands over
        boxes = runner.track_data if runner.track_data is not None and runner.track_data.is_track else None
        removed = [t.track_id for t in runner.model.predictor.trackers[0].removed_stracks_frame]
        for counter in shipped[1:]:
            _feed(counter, boxes, removed, feed_object_counter)
        _count_own(runner)
        t1, c1 = time.perf_counter(), time.process_time()
        timed += t1 - t0
        cpu += c1 - c0
        for counter in bottom:                      # the fairer-anchor variant: not timed
            _feed(counter, boxes, removed, feed_object_counter)
        decode_t, decode_c = time.perf_counter(), time.process_time()
        n += 1
        if n == 1:      # the first frame loads the model and warms the engine up: not timed
            timed = cpu = 0.0
    n -= 1
    wall = time.perf_counter() - started
    BYTETracker.update = original_update
    if args.record:
        np.savez_compressed(args.record, *recorded)
    return {
        "pipeline": "ultralytics", "frames": n, "seconds": round(timed, 3), "fps": round(n / timed, 2),
        "cpu_seconds": round(cpu, 3), "fps_cpu": round(n / cpu, 2), "wall_seconds": round(wall, 3),
        "counts": {name: object_counter_counts(c, a, b) for c, (name, a, b) in zip(shipped, ALL_LINES)},
        "counts_bottom_anchor": {name: object_counter_counts(c, a, b) for c, (name, a, b) in zip(bottom, ALL_LINES)},
    }


def _feed(counter, boxes, removed, feed):
    if boxes is None:
        counter.forget_tracks(removed)
        return
    feed(counter, boxes, removed)


def _count_own(counter) -> None:
    """process()'s counting loop over the tracks extract_tracks() just set (drawing left out)."""
    for box, track_id, cls in zip(counter.boxes, counter.track_ids, counter.clss):
        counter.store_tracking_history(track_id, box)
        history = counter.track_history[track_id]
        prev = history[-2] if len(history) > 1 else None
        counter.count_objects(history[-1], track_id, prev, cls)


# ---------------------------------------------------------------------------------------------


def run_supervision(args) -> dict:
    import supervision as sv
    from compare_hotloop import make_line_zone

    def pipeline():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracker = sv.ByteTrack(frame_rate=VIDEO_FPS)
        zones = {anchor: [make_line_zone(a, b, anchor) for _, a, b in ALL_LINES]
                 for anchor in ("BOTTOM_CENTER", "corners")}
        return tracker, zones

    def counts(zones):
        return {name: {"in": z.in_count, "out": z.out_count} for z, (name, _, _) in zip(zones, ALL_LINES)}

    # Counts: the detections the ultralytics run fed its own tracker, every frame of the clip.
    recorded = np.load(args.detections)
    tracker, zones = pipeline()
    for key in sorted(recorded.files, key=lambda k: int(k.split("_")[1])):
        data = recorded[key].reshape(-1, 6)
        dets = sv.Detections(xyxy=data[:, :4], confidence=data[:, 4], class_id=data[:, 5].astype(int))
        tracked = tracker.update_with_detections(dets)
        for zone in zones["BOTTOM_CENTER"] + zones["corners"]:
            zone.trigger(tracked)
    result = {"pipeline": "supervision", "count_frames": len(recorded.files),
              "counts": counts(zones["BOTTOM_CENTER"]), "counts_corner_anchors": counts(zones["corners"])}

    # Speed: supervision's documented pipeline with the ultralytics model as its detector.
    import torch
    torch.set_num_threads(1)
    single_thread_onnxruntime()
    from ultralytics import YOLO
    model = YOLO(str(MODEL), task="detect")
    tracker, zones = pipeline()
    n, timed, cpu = 0, 0.0, 0.0
    decode_t, decode_c = time.perf_counter(), time.process_time()
    for image in frames(args.frames):
        t0, c0 = time.perf_counter(), time.process_time()
        timed += t0 - decode_t
        cpu += c0 - decode_c
        r = model.predict(image, conf=CONFIDENCE, iou=NMS_IOU, classes=[0], imgsz=640, device="cpu",
                          verbose=False)[0]
        tracked = tracker.update_with_detections(sv.Detections.from_ultralytics(r))
        for zone in zones["BOTTOM_CENTER"]:
            zone.trigger(tracked)
        decode_t, decode_c = time.perf_counter(), time.process_time()
        timed += decode_t - t0
        cpu += decode_c - c0
        n += 1
        if n == 1:
            timed = cpu = 0.0
    n -= 1
    result.update(frames=n, seconds=round(timed, 3), fps=round(n / timed, 2), cpu_seconds=round(cpu, 3),
                  fps_cpu=round(n / cpu, 2))
    return result


# ---------------------------------------------------------------------------------------------


def counterd_config(model: Path, lines, threads: int = 1, extra: str = "") -> str:
    out = [f'[detector]\ntype = "onnx"\nmodel = "{model}"\nclasses = ["person"]\n'
           f"confidence = {CONFIDENCE}\nnms_iou = {NMS_IOU}\nthreads = {threads}\n"]
    for name, a, b in lines:
        out.append(f'[[lines]]\nname = "{name}"\nstart = [{a[0]}, {a[1]}]\nend = [{b[0]}, {b[1]}]\n')
    return "\n".join(out) + extra


def run_counterd(args) -> dict:
    """What `counterd process VIDEO --config <toml> --json` does (commands/process.py), timed the same
    way as the others: the loop over frames, setup excluded; CPU time counts the reader thread too.
    --no-stride switches gating.stride off, --mosaic detector.mosaic on in that config."""
    from counterd.config import load_config
    from counterd.pipeline import Pipeline
    from counterd.source import open_source
    config_path = Path(args.out).with_suffix(".toml")
    text = counterd_config(MODEL, ALL_LINES)
    if args.mosaic:
        text = text.replace("[detector]\n", "[detector]\nmosaic = true\n", 1)
    if args.no_stride:
        text += "\n[gating]\nstride = false\n"
    config_path.write_text(text)
    config = load_config(config_path)
    with open_source(str(VIDEO)) as source:
        pipeline = Pipeline(config)
        n, timing = 0, False
        for frame in source:
            pipeline.step(frame)
            if not timing:      # as for the others, the first frame (engine warm-up) is not timed
                t0, c0, timing = time.perf_counter(), time.process_time(), True
                continue
            n += 1
            if args.frames and n >= args.frames:
                break
        pipeline.finish()
        timed, cpu = time.perf_counter() - t0, time.process_time() - c0
        pipeline.close()
    totals = pipeline.totals
    counts = {name: {d: int(totals.get(name, {}).get(d, {}).get("person", 0)) for d in ("in", "out")}
              for name, _, _ in ALL_LINES}
    name = "counterd" + (" - stride" if args.no_stride else "") + (" + mosaic" if args.mosaic else "")
    return {"pipeline": name, "frames": n, "detected_frames": pipeline.times.frames,
            "inferences": pipeline.detector.inferences, "seconds": round(timed, 3), "fps": round(n / timed, 2),
            "cpu_seconds": round(cpu, 3), "fps_cpu": round(n / cpu, 2), "counts": counts,
            "stage_ms": {k: round(v, 2) for k, v in pipeline.times.mean_ms().items()},
            "command": f"counterd process {VIDEO} --config {config_path} --json"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("pipeline", choices=("ultralytics", "supervision", "counterd"))
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, help="frames for the speed pass (default: the whole clip)")
    p.add_argument("--record", help="ultralytics: save the detections its tracker was fed (npz)")
    p.add_argument("--detections", help="supervision: the npz the ultralytics run recorded")
    p.add_argument("--core", type=int, help="pin this process (and its children) to one CPU")
    p.add_argument("--no-stride", action="store_true", help="counterd: gating.stride = false (counterd/stride.py)")
    p.add_argument("--mosaic", action="store_true", help="counterd: detector.mosaic = true (counterd/detect/mosaic.py)")
    args = p.parse_args(argv)
    pin(args.core)
    sys.path.insert(0, str(HERE))
    run = {"ultralytics": run_ultralytics, "supervision": run_supervision, "counterd": run_counterd}
    result = run[args.pipeline](args)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
