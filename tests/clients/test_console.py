"""The operator console in a real (headless Debian) Chromium, on graphgate with API keys in
Redis: an admin signs in and sees the usage of turns this test made, the same numbers `GET
/usage` gives their principal; creates a key that works at once, revokes it and the next
request with it is refused; sees the live state and a principal's session. A key without the
admin role, and no key, are refused. Each screen's screenshot goes to tests/artifacts/ (the
README's come from there)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, ViewportSize

from tests.clients.conftest import ARTIFACTS
from tests.conftest import ApiKey, create_key
from tests.live_servers import Graphgate, StartGraphgate

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
WAIT_MS = 15_000


def turns(server: Graphgate, key: ApiKey, marker: str) -> dict[str, Any]:
    """Three invoke turns of one session and one streamed, then the principal's own usage."""
    headers = {"Authorization": f"Bearer {key.key}"}
    for turn in range(3):
        body = {
            "input": {"question": f"turn {turn} {marker}"},
            "config": {"configurable": {"session_id": "console"}},
        }
        assert (
            httpx.post(f"{server.url}/chat/invoke", json=body, headers=headers).status_code == 200
        )
    body = {"input": {"question": f"stream {marker}"}}
    with httpx.stream("POST", f"{server.url}/chat/stream", json=body, headers=headers) as stream:
        assert stream.status_code == 200
        stream.read()
    usage = httpx.get(f"{server.url}/usage", params={"days": 1}, headers=headers).json()
    total: dict[str, Any] = usage["days"][0]["total"]
    return total


def sign_in(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/console")
    page.fill("#key", key)
    page.click("#sign-in-form button")


def figure(page: Page, name: str) -> str:
    return page.inner_text(f"[data-figure='total-{name}']")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"console-{name}.png", full_page=True)
    assert (ARTIFACTS / f"console-{name}.png").stat().st_size > 10_000


def test_the_console_is_refused_without_a_key_and_with_a_non_admin_key(
    browser: Browser, graphgate_factory: StartGraphgate, redis_url: str, marker: str
) -> None:
    server = graphgate_factory("redis", AUTH_MODE="api_key")
    user = create_key(f"user-{marker}", redis_url=redis_url)
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, server.url, "")
    page.wait_for_selector("#sign-in-error:has-text('Not signed in')", timeout=WAIT_MS)
    assert page.is_hidden("#tabs")
    sign_in(page, server.url, user.key)
    page.wait_for_selector("#sign-in-error:has-text('admin role')", timeout=WAIT_MS)
    assert page.is_hidden("#tabs")
    assert page.is_hidden("#usage")


def test_an_admin_sees_usage_manages_keys_live_state_and_sessions(
    browser: Browser, graphgate_factory: StartGraphgate, redis_url: str, marker: str
) -> None:
    server = graphgate_factory("redis", AUTH_MODE="api_key")
    admin = create_key(f"ops-{marker}", "--admin", redis_url=redis_url)
    user = create_key(f"user-{marker}", redis_url=redis_url)
    own = turns(server, user, marker)
    page = browser.new_page(viewport=VIEWPORT)
    page.on("dialog", lambda dialog: dialog.accept())

    sign_in(page, server.url, admin.key)
    page.wait_for_selector("#principals td", timeout=WAIT_MS)
    page.wait_for_selector(f"#principals button:has-text('{user.principal}')", timeout=WAIT_MS)
    row = page.locator("#principals tr", has=page.locator(f"button:has-text('{user.principal}')"))
    cells = row.locator("td").all_inner_texts()
    # principal, cost, requests, tokens, input, output, cache hits, partial turns
    assert cells[1:4] == [
        f"{own['cost_usd']:.6f}",
        f"{own['requests']:,}",
        f"{own['total_tokens']:,}",
    ]
    shot(page, "usage")
    # The principal's own figures, as GET /usage gives them to it.
    with page.expect_response(lambda r: "principal=" in r.url):
        page.click(f"#principals button:has-text('{user.principal}')")
    page.wait_for_selector("#principals", state="hidden", timeout=WAIT_MS)
    assert figure(page, "requests") == f"{own['requests']:,}"
    assert figure(page, "total_tokens") == f"{own['total_tokens']:,}"
    assert figure(page, "input_tokens") == f"{own['input_tokens']:,}"
    assert figure(page, "cost_usd") == f"{own['cost_usd']:.6f}"
    assert figure(page, "cache_hits") == f"{own['cache_hits']:,}"
    assert own["requests"] == 4

    page.click("#tabs button[data-tab='keys']")
    page.fill("#new-principal", f"new-{marker}")
    page.fill("#new-rate", "7")
    page.click("#new-key button[type=submit]")
    page.wait_for_selector("#new-secret:not([hidden])", timeout=WAIT_MS)
    new_key = page.inner_text("#secret-value").strip()
    key_id = hashlib.sha256(new_key.encode()).hexdigest()[:12]
    page.wait_for_selector(f"[data-revoke='{key_id}']", timeout=WAIT_MS)
    headers = {"Authorization": f"Bearer {new_key}"}
    assert httpx.get(f"{server.url}/usage", headers=headers).status_code == 200
    # The screenshot shows the key's first characters only: it is published in the README.
    page.evaluate(
        "k => { document.getElementById('secret-value').textContent = k + '…' }", new_key[:9]
    )
    shot(page, "keys")
    page.click(f"[data-revoke='{key_id}']")
    page.wait_for_selector(f"[data-revoke='{key_id}']", state="detached", timeout=WAIT_MS)
    refused = httpx.get(f"{server.url}/usage", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"

    page.click("#tabs button[data-tab='live']")
    page.wait_for_selector("[data-figure='in-flight']", timeout=WAIT_MS)
    shot(page, "live")

    page.click("#tabs button[data-tab='threads']")
    page.fill("#threads-principal", user.principal)
    page.click("#threads-form button")
    page.wait_for_selector("#thread-list td:has-text('console')", timeout=WAIT_MS)
    page.click("#thread-list button:has-text('Open')")
    page.wait_for_selector(f".messages li:has-text('turn 2 {marker}')", timeout=WAIT_MS)
    shot(page, "threads")
