"""A real browser (headless Debian chromium) against the HTTP face: form, page, redirect."""

from __future__ import annotations

import http.server
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.cdp import CHROMIUM, Browser
from tests.http.conftest import Face, text_value, url_value

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is needed (make system-deps)")
ID = "88.118.8/JXDY2106023"


class Landing(http.server.BaseHTTPRequestHandler):
    """The product page a QR code's URL value points at."""

    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><title>landing</title><h1 id='landing'>JX-DY 7.5 kW</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def landing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Landing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/products/JXDY2106023"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    started = Browser(tmp_path / "profile")
    try:
        yield started
    finally:
        started.close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_lookup_values_page_and_redirect_in_a_phone_browser(
    face: Face, browser: Browser, landing: str, tmp_path: Path
) -> None:
    face.register(
        ID,
        url_value(1, landing),
        text_value(2, "product.name", "变频器 JX-DY 7.5 kW"),
        text_value(3, "batch", "2021-06"),
        text_value(4, "cert.url", "https://example.com/certs/JXDY2106023"),
    )
    browser.phone()

    browser.open(face.url + "/")
    browser.run(f"document.getElementById('id').value = {ID!r}; document.forms[0].submit()")
    browser.wait_for("Page.loadEventFired")

    assert browser.run("location.pathname + location.search") == f"/{ID}?noredirect"
    assert browser.run("document.getElementById('identifier').textContent") == ID
    shown = browser.run(
        "[...document.querySelectorAll('dl.value')].map(v => [v.dataset.index,"
        " v.querySelector('.type').textContent, v.querySelector('.data').textContent])"
    )
    assert shown == [
        ["1", "URL", landing],
        ["2", "product.name", "变频器 JX-DY 7.5 kW"],
        ["3", "batch", "2021-06"],
        ["4", "cert.url", "https://example.com/certs/JXDY2106023"],
    ]
    assert browser.run("document.querySelector('dl.value a').href") == landing
    # The page fits the phone: nothing wider than the screen.
    assert browser.run("document.documentElement.scrollWidth <= window.innerWidth")
    assert png_size(browser.screenshot(tmp_path / "lookup.png")) == (780, 1688)

    browser.open(face.url + "/" + ID)

    assert browser.run("location.href") == landing
    assert browser.run("document.getElementById('landing').textContent") == "JX-DY 7.5 kW"


def test_unknown_identifier_page_in_chinese(face: Face, browser: Browser) -> None:
    browser.call("Network.enable", session=True)
    browser.call("Network.setExtraHTTPHeaders", session=True,
                 headers={"Accept-Language": "zh-CN,zh;q=0.9"})  # fmt: skip

    browser.open(face.url + "/88.118.8/none")

    assert "本节点上不存在标识" in browser.run("document.getElementById('not-found').textContent")
    assert browser.run("document.forms[0].id.value") == "88.118.8/none"
