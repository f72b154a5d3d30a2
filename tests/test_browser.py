"""The chat in a real browser: headless Debian Chromium against `python app.py` (real model, seed article).

Skipped, with the reason, only when /usr/bin/chromium is absent (`apt-get install -y chromium`).
With QA_UPDATE_SCREENSHOT=1 the answered chat and a follow-up are saved to docs/ for the README.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import CHROMIUM
from playwright.sync_api import Page, expect
from test_app import AUTH_USERS, ROOT, VICTIMS, VICTIMS_ANSWER, AppServer, make_project, servers  # noqa: F401 - servers is a fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`"),
]

DOCS = ROOT / "docs"
REPLY_TIMEOUT = 20_000  # ms; a reply takes well under a second once the page is up
XSS = '<img src=x onerror="window.__xss=1">'
FIXTURES = Path(__file__).parent / "fixtures" / "html"


@pytest.fixture
def chat(servers, browser_page: Page) -> Page:
    browser_page.goto(servers[0].url, wait_until="domcontentloaded")
    expect(browser_page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(browser_page.locator("#article-panel .qa-article")).to_have_count(1, timeout=REPLY_TIMEOUT)  # loaded
    return browser_page


def reply_to(page: Page, question: str):
    """Type the question, press Enter, and return the new bot message once it is answered (pinned by index)."""
    bots = page.get_by_test_id("bot")
    before = bots.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(bots).to_have_count(before + 1, timeout=REPLY_TIMEOUT)
    reply = bots.nth(before)
    expect(reply.locator(".qa-pending")).to_have_count(0, timeout=REPLY_TIMEOUT)
    return reply


def ask(page: Page, question: str, refused: bool = False):
    """`reply_to`, and the box is empty again (a refused question goes back into it)."""
    reply = reply_to(page, question)
    expect(page.locator("#question textarea")).to_have_value(question if refused else "")
    return reply


def in_view(page: Page, selector: str) -> bool:
    """Whether the element is inside the visible part of its scroll container and of the window."""
    return page.evaluate("""(sel) => {
        const el = document.querySelector(sel); if (!el) return false;
        const r = el.getBoundingClientRect();
        let box = el.parentElement;
        while (box && !(box.scrollHeight > box.clientHeight + 1 && getComputedStyle(box).overflowY !== 'visible')) box = box.parentElement;
        const c = box ? box.getBoundingClientRect() : {top: 0, bottom: innerHeight};
        return r.bottom > Math.max(c.top, 0) && r.top < Math.min(c.bottom, innerHeight);
    }""", selector)


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    shot = DOCS / name if os.environ.get("QA_UPDATE_SCREENSHOT") else tmp_path / name
    shot.parent.mkdir(exist_ok=True)
    page.wait_for_timeout(400)
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_answer_first_with_a_citation_link_and_the_article_marked(chat: Page, tmp_path):
    reply = ask(chat, VICTIMS)
    answer = reply.locator(".qa-answer")
    expect(answer).to_contain_text(VICTIMS_ANSWER)
    expect(answer.locator("a.qa-cite")).to_have_text("[1]")
    expect(reply.locator("summary").first).to_have_text("Sources (3)")  # collapsed, below the answer
    expect(reply.locator(".qa-source")).to_have_count(1)  # the article's title line once, not once per passage
    expect(reply.locator(".qa-source")).to_contain_text("A Chicago police oversight agency")
    expect(chat.get_by_test_id("user").last).to_have_text(VICTIMS)
    # the article in view: its identity, numbered story paragraphs, dimmed headlines, the answer marked
    panel = chat.locator("#article-panel")
    expect(panel.locator(".qa-headline")).to_contain_text("A Chicago police oversight agency")
    expect(panel.locator(".qa-meta").first).to_have_text("2023-07-18")
    expect(panel.locator(".qa-para")).to_have_count(12)
    expect(panel.locator(".qa-para").nth(7).locator(".qa-num")).to_have_text("¶8")  # paragraph 8 is the 8th one
    expect(panel.locator(".qa-skipped")).to_have_count(4)  # 3 related-story headlines and the app promo
    expect(panel.locator(".qa-skipped").first).to_contain_text("CHICAGO POLICE STATIONS BECOME")
    expect(panel).not_to_contain_text("date 2023-07-18")
    expect(panel.locator("mark")).to_contain_text(VICTIMS_ANSWER)
    expect(panel.locator(".qa-answer-para .qa-num")).to_have_text("¶8")
    chat.wait_for_timeout(600)
    assert in_view(chat, "#article-panel .qa-answer-para")  # scrolled to the answer by itself
    screenshot(chat, "screenshot.png", tmp_path)


def test_clicking_a_citation_scrolls_the_panel_to_the_paragraph_and_flashes_it(chat: Page):
    reply = ask(chat, "Who is the chief administrator of COPA?")
    reply.locator("summary").first.click()
    second = reply.locator(".qa-passages li").nth(1)
    href = second.locator("a.qa-cite").get_attribute("href")
    target = f"#article-panel {href}"
    chat.locator("#article-panel").evaluate("el => el.scrollTo(0, el.scrollHeight)")  # away from it first
    chat.wait_for_timeout(300)
    second.locator("a.qa-cite").click()
    chat.wait_for_timeout(800)
    assert in_view(chat, target)
    expect(chat.locator(target)).to_have_class("qa-para qa-cited qa-flash")
    assert href.endswith(f"-p{second.locator('.qa-para-no').inner_text().lstrip('¶')}")


def test_a_three_turn_conversation_with_a_pronoun(chat: Page, tmp_path):
    first = ask(chat, "Which district was the officer assigned to?")
    expect(first.locator(".qa-answer")).to_contain_text("10th District")
    second = ask(chat, "What was he accused of?")
    expect(second.locator(".qa-understood")).to_contain_text("Understood as: What was he accused of")
    expect(second.locator(".qa-answer")).to_contain_text("having sexual conduct with an underaged female migrant")
    third = ask(chat, "Did others do the same?")
    expect(third.locator(".qa-answer")).to_contain_text("several other officers in the 10th District")
    expect(chat.get_by_test_id("user")).to_have_count(3)
    screenshot(chat, "screenshot-follow-up.png", tmp_path)


def test_copy_gives_plain_text(chat: Page):
    chat.context.grant_permissions(["clipboard-read", "clipboard-write"])
    reply = ask(chat, VICTIMS)
    reply.locator("button.qa-copy").click()
    expect(reply.locator("button.qa-copy")).to_have_text("Copied")
    copied = chat.evaluate("navigator.clipboard.readText()")
    lines = copied.splitlines()
    assert lines[0].startswith('"This investigation remains open') and lines[0].endswith("[1]")
    assert "[1] A Chicago police oversight agency charged with investigating sexual misconduct…, 2023-07-18, ¶8" in copied
    assert "<" not in copied and "\\" not in copied and "&amp;" not in copied  # no markup, no Markdown escapes


def test_the_question_shows_at_once_with_a_pending_indicator(chat: Page):
    def slow(route):
        chat.wait_for_timeout(1500)
        route.continue_()

    chat.route("**/gradio_api/queue/join*", slow)
    box = chat.locator("#question textarea")
    box.fill(VICTIMS)
    box.press("Enter")
    expect(chat.get_by_test_id("user").last).to_have_text(VICTIMS, timeout=1000)
    expect(chat.locator(".qa-pending")).to_be_visible(timeout=1000)
    expect(chat.locator(".qa-pending")).to_have_attribute("role", "status")
    expect(chat.locator(".qa-pending")).to_have_count(0, timeout=REPLY_TIMEOUT)
    expect(chat.get_by_test_id("bot").last.locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)
    chat.unroute_all(behavior="ignoreErrors")


def test_new_conversation_resets_the_chat_and_the_panel(chat: Page):
    ask(chat, VICTIMS)
    expect(chat.locator("#article-panel .qa-cited")).to_have_count(3)
    chat.locator("#clear").click()
    expect(chat.get_by_test_id("bot")).to_have_count(0)
    expect(chat.locator("#article-panel .qa-cited")).to_have_count(0)
    expect(chat.locator("#article-panel mark")).to_have_count(0)
    # and the conversation really starts over: a follow-up has nothing to follow
    reply = ask(chat, "Who said that?")
    expect(reply.locator(".qa-understood")).to_have_count(0)


def test_a_refusal_in_plain_words_with_the_technical_side_behind_a_toggle(chat: Page):
    reply = ask(chat, "What is a good recipe for deep dish pizza?")
    refusal = reply.locator(".qa-refusal")
    expect(refusal).to_be_visible()
    expect(reply.locator("summary").first).to_contain_text("Closest passages (not answers)")
    expect(reply.locator(".qa-details")).to_have_count(1)
    details = reply.locator(".qa-details p")
    expect(details).not_to_be_visible()  # behind the toggle
    for text in (refusal.inner_text(), reply.inner_text()):
        assert "QA_" not in text  # no environment variable names in what staff read
    expect(reply.locator("mark")).to_have_count(0)


def test_after_a_refusal_the_panel_scrolls_to_the_closest_passage(chat: Page):
    # the closest passage [1] is ¶5; ¶1, at the top of the panel, is cited too ([2]): the panel must go to ¶5
    chat.locator("#article-panel").evaluate("el => el.scrollTo(0, el.scrollHeight)")
    reply = ask(chat, "What did the mayor say about the allegations?")
    expect(reply.locator(".qa-refusal")).to_be_visible()
    top = chat.locator("#article-panel .qa-top")
    expect(top.locator(".qa-num")).to_have_text("¶5")
    expect(top.locator(".qa-marker").first).to_have_text("[1]")
    expect(chat.locator("#article-panel .qa-cited .qa-num").first).to_have_text("¶1")
    chat.wait_for_timeout(700)  # the smooth scroll settles
    assert chat.evaluate("document.getElementById('article-panel').scrollTop") > 0  # not at ¶1, the top
    assert in_view(chat, "#article-panel .qa-top")


@pytest.mark.parametrize("message", ["", "   \n  "])
def test_empty_message_gets_a_clear_reply(chat: Page, message: str):
    reply = ask(chat, message)
    expect(reply).to_contain_text("The question is empty")
    expect(chat.get_by_test_id("user")).to_have_count(0)
    expect(chat.locator(".toast-body")).to_have_count(0)
    expect(ask(chat, VICTIMS).locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)  # and the chat still works


def test_over_long_message_gets_a_clear_reply(chat: Page):
    reply = ask(chat, "why " * 300, refused=True)
    expect(reply).to_contain_text("the limit is 1,000")
    expect(chat.get_by_test_id("user").last).to_contain_text("(1,199 characters)")


def test_markup_in_a_question_is_shown_as_text_and_runs_nothing(chat: Page):
    question = f"{XSS} **Were** any [victims](javascript:alert(1)) identified?"
    reply = ask(chat, question)
    expect(reply.locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)
    user = chat.get_by_test_id("user").last
    expect(user).to_have_text(question)
    expect(chat.locator("#chat img[src='x']")).to_have_count(0)
    expect(user.locator("a, strong, img")).to_have_count(0)
    chat.wait_for_timeout(300)  # an image error handler would have fired by now
    assert chat.evaluate("window.__xss") is None


# --- accessibility, and a phone ---------------------------------------------------------------------------


def axe_violations(page: Page) -> list[dict]:
    """axe-core (from the axe-playwright-python package) run in the page: violations of serious or critical impact."""
    import axe_playwright_python

    page.add_script_tag(content=(Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_passes_an_automated_accessibility_check(chat: Page, width):
    chat.set_viewport_size({"width": width, "height": 900})
    ask(chat, VICTIMS)
    ask(chat, "What is a good recipe for deep dish pizza?")
    chat.locator("#add-article").get_by_text("Add an article").click()
    expect(chat.locator("#paste textarea")).to_be_visible()
    assert axe_violations(chat) == []
    # names for the question box and its button, headings in order
    expect(chat.get_by_role("textbox", name="Your question")).to_be_visible()
    expect(chat.get_by_role("button", name="Ask", exact=True)).to_be_visible()
    levels = chat.evaluate("[...document.querySelectorAll('h1,h2,h3,h4')].map(h => +h.tagName[1])")
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels


def test_a_phone_scrolls_one_page_not_areas_inside_it(chat: Page):
    chat.set_viewport_size({"width": 390, "height": 844})
    reply = ask(chat, VICTIMS)
    expect(reply.locator(".qa-answer")).to_be_visible()
    nested = chat.evaluate("""() => [...document.querySelectorAll('body *')].filter(el => {
        const s = getComputedStyle(el);
        return ['auto', 'scroll'].includes(s.overflowY) && el.scrollHeight > el.clientHeight + 2 && el.tagName !== 'TEXTAREA';
    }).map(el => el.id || el.className)""")
    assert nested == [], nested
    assert chat.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # nothing wider than the screen


# --- articles staff add ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adding_app(tmp_path_factory):
    """An app of its own: the articles added here stay out of the other tests."""
    server = AppServer(make_project(tmp_path_factory), {"QA_WORKERS": "0"}).wait()
    yield server
    server.stop()


def test_paste_an_article_ask_about_it_and_switch_back(adding_app, browser_page: Page):
    page = browser_page
    page.goto(adding_app.url, wait_until="domcontentloaded")
    expect(page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    page.locator("#add-article").get_by_text("Add an article").click()
    story = ("The harbour authority said on Wednesday that the old lighthouse at Kell Point will be restored next "
             "summer.\n\nThe restoration will cost 2.4 million euros and is paid for by a regional heritage fund.\n\n"
             "<script>window.__xss=1</script> Local divers found the original lens in 1998.\n")
    page.locator("#paste textarea").fill(story)
    page.locator("#add-title textarea, #add-title input").first.fill("Lighthouse to be restored")
    page.locator("#add").click()
    expect(page.locator("#add-status")).to_contain_text("Added “Lighthouse to be restored” (3 passages)", timeout=REPLY_TIMEOUT)
    expect(page.locator("#picker input")).to_have_value("Lighthouse to be restored")
    panel = page.locator("#article-panel")
    expect(panel.locator(".qa-headline")).to_have_text("Lighthouse to be restored")
    expect(panel).to_contain_text("<script>window.__xss=1</script>")  # the article's markup is shown as text
    reply = ask(page, "How much will the restoration cost?")
    expect(reply.locator(".qa-answer")).to_contain_text("2.4 million euros")
    expect(reply.locator(".qa-source")).to_contain_text("Lighthouse to be restored")
    expect(panel.locator("mark")).to_contain_text("2.4 million euros")
    assert page.evaluate("window.__xss") is None
    # back to the seed article: its questions are answered from it again
    page.locator("#picker input").click()
    page.get_by_role("option", name="A Chicago police oversight agency", exact=False).click()
    expect(panel.locator(".qa-headline")).to_contain_text("A Chicago police oversight agency")
    reply = ask(page, VICTIMS)
    expect(reply.locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)


def test_upload_an_html_page(adding_app, browser_page: Page):
    page = browser_page
    page.goto(adding_app.url, wait_until="domcontentloaded")
    expect(page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    page.locator("#add-article").get_by_text("Add an article").click()
    page.locator("#upload input[type=file]").set_input_files(str(FIXTURES / "bbc-1.html"))
    # Gradio shows the name as two elements, stem and extension: under load their text came back as "bbc-1 .html"
    expect(page.locator("#upload")).to_contain_text(re.compile(r"bbc-1\s*\.html"), timeout=REPLY_TIMEOUT)
    page.locator("#add").click()
    expect(page.locator("#add-status")).to_contain_text("Added “Obama admits US gun laws", timeout=REPLY_TIMEOUT)
    expect(page.locator("#article-panel .qa-meta").first).to_contain_text("2015-07-24 · BBC News · original story")
    reply = ask(page, "What has Obama called the greatest frustration of his presidency?")
    expect(reply.locator(".qa-answer")).to_contain_text("gun safety laws")


def test_login_page_shows_only_the_login_form(servers, browser_page: Page):
    page = browser_page
    page.goto(servers[1].url, wait_until="domcontentloaded")
    password = page.locator("input[type=password]")
    expect(password).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(page.locator("#question")).to_have_count(0)
    expect(page.locator("#chat")).to_have_count(0)
    assert "Kersten" not in page.content()
    user, secret = AUTH_USERS[1]  # the other user: tests of wrong passwords spent the first one's failures
    page.locator("input[type=text]").first.fill(user)
    password.fill(secret)
    password.press("Enter")
    expect(page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(ask(page, VICTIMS).locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)
