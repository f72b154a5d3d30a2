"""Articles through the running app: POST/GET/DELETE /api/articles, questions restricted to an article, the
app restarted, bad input refused while the app keeps answering, and an add while eight clients keep asking.
The added story is a real news page nobody on the team wrote (tests/fixtures/html/telegraph.html)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_app import VICTIMS, VICTIMS_ANSWER, AppServer, api_ask, check_spans, make_project

PAGE = Path(__file__).parent / "fixtures" / "html" / "telegraph.html"
QUESTIONS = [  # about the added story, with what its answer sentence must hold
    ("Where are Mugabe and his wife under house arrest?", "Blue House"),
    ("Who is the Catholic priest acting as a middle-man?", "Fidelis Mukonori"),
    ("Since when has Mugabe led Zimbabwe?", "since independence in 1980"),
]


def call(base: str, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


STORES = {"files": {}, "qdrant": {"QA_STORE": "qdrant", "QA_QDRANT_PATH": "qdrant"}}  # Qdrant: embedded, in the project


@pytest.fixture(scope="module", params=list(STORES))
def store(request) -> dict:
    """The whole module runs on each store: the files index, and Qdrant (the app copies the index there at its
    first start, then keeps its state there)."""
    return STORES[request.param]


@pytest.fixture(scope="module")
def project(tmp_path_factory, store) -> Path:
    return make_project(tmp_path_factory)


@pytest.fixture(scope="module")
def app(project, store):
    server = AppServer(project, {"QA_WORKERS": "2", "QA_MAX_ARTICLES": "3", **store}).wait()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def added(app) -> dict:
    status, entry = call(app.url, "POST", "/api/articles", {"text": PAGE.read_text(encoding="utf-8")})
    assert status == 201, entry
    return entry


def test_an_added_news_page_is_listed_with_its_identity(app, added):
    assert added["title"].startswith("Zimbabwe") and added["source"] == "The Telegraph"
    assert added["date"] == "2017-11-16" and added["url"].startswith("http")
    assert added["passages"] > 10 and added["path"] == f"articles/{added['article']}.txt"
    status, listing = call(app.url, "GET", "/api/articles")
    assert status == 200 and listing["count"] == 2 and listing["persistent"] is True
    assert [a["article"] for a in listing["articles"]] == sorted(["000_1377f01862d9140a", added["article"]])
    assert listing["limits"] == {"article_bytes": 1_000_000, "page_bytes": 5_000_000, "articles": 3}


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_questions_restricted_to_the_added_article_are_answered_with_exact_spans(app, project, added, question, expected):
    status, result, _ = api_ask(app.url, {"question": question, "article": added["article"]})
    assert status == 200 and not result["abstained"], result
    assert expected in result["answer"]["text"]
    assert all(p["citation"]["article"] == added["article"] for p in result["passages"])
    assert result["passages"][0]["citation"]["source"] == "The Telegraph"
    check_spans(result, project)


def test_the_seed_article_is_still_answered_and_can_be_chosen(app, added):
    status, result, _ = api_ask(app.url, {"question": VICTIMS, "article": ["000_1377f01862d9140a"]})
    assert status == 200 and VICTIMS_ANSWER in result["answer"]["text"]
    status, result, _ = api_ask(app.url, {"question": VICTIMS, "article": "no-such-article"})
    assert status == 404 and "No article 'no-such-article'" in result["error"]


BAD_ADDS = [
    ({"text": ""}, 400, "The article is empty"),
    ({"text": "   \n  "}, 400, "The article is empty"),
    ({"text": "A story with a \u0000 NUL."}, 400, "control character U+0000"),
    ({"text": "<html><body><nav><a href=/a>Home</a> <a href=/b>News</a></nav></body></html>"}, 400, "No story text found"),
    ({"text": "Short story. It happened today in the town centre."}, 201, None),  # plain text is fine, even short
    ({"text": "x " * 600_000}, 413, "the limit is 1.0 MB per article"),
    ({"text": "A fine story about the weather today.", "title": "<b>bold</b>"}, 400, "contains markup"),
    ({"text": "A fine story about the weather today.", "title": "../../etc/passwd"}, 400, "looks like a file path"),
    ({"text": "A fine story about the weather today.", "url": "javascript:alert(1)"}, 400, "not an http(s) address"),
    ({"text": "A fine story about the weather today.", "date": "13/01/2024"}, 400, "must be YYYY-MM-DD"),
    ({"text": 5}, 400, "must be text, not int"),
    ({"title": "no text"}, 400, 'with "text"'),
    ({"text": "x", "author": "me"}, 400, 'with "text"'),
    ({"text": "Yet another story about the weather today."}, 413, "holds 3 articles, the most allowed (3)"),
]


def test_bad_articles_are_refused_and_nothing_is_stored(app, project, added):
    before = sorted(p.name for p in (project / "articles").iterdir())
    for body, status, message in BAD_ADDS:
        got, result = call(app.url, "POST", "/api/articles", body)
        assert got == status, (body, result)
        if message:
            assert message in result["error"] and "Traceback" not in result["error"], result
        assert api_ask(app.url, {"question": VICTIMS})[0] == 200  # the app keeps answering
    after = sorted(p.name for p in (project / "articles").iterdir())
    assert len(after) == len(before) + 1  # only the good one (the short story)
    status, result = call(app.url, "POST", "/api/articles", {"text": PAGE.read_text(encoding="utf-8")})
    assert status == 409 and result["article"] == added["article"] and "already in the index" in result["error"]
    status, result = call(app.url, "POST", "/api/articles", raw=b'{"text": "caf\xe9"}')
    assert status == 400
    short = next(a for a in call(app.url, "GET", "/api/articles")[1]["articles"] if a["title"].startswith("Short story"))
    assert call(app.url, "DELETE", f"/api/articles/{short['article']}")[0] == 200
    assert call(app.url, "DELETE", f"/api/articles/{short['article']}")[0] == 404


def test_adding_while_eight_clients_ask_fails_no_request_and_mixes_no_index(app):
    """Every answer during the add equals the answer before it or the answer after it (an unrestricted question
    may start citing the new article once it is in): never a failure, never something else."""
    questions = [VICTIMS, "Who is the chief administrator of COPA?", "Which district was the officer assigned to?",
                 "How many migrants were living at police stations?"]
    before = {q: api_ask(app.url, {"question": q})[1] for q in questions}
    results: list[tuple[str, int, dict]] = []
    stop = threading.Event()

    def client(i: int) -> None:
        while not stop.is_set():
            q = questions[i % len(questions)]
            status, result, _ = api_ask(app.url, {"question": q})
            results.append((q, status, result))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    story = ("date 2024-06-01 The district council said on Tuesday that the COPA office would move to a new building "
             "next spring.\n\nThe move was approved after a long debate about costs.\n")
    status, entry = call(app.url, "POST", "/api/articles", {"text": story, "title": "COPA office to move"})
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert status == 201, entry
    after = {q: api_ask(app.url, {"question": q})[1] for q in questions}
    # questions were in flight all through the add (two each at least; an ask reads 4 candidate sentences since
    # the confidence issue, so fewer fit in the second than the 40 once asked for)
    assert len(results) >= 16 and all(s == 200 for _, s, _ in results)
    strip = lambda r: {k: v for k, v in r.items() if k != "warnings"}  # noqa: E731
    for q, _, result in results:
        assert strip(result) in (strip(before[q]), strip(after[q])), q
    assert call(app.url, "DELETE", f"/api/articles/{entry['article']}")[0] == 200


def test_added_articles_survive_a_restart_with_the_same_answers(app, project, added, store):
    answers = [api_ask(app.url, {"question": q, "article": added["article"]})[1] for q, _ in QUESTIONS]
    app.stop()
    app.proc.wait(30)
    again = AppServer(project, {"QA_WORKERS": "2", **store}).wait()
    try:
        assert added["article"] in [a["article"] for a in call(again.url, "GET", "/api/articles")[1]["articles"]]
        assert [api_ask(again.url, {"question": q, "article": added["article"]})[1] for q, _ in QUESTIONS] == answers
        assert "Building the index" not in again.output() and "Updating the index" not in again.output()
        assert ("passages in Qdrant local mode" in again.output()) == bool(store)  # served from Qdrant, not index/
    finally:
        again.stop()
