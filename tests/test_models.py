"""The model manifest, model-name resolution and `counterd model fetch` against a local HTTP server."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import SHARED, SHARED_MODELS, need_shared
from counterd.cli import main
from counterd.errors import UserError
from counterd.models import CHECKOUT_MODELS, load_manifest, resolve_model, sha256_of

MANIFEST = load_manifest(CHECKOUT_MODELS / "manifest.toml")


class CountingHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def model_server():
    """Serves ../shared/models over HTTP on a free local port; yields (base URL, request log)."""
    directory = need_shared(SHARED / "models")
    handler = type("Handler", (CountingHandler,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()
    thread.join()


def write_manifest(path: Path, name: str, url: str, sha256: str) -> Path:
    entry = MANIFEST[name]
    h, w = entry.input_size
    path.write_text(f'[{name}]\nfile = "{entry.file}"\ninput_size = [{h}, {w}]\nhead = "{entry.head}"\n'
                    f'url = "{url}"\nsha256 = "{sha256}"\n')
    return path


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("counterd: error:")]


def test_manifest_lists_every_shared_model_with_its_true_checksum():
    assert set(MANIFEST) == set(SHARED_MODELS)
    for name, entry in MANIFEST.items():
        assert entry.url.startswith("https://")
        assert sha256_of(need_shared(SHARED_MODELS[name])) == entry.sha256, name


def test_fetch_downloads_into_the_models_dir_and_verifies(tmp_path, model_server, capsys):
    base, requests = model_server
    entry = MANIFEST["yolox_nano"]
    manifest = write_manifest(tmp_path / "m.toml", "yolox_nano", f"{base}/yolox_nano.onnx", entry.sha256)
    target_dir = tmp_path / "models"
    assert main(["model", "fetch", "yolox_nano", "--dir", str(target_dir), "--manifest", str(manifest)]) == 0
    assert sha256_of(target_dir / "yolox_nano.onnx") == entry.sha256
    assert sorted(p.name for p in target_dir.iterdir()) == ["yolox_nano.onnx"]   # no .part left behind
    assert "verified" in capsys.readouterr().out
    # Already present and intact: no second download.
    assert main(["model", "fetch", "yolox_nano", "--dir", str(target_dir), "--manifest", str(manifest)]) == 0
    assert requests == ["/yolox_nano.onnx"]
    # And the name now resolves to the file.
    assert resolve_model("yolox_nano", str(target_dir)) == target_dir / "yolox_nano.onnx"


def test_fetch_refuses_a_file_whose_checksum_differs(tmp_path, model_server, capsys):
    base, _ = model_server
    manifest = write_manifest(tmp_path / "m.toml", "yolox_nano", f"{base}/yolox_nano.onnx", "0" * 64)
    assert main(["model", "fetch", "yolox_nano", "--dir", str(tmp_path / "models"), "--manifest", str(manifest)]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "sha256" in err[0] and "discarded" in err[0]
    assert list((tmp_path / "models").iterdir()) == []


def test_fetch_reports_a_failed_download_in_one_line(tmp_path, model_server, capsys):
    base, _ = model_server
    manifest = write_manifest(tmp_path / "m.toml", "yolox_nano", f"{base}/missing.onnx", "0" * 64)
    assert main(["model", "fetch", "yolox_nano", "--dir", str(tmp_path), "--manifest", str(manifest)]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "404" in err[0] and "missing.onnx" in err[0]


def test_fetch_of_an_unknown_name_lists_the_known_ones(tmp_path, capsys):
    assert main(["model", "fetch", "yolov99", "--dir", str(tmp_path)]) == 2
    assert "yolox_nano" in capsys.readouterr().err


def test_resolve_model_explains_what_to_do(tmp_path):
    shared = need_shared(SHARED_MODELS["yolo11n_int8_320"])
    assert resolve_model(str(shared)) == shared
    with pytest.raises(UserError, match="counterd model fetch yolox_nano"):
        resolve_model("yolox_nano", str(tmp_path))
    with pytest.raises(UserError, match="not a model name.*known: .*yolox_nano"):
        resolve_model("nonesuch", str(tmp_path))
    with pytest.raises(UserError, match="missing.onnx: no such file"):
        resolve_model(str(tmp_path / "missing.onnx"), str(tmp_path))
    (tmp_path / "custom.onnx").write_bytes(b"x")
    assert resolve_model("custom.onnx", str(tmp_path)) == tmp_path / "custom.onnx"


def test_models_dir_comes_from_the_environment_when_not_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTERD_MODELS_DIR", str(tmp_path))
    (tmp_path / "yolox_nano.onnx").write_bytes(b"x")
    assert resolve_model("yolox_nano") == tmp_path / "yolox_nano.onnx"


@pytest.mark.parametrize("line, message", [
    ('head = "ssd"', "head: must be one of"),
    ('sha256 = "abc"', "sha256: expected 64 hex digits"),
    ("input_size = [416]", "input_size: expected"),
    ('colour = "red"', "unknown key"),
])
def test_a_bad_manifest_entry_is_named(tmp_path, line, message):
    good = {"file": '"a.onnx"', "input_size": "[416, 416]", "head": '"yolox"', "url": '"http://x/a.onnx"',
            "sha256": '"' + "a" * 64 + '"'}
    key = line.split(" = ")[0]
    good[key] = line.split(" = ")[1]
    path = tmp_path / "manifest.toml"
    path.write_text("[a]\n" + "\n".join(f"{k} = {v}" for k, v in good.items()) + "\n")
    with pytest.raises(UserError, match=message):
        load_manifest(path)
