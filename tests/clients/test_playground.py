"""LangServe's chat playground in a real (headless Debian) Chromium: it accepts the chat's
schemas and shows the reply growing while the model is still producing it."""

from __future__ import annotations

from playwright.sync_api import Browser, Page

from tests.clients.conftest import ARTIFACTS
from tests.live_servers import StartGraphgate
from tests.upstream import Upstream

PLACEHOLDER = "Send a message..."


def open_playground(page: Page, url: str) -> None:
    """Open a route's playground once it holds the chat's output schema too. In one CI run the
    playground sent a message before that schema had arrived, and graphgate refused the message
    with 400; in the passing runs the schema always came first."""
    with page.expect_response(lambda response: response.url.endswith("/output_schema")):
        page.goto(f"{url}/chat/playground/")


def send(page: Page, text: str) -> None:
    """Type a message and send it once the playground's state holds it, as its mirror of the
    box shows, and once it takes a message: its send button turns green when the box holds
    text and no reply is still loading. One CI run's playground sent an empty message (Enter
    read the state before the typing reached it); in a run on a loaded machine it ignored
    Enter because the last reply was still finishing."""
    prompt = page.get_by_placeholder(PLACEHOLDER)
    prompt.fill(text)
    page.wait_for_function(
        f"text => document.querySelector('textarea[placeholder=\"{PLACEHOLDER}\"] + div')"
        ".innerText.includes(text)",
        arg=text,
    )
    page.wait_for_selector("button.bg-button-green", timeout=30_000)
    prompt.press("Enter")


def test_the_playground_shows_the_reply_streaming(
    browser: Browser, graphgate_factory: StartGraphgate, upstream: Upstream, marker: str
) -> None:
    # Four seconds of streaming: a busy CI machine may take seconds to render the first words.
    upstream.behave(marker, tokens=20, tokens_per_second=5)
    page = browser.new_page()
    open_playground(page, graphgate_factory().url)
    send(page, f"stream please {marker}")
    # Part of the reply on screen while the rest is still to come, then all of it.
    page.wait_for_function(
        "document.body.innerText.includes('w3') && !document.body.innerText.includes('w20')",
        timeout=30_000,
    )
    assert upstream.stats(marker)["completed"] == 0  # on screen while the upstream still streams
    page.wait_for_function("document.body.innerText.includes('w19 w20')", timeout=30_000)
    assert upstream.stats(marker)["completed"] == 1
    # A follow-up: the conversation so far goes upstream with it, and its answer shows.
    upstream.behave(f"follow-up {marker}", reply="I remember the twenty words.")
    send(page, f"and a follow-up {marker}")
    page.wait_for_function(
        "document.body.innerText.includes('I remember the twenty words.')", timeout=10_000
    )
    follow_up = [message["content"] for message in upstream.prompts(marker)[-1]]
    assert follow_up == [
        f"stream please {marker}",
        " ".join(f"w{i}" for i in range(1, 21)),
        f"and a follow-up {marker}",
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "playground.png")
    assert (ARTIFACTS / "playground.png").stat().st_size > 10_000


def test_with_the_demo_model_the_second_answer_refers_to_the_first_turn(
    browser: Browser, graphgate_factory: StartGraphgate, marker: str
) -> None:
    """No key, no upstream: `make run` as a newcomer sees it, memory included."""
    server = graphgate_factory("embedded", OPENAI_BASE_URL="", DEMO_TOKENS_PER_SECOND="200")
    page = browser.new_page()
    open_playground(page, server.url)
    send(page, f"I am Ada {marker}.")
    page.wait_for_function(
        f"document.body.innerText.includes('You said: I am Ada {marker}.')", timeout=10_000
    )
    send(page, "What is my name?")
    expected = f'Turn 2. Earlier you said: "I am Ada {marker}.". You said: What is my name?'
    page.wait_for_function(f"document.body.innerText.includes({expected!r})", timeout=10_000)
