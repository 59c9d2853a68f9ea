"""The demo page (GET /) in headless Chromium: type a query, see the entity
highlighted and the intent decided.

Uses Debian's `chromium` package (/usr/bin/chromium) through Playwright; no
browser is downloaded. `make test` installs chromium when it is missing. Where it
cannot be installed, set SMI_SKIP_BROWSER_TEST=1 to skip this test (the
Makefile never sets it, so CI runs it).
"""
import os
import shutil
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="serve needs the [serve] extra: pip install -e '.[serve]'")

import serve_helpers  # noqa: E402
from test_serve import free_port  # noqa: E402

CHROMIUM = os.environ.get("SMI_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_or_fail():
    if os.environ.get("SMI_SKIP_BROWSER_TEST"):
        pytest.skip("SMI_SKIP_BROWSER_TEST is set")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"{CHROMIUM} not found: the demo-page test needs Debian's chromium "
            "(as root: apt-get update && apt-get install -y chromium; `make test` does this), "
            "or set SMI_CHROMIUM to another Chromium binary; SMI_SKIP_BROWSER_TEST=1 skips the test"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[serve]' (no browser download is needed)")
    return sync_playwright


@pytest.fixture(scope="module")
def playwright_for_chromium():
    """Checked before the server is built, so a missing browser fails fast."""
    return _browser_or_fail()


@pytest.fixture(scope="module")
def server(tiny_bert, tmp_path_factory):
    import uvicorn

    from spacy_multitask_intent.service.app import create_app

    plain, _ = serve_helpers.save_models(tiny_bert, tmp_path_factory.mktemp("browser_models"))
    port = free_port()
    config = uvicorn.Config(create_app(str(plain)), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    serve_helpers.wait_ready(base, limit_s=60)
    yield base
    srv.should_exit = True
    thread.join(30)


def test_demo_page_highlights_the_entity_and_shows_the_intent(playwright_for_chromium, server):
    sync_playwright = playwright_for_chromium
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.fill("#query", "pickup my order at orange store")
            page.press("#query", "Enter")
            page.wait_for_selector("body[data-parsed]", timeout=30_000)
            assert page.text_content("#error") == ""
            marks = page.locator("#entities mark.entity")
            assert marks.count() == 1
            assert marks.first.get_attribute("data-label") == "STORE"
            assert marks.first.locator("span.label").text_content() == "STORE"
            assert marks.first.text_content().startswith("orange")
            # the text around the highlight is kept
            assert page.text_content("#entities").startswith("pickup my order at orange")
            decided = page.locator("#intents li.decided")
            assert decided.count() == 1 and decided.first.get_attribute("data-intent") == "store_lookup"
            # the heat map: one column per word, one row per intent
            assert page.locator("#heat tr").first.locator("th").count() == 1 + 6
            assert page.locator("#heat tr").count() == 1 + 3
            assert page.locator("#heat th.row.decided").text_content() == "store_lookup"

            # a bad query shows the service's error instead of stale results
            page.fill("#query", "x" * 2001)
            page.press("#query", "Enter")
            page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=30_000)
            assert "413" in page.text_content("#error")
            assert page.locator("#entities mark.entity").count() == 0
            assert errors == []
        finally:
            browser.close()
