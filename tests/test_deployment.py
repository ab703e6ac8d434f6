"""The shipped deployment agrees with itself: the units let the service write exactly where the
console saves lines, the sysusers snippet makes the units' user, the README's recipe lays out what
the units need, and a daemon run as an unprivileged user under that layout, with the rest of the
file system read-only as ProtectSystem=strict makes it, saves console line edits into its config."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import requests

from counterd.api.auth import make_ha1
from rtsp_server import free_port
from test_systemd import UNITS, directives, write_clip

REPO = Path(__file__).resolve().parents[1]
SERVICE_USER = "counterd"


def unit_paths(unit: str, instance: str = "cam1") -> dict[str, str]:
    """The config file, state directory and writable paths the unit names (%i filled in)."""
    d = directives(unit)
    exec_start = d["ExecStart"][0].replace("%i", instance)
    return {"config": re.search(r"--config (\S+)", exec_start).group(1),
            "state": re.search(r"--state-dir (\S+)", exec_start).group(1),
            "state_directory": "/var/lib/" + d["StateDirectory"][0].replace("%i", instance),
            "writable": [p.replace("%i", instance) for p in d.get("ReadWritePaths", [])]}


@pytest.mark.parametrize("unit", UNITS)
def test_units_let_the_service_write_exactly_where_the_console_saves(unit):
    d, paths = directives(unit), unit_paths(unit)
    # The console writes a temp file beside the config and renames it over: its directory, no more.
    assert paths["writable"] == [str(PurePosixPath(paths["config"]).parent)]
    assert d["ProtectSystem"] == ["strict"] and d["ProtectHome"] == ["yes"]
    assert paths["state"] == paths["state_directory"]
    # A static user owns the config on every start (a DynamicUser could not own files in /etc).
    assert d["User"] == [SERVICE_USER] and d["Group"] == [SERVICE_USER] and "DynamicUser" not in d


def test_sysusers_snippet_creates_the_units_user(tmp_path):
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed (Debian package systemd; CI installs it)")
    (tmp_path / "etc" / "sysusers.d").mkdir(parents=True)
    shutil.copy(REPO / "systemd" / "counterd.sysusers.conf", tmp_path / "etc" / "sysusers.d" / "counterd.conf")
    result = subprocess.run([sysusers, f"--root={tmp_path}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    users = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    groups = [line.split(":")[0] for line in (tmp_path / "etc" / "group").read_text().splitlines()]
    assert SERVICE_USER in users and SERVICE_USER in groups
    entry = users[SERVICE_USER]
    assert entry[5] == "/var/lib/counterd" and entry[6] == "/usr/sbin/nologin" and 0 < int(entry[2]) < 1000


def recipe() -> list[str]:
    """The commands of the README's systemd deployment recipe (its first sh block)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## systemd deployment"):]
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def install_lines() -> list[list[str]]:
    """The recipe's `install` commands that lay out /etc/counterd and /var/lib/counterd."""
    out = []
    for line in recipe():
        for command in line.split("&&"):
            words = shlex.split(command)
            if words[:2] == ["sudo", "install"] and re.match(r"/(etc|var/lib)/counterd", words[-1]):
                out.append(words[1:])
    return out


def test_readme_recipe_creates_what_the_units_need():
    lines = recipe()
    assert any("systemd/counterd.sysusers.conf /etc/sysusers.d/" in line and "systemd-sysusers" in line
               for line in lines), "the recipe makes the units' user"
    made = {words[-1]: options(words) for words in install_lines()}
    config = unit_paths("counterd.service")["config"]
    config_dir = str(PurePosixPath(config).parent)
    # The service adds and renames files in the directory; the sticky bit keeps root's files root's.
    assert made[config_dir] == {"-d": True, "-o": "root", "-g": SERVICE_USER, "-m": "1770"}
    assert made[config] == {"-o": SERVICE_USER, "-g": SERVICE_USER, "-m": "0640"}   # it replaces its config
    assert made[config_dir + "/counterd.env"] == {"-o": "root", "-g": "root", "-m": "0600"}
    state = unit_paths("counterd.service")["state"]
    assert made[state] == {"-d": True, "-o": SERVICE_USER, "-g": SERVICE_USER, "-m": "0750"}
    assert any(line.startswith(f"sudo -u {SERVICE_USER} counterd check-config {config}") for line in lines)


def options(words: list[str]) -> dict:
    """install's -d/-o/-g/-m options."""
    out: dict = {}
    for i, word in enumerate(words):
        if word == "-d":
            out[word] = True
        elif word in ("-o", "-g", "-m"):
            out[word] = words[i + 1]
    return out


def lay_out(root: Path, user: str, config_source: Path) -> None:
    """Run the README's install lines with / moved to `root`, the user `counterd` to `user`
    and config/counterd.toml to `config_source`."""
    for words in install_lines():
        words = [user if w == SERVICE_USER and words[i - 1] in ("-o", "-g") else w for i, w in enumerate(words)]
        words = [str(config_source) if w == "config/counterd.toml" else w for w in words]
        words[-1] = str(root) + words[-1]
        subprocess.run(words, check=True, timeout=30)


@pytest.fixture
def throwaway_user():
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root with useradd and setpriv to run the daemon as a throwaway system user")
    name = f"ctrdtest{os.getpid()}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], timeout=30)
        subprocess.run(["groupdel", name], capture_output=True, timeout=30)   # gone with the user on Debian


@pytest.fixture
def public_tmp():
    """A directory every user can traverse (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="counterd-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_user(user: str, argv: list[str]) -> list[str]:
    return ["setpriv", "--reuid", user, "--regid", user, "--init-groups", *argv]


def protect_system_strict(writable: list[Path], argv: list[str]) -> list[str]:
    """argv in a mount namespace where / is read-only but `writable`: ProtectSystem=strict with
    ReadWritePaths= and StateDirectory=, as systemd would set it up."""
    binds = " && ".join(f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))} && "
                        f"mount -o remount,bind,rw {shlex.quote(str(p))}" for p in writable)
    script = f"mount --make-rprivate / && mount --bind / / && mount -o remount,bind,ro / && {binds} && exec \"$@\""
    return ["unshare", "--mount", "sh", "-c", script, "sh", *argv]


def deployment_config(clip: Path, port: int, password: str) -> str:
    ha1 = make_ha1("operator", "counterd", password)
    return f"""# the installer's config: this comment must survive the console's save
[camera]
source = "{clip}"
[detector]
type = "motion"
[source]
loop = true
[api]
host = "127.0.0.1"
port = {port}
[[users]]
name = "operator"
role = "operator"
ha1 = "{ha1}"
[[lines]]
name = "door"
start = [32, 0]
end = [32, 48]
"""


class Daemon:
    """`counterd run` as the service user, confined like the unit; stopped with SIGTERM."""

    def __init__(self, argv: list[str], base: str):
        self.base = base
        self.proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, f"counterd exited {self.proc.returncode}: {self.proc.stderr.read()}"
            assert time.monotonic() < deadline, "the API never answered"
            try:
                requests.get(base + "/api/v1/lines", timeout=5)      # any answer: it listens
                return
            except requests.ConnectionError:
                time.sleep(0.2)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(timeout=60) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


def test_daemon_as_the_service_user_saves_lines_into_the_recipes_config(throwaway_user, public_tmp):
    user, root = throwaway_user, public_tmp
    probe = subprocess.run(as_user(user, [sys.executable, "-c", "import counterd, cv2"]), capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"an unprivileged user cannot run this interpreter ({sys.executable}) or checkout: {probe.stderr[-300:]}")
    clip = root / "clip.avi"
    write_clip(clip)
    clip.chmod(0o644)
    port, password = free_port(), "installer-pw"
    (root / "counterd.toml").write_text(deployment_config(clip, port, password))
    lay_out(root, user, root / "counterd.toml")
    paths = unit_paths("counterd.service")
    config, state = Path(str(root) + paths["config"]), Path(str(root) + paths["state"])
    env_file = config.with_name("counterd.env")
    writable = [Path(str(root) + p) for p in paths["writable"]] + [state]
    argv = protect_system_strict(writable, as_user(user, [sys.executable, "-m", "counterd", "run",
                                                          "--config", str(config), "--state-dir", str(state)]))
    base, auth = f"http://127.0.0.1:{port}", requests.auth.HTTPBasicAuth("operator", password)
    before = config.read_text()
    # check-config as the service user finds the layout right, and names a config it could not replace.
    assert "cannot save" not in check_config(user, config)
    os.chown(config, 0, -1)                      # root:counterd 0640: readable, not replaceable
    assert (f"the console cannot save lines into {config}: it belongs to root and the sticky bit on "
            f"{config.parent} lets only its owner replace it (chown {user} {config})") in check_config(user, config)
    os.chown(config, _uid(user), _uid(user))
    leftover = config.with_name(".counterd.toml.tmp")     # root's, from an interrupted save as root
    leftover.write_text("")
    assert f"user {user} may not overwrite {leftover}" in check_config(user, config)
    leftover.unlink()

    daemon = Daemon(argv, base)
    try:
        body = {"lines": [{"was": "door", "name": "doorway", "start": [30, 2], "end": [30, 46]}]}
        saved = requests.put(base + "/api/v1/lines", json=body, auth=auth, timeout=30)
        assert saved.status_code == 200, saved.text
        # The service user cannot remove or replace root's files in the sticky config directory.
        tamper = subprocess.run(as_user(user, ["rm", "-f", str(env_file)]), capture_output=True, text=True, timeout=30)
        assert tamper.returncode != 0 and env_file.exists()
    finally:
        log = daemon.stop()
    assert "cannot write" not in log
    after = config.read_text()
    assert after != before and "# the installer's config: this comment must survive" in after
    assert tomllib.loads(after)["lines"] == [{"name": "doorway", "start": [30, 2], "end": [30, 46]}]
    backup = config.with_name("counterd.toml.bak")
    assert backup.read_text() == before
    info = config.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == _uid(user)   # owner and mode kept
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600 and env_file.stat().st_uid == 0

    daemon = Daemon(argv, base)     # a restart keeps the saved line
    try:
        lines = requests.get(base + "/api/v1/lines", auth=auth, timeout=30).json()["lines"]
        assert [(line["name"], line["start"], line["end"]) for line in lines] == [("doorway", [30, 2], [30, 46])]
    finally:
        daemon.stop()


def check_config(user: str, config: Path) -> str:
    """`counterd check-config` as `user`: its warnings."""
    result = subprocess.run(as_user(user, [sys.executable, "-m", "counterd", "check-config", str(config)]),
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


def _uid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid
