"""The console in a real browser (Debian's chromium + chromium-driver, driven by selenium) against
a running `counterd demo`: the page loads without console errors, the picture appears, counts
tick up, an operator drags a line end and saves, and the change reaches /api/v1/lines,
cntpos.json and the config file; with api.live_view off the page shows lines on a blank frame.

Each state is saved as a screenshot (into $COUNTERD_SCREENSHOTS when set; the README's
docs/console-*.png come from here)."""
from __future__ import annotations

import os
import re
import signal
import tomllib
from pathlib import Path

import pytest

from browser import console_errors, need_browser, start_chromium
from test_daemon import Demo

WAIT_S = 60


@pytest.fixture
def chromium(tmp_path):
    need_browser()
    driver = start_chromium(str(tmp_path))
    yield driver
    driver.quit()


def shoot(driver, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("COUNTERD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"console-{name}.png"
    driver.save_screenshot(str(path))
    return path


def js(driver, script: str):
    return driver.execute_script("return " + script)


# Paths the page fetches from now on (resource timing; the observer has no buffer limit).
WATCH_REQUESTS = """window.requestedPaths = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.requestedPaths.push(new URL(entry.name).pathname);
}).observe({type: "resource"})"""


def requested(driver, path: str) -> int:
    return js(driver, f"window.requestedPaths.filter((p) => p === {path!r}).length")


def counted(driver) -> int:
    # Read in one script: the table re-renders on every event, so elements found first and read
    # later can be gone by then (StaleElementReferenceException).
    return js(driver, """Array.from(document.querySelectorAll('#totals td.num'))
        .reduce((sum, td) => sum + (parseInt(td.textContent, 10) || 0), 0)""")


def test_console_in_chromium(chromium, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    state = tmp_path / "state"
    demo = Demo(state)
    # A poll that meets an element the page just re-rendered polls again.
    wait = WebDriverWait(chromium, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    try:
        banner = "".join(demo.banner)
        console_url = re.search(r"^  console +(http://\S+)$", banner, re.M).group(1)
        assert banner.index("console") < banner.index("live totals")      # the console comes first
        assert "--host 0.0.0.0" in banner                                  # how to expose it
        password = re.search(r'operator: user "operator", password "(\S+)"', banner).group(1)

        # --- a viewer: the picture, the lines, counts ticking up
        chromium.get(console_url)
        wait.until(lambda d: js(d, "document.body.dataset.ready") == "true", "js(d, 'document.body.dataset.ready') == 'true'")
        wait.until(lambda d: (js(d, "document.getElementById('frame').dataset.loaded") or "").isdigit(), "(js(d, 'document.getElementById('frame').dataset.loaded') or '').isdig")
        assert js(chromium, "document.getElementById('frame').getAttribute('href')").startswith("blob:")
        assert "Log in to edit" in chromium.find_element("id", "who").text
        assert chromium.find_elements("css selector", "#overlay line.line")        # the demo line drawn
        assert not chromium.find_elements("css selector", ".handle")              # viewers cannot drag
        start = counted(chromium)
        wait.until(lambda d: counted(d) > start, "counted(d) > start")                                 # via the event stream
        wait.until(lambda d: int(js(d, "document.getElementById('chart').dataset.total || '0'")) > 0, "int(js(d, 'document.getElementById('chart').dataset.total || '0'')) > ")
        wait.until(lambda d: d.find_elements("css selector", "#tracks rect"), "d.find_elements('css selector', '#tracks rect')")
        shoot(chromium, tmp_path, "viewer")

        # --- an operator drags the line's top end 80 px (on screen) to the left and saves
        chromium.get(console_url.replace("http://", f"http://operator:{password}@") + "login")
        wait.until(lambda d: js(d, "document.body.dataset.ready") == "true", "js(d, 'document.body.dataset.ready') == 'true'")
        wait.until(lambda d: "(operator)" in d.find_element("id", "who").text, "'(operator)' in d.find_element('id', 'who').text")
        handle = wait.until(lambda d: d.find_element("id", "handle-0-start"), "d.find_element('id', 'handle-0-start')")
        scale = js(chromium, "640 / document.getElementById('scene').getBoundingClientRect().width")
        ActionChains(chromium).click_and_hold(handle).move_by_offset(-40, 0).move_by_offset(-40, 0) \
            .release().perform()
        moved_x = round(320 - 80 * scale)
        fields = chromium.find_elements("css selector", "#lines-table tbody tr:first-child input[type=number]")
        assert abs(int(fields[0].get_attribute("value")) - moved_x) <= 2      # coordinates in frame pixels
        chromium.find_element("id", "save-lines").click()
        wait.until(lambda d: "Saved" in d.find_element("id", "lines-status").text, "'Saved' in d.find_element('id', 'lines-status').text")
        line = demo.get("/api/v1/lines").json()["lines"][0]
        assert abs(line["start"][0] - moved_x) <= 2 and abs(line["start"][1] - 20) <= 2
        assert line["end"] == [320, 350]
        cntpos = demo.get("/local/tvpc/.api?cntpos.json").json()
        assert cntpos["left"] == line["start"][0] and cntpos["right"] == 320
        saved = tomllib.loads((state / "demo.toml").read_text())["lines"][0]
        assert saved["start"] == line["start"]
        assert (state / "demo.toml.bak").exists()
        start = counted(chromium)
        wait.until(lambda d: counted(d) > start, "counted(d) > start")                 # still counting with the moved line
        shoot(chromium, tmp_path, "editor")

        # --- add a line, rename it, invert it, save; then delete it again
        chromium.find_element("id", "add-line").click()
        name = chromium.find_element("css selector", "#lines-table tbody tr:nth-child(2) input.line-name")
        name.clear()
        name.send_keys("exit")
        chromium.find_element("css selector", "#lines-table tbody tr:nth-child(2) input[type=checkbox]").click()
        chromium.find_element("id", "save-lines").click()
        wait.until(lambda d: len(demo.get("/api/v1/lines").json()["lines"]) == 2, "two lines saved")
        added = demo.get("/api/v1/lines").json()["lines"][1]
        assert added["name"] == "exit" and added["invert"] is True
        assert [l["name"] for l in tomllib.loads((state / "demo.toml").read_text())["lines"]] == ["demo", "exit"]
        wait.until(lambda d: "Saved" in d.find_element("id", "lines-status").text, "saved again")
        chromium.find_element("css selector", "#lines-table tbody tr:nth-child(2) button.delete").click()
        chromium.find_element("id", "save-lines").click()
        wait.until(lambda d: len(demo.get("/api/v1/lines").json()["lines"]) == 1, "the added line deleted")
        assert [l["name"] for l in tomllib.loads((state / "demo.toml").read_text())["lines"]] == ["demo"]

        assert console_errors(chromium) == []          # viewing, editing and saving logged none

        # --- the privacy switch off: lines on a blank frame, no picture requested
        chromium.execute_script(WATCH_REQUESTS)
        config = state / "demo.toml"
        config.write_text(config.read_text().replace("live_view = true", "live_view = false"))
        demo.proc.send_signal(signal.SIGHUP)
        wait.until(lambda d: demo.get("/api/v1/frame.jpg").status_code == 403, "the reload turned the live view off")
        wait.until(lambda d: "api.live_view is off" in d.find_element("id", "view-status").text.lower(), "'live view is off' in d.find_element('id', 'view-status').text.lower()")
        assert not js(chromium, "document.getElementById('frame').getAttribute('href')")
        assert chromium.find_elements("css selector", "#overlay line.line")
        frames, views = requested(chromium, "/api/v1/frame.jpg"), requested(chromium, "/api/v1/view")
        # Two more refreshes: the page's frame request, if it made one, has answered by then.
        wait.until(lambda d: requested(d, "/api/v1/view") >= views + 2, "two more refreshes with the switch off")
        assert requested(chromium, "/api/v1/frame.jpg") == frames
        assert not js(chromium, "document.getElementById('frame').getAttribute('href')")
        shoot(chromium, tmp_path, "privacy")

        # The page asks /api/v1/view, then frame.jpg: a reload landing between the two refuses
        # that one frame (403, the browser logs it; the page says why). Nothing else may fail.
        errors = console_errors(chromium)
        assert len(errors) <= 1 and all("/api/v1/frame.jpg" in e and " 403 " in e for e in errors), errors
    finally:
        assert demo.stop() == 0
