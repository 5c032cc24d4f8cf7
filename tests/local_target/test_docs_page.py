"""The local front door's page to try the endpoint (GET /docs), in a real headless browser: Debian's chromium driven
by Playwright. The page loads, authorizes with the key, shows POST /score, and "Try it out" returns a label; the key
is in no URL and no log."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.local import docs_page
from tests.localtarget import LocalSetup, local_target

ENDPOINT = "docs-page"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
# as the machine's probe starts it: headless, no sandbox (root), and no background connections to a closed network
BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("docs-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup


def test_the_page_and_its_assets_answer_without_a_credential_and_keep_to_this_origin(target):
    page = target.http.get(f"{target.uri}{docs_page.PAGE_PATH}")
    assets = {path: target.http.get(f"{target.uri}{path}") for path in docs_page.ASSET_PATHS}

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert f"Local endpoint {ENDPOINT}" in page.text and "https://" not in page.text  # nothing from a CDN
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for path, answer in assets.items():
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith(("text/css", "text/javascript")), path
    assert b"SwaggerUIBundle" in assets[f"{docs_page.PAGE_PATH}/swagger-ui-bundle.js"].content
    assert target.http.get(f"{target.uri}/swagger.json").status_code == 401  # the contract itself stays behind auth


@pytest.mark.skipif(BROWSER is None, reason="no chromium here (.ci/run installs Debian's chromium)")
def test_in_a_browser_the_key_loads_the_contract_and_try_it_out_returns_a_label(target):
    from playwright.sync_api import sync_playwright

    key = target.key
    seen: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BROWSER, args=BROWSER_FLAGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: seen.append(request.url))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(f"{target.uri}{docs_page.PAGE_PATH}")
            page.fill("#key", key)
            page.click("button[type=submit]")
            page.wait_for_selector("text=Contract loaded", timeout=30_000)
            operation = page.locator(".opblock-post", has=page.locator('[data-path="/score"]'))
            operation.locator(".opblock-summary").click()
            body = operation.locator("textarea.body-param__text")
            body.wait_for(timeout=10_000)
            example: Any = body.input_value()
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status").first
            status.wait_for(timeout=30_000)
            answered = status.inner_text().strip()
            shown = operation.locator(".live-responses-table tbody .response-col_description pre").first.inner_text()
        finally:
            browser.close()

    assert '"data"' in example  # the document's example request, filled in
    assert answered == "200", shown
    assert json.loads(shown)[0] in ("diabetic", "not-diabetic")
    assert any(url.endswith("/swagger.json?version=3") for url in seen)
    assert all(key not in url for url in seen)
    assert not [error for error in errors if "Content Security Policy" in error], errors
    for log in target.store.endpoint_dir(ENDPOINT).rglob("*.log"):
        assert key not in log.read_text(errors="replace"), log
