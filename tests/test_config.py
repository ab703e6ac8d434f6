"""Config loading: typed values, and one error per problem naming the file and the key."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_MODELS, need_shared
from counterd.config import ConfigError, config_from_dict, config_to_dict, load_config

REPO = Path(__file__).resolve().parents[1]
LINE = {"name": "door", "start": [10, 10], "end": [10, 100]}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, "site.toml")
    return info.value.problems


def test_example_config_loads_and_documents_every_key():
    config = load_config(REPO / "config" / "counterd.toml")
    assert config.primary_line.name == "door"
    text = (REPO / "config" / "counterd.toml").read_text()
    undocumented = []

    def walk(values: dict, prefix: str) -> None:
        for key, value in values.items():
            if isinstance(value, dict):
                if f"[{prefix}{key}]" not in text:
                    undocumented.append(f"[{prefix}{key}]")
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                walk(value[0], f"{prefix}{key}[].")
            elif f"{key} =" not in text:
                undocumented.append(prefix + key)

    walk(config_to_dict(config), "")
    assert not undocumented, f"config/counterd.toml does not document {undocumented}"


def test_defaults_are_typed():
    config = config_from_dict({"lines": [LINE]})
    assert config.detector.type == "onnx"
    assert config.lines[0].start == (10.0, 10.0) and isinstance(config.lines[0].start[0], float)
    assert config.primary_line.name == "door"


def test_unknown_key_names_file_and_key():
    found = problems_of({"detector": {"confidense": 0.3}})
    assert found[0].startswith("site.toml: detector.confidense: unknown key (known keys here: classes, confidence")


@pytest.mark.parametrize("data, expected", [
    ({"detector": {"confidence": "high"}}, "site.toml: detector.confidence: expected a number"),
    ({"detector": {"confidence": 1.5}}, "site.toml: detector.confidence: must be <= 1, got 1.5"),
    ({"counting": {"hysteresis_px": -2}}, "site.toml: counting.hysteresis_px: must be >= 0, got -2"),
    ({"detector": {"threads": 1.5}}, "site.toml: detector.threads: expected an integer"),
    ({"detector": {"type": "tensorflow"}}, "site.toml: detector.type: must be one of 'onnx'"),
    ({"detector": {"classes": ["person", "dragon"]}}, "site.toml: detector.classes: unknown COCO class"),
    ({"lines": [{"name": "a", "start": [0, 0]}]}, "site.toml: lines[0].end: required key is missing"),
    ({"lines": [{"name": "a", "start": [0, 0], "end": [1, 2, 3]}]}, "site.toml: lines[0].end: expected 2 values"),
    ({"lines": [LINE, LINE]}, "site.toml: lines: line name 'door' is used more than once"),
    ({"camera": {"width": 640, "height": 480}, "lines": [{"name": "a", "start": [0, 0], "end": [700, 10]}]},
     "site.toml: lines[0].end: point (700, 10) is outside the 640x480 frame"),
    ({"counting": {"primary_line": "gate"}, "lines": [LINE]}, "site.toml: counting.primary_line: no line is named 'gate'"),
    ({"tracker": {"low_score": 0.7, "high_score": 0.5}}, "site.toml: tracker.low_score: must be <= high_score"),
    ({"camera": {"serial": "xyz"}}, "site.toml: camera.serial: must be 12 upper-case hex digits"),
    ({"camera": "entrance"}, "site.toml: camera: expected a table"),
])
def test_bad_values_are_named(data, expected):
    found = problems_of(data)
    assert any(p.startswith(expected) for p in found), found


def test_line_on_frame_edge_is_inside():
    config = config_from_dict({"camera": {"width": 640, "height": 480},
                               "lines": [{"name": "edge", "start": [0, 0], "end": [0, 480]}]})
    assert config.lines[0].end == (0.0, 480.0)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera\nname = 1")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"nope.toml: no such file"):
        load_config(tmp_path / "nope.toml")


def test_check_config_command(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('[detector]\nconfidence = 2\n[[lines]]\nname = "x"\nstart = [0, 0]\nend = [0, 0]\n')
    out = subprocess.run([sys.executable, "-m", "counterd", "check-config", str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert f"{bad}: detector.confidence: must be <= 1, got 2" in out.stderr
    assert "Traceback" not in out.stderr
    # The example config names yolox_nano: found where the shared models are (see
    # test_first_deployment.py for the model and source checks themselves).
    env = {**os.environ, "COUNTERD_MODELS_DIR": str(need_shared(SHARED_MODELS["yolox_nano"]).parent)}
    good = subprocess.run([sys.executable, "-m", "counterd", "check-config", str(REPO / "config" / "counterd.toml")],
                          capture_output=True, text=True, env=env)
    assert good.returncode == 0, good.stderr
    assert '"primary_line": "door"' in good.stdout


# ---- hostile inputs (issue 13: 10, 17; issue 12: 14) -------------------------------------------

@pytest.mark.parametrize("section, key, value", [
    ("counting", "hysteresis_px", float("nan")), ("daemon", "flush_interval_s", float("nan")),
    ("detector", "confidence", float("inf")), ("tracker", "max_coast_seconds", float("-inf")),
    ("source", "watchdog_s", 1e300),
])
def test_nan_and_infinities_are_refused(section, key, value):
    (problem,) = problems_of({section: {key: value}})
    assert problem.startswith(f"site.toml: {section}.{key}: must be a finite number")


def test_huge_integers_are_refused():
    (problem,) = problems_of({"detector": {"motion": {"history": 2**63 - 1}}})
    assert problem == f"site.toml: detector.motion.history: {2**63 - 1} is too large (at most {2**31 - 1})"


def test_a_nested_toml_bomb_is_a_config_error(tmp_path):
    path = tmp_path / "bomb.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "nested too deeply" in info.value.problems[0] or "not valid TOML" in info.value.problems[0]


def test_a_fifo_as_model_file_is_refused_at_once(tmp_path):
    import os
    from counterd.errors import UserError
    from counterd.models import resolve_model
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        resolve_model(str(fifo))


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "huge"])
def test_a_config_path_that_is_not_a_small_text_file_fails_at_once(tmp_path, kind):
    """A FIFO would block start-up for ever and /dev/zero would never end: each is named."""
    import os
    from concurrent.futures import ThreadPoolExecutor
    path = tmp_path / "counterd.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = "/dev/zero"
    else:
        path.write_text("# padding\n" * 500_000)          # 5 MB of comments
    expected = {"fifo": "not a regular file (a FIFO)", "directory": "not a regular file (a directory)",
                "device": "not a regular file (a character device)", "huge": "larger than"}[kind]
    with ThreadPoolExecutor(1) as pool:                # a hang fails the test instead of the run
        future = pool.submit(load_config, path)
        with pytest.raises(ConfigError, match=re.escape(expected)):
            future.result(timeout=30)


def test_a_secret_file_that_is_a_fifo_is_named_not_waited_for(tmp_path):
    import os
    from concurrent.futures import ThreadPoolExecutor
    from counterd.config.secrets import SecretError, read_secret
    fifo = tmp_path / "pin"
    os.mkfifo(fifo)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(read_secret, "upload.pin", None, "", str(fifo))
        with pytest.raises(SecretError, match=r"upload.pin_file: cannot read .*not a regular file \(a FIFO\)"):
            future.result(timeout=30)


def _users(*entries, realm="counterd"):
    import hashlib
    return [{"name": n, "role": "viewer", "ha1": hashlib.md5(f"{n}:{realm}:{pw}".encode()).hexdigest()}
            for n, pw in entries]


def test_empty_password_and_duplicate_users_are_refused():
    problems = problems_of({"users": _users(("ann", "pw"), ("ann", "other"), ("bob", ""))})
    assert "site.toml: users: user name 'ann' is used more than once" in problems
    assert any(p.startswith("site.toml: users[2].ha1: user 'bob' has an empty password") for p in problems)


@pytest.mark.parametrize("path", [":memory:", "file::memory:?cache=shared"])
def test_an_in_memory_store_is_refused(path):
    (problem,) = problems_of({"store": {"path": path}})
    assert problem.startswith("site.toml: store.path: an in-memory database loses every count")


SECRET_FORMS = '''
[camera]
source = "rtsp://cam:rtsp-pw-1@192.0.2.1/stream"
[alerts]
webhook_url = "https://hook:hook-pw-2@hooks.example/alert"
[upload]
url = "https://up:up-pw-3@central.example"
pin = """
pin-4-multiline"""
[[users]]
"name" = "ada"
"role" = "admin"
"ha1" = "0123456789abcdef0123456789abcdef"
'ha1_sha256' = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
'''
SECRETS = ("rtsp-pw-1", "hook-pw-2", "up-pw-3", "pin-4-multiline", "0123456789abcdef0123456789abcdef",
           "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210")


def test_secrets_are_redacted_by_type_whatever_their_toml_form(tmp_path, capsys):
    """check-config and generate-logs show the parsed config through one redaction by type."""
    import io
    import tarfile
    from counterd.api.logs import generate_logs
    from counterd.cli import main
    path = tmp_path / "site.toml"
    # The motion detector needs no model file, so check-config's deployment checks pass.
    path.write_text(SECRET_FORMS + f'[daemon]\nlog_file = "{tmp_path / "c.log"}"\n[detector]\ntype = "motion"\n')
    assert main(["check-config", str(path)]) == 0
    printed = capsys.readouterr().out
    bundle = generate_logs(load_config(path), str(tmp_path / "c.log"))
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        shipped = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile())
    for shown in (printed, shipped):
        assert not [s for s in SECRETS if s in shown]
        assert "rtsp://cam:***@192.0.2.1/stream" in shown and '"ha1": "<redacted>"' in shown


def test_config_imports_nothing_of_the_packages_that_use_it():
    """No config <-> upload cycle: the config layer reads the report contract, not the uploader."""
    out = subprocess.run([sys.executable, "-c", "import sys, counterd.config; "
                          "print(sorted(m for m in sys.modules if m.startswith('counterd.')))"],
                         capture_output=True, text=True, timeout=60)
    loaded = out.stdout
    assert out.returncode == 0 and "counterd.config" in loaded, out.stderr
    for package in ("counterd.upload", "counterd.api", "counterd.daemon", "counterd.store"):
        assert package not in loaded, loaded


def test_url_credentials_are_redacted_by_one_rule():
    from counterd.config import redact_url
    from counterd.upload.sender import display_url
    assert redact_url("rtsp://cam:pw@192.0.2.1/s") == "rtsp://cam:***@192.0.2.1/s"
    assert redact_url("https://token@hooks.example/x") == "https://***@hooks.example/x"     # a bare user may be a token
    assert redact_url("http://h/x?a=b@c") == "http://h/x?a=b@c"
    assert display_url("https://up:pw@central.example/upload_report") == "https://up:***@central.example/upload_report"
