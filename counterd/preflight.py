"""What `counterd check-config` checks beyond the config file's own validation: the things a
first deployment trips over (a model that is not there or does not load, a video file that is
missing, an MQTT certificate or password file that cannot be read) are errors; upload columns
this configuration can never fill, and a config file the console's lines editor could not save
into, are warnings."""
from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from counterd.config import Config
from counterd.durable import temp_path
from counterd.errors import UserError
from counterd.report_schema import COUNT_COLUMNS, DEFAULT_CLASS_MAP


def deployment_errors(config: Config) -> list[str]:
    """One line per problem that would stop `counterd run` at start-up."""
    from counterd.sourcespec import check_video_file, source_kind

    errors = []
    if config.detector.type != "motion":
        from counterd.detect import make_detector    # heavy: only for a model to load
        try:
            make_detector(config.detector).close()   # found, and the engine can open it
        except UserError as exc:
            errors.append(f"detector.model: {exc}")
    source = config.camera.source
    if not source:
        errors.append("camera.source: empty: give a file, an rtsp:// URL or a USB camera")
    elif source_kind(source) == "file":
        try:
            check_video_file(source)
        except UserError as exc:
            errors.append(f"camera.source: {exc}")
    if config.mqtt.enabled:
        from counterd.mqtt.credentials import read_login
        try:
            read_login(config.mqtt)       # TLS files and the password are readable
        except UserError as exc:
            errors.append(str(exc))
    return errors


def upload_warnings(config: Config) -> list[str]:
    """Report columns a class is mapped to but that stay 0 whatever passes the camera, because
    the detector never produces that class."""
    upload = config.upload
    if not upload.enabled:
        return []
    class_map = upload.class_map or DEFAULT_CLASS_MAP[upload.model_name]
    if config.detector.type == "motion":
        detected = {config.detector.motion.class_name}
        why = f"the motion detector counts every object as {config.detector.motion.class_name!r}"
    else:
        detected = set(config.detector.classes)
        why = "detector.classes does not include"
    mapped = {column for _, column in class_map}
    fillable = {column for cls, column in class_map if cls in detected}
    out = []
    starved = [c for c in COUNT_COLUMNS[upload.model_name] if c in mapped and c not in fillable]
    if starved:
        if config.detector.type == "motion":
            out.append(f"upload: column(s) {', '.join(starved)} can never be filled: {why}")
        else:
            classes = sorted({cls for cls, column in class_map if column in starved})
            out.append(f"upload: column(s) {', '.join(starved)} can never be filled: {why} "
                       f"{', '.join(classes)}")
    # Columns no class maps to (van and taxi for a COCO detector) are documented as always 0;
    # warning about them would fire on every yolo-schema box and teach people to skip warnings.
    return out


def save_warnings(path: str | Path) -> list[str]:
    """Why the console's lines editor could not save into the config file as the user running this
    (it writes a temp file beside the file, renames it over and keeps <file>.bak), or nothing.
    Run as the service user (`sudo -u counterd counterd check-config FILE`) it catches a wrong
    owner or mode before an installer meets a 503 on Save."""
    path = Path(path).resolve()
    folder, uid = path.parent, os.geteuid()
    who = _user_name(uid)
    if not os.access(folder, os.W_OK | os.X_OK):
        return [f"the console cannot save lines into {path}: user {who} may not create files in {folder}"]
    owner = path.stat().st_uid
    if folder.stat().st_mode & stat.S_ISVTX and uid not in (0, owner, folder.stat().st_uid):
        return [f"the console cannot save lines into {path}: it belongs to {_user_name(owner)} and the sticky "
                f"bit on {folder} lets only its owner replace it (chown {who} {path})"]
    for leftover in (path.with_name(path.name + ".bak"), temp_path(path)):
        if leftover.exists() and not os.access(leftover, os.W_OK):
            return [f"the console cannot save lines into {path}: user {who} may not overwrite {leftover}"]
    return []


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
