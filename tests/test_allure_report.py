"""A real Allure HTML report of a failing walredo test, checked in its data and in headless Chromium.

1. A pytester sub-run of a deliberately failing walredo test with ``--alluredir``.
2. ``allure generate`` (the real Allure 2 command line, installed into ``.tools/`` by
   ``scripts/setup.sh``) builds the HTML report; its data must hold the ``.walredo`` attachment
   (byte for byte) and the decode text.
3. Headless Chromium opens the report served on 127.0.0.1, clicks through the Suites tree to the
   failing test, finds the ``.walredo`` attachment listed, opens the decode attachment and finds
   its text rendered. A screenshot is kept under ``artifacts/`` in the repository root.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (JSON messages
separated by NUL bytes on file descriptors 3 and 4): no websocket library, Playwright or
chromedriver needed, only the ``chromium`` package.

Outside CI the test skips, naming what is missing, when java, the Allure CLI or chromium are not
installed; with ``CI=true`` it fails instead, because ``scripts/setup.sh`` installs them.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
STEP_TIMEOUT = 30.0
"""Upper bound for each browser step (page load, a click's result); never a timing assertion."""

FAILING_TEST = """
from pytest_walredo import ExampleRequest, FailingExample, record_failure
from pytest_walredo.protocol import RedoRequest, RelTag

def test_page_mismatch(request, walredo):
    req = RedoRequest(RelTag(1663, 5, 16384), 3, bytes(8192), ())
    page = walredo.apply(req)
    expected = bytearray(page)
    expected[300] = 0x42
    record_failure(request.node, FailingExample([ExampleRequest(req, bytes(expected), page)]))
    assert page == bytes(expected), "walredo answered a different page"
"""
REQUEST = RedoRequest(RelTag(1663, 5, 16384), 3, bytes(BLCKSZ), ())


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _need(what: str, found: str | None) -> str:
    if found:
        return found
    reason = f"{what} is not installed (scripts/setup.sh installs it)"
    if _in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def _allure_cli() -> str:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "allure"
    return _need("the Allure command line (.tools/node_modules/.bin/allure)",
                 str(local) if local.exists() else shutil.which("allure"))


# ------------------------------------------------------------------------------------------
# Chromium over the DevTools pipe
# ------------------------------------------------------------------------------------------


class Chromium:
    """A headless Chromium with one page, driven by DevTools protocol commands over a pipe."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # Chromium wants the pipe on fds 3 (commands in) and 4 (answers out). Park our ends above
        # 9 first so the shell's "3<&N 4>&M" cannot clobber one with the other.
        a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.log = log
        self._log_file = log.open("wb")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--remote-debugging-pipe", "--window-size=1400,1000",
                 "about:blank"]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', binary, *flags],
            pass_fds=(a, b), stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file,
            start_new_session=True,
        )
        os.close(a)
        os.close(b)
        self._buf = b""
        self._id = 0
        self.session = ""
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        except BaseException:
            self.close()
            raise

    def call(self, method: str, params: dict[str, Any] | None = None, page: bool = False) -> dict[str, Any]:
        """Send one command and wait (bounded) for its answer; events in between are dropped."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"Chromium did not answer {method} within {STEP_TIMEOUT:g} s")
                if select.select([self._r], [], [], left)[0]:
                    chunk = os.read(self._r, 1 << 16)
                    if not chunk:
                        raise AssertionError(f"Chromium exited during {method}: {self.log_tail()}")
                    self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise AssertionError(f"Chromium refused {method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll ``expression`` until it is truthy (bounded by STEP_TIMEOUT)."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        text = self.evaluate("document.body ? document.body.innerText : ''") or ""
        raise AssertionError(f"the report page never showed {what}; it shows: {text[:1500]!r}")

    def click_text(self, text: str) -> None:
        """Click the first element whose own text is exactly ``text`` (waiting for it)."""
        js = ("(t => { const e = Array.from(document.querySelectorAll('body *')).find("
              "x => x.children.length === 0 && x.textContent.trim() === t);"
              " if (!e) return false; e.click(); return true; })(" + json.dumps(text) + ")")
        self.wait_for(js, f"an element reading {text!r}")

    def screenshot(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, page=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def log_tail(self) -> str:
        self._log_file.flush()
        return self.log.read_bytes()[-1500:].decode(errors="replace")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        for fd in (self._r, self._w):
            os.close(fd)
        self._log_file.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    binary = _need("chromium", shutil.which("chromium"))
    browser = Chromium(binary, tmp_path / "chromium-profile", tmp_path / "chromium.log")
    try:
        yield browser
    finally:
        browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(directory) -> base URL``: a static HTTP server on 127.0.0.1, stopped after the test."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------


def _attachments(stage: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from stage.get("attachments", [])
    for step in stage.get("steps", []):
        yield from _attachments(step)


def test_allure_report_shows_the_walredo_attachment(pytester: pytest.Pytester, chromium: Chromium, serve: Any) -> None:
    allure = _allure_cli()
    _need("java", shutil.which("java"))
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_report_demo=FAILING_TEST)
    results = pytester.path / "allure-results"
    dumps = pytester.path / "dumps"
    run = pytester.runpytest_subprocess(f"--alluredir={results}", f"--walredo-dump-dir={dumps}")
    run.assert_outcomes(failed=1)
    [dump] = list(dumps.rglob("*.walredo"))
    assert dump.read_bytes() == REQUEST.encode()
    decode_name = dump.name.removesuffix(".walredo") + ".decode.txt"

    report = pytester.path / "report"
    gen = subprocess.run([allure, "generate", str(results), "--clean", "-o", str(report)],
                         capture_output=True, text=True, timeout=180)
    assert gen.returncode == 0, f"allure generate failed: {gen.stdout}{gen.stderr}"

    # The report's data: the test case with both attachments, stored byte for byte.
    cases = [json.loads(p.read_text()) for p in (report / "data" / "test-cases").glob("*.json")]
    [case] = [c for c in cases if c["name"] == "test_page_mismatch"]
    assert case["status"] == "failed"
    atts = {a["name"]: a for a in _attachments(case["testStage"])}
    assert dump.name in atts and decode_name in atts, sorted(atts)
    stored = report / "data" / "attachments"
    assert (stored / atts[dump.name]["source"]).read_bytes() == REQUEST.encode()
    decode = (stored / atts[decode_name]["source"]).read_text()
    assert "B BeginRedoForBlock 1663/5/16384 blk 3" in decode and "G GetPage" in decode

    # The browser: Suites -> the test file -> the test -> the attachment list -> the decode text.
    base = serve(report)
    chromium.call("Page.navigate", {"url": f"{base}/index.html#suites"}, page=True)
    chromium.click_text("test_report_demo")
    chromium.click_text("test_page_mismatch")
    chromium.wait_for(f"document.body.innerText.includes({json.dumps(dump.name)})",
                      f"the attachment {dump.name}")
    chromium.click_text(decode_name)
    chromium.wait_for("document.body.innerText.includes('G GetPage 1663/5/16384 blk 3')",
                      "the decode text of the attachment")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "allure-report-walredo-attachment.png"
    chromium.screenshot(shot)
    print(f"screenshot of the Allure report: {shot}")
    assert shot.read_bytes().startswith(b"\x89PNG")
    url = chromium.evaluate("location.href")
    assert case["uid"] in url, url  # the browser is on the failing test's page


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_tool_skips_only_outside_ci(monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium is not installed"):
        _need("chromium", None)
    assert _need("chromium", "/usr/bin/chromium") == "/usr/bin/chromium"
