"""Model files: the manifest of known models, where model names are looked up, and fetching.

A detector's `model` setting is a file path or a manifest name. Names resolve to a file in the
models directory: detector.models_dir if set, else $COUNTERD_MODELS_DIR, else the checkout's
models/ folder when counterd runs from a source checkout, else /var/lib/counterd/models, the
service's state directory (see models/README.md). Weights are never committed; `counterd model fetch NAME`
downloads one and checks its sha256 before it is used.
"""
from __future__ import annotations

import hashlib
import os
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from counterd.errors import UserError

CHECKOUT = Path(__file__).resolve().parents[1]
CHECKOUT_MODELS = CHECKOUT / "models"
# An installed copy lives in site-packages, where nothing should be written and the service user
# cannot write: its models go to the state directory the systemd unit owns.
INSTALLED_MODELS = Path("/var/lib/counterd/models")
MANIFEST_NAME = "manifest.toml"
HEADS = ("ultralytics", "end2end", "yolox")
CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str                      # file name inside the models directory
    input_size: tuple[int, int]    # network input (height, width)
    head: str                      # one of HEADS: how the output tensor is decoded
    url: str
    sha256: str
    license: str = ""


def models_dir(configured: str = "") -> Path:
    """The directory model names are looked up in and fetched into."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("COUNTERD_MODELS_DIR"):
        return Path(os.environ["COUNTERD_MODELS_DIR"]).expanduser()
    return default_models_dir(CHECKOUT)


def default_models_dir(package_parent: Path) -> Path:
    """models/ of a source checkout (it has pyproject.toml beside the package), else the
    installed copy's INSTALLED_MODELS."""
    if (package_parent / "pyproject.toml").is_file() and (package_parent / "models").is_dir():
        return package_parent / "models"
    return INSTALLED_MODELS


# models/manifest.toml, shipped inside the package (counterd/manifest.toml links to it in a
# checkout and is copied into wheels) so an installed counterd knows the models too.
PACKAGED_MANIFEST = Path(__file__).resolve().parent / MANIFEST_NAME


def manifest_path(directory: Path) -> Path:
    """A manifest.toml in the models directory wins over the one that ships with counterd."""
    own = directory / MANIFEST_NAME
    return own if own.is_file() else PACKAGED_MANIFEST


def load_manifest(path: Path) -> dict[str, ModelEntry]:
    """Read a manifest: one TOML table per model name; raises UserError naming the bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: model manifest not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: cannot read the model manifest: {exc}") from None
    entries = {}
    for name, table in data.items():
        where = f"{path}: {name}"
        if not isinstance(table, dict):
            raise UserError(f"{where}: expected a table of model settings")
        missing = {"file", "input_size", "head", "url", "sha256"} - table.keys()
        if missing:
            raise UserError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
        unknown = table.keys() - {"file", "input_size", "head", "url", "sha256", "license"}
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        size = table["input_size"]
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise UserError(f"{where}.input_size: expected [height, width], got {size!r}")
        if table["head"] not in HEADS:
            raise UserError(f"{where}.head: must be one of {', '.join(HEADS)}, got {table['head']!r}")
        digest = str(table["sha256"]).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UserError(f"{where}.sha256: expected 64 hex digits")
        entries[name] = ModelEntry(name, str(table["file"]), (size[0], size[1]), table["head"],
                                   str(table["url"]), digest, str(table.get("license", "")))
    return entries


def resolve_model(spec: str, configured_dir: str = "") -> Path:
    """A `model` setting -> an existing file or directory; UserError says what to do if absent."""
    if not spec:
        raise UserError("no model given: set detector.model or pass --model")
    direct = Path(spec).expanduser()
    if direct.exists():
        return _openable(direct)
    directory = models_dir(configured_dir)
    if (directory / spec).exists():
        return _openable(directory / spec)
    if direct.suffix or "/" in spec:   # meant as a file, not a manifest name
        raise UserError(f"model {spec}: no such file (nor in the models directory {directory})")
    manifest = load_manifest(manifest_path(directory))
    entry = manifest.get(spec)
    if entry is None:
        known = ", ".join(sorted(manifest)) or "none"
        raise UserError(f"model {spec!r}: no such file, and not a model name in the manifest (known: {known})")
    path = directory / entry.file
    if not path.exists():
        raise UserError(f"model {spec!r}: {path} is missing; download it with `counterd model fetch {spec}`")
    return _openable(path)


def _openable(path: Path) -> Path:
    """A model is a regular file (or an exported model's directory): reading a FIFO or a device
    would block start-up for ever."""
    if not (path.is_file() or path.is_dir()):
        raise UserError(f"model {path}: not a regular file (a FIFO, socket or device cannot be a model)")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_model(entry: ModelEntry, directory: Path, force: bool = False, timeout: float = 60.0) -> Path:
    """Download entry.url into directory/entry.file, verifying the sha256 before the file appears.

    The download goes to a .part file renamed into place only when its checksum matches, so a
    daemon never loads a truncated or substituted model."""
    target = directory / entry.file
    if target.exists() and not force and sha256_of(target) == entry.sha256:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as response, open(partial, "wb") as out:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"model {entry.name!r}: download from {entry.url} failed: {exc}") from None
    if digest.hexdigest() != entry.sha256:
        partial.unlink(missing_ok=True)
        raise UserError(f"model {entry.name!r}: sha256 of {entry.url} is {digest.hexdigest()}, "
                        f"the manifest expects {entry.sha256}; file discarded")
    os.replace(partial, target)
    return target
