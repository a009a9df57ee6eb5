"""A headless Chromium driven over the DevTools protocol (a websocket), for the tests of HTML pages.

Debian's ``chromium``; no Selenium, no Playwright. ``chromium`` (a fixture, registered in
conftest) yields the page's websocket URL; ``Tab`` runs JavaScript in it and waits for navigations.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("LLMGW_CHROMIUM", "/usr/bin/chromium")

#: Elements whose content overflows their box (cut off or spilling out): a page must have none.
CLIPPED = """[...document.querySelectorAll('th, td, .score, h1, h2, code, pre')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.tagName + ': ' + e.textContent.slice(0, 40))"""

#: Text in an svg that reaches past the svg's edges (drawn but cut off): a chart must have none.
OUTSIDE_SVG = """[...document.querySelectorAll('svg text')].filter(t => {
    const box = t.getBoundingClientRect(), svg = t.ownerSVGElement.getBoundingClientRect();
    return box.left < svg.left - 0.5 || box.right > svg.right + 0.5 || box.top < svg.top - 0.5
        || box.bottom > svg.bottom + 0.5;
}).map(t => t.ownerSVGElement.id + ': ' + t.textContent)"""


class Tab:
    """One page of a headless Chromium, driven over the DevTools protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        await self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]  # type: ignore[no-any-return]

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.js(expression)
                if value:
                    return value
            except RuntimeError:  # the document is being replaced
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.05)

    async def navigating(self, action: str) -> str:
        """Run ``action`` (a click, a submit) and wait for the next document to load; return its path."""
        await self.js("window.__old = true")
        await self.js(action)
        await self.until("!window.__old && document.readyState === 'complete'")
        return str(await self.js("location.pathname + location.search"))

    async def resize(self, width: int, height: int = 900) -> None:
        """Lay the page out as a desktop window ``width`` CSS pixels wide (scale 1, not mobile)."""
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )

    async def screenshot(self, path: Path) -> Path:
        """The whole page as a PNG at ``path`` (and in ``$LLMGW_SCREENSHOTS``, when set, to look at)."""
        import base64

        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        keep = os.environ.get("LLMGW_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / path.name).write_bytes(data)
        return path

    async def goto(self, url: str) -> str:
        await self.js("window.__old = true")
        await self.call("Page.navigate", url=url)
        await self.until("!window.__old && document.readyState === 'complete'")
        return str(await self.js("location.pathname + location.search"))


@pytest.fixture()
def chromium(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium with remote debugging; yields its page's websocket URL."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("LLMGW_REQUIRE_CHROMIUM"):
            raise AssertionError(f"LLMGW_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets: list[dict[str, Any]] = []
        while not targets:
            targets = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            if time.monotonic() > deadline:
                raise AssertionError("chromium opened no page")
        yield targets[0]["webSocketDebuggerUrl"]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
