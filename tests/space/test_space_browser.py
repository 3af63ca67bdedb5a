"""End to end in headless Chromium (Debian's ``chromium``): type a message, wait for the reply, screenshot.

Needs ``apt-get install -y chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python package; the
browser is driven from the Debian build, never downloaded.
"""

from __future__ import annotations

import shutil

import pytest

from egail.safety import CRISIS_REPLY

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google, which this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page(served_app):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(served_app[0])
        yield page
        browser.close()


def _send(page, text: str, n_bot_before: int) -> str:
    box = page.get_by_role("textbox").first
    box.fill(text)
    box.press("Enter")
    bot = page.locator(".message-row.bot-row, [data-testid='bot']")
    bot.nth(n_bot_before).wait_for(state="visible")
    # Wait until the reply has text (the row can appear before its content is filled in).
    page.wait_for_function(
        "n => { const rows = document.querySelectorAll(\"[data-testid='bot']\");"
        " return rows.length > n && rows[n].innerText.trim().length > 0; }",
        arg=n_bot_before,
    )
    reply = page.locator("[data-testid='bot']").nth(n_bot_before).inner_text().strip()
    # The turn is over when the textbox takes input again (it is locked while the reply is computed).
    page.wait_for_function("() => { const t = document.querySelector('textarea'); return t && !t.disabled; }")
    return reply


def test_chat_in_the_browser(page, served_app, tmp_path):
    _, recorder = served_app
    recorder.calls.clear()
    assert "research demo, not therapy" in page.locator("#notice").inner_text()

    first = _send(page, "I failed my driving test today and I feel awful.", 0)
    assert first
    page.locator("#analysis").get_by_text("Sentiment (VADER)").wait_for()
    assert "negative" in page.locator("#analysis").inner_text()

    second = _send(page, "I want to end it all", 1)
    assert "988" in second and second.split()[:4] == CRISIS_REPLY.split()[:4]

    third = _send(page, "Thanks. I'll try again next month.", 2)
    assert third
    histories = {message: history for history, message in recorder.calls}
    assert histories["Thanks. I'll try again next month."][0] == "I failed my driving test today and I feel awful."

    shot = tmp_path / "space.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_empty_and_junk_messages_in_the_browser(page, space_app):
    n = page.locator("[data-testid='bot']").count()
    reply = _send(page, "\u0000\u0001\u0002\u0003", n)
    assert reply == space_app.JUNK_REPLY
    assert _send(page, "Still there?", n + 1)
