"""`counterd model list` and `counterd model fetch NAME`: the known models and downloading them."""
from __future__ import annotations

import sys
from pathlib import Path

from counterd.errors import UserError
from counterd.models import fetch_model, load_manifest, manifest_path, models_dir


def register(subparsers) -> None:
    p = subparsers.add_parser("model", help="list known models or download one",
                              description="The detection models counterd knows (models/manifest.toml) and "
                                          "downloading them, checked against their sha256, into the models "
                                          "directory.")
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
    p.set_defaults(func=run)


def run(args) -> int:
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
