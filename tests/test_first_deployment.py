"""A first deployment from a fresh install (issue 12 points 11 and 13): an installed copy looks for
models in the state directory, and `counterd check-config` fails on what would stop the service
(a model that is missing or does not load, a video file that is not there) and warns about
upload columns that can never be filled."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_MODELS, need_shared

REPO = Path(__file__).resolve().parents[1]


def hermetic_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "COUNTERD_MODELS_DIR"}


def check_config(config: Path):
    return subprocess.run([sys.executable, "-m", "counterd", "check-config", str(config)],
                          capture_output=True, text=True, timeout=120, env=hermetic_env(), cwd=config.parent)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_an_installed_copy_looks_for_models_in_the_state_directory(tmp_path):
    """The package as `pip install .` lays it out: site-packages/counterd, no checkout around it."""
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "counterd", site / "counterd", ignore=shutil.ignore_patterns("__pycache__"))
    config = write(tmp_path / "c.toml", '[camera]\nsource = "rtsp://127.0.0.1:9/cam"\n')
    env = {**hermetic_env(), "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "from counterd.models import models_dir; print(models_dir())"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert where.stdout.strip() == "/var/lib/counterd/models", where.stderr
    out = subprocess.run([sys.executable, "-m", "counterd", "check-config", str(config)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert (f"counterd: error: {config}: detector.model: model 'yolox_nano': "
            f"/var/lib/counterd/models/yolox_nano.onnx is missing; download it with "
            f"`counterd model fetch yolox_nano`") in out.stderr


def test_a_checkout_keeps_its_own_models_folder():
    from counterd.models import default_models_dir
    assert default_models_dir(REPO) == REPO / "models"


def test_check_config_fails_on_a_model_it_cannot_open(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "yolox_nano.onnx").write_bytes(b"<html>not a model</html>")
    config = write(tmp_path / "c.toml", f'[camera]\nsource = "rtsp://127.0.0.1:9/cam"\n'
                                        f'[detector]\nmodels_dir = "{models}"\n')
    out = check_config(config)
    assert out.returncode == 2
    assert "detector.model: model" in out.stderr and "ONNX Runtime cannot load it" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("source, message", [
    ("missing.mp4", "video file missing.mp4: no such file"),
    (".", "video file .: is a directory; give one video file in it"),
    ("", "camera.source: empty"),
])
def test_check_config_fails_on_a_file_source_that_is_not_there(tmp_path, source, message):
    config = write(tmp_path / "c.toml", f'[camera]\nsource = "{source}"\n[detector]\ntype = "motion"\n')
    out = check_config(config)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_check_config_passes_a_deployable_config(tmp_path, pets_video):
    model = need_shared(SHARED_MODELS["yolox_nano"])
    config = write(tmp_path / "c.toml", f'[camera]\nsource = "{pets_video}"\n'
                                        f'[detector]\nmodels_dir = "{model.parent}"\n')
    out = check_config(config)
    assert out.returncode == 0, out.stderr
    assert "error" not in out.stderr and "warning" not in out.stderr
    assert "detector: onnx yolox_nano.onnx" in out.stderr          # it was opened, not just found


UPLOAD = ('[upload]\nenabled = true\nurl = "http://127.0.0.1:9"\ncamera_ref = "cam"\npin = "1"\n'
          '[camera]\nsource = "rtsp://127.0.0.1:9/cam"\n')


def test_check_config_warns_when_a_motion_detector_feeds_the_yolo_columns(tmp_path):
    config = write(tmp_path / "c.toml", UPLOAD + '[detector]\ntype = "motion"\n')
    out = check_config(config)
    assert out.returncode == 0, out.stderr
    assert ("counterd: warning: upload: column(s) car, cyclist, motorcycle, bus, lorry can never be "
            "filled: the motion detector counts every object as 'person'") in out.stderr


def test_check_config_warns_when_detector_classes_are_narrower_than_the_columns(tmp_path):
    models = need_shared(SHARED_MODELS["yolox_nano"]).parent
    config = write(tmp_path / "c.toml", UPLOAD + f'[detector]\nmodels_dir = "{models}"\n'
                                                 f'classes = ["person", "car"]\n')
    out = check_config(config)
    assert out.returncode == 0, out.stderr
    assert ("upload: column(s) cyclist, motorcycle, bus, lorry can never be filled: detector.classes "
            "does not include bicycle, bus, motorcycle, truck") in out.stderr
    full = write(tmp_path / "full.toml", UPLOAD + f'[detector]\nmodels_dir = "{models}"\n')
    assert "warning" not in check_config(full).stderr
