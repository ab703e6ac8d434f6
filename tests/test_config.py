"""Config loading: typed values, and one error per problem naming the file and the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    good = subprocess.run([sys.executable, "-m", "counterd", "check-config", str(REPO / "config" / "counterd.toml")],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert '"primary_line": "door"' in good.stdout
