"""`counterd model list`, `counterd model fetch NAME` and `counterd model optimize MODEL`: the known
models, downloading them, and a faster copy of one for a site (counterd/detect/optimize.py)."""
from __future__ import annotations

import sys
from pathlib import Path

from counterd.errors import UserError
from counterd.models import fetch_model, load_manifest, manifest_path, models_dir, resolve_model


def register(subparsers) -> None:
    p = subparsers.add_parser("model", help="list known models, download one, or optimise one for a camera",
                              description="The detection models counterd knows (models/manifest.toml), "
                                          "downloading them, checked against their sha256, into the models "
                                          "directory, and a faster copy of one made for a camera (optimize).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("list", "the models in the manifest and whether each is downloaded"),
                       ("fetch", "download a model into the models directory, verifying its sha256")):
        a = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if name == "fetch":
            a.add_argument("name", help="model name from the manifest (see `counterd model list`)")
            a.add_argument("--force", action="store_true", help="download again even if present")
        a.add_argument("--dir", default="", help="models directory (default: $COUNTERD_MODELS_DIR, else models/ "
                                                 "in a source checkout, else /var/lib/counterd/models)")
        a.add_argument("--manifest", default="", help="manifest file (default: the models directory's, "
                                                      "else models/manifest.toml)")
    o = actions.add_parser("optimize", help="write a faster copy of a model for one site: input cut to the "
                           "camera's aspect ratio, static int8 calibrated on its frames; keeps what is fastest here",
                           description="Write a copy of MODEL made for one camera: the input cut to the camera's "
                                       "aspect ratio where the network allows it, and static int8 (QDQ) "
                                       "quantisation calibrated on frames of that camera. Every candidate (float, "
                                       "int8 convolutions, int8 everywhere) is timed on this machine; the fastest "
                                       "whose boxes agree with the original's is written.")
    o.add_argument("model", help="model file or manifest name")
    o.add_argument("--calibrate", required=True, metavar="VIDEO_OR_SOURCE",
                   help="a recording or live source (rtsp://, USB index) of the camera the model will serve")
    o.add_argument("--out", required=True, help="file to write (use it as detector.model)")
    o.add_argument("--input-size", default="auto", help="auto (fit the frames' aspect ratio where the model "
                   "allows), model (keep its size) or HEIGHTxWIDTH, multiples of 32 (default: auto)")
    o.add_argument("--no-quantize", action="store_true", help="keep float weights (only the input size changes)")
    o.add_argument("--frames", type=int, default=64, help="calibration frames (default 64)")
    o.add_argument("--every", type=int, default=5, help="take every Nth frame of the source (default 5)")
    o.add_argument("--min-agreement", type=float, default=0.95, help="least F1 (IoU 0.5) of a candidate's boxes "
                   "against the original's on frames calibration did not use (default 0.95)")
    o.add_argument("--dir", default="", help="models directory for a manifest name")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.action == "optimize":
        return run_optimize(args)
    directory = models_dir(args.dir)
    manifest = load_manifest(Path(args.manifest) if args.manifest else manifest_path(directory))
    if args.action == "list":
        print(f"models directory: {directory}")
        for entry in manifest.values():
            present = "present" if (directory / entry.file).exists() else "not downloaded"
            h, w = entry.input_size
            print(f"{entry.name:<20} {entry.file:<26} {w}x{h:<5} {entry.head:<12} {present}")
        return 0
    entry = manifest.get(args.name)
    if entry is None:
        raise UserError(f"no model named {args.name!r} in the manifest (known: {', '.join(sorted(manifest))})")
    print(f"fetching {entry.name} from {entry.url}", file=sys.stderr)
    path = fetch_model(entry, directory, force=args.force)
    print(f"{entry.name}: {path} (sha256 {entry.sha256[:12]}... verified)")
    return 0


def run_optimize(args) -> int:
    try:
        import onnx  # noqa: F401  (only this command needs it)

        from counterd.detect.optimize import optimize
    except ImportError:
        raise UserError("counterd model optimize needs the onnx package: pip install onnx") from None
    from counterd.source import redact

    source = resolve_model(args.model, args.dir)
    print(f"optimizing {source} on frames of {redact(args.calibrate)} (a minute or two)", file=sys.stderr)
    summary = optimize(source, args.calibrate, Path(args.out), quantize=not args.no_quantize,
                       input_size=args.input_size, frames=args.frames, every=args.every,
                       min_agreement=args.min_agreement)
    if "input_size_note" in summary:
        print(f"input size kept: {summary['input_size_note']}", file=sys.stderr)
    h, w = summary["input_size"]
    timings = ", ".join(f"{name} {ms:.1f} (agreement {summary['agreement'][name]:.3f})"
                        for name, ms in summary["ms_per_frame"].items())
    print(f"{args.out}: {w}x{h} input, {summary['kept']} ({summary['calibration_frames']} calibration frames); "
          f"CPU ms per frame here: original {summary['ms_original']:.1f}, {timings}")
    return 0
