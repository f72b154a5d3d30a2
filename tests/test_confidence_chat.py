"""The three kinds of reply, as a reader and a screen reader meet them, in headless Chromium against `python app.py`
(the real model, reader and confidence model, on the seed article): an answer with its bold short answer, an
uncertain reply that says first that the article may not answer and quotes the closest sentence as such, never
bold, and a refusal. The app runs with both thresholds at 0 (QA_ANSWERED_ABOVE, QA_UNCERTAIN_ABOVE), so a question
the rules let through is answered whatever its confidence: which reply a question gets then depends only on rules
this test can rely on (a name the article never mentions; a yes/no question about an event its passages never
speak of), not on fitted numbers."""

from __future__ import annotations

import pytest
from conftest import CHROMIUM
from playwright.sync_api import Page, expect
from test_app import AppServer, api_ask, make_project
from test_newsroom import ask

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`"),
]

REPLY_TIMEOUT = 20_000
ANSWERED = "When did the agency receive the information?"
UNCERTAIN = "Was the officer fired?"  # the seed article never speaks of firing anyone
REFUSED = "What did the governor say about the shelters?"  # it never mentions a governor


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    server = AppServer(make_project(tmp_path_factory), {"QA_WORKERS": "0", "QA_ANSWERED_ABOVE": "0", "QA_UNCERTAIN_ABOVE": "0"})
    try:
        yield server.wait()
    finally:
        server.stop()


def test_the_api_gives_each_kind_with_its_confidence(app):
    got = {q: api_ask(app.url, {"question": q})[1] for q in (ANSWERED, UNCERTAIN, REFUSED)}
    assert [got[q]["status"] for q in (ANSWERED, UNCERTAIN, REFUSED)] == ["answered", "uncertain", "abstained"]
    assert got[ANSWERED]["answer"]["span"]["text"] == "July 6" and 0 < got[ANSWERED]["confidence"] <= 1
    assert got[UNCERTAIN]["answer"]["span"] is None and not got[UNCERTAIN]["abstained"]
    assert got[UNCERTAIN]["reason"] == "The article may not say whether the officer was fired."
    assert got[REFUSED]["abstained"] and got[REFUSED]["answer"] is None


def test_three_kinds_of_reply_look_and_read_differently(app, browser_page: Page, tmp_path):
    page = browser_page
    page.goto(app.url, wait_until="domcontentloaded")
    expect(page.locator("#article-panel .qa-article")).to_have_count(1, timeout=REPLY_TIMEOUT)
    answered, uncertain, refused = (ask(page, q) for q in (ANSWERED, UNCERTAIN, REFUSED))

    expect(answered.locator(".qa-answer strong.qa-short")).to_have_text("July 6")
    expect(answered.locator(".qa-uncertain")).to_have_count(0)

    caveat = uncertain.locator(".qa-uncertain[role=note]")  # announced as a note, before the quote
    expect(caveat).to_contain_text("The article may not say whether the officer was fired.")
    expect(caveat).to_contain_text("The closest it comes")
    expect(uncertain.locator(".qa-closest-quote")).to_have_count(1)
    expect(uncertain.locator("strong.qa-short, .qa-answer")).to_have_count(0)  # never bold, never shown as the answer
    expect(uncertain.locator("details.qa-closest summary")).to_contain_text("Closest passages (not answers)")
    order = uncertain.evaluate("el => el.innerText.indexOf('may not say') < el.innerText.indexOf('The closest it comes')")
    assert order
    styles = [r.locator(sel).evaluate("el => getComputedStyle(el).color + '|' + getComputedStyle(el).fontStyle")
              for r, sel in ((answered, ".qa-answer"), (uncertain, ".qa-closest-quote"))]
    assert styles[0] != styles[1]  # visibly different from an answer

    expect(refused.locator(".qa-refusal")).to_contain_text("never mentions 'governor'")
    expect(refused.locator(".qa-closest-quote, .qa-answer")).to_have_count(0)

    # what a screen reader reads of each reply: the caveat comes first, the answer's words come plain
    tree = uncertain.locator(".qa-reply").aria_snapshot()
    assert tree.index("may not say") < tree.index("The closest it comes")
    plain = uncertain.locator(".qa-plain").evaluate("el => el.textContent")
    assert plain.startswith("The article may not say whether the officer was fired. The closest it comes: “")
    page.screenshot(path=str(tmp_path / "three-kinds.png"))
