"""The chat as a newsroom uses it every day (issue 25), in headless Chromium against `python app.py` (the real model,
the seed article): what staff add stays in view, nothing typed is lost, each reply's citations stay its own, articles
pasted with their headline and byline, feedback that `qa eval` scores, exports, a phone; and the HTTP side of the
hostile probe of the article doors. Two apps for the whole module (one without login, one with), started together;
tests that change the articles run in the order they are written, the one that removes the seed article last.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import CHROMIUM
from playwright.sync_api import Page, expect
from test_app import ROOT, SEED_ARTICLE, VICTIMS, VICTIMS_ANSWER, AppServer, api_ask, basic, headers_only, make_project, running
from test_browser import REPLY_TIMEOUT, axe_violations
from test_browser import reply_to as ask

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`"),
]

PASTES = Path(__file__).parent / "fixtures" / "pastes"
DOCS = ROOT / "docs"
USERS = (("ann", "first-pass"), ("bob", "second-pass"))
COPA = "Who is the chief administrator of COPA?"
MIGRANTS = "How many migrants were living at police stations?"


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    with running(AppServer(make_project(tmp_path_factory), {"QA_WORKERS": "0"}),
                 AppServer(make_project(tmp_path_factory),
                           {"QA_WORKERS": "0", "QA_AUTH": ",".join(f"{u}:{p}" for u, p in USERS)})) as started:
        yield started


@pytest.fixture(scope="module")
def app(apps) -> AppServer:
    return apps[0]


@pytest.fixture(scope="module")
def login_app(apps) -> AppServer:
    return apps[1]


def call(base: str, method: str, path: str, body: object = None, raw: bytes | None = None,
         headers: dict | None = None, text_only: bool = False) -> tuple[int, dict | str]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, text = resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    if text_only and status == 200:
        return status, text
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def open_chat(page: Page, url: str, width: int = 1280) -> Page:
    page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
    page.goto(url, wait_until="domcontentloaded")
    expect(page.locator("#question textarea")).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(page.locator("#article-panel .qa-article")).to_have_count(1, timeout=REPLY_TIMEOUT)  # the page has loaded
    return page


def latency(page: Page, ms: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": ms, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})


def picker_options(page: Page) -> list[str]:
    page.locator("#picker input").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=REPLY_TIMEOUT)
    labels = [o.inner_text().removeprefix("✓").strip() for o in options.all()]  # the chosen one is ticked
    page.locator("h1").first.click()  # closed by a click elsewhere (after Escape the list would not hold still)
    return labels


def choose(page: Page, label: str) -> None:
    """Choose an article in the picker, and wait until the panel shows it (its choice is then kept)."""
    page.locator("#picker input").click()
    page.get_by_role("option", name=label, exact=False).first.click()
    expect(page.locator("#article-panel .qa-shows-none")).to_have_count(1, timeout=REPLY_TIMEOUT)
    page.wait_for_timeout(300)


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    shot = DOCS / name if os.environ.get("QA_UPDATE_SCREENSHOT") else tmp_path / name
    page.wait_for_timeout(400)
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return shot


def log_clean(server: AppServer) -> None:
    out = server.output()
    assert "Traceback" not in out and "internal error" not in out, out[-3000:]


# --- 8. the HTTP side of the hostile probe ---------------------------------------------------------------------------

def test_3_an_article_id_that_is_not_unicode_is_a_400_without_a_traceback(app):
    status, result, _ = api_ask(app.url, None, raw=b'{"question": "Who?", "article": "a\\ud800b"}')
    assert status == 400 and "is not an article id" in result["error"]
    log_clean(app)


def test_9_ids_are_echoed_short_and_every_api_error_is_an_error_object(app):
    status, result = call(app.url, "DELETE", "/api/articles/" + "x" * 20_000)
    assert status == 400 and len(result["error"]) < 200 and "is not an article id" in result["error"]
    status, result = call(app.url, "DELETE", "/api/articles/a%0d%0ab")
    assert status == 400 and "control character" in result["error"]
    status, result = call(app.url, "GET", "/api/nope")
    assert status == 404 and "No API route" in result["error"]
    status, result = call(app.url, "GET", "/api/ask")
    assert status == 405 and "use POST" in result["error"]
    status, result = call(app.url, "GET", "/api/health")  # a real route is not caught by the catch-all
    assert status == 200 and result["status"] == "ok" and result["articles"] >= 1, result
    status, result = call(app.url, "DELETE", "/api/articles/no-such-article")
    assert status == 404 and "No article 'no-such-article'" in result["error"]
    log_clean(app)


def test_9_a_big_paste_is_taken_and_a_bigger_one_is_told_to_upload(app):
    # the chat's events take a pasted page of up to 5 MB (JSON-escaped): a 4.4 MB body passes the cap
    body = b'{"data": ["' + b"x" * 4_400_000 + b'"], "fn_index": 123456, "session_hash": "probe"}'
    status, result = call(app.url, "POST", "/gradio_api/queue/join", raw=body)
    assert status == 400 and result == {"error": "Not an event of this page; reload the page."}  # and not a 500
    status, result = headers_only(app.url, "/gradio_api/queue/join", 13_000_000)
    assert status == 413 and "upload the file" in result["error"] and "5.0 MB" in result["error"]
    log_clean(app)


# --- 2. nothing typed is lost ------------------------------------------------------------------------------------------

def test_a_question_sent_while_another_is_pending_is_answered(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    latency(page, 150)
    box = page.locator("#question textarea")
    box.fill(VICTIMS)
    box.press("Enter")
    box.fill(COPA)
    box.press("Enter")  # while the first is pending: it waits its turn, visibly
    expect(page.locator("#qa-queue")).to_contain_text(COPA, timeout=2_000)
    expect(box).to_have_value("")
    bots = page.get_by_test_id("bot")
    expect(bots).to_have_count(2, timeout=REPLY_TIMEOUT)
    expect(page.locator(".qa-pending")).to_have_count(0, timeout=REPLY_TIMEOUT)
    expect(page.get_by_test_id("user")).to_have_text([VICTIMS, COPA])
    expect(bots.nth(0).locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)
    expect(bots.nth(1).locator(".qa-answer")).to_contain_text("Andrea Kersten")
    expect(page.locator("#qa-queue")).to_have_text("")


def test_new_conversation_while_a_question_is_pending_gives_the_question_back(app, browser_page: Page):
    page = open_chat(browser_page, app.url)

    def slow(route):
        page.wait_for_timeout(1500)
        route.continue_()

    page.route("**/gradio_api/queue/join*", slow)
    box = page.locator("#question textarea")
    box.fill(VICTIMS)
    box.press("Enter")
    expect(page.locator(".qa-pending")).to_be_visible(timeout=1_000)
    page.locator("#clear").click()
    expect(box).to_have_value(VICTIMS)
    expect(page.locator("#qa-notice")).to_contain_text("Your unanswered question is back in the box")
    page.wait_for_timeout(3_000)  # the answer to the old conversation arrives, and changes nothing
    expect(page.get_by_test_id("bot")).to_have_count(0)
    expect(page.get_by_test_id("user")).to_have_count(0)
    page.unroute("**/gradio_api/queue/join*")
    reply = ask(page, VICTIMS)  # the new conversation goes on normally
    expect(reply.locator(".qa-answer")).to_contain_text(VICTIMS_ANSWER)
    expect(page.locator(".qa-error")).to_have_count(0)


def test_a_refused_over_long_question_stays_in_the_box(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    long = "Why " * 300
    reply = ask(page, long)
    expect(reply).to_contain_text("the limit is 1,000")
    expect(page.locator("#question textarea")).to_have_value(long)


def test_a_reload_keeps_the_conversation_and_the_chosen_article(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    first = ask(page, "Which district was the officer assigned to?")
    expect(first.locator(".qa-answer")).to_contain_text("10th District")
    choose(page, "A Chicago police oversight agency")
    page.reload(wait_until="domcontentloaded")
    expect(page.get_by_test_id("user")).to_have_text(["Which district was the officer assigned to?"],
                                                     timeout=REPLY_TIMEOUT)
    expect(page.locator("#picker input")).to_have_value(re.compile("A Chicago police oversight agency"))
    second = ask(page, "What was he accused of?")  # a follow-up of the conversation before the reload
    expect(second.locator(".qa-understood")).to_contain_text("Understood as")
    expect(second.locator(".qa-answer")).to_contain_text("sexual conduct with an underaged female migrant")
    page.locator("#clear").click()  # and "New conversation" starts over, for good
    expect(page.get_by_test_id("bot")).to_have_count(0)
    page.reload(wait_until="domcontentloaded")
    expect(page.locator("#article-panel .qa-article")).to_have_count(1, timeout=REPLY_TIMEOUT)
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("bot")).to_have_count(0)


# --- 3. citations of older replies stay theirs --------------------------------------------------------------------------

def test_a_marker_of_an_older_reply_opens_its_own_passage(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    first = ask(page, VICTIMS)
    ask(page, COPA)
    panel = page.locator("#article-panel")
    expect(panel.locator(".qa-answer-para .qa-num")).to_have_text("¶3")  # the latest reply's passages
    first.locator(".qa-answer a.qa-cite").click()
    answer_para = panel.locator(".qa-answer-para")
    expect(answer_para.locator(".qa-num")).to_have_text("¶8", timeout=REPLY_TIMEOUT)  # now the first reply's
    expect(answer_para.locator(".qa-marker").first).to_have_text("[1]")
    expect(answer_para.locator("mark")).to_contain_text(VICTIMS_ANSWER)
    expect(answer_para).to_have_class(re.compile("qa-flash"))
    expect(panel.locator(".qa-panel-note")).to_contain_text("The passages of reply 1")


# --- 5. feedback that grows the gold sets ---------------------------------------------------------------------------------

def test_not_said_feedback_writes_one_gold_line_that_qa_eval_scores(app, browser_page: Page, tmp_path):
    feedback = app.project / "feedback.jsonl"
    before = feedback.read_text(encoding="utf-8").splitlines() if feedback.exists() else []
    page = open_chat(browser_page, app.url)
    reply = ask(page, MIGRANTS)
    sentence = reply.locator(".qa-answer q").inner_text()
    reply.locator("button.qa-down").click()
    form = page.locator("#feedback-form")
    expect(form).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(form).to_contain_text("Report a problem with reply 1")
    assert axe_violations(page) == []  # the new controls, open, pass the accessibility check
    page.get_by_label("the article does not say this").check()
    page.locator("#note textarea").fill("It gives 650 at police stations, not this figure.")
    screenshot(page, "screenshot-feedback.png", tmp_path)
    page.locator("#send-feedback").click()
    expect(page.locator("#qa-notice")).to_contain_text("Thank you", timeout=REPLY_TIMEOUT)
    expect(form).to_be_hidden()
    expect(reply.locator(".qa-voted")).to_be_visible()
    lines = feedback.read_text(encoding="utf-8").splitlines()[len(before):]
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["question"] == MIGRANTS and line["answer"] is None and line["verdict"] == "not_said"
    assert line["wrong"] == [line["reply"]["answer"]["text"]] and sentence.strip("“”") in line["wrong"][0]
    assert line["user"] is None and line["note"].startswith("It gives 650")
    own = tmp_path / "judged.jsonl"
    own.write_text(lines[0] + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(own), "--url", app.url, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("QA_")})
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["questions"] == 1 and metrics["unanswerable"] == 1
    assert metrics["correct_abstentions"] == 0.0 and metrics["wrong_repeated"] == 1.0  # the service still says it
    status, text = call(app.url, "GET", "/api/feedback", text_only=True)  # the export, without a login on this app
    assert status == 200 and lines[0] in text


def test_right_feedback_makes_the_question_an_example_of_its_article(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    choose(page, "A Chicago police oversight agency")
    reply = ask(page, COPA)
    reply.locator("button.qa-up").click()
    expect(reply.locator(".qa-voted")).to_be_visible(timeout=REPLY_TIMEOUT)
    page.reload(wait_until="domcontentloaded")
    examples = page.locator("#examples")
    expect(examples).to_contain_text(COPA, timeout=REPLY_TIMEOUT)
    line = json.loads((app.project / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert line["verdict"] == "right" and line["article"] == SEED_ARTICLE and line["evidence"]


# --- 6. export ---------------------------------------------------------------------------------------------------------

def test_a_conversation_exports_as_markdown_and_json(app, chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = open_chat(context.new_page(), app.url)
    try:
        ask(page, VICTIMS)
        ask(page, "What is a good recipe for deep dish pizza?")
        with page.expect_download() as markdown:
            page.locator("#export-md").click()
        with page.expect_download() as data:
            page.locator("#export-json").click()
        assert markdown.value.suggested_filename == "conversation.md"
        md = Path(markdown.value.path()).read_text(encoding="utf-8")
        assert f"## 1. {VICTIMS}" in md and VICTIMS_ANSWER in md and "## 2. What is a good recipe" in md
        assert "A Chicago police oversight agency charged with investigating sexual misconduct" in md
        assert "2023-07-18, ¶8" in md and "Closest passages (not answers)" in md
        exported = json.loads(Path(data.value.path()).read_text(encoding="utf-8"))
        first, second = exported["turns"]
        assert first["question"] == VICTIMS and VICTIMS_ANSWER in first["answer"] and first["status"] == "answered"
        cited = first["citations"][first["cites"] - 1]
        assert (cited["date"], cited["paragraph"], cited["article"]) == ("2023-07-18", 8, SEED_ARTICLE)
        assert {"title", "url", "text"} <= set(cited)
        assert second["status"] == "abstained" and second["answer"] is None and second["reason"]
    finally:
        context.close()


# --- 7. the phone and the first view ------------------------------------------------------------------------------------

def test_the_chat_says_where_the_article_is(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    placeholder = page.locator("#chat .placeholder")
    expect(placeholder).to_contain_text("Ask a question about the article on the right;", use_inner_text=True)
    page.set_viewport_size({"width": 390, "height": 844})
    expect(placeholder).to_contain_text("Ask a question about the article below;", use_inner_text=True)
    # nothing covers the placeholder: its first line is the top of the chat's box
    covered = page.evaluate("""() => {
        const p = document.querySelector('#chat .placeholder');
        const r = p.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + 20, r.top + 8);
        return !p.contains(top);
    }""")
    assert not covered


def test_a_tapped_citation_on_a_phone_offers_the_way_back(app, browser_page: Page, tmp_path):
    page = open_chat(browser_page, app.url, width=390)
    reply = ask(page, VICTIMS)
    reply.locator(".qa-answer a.qa-cite").click()
    back = page.locator("#qa-back")
    expect(back).to_be_visible(timeout=5_000)
    expect(page.locator("#article-panel .qa-answer-para")).to_be_in_viewport()
    screenshot(page, "screenshot-phone.png", tmp_path)
    back.click()
    expect(reply).to_be_in_viewport(timeout=5_000)
    expect(back).to_be_hidden()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_new_controls_pass_the_accessibility_check(app, browser_page: Page, width):
    page = open_chat(browser_page, app.url, width=width)
    reply = ask(page, VICTIMS)
    ask(page, "What is a good recipe for deep dish pizza?")
    reply.locator("button.qa-down").click()
    expect(page.locator("#feedback-form")).to_be_visible(timeout=REPLY_TIMEOUT)
    page.locator("#add-article").get_by_text("Add an article").click()
    assert axe_violations(page) == []
    # the reply's buttons have names a screen reader says
    expect(reply.get_by_role("button", name="Right answer")).to_be_visible()
    expect(reply.get_by_role("button", name="Report a problem")).to_be_visible()


# --- 1, 4. articles added by any door, pasted stories -------------------------------------------------------------------

def test_an_article_added_through_the_api_is_in_the_picker_of_an_open_page_and_of_a_new_one(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    assert picker_options(page) == ["All articles", "A Chicago police oversight agency charged with investigating sexual "
                                                    "misconduct… (2023-07-18)"]
    story = (PASTES / "local.txt").read_text(encoding="utf-8")
    status, entry = call(app.url, "POST", "/api/articles", {"text": story})
    assert status == 201, entry
    # the open page: its next question brings the list up to date
    ask(page, VICTIMS)
    assert "School board delays vote on new start times (2024-04-03)" in picker_options(page)
    # a new page load lists it, and it can be chosen and asked about
    fresh = open_chat(page.context.new_page(), app.url)
    assert "School board delays vote on new start times (2024-04-03)" in picker_options(fresh)
    choose(fresh, "School board delays vote")
    expect(fresh.locator("#article-panel .qa-headline")).to_have_text("School board delays vote on new start times")
    reply = ask(fresh, "When will the board vote?")
    expect(reply.locator(".qa-answer")).to_contain_text("May")


def test_an_open_page_learns_of_an_article_added_elsewhere_on_its_own(app, chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.clock.install()  # the page's timer runs on a clock the test moves
    try:
        open_chat(page, app.url)
        status, entry = call(app.url, "POST", "/api/articles", {"text": (PASTES / "ap.txt").read_text(encoding="utf-8")})
        assert status == 201, entry
        page.clock.run_for(25_000)
        expect(page.locator("#picker input")).to_be_attached()
        page.wait_for_timeout(1000)
        assert any(o.startswith("Maine town votes to restore") for o in picker_options(page))
    finally:
        context.close()


def test_a_pasted_story_keeps_its_own_paragraph_numbers_and_date(app, browser_page: Page, tmp_path):
    page = open_chat(browser_page, app.url)
    page.locator("#add-article").get_by_text("Add an article").click()
    page.locator("#paste textarea").fill((PASTES / "reuters.txt").read_text(encoding="utf-8"))
    page.locator("#add").click()
    notice = page.locator("#qa-notice")
    expect(notice).to_contain_text("Added “Exclusive: Harbour authority weighs sale of ferry terminal, sources say” "
                                   "(4 passages)", timeout=REPLY_TIMEOUT)
    expect(page.locator("#paste textarea")).to_be_hidden()  # the form closed: the eye goes up, to the notice
    panel = page.locator("#article-panel")
    expect(panel.locator(".qa-meta").first).to_have_text("2024-03-12")  # the date written in the story
    expect(panel.locator(".qa-para")).to_have_count(4)
    expect(panel.locator(".qa-para").first).to_contain_text("LONDON, March 12 (Reuters)")
    expect(panel.locator(".qa-para .qa-num").first).to_have_text("¶1")
    expect(panel.locator(".qa-skipped")).to_have_count(5)  # headline, byline, reading time, date line, credits
    reply = ask(page, "How many passengers did the terminal handle last year?")
    expect(reply.locator(".qa-answer")).to_contain_text("2.1 million")
    expect(panel.locator(".qa-answer-para .qa-num")).to_have_text("¶4")
    screenshot(page, "screenshot-pasted.png", tmp_path)


def test_an_upload_leaves_the_box_and_a_duplicate_switches_to_its_article(app, browser_page: Page, tmp_path):
    page = open_chat(browser_page, app.url)
    page.locator("#add-article").get_by_text("Add an article").click()
    story = tmp_path / "guardian.txt"
    story.write_text((PASTES / "guardian.txt").read_text(encoding="utf-8"), encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files(str(story))
    expect(page.locator("#upload")).to_contain_text(re.compile(r"guardian\s*\.txt"), timeout=REPLY_TIMEOUT)
    page.locator("#add").click()
    expect(page.locator("#qa-notice")).to_contain_text("Added “Council approves 20mph limit", timeout=REPLY_TIMEOUT)
    page.locator("#add-article").get_by_text("Add an article").click()
    expect(page.locator("#upload")).not_to_contain_text("guardian", timeout=REPLY_TIMEOUT)  # the file left the box
    choose(page, "All articles")
    # the same story pasted again: named by its headline, and chosen
    page.locator("#paste textarea").fill((PASTES / "guardian.txt").read_text(encoding="utf-8"))
    page.locator("#add").click()
    expect(page.locator("#add-status")).to_contain_text("already in the index as “Council approves 20mph limit across "
                                                        "city centre”", timeout=REPLY_TIMEOUT)
    expect(page.locator("#picker input")).to_have_value(re.compile("Council approves 20mph limit"))
    expect(page.locator("#article-panel .qa-headline")).to_have_text("Council approves 20mph limit across city centre")


def test_in_all_articles_mode_each_reply_names_the_article_it_quotes(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    reply = ask(page, "How many councillors voted in favour of the speed limit?")
    expect(reply.locator(".qa-from")).to_contain_text("Council approves 20mph limit across city centre")
    reply = ask(page, VICTIMS)
    expect(reply.locator(".qa-from")).to_contain_text("A Chicago police oversight agency")


def test_a_citation_to_a_removed_article_says_so(app, browser_page: Page):
    page = open_chat(browser_page, app.url)
    first = ask(page, "What speed limit did the council approve?")
    expect(first.locator(".qa-from")).to_contain_text("Council approves")
    ask(page, VICTIMS)
    article = next(a["article"] for a in call(app.url, "GET", "/api/articles")[1]["articles"]
                   if a["title"].startswith("Council approves"))
    assert call(app.url, "DELETE", f"/api/articles/{article}")[0] == 200
    first.locator(".qa-answer a.qa-cite").click()
    panel = page.locator("#article-panel")
    expect(panel.locator(".qa-panel-note")).to_contain_text("has been removed from the index since; reply 1 quoted this "
                                                            "passage from it", timeout=REPLY_TIMEOUT)
    expect(panel.locator(".qa-removed-passage")).to_contain_text("20mph")


def test_deleting_the_seed_article_removes_it_from_a_new_page_and_config(app, browser_page: Page):
    status, listing = call(app.url, "GET", "/api/articles")
    assert listing["count"] >= 2  # the seed is not the only article: it may go
    assert call(app.url, "DELETE", f"/api/articles/{SEED_ARTICLE}")[0] == 200
    page = open_chat(browser_page, app.url)
    options = picker_options(page)
    assert not any(o.startswith("A Chicago police") for o in options) and options[0] == "All articles"
    html = page.content()
    assert "Kersten" not in html and "Chicago police oversight" not in html
    status, config = call(app.url, "GET", "/config")
    assert status == 200 and "Kersten" not in json.dumps(config) and SEED_ARTICLE not in json.dumps(config)
    assert "Chicago police oversight" not in json.dumps(config)


# --- the app with logins: who did what -------------------------------------------------------------------------------

def login(page: Page, url: str, user: tuple[str, str]) -> Page:
    page.goto(url, wait_until="domcontentloaded")
    page.locator("input[type=text]").first.fill(user[0])
    page.locator("input[type=password]").fill(user[1])
    page.locator("input[type=password]").press("Enter")
    expect(page.locator("#article-panel .qa-article")).to_have_count(1, timeout=REPLY_TIMEOUT)
    return page


def test_12_adds_and_removes_are_logged_with_the_user(login_app, browser_page: Page):
    story = (PASTES / "bbc.txt").read_text(encoding="utf-8")
    status, entry = call(login_app.url, "POST", "/api/articles", {"text": story}, headers=basic(*USERS[0]))
    assert status == 201, entry
    status, _ = call(login_app.url, "DELETE", f"/api/articles/{entry['article']}", headers=basic(*USERS[1]))
    assert status == 200
    out = login_app.output()
    assert f"Added article {entry['article']} (3 passages) by user 'ann'" in out
    assert f"Removed article {entry['article']} by user 'bob'" in out
    page = login(browser_page, login_app.url, USERS[1])  # and through the chat
    page.locator("#add-article").get_by_text("Add an article").click()
    page.locator("#paste textarea").fill(story)
    page.locator("#add").click()
    expect(page.locator("#qa-notice")).to_contain_text("Added", timeout=REPLY_TIMEOUT)
    assert f"Added article {entry['article']} (3 passages) by user 'bob'" in login_app.output()
    log_clean(login_app)


def test_feedback_with_logins_names_the_user_and_its_export_asks_for_one(login_app, browser_page: Page):
    page = login(browser_page, login_app.url, USERS[0])
    reply = ask(page, VICTIMS)
    reply.locator("button.qa-up").click()
    expect(page.locator("#qa-notice")).to_contain_text("Thank you", timeout=REPLY_TIMEOUT)
    status, result = call(login_app.url, "GET", "/api/feedback")
    assert status == 401 and "login" in result["error"]
    status, result = call(login_app.url, "GET", "/api/feedback", headers=basic(USERS[0][0], "wrong"))
    assert status == 401
    status, text = call(login_app.url, "GET", "/api/feedback", headers=basic(*USERS[1]), text_only=True)
    assert status == 200
    line = json.loads(text.splitlines()[-1])
    assert line["user"] == "ann" and line["verdict"] == "right" and line["question"] == VICTIMS
    # the conversation kept in this browser belongs to ann: bob, in the same browser, starts afresh
    page.context.clear_cookies()
    other = login(page, login_app.url, USERS[1])
    other.wait_for_timeout(500)
    expect(other.get_by_test_id("user")).to_have_count(0)
    log_clean(login_app)
