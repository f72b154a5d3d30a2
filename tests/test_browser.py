"""The chat in a real browser: headless Debian Chromium against `python app.py` (real model, seed article).

Skipped, with the reason, only when /usr/bin/chromium is absent (`apt-get install -y chromium`).
The answered chat is saved to docs/screenshot.png for the README when QA_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import os

import pytest
from conftest import CHROMIUM
from playwright.sync_api import Page, expect
from test_app import AUTH_USERS, ROOT, VICTIMS, VICTIMS_ANSWER, servers  # noqa: F401 - servers is a fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`"),
]

SCREENSHOT = ROOT / "docs" / "screenshot.png"
REPLY_TIMEOUT = 15_000  # ms; a reply takes well under a second once the page is up
XSS = '<img src=x onerror="window.__xss=1">'
SCROLL_CHAT_TO_TOP = """e => {
    let box = e.parentElement;
    while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
    if (box) { box.style.scrollBehavior = "auto"; box.scrollTop = 0; }
}"""


@pytest.fixture
def chat(servers, browser_page: Page) -> Page:
    browser_page.goto(servers[0].url, wait_until="domcontentloaded")
    expect(browser_page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    return browser_page


def ask(page: Page, question: str):
    """Type the question, press Enter, and return the new bot message (pinned by index)."""
    bots = page.get_by_test_id("bot")
    before = bots.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(bots).to_have_count(before + 1, timeout=REPLY_TIMEOUT)
    expect(box).to_have_value("")
    return bots.nth(before)


def test_answer_is_quoted_with_its_citation(chat: Page, tmp_path):
    reply = ask(chat, VICTIMS)
    expect(reply.locator("blockquote").first).to_contain_text(VICTIMS_ANSWER)
    expect(reply.locator("blockquote").first).to_contain_text("[1]")
    expect(reply).to_contain_text("Cited passages")
    expect(reply).to_contain_text("[1] A Chicago police oversight agency")
    expect(reply).to_contain_text("2023-07-18 · paragraph 8")
    expect(reply.locator("mark")).to_have_count(1)
    expect(reply.locator("mark")).to_contain_text(VICTIMS_ANSWER)
    expect(chat.get_by_test_id("user").last).to_have_text(VICTIMS)
    # the article in view marks the answer sentence and labels the cited passages
    expect(chat.locator("#article-header")).to_contain_text("A Chicago police oversight agency")
    expect(chat.locator("#article-header")).to_contain_text("2023-07-18")
    article = chat.locator("#article-text")
    expect(article.locator("mark")).to_contain_text(VICTIMS_ANSWER)
    expect(article.locator("sup")).to_have_text(["[3]", "[2]", "[1]"])  # in the article's order
    # QA_UPDATE_SCREENSHOT=1 refreshes the README's picture; otherwise the shot goes to a temporary folder
    shot = SCREENSHOT if os.environ.get("QA_UPDATE_SCREENSHOT") else tmp_path / "screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    chat.locator("#article-text mark").scroll_into_view_if_needed()
    chat.get_by_test_id("user").last.evaluate(SCROLL_CHAT_TO_TOP)  # the question and the quote in view
    chat.wait_for_timeout(300)
    chat.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_example_runs_on_click(chat: Page):
    chat.get_by_role("button", name=VICTIMS).click()
    reply = chat.get_by_test_id("bot").first
    expect(reply.locator("blockquote").first).to_contain_text(VICTIMS_ANSWER, timeout=REPLY_TIMEOUT)


def test_off_topic_question_abstains(chat: Page):
    k = chat.locator("#k input[type=number]")
    k.fill("5")
    k.press("Enter")
    reply = ask(chat, "What is a good recipe for deep dish pizza?")
    expect(reply).to_contain_text("The article does not say.")
    expect(reply).to_contain_text("Closest passages (not answers)")
    expect(reply).to_contain_text("[5]")
    expect(reply.locator("mark")).to_have_count(0)


@pytest.mark.parametrize("message", ["", "   \n  "])
def test_empty_message_gets_a_clear_reply(chat: Page, message: str):
    reply = ask(chat, message)
    expect(reply).to_contain_text("The question is empty")
    expect(chat.get_by_test_id("user")).to_have_count(0)
    expect(chat.locator(".toast-body")).to_have_count(0)
    # and the chat still works
    expect(ask(chat, VICTIMS).locator("blockquote").first).to_contain_text(VICTIMS_ANSWER)


def test_over_long_message_gets_a_clear_reply(chat: Page):
    reply = ask(chat, "why " * 300)
    expect(reply).to_contain_text("the limit is 1,000")
    expect(chat.get_by_test_id("user").last).to_contain_text("(1,199 characters)")


def test_markup_in_a_question_is_shown_as_text_and_runs_nothing(chat: Page):
    question = f"{XSS} **Were** any [victims](javascript:alert(1)) identified?"
    reply = ask(chat, question)
    expect(reply.locator("blockquote").first).to_contain_text(VICTIMS_ANSWER)
    user = chat.get_by_test_id("user").last
    expect(user).to_have_text(question)
    expect(chat.locator("#chat img[src='x']")).to_have_count(0)
    expect(user.locator("a, strong, img")).to_have_count(0)
    chat.wait_for_timeout(300)  # an image error handler would have fired by now
    assert chat.evaluate("window.__xss") is None


def test_login_page_shows_only_the_login_form(servers, browser_page: Page):
    page = browser_page
    page.goto(servers[1].url, wait_until="domcontentloaded")
    password = page.locator("input[type=password]")
    expect(password).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(page.locator("#question")).to_have_count(0)
    expect(page.locator("#chat")).to_have_count(0)
    assert "Kersten" not in page.content()
    # logging in through the form opens the chat
    user, secret = AUTH_USERS[0]
    page.locator("input[type=text]").first.fill(user)
    password.fill(secret)
    password.press("Enter")
    expect(page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(ask(page, VICTIMS).locator("blockquote").first).to_contain_text(VICTIMS_ANSWER)
