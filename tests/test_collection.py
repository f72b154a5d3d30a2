"""Articles staff add, at the library level: checks and limits, HTML extraction on real news pages, ids, the
stored file, incremental indexing, removal, duplicates, and another process seeing the change.

The fake embedder makes indexing instant; the HTML pages are real (tests/fixtures/html, see SOURCES.md)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from helpers import SMALL_CORPUS, FakeEmbedder, write_articles, qa_clean_env  # noqa: F401 - fixture
from qa import Engine, resolve_settings
from qa.articles import parse_article
from qa.collection import MAX_PAGE_BYTES, article_id, prepare_article, write_article_file
from qa.errors import ArticleError, ArticleNotFoundError, ArticleTooLargeError, DuplicateArticleError
from qa.extract import extract_html
from qa.store import load_index, read_manifest

pytestmark = pytest.mark.usefixtures("qa_clean_env")
FIXTURES = Path(__file__).parent / "fixtures" / "html"
PAGES = sorted(p.stem for p in FIXTURES.glob("*.html"))
STORY = ("The city council voted on Monday to close the Harlow river bridge for repairs.\n\n"
         "Engineers found cracks in three steel girders during an inspection in February.\n")


def quiet(_m: str) -> None:
    pass


@pytest.fixture
def engine(tmp_path) -> Engine:
    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow")
    return Engine.open(settings, embedder=FakeEmbedder(), log=quiet)


# --- HTML pages --------------------------------------------------------------------------------------------


def _f1(got: str, want: str) -> float:
    g, w = Counter(got.lower().split()), Counter(want.lower().split())
    common = sum((g & w).values())
    return 0.0 if not common else 2 * common / (sum(g.values()) + sum(w.values()))


@pytest.mark.parametrize("page", PAGES)
def test_news_pages_keep_the_story_and_its_identity(page):
    """Measured in docs/html-extraction.md: word F1 0.989 on average, worst page 0.965."""
    found = extract_html((FIXTURES / f"{page}.html").read_bytes())
    expected = (FIXTURES / f"{page}.expected.txt").read_text(encoding="utf-8")
    assert found.text and _f1(found.text, expected) > 0.93
    assert found.title and found.source and found.url and found.url.startswith("http")
    assert found.date and len(found.date) == 10


def test_a_page_with_no_story_is_refused():
    nav = "<html><body><nav>" + "".join(f"<a href=/s{i}>Section {i}</a>" for i in range(30)) + "</nav><footer>(c) 2024</footer></body></html>"
    with pytest.raises(ArticleError, match="No story text found in the HTML page"):
        prepare_article(nav)


def test_script_in_a_page_never_reaches_the_text():
    page = ("<html><body><article><h1>Storm hits coast</h1>" + "<p>The storm reached the coast on Friday night, "
            "flooding streets in three towns and cutting power to thousands of homes.</p>" * 3 +
            "<script>alert('xss')</script><img src=x onerror=\"alert(1)\"><p>Officials said repairs would take a week "
            "and asked residents to stay away from the harbour until the water receded.</p></article></body></html>")
    new = prepare_article(page)
    assert "alert" not in new.raw and "onerror" not in new.raw and "<" not in new.raw
    assert "repairs would take a week" in new.raw


# --- checks and limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"text": ""}, ArticleError, "The article is empty"),
    ({"text": " \n\t "}, ArticleError, "The article is empty"),
    ({"text": "Bad \x00 byte in the text."}, ArticleError, "control character U+0000"),
    ({"text": "Bell \x07 in the text."}, ArticleError, "control character U+0007"),
    ({"text": b"caf\xe9 is not UTF-8 here."}, ArticleError, "not UTF-8"),
    ({"text": 42}, ArticleError, "must be text, not int"),
    ({"text": "x " * 600_000}, ArticleTooLargeError, "the limit is 1.0 MB per article"),
    ({"text": "<html><body>" + "<p>word</p>" * 600_000 + "</body></html>"}, ArticleTooLargeError, "the limit is 5.0 MB per page"),
    ({"text": STORY, "title": "<script>alert(1)</script>"}, ArticleError, "contains markup"),
    ({"text": STORY, "title": "../../etc/passwd"}, ArticleError, "looks like a file path"),
    ({"text": STORY, "title": "C:\\\\Windows"}, ArticleError, "looks like a file path"),
    ({"text": STORY, "title": "x" * 301}, ArticleError, "the limit is 300"),
    ({"text": STORY, "url": "javascript:alert(1)"}, ArticleError, "is not an http(s) address"),
    ({"text": STORY, "url": "https://ex.com/<img>"}, ArticleError, "is not an http(s) address"),
    ({"text": STORY, "url": "file:///etc/passwd"}, ArticleError, "is not an http(s) address"),
    ({"text": STORY, "date": "yesterday"}, ArticleError, "must be YYYY-MM-DD"),
    ({"text": STORY, "date": "2024-02-30"}, ArticleError, "not a real date"),
    ({"text": STORY, "fmt": "pdf"}, ArticleError, "format must be"),
    ({"text": "ALL CAPS HEADLINE ONLY HERE\n\nCLICK HERE TO GET THE APP\n"}, ArticleError, "no story text found"),
])
def test_bad_articles_are_refused_with_the_problem(kwargs, error, message):
    text = kwargs.pop("text")
    with pytest.raises(error) as err:
        prepare_article(text, **kwargs)
    assert message in str(err.value)


def test_the_stored_file_carries_the_identity_and_reads_back_the_same():
    new = prepare_article(STORY, title="Bridge to close", date="2024-03-02", url="https://news.example/bridge",
                          source="Harlow Gazette")
    assert new.raw.startswith("title: Bridge to close\ndate: 2024-03-02\nsource: Harlow Gazette\n"
                              "url: https://news.example/bridge\n\nThe city council")
    article = parse_article(new.raw, article_id=new.id, path="x", sha256="")
    assert (article.title, article.date, article.url, article.source) == ("Bridge to close", "2024-03-02",
                                                                          "https://news.example/bridge", "Harlow Gazette")
    assert [new.raw[p.start:p.end] for p in article.paragraphs] == [line for line in STORY.split("\n") if line]
    assert new.id == article_id("Bridge to close", new.content) and new.id.startswith("bridge-to-close-")
    assert "/" not in new.id and len(new.id) <= 61
    # the same story with other white space and another title is the same content
    assert prepare_article(STORY.replace(" ", "  "), title="Other").content == new.content


def test_writing_an_article_file_is_atomic_and_cleans_up(tmp_path):
    (tmp_path / ".dead.123.tmp").write_text("half")
    path = write_article_file(tmp_path, "a-1", "title: A\n\nText.\n")
    assert path.read_text() == "title: A\n\nText.\n" and not list(tmp_path.glob(".*.tmp"))
    assert write_article_file(tmp_path, "a-1", "title: A\n\nText.\n") == path  # the same again is fine
    with pytest.raises(ArticleError, match="exists with other content"):
        write_article_file(tmp_path, "a-1", "title: B\n\nOther.\n")


# --- the engine: add, list, remove ---------------------------------------------------------------------------


def test_adding_embeds_only_the_new_article_and_answers_from_it(engine, tmp_path):
    fake = engine.embedder
    fake.reset_counts()
    entry = engine.add_article(STORY, title="Bridge vote", date="2024-03-04", log=quiet)
    assert fake.encoded == [STORY.split("\n")[0], STORY.split("\n")[2]]  # its two passages, nothing else
    assert entry["passages"] == 2 and entry["title"] == "Bridge vote" and entry["path"].endswith(f"{entry['article']}.txt")
    answer = engine.ask("What did engineers find in the steel girders?", articles=[entry["article"]])
    assert not answer.abstained and answer.passages[0].citation.article == entry["article"]
    raw = (tmp_path / "articles" / f"{entry['article']}.txt").read_text(encoding="utf-8")
    c = answer.passages[0].citation
    assert raw[c.start:c.end] == answer.passages[0].text  # exact offsets into the stored file
    assert [a["article"] for a in engine.list_articles()] == sorted(["bakery", "bridge", "library", "orchard", entry["article"]])
    # on disk: a valid index naming the file; a fresh engine (a restart) finds it without embedding anything
    assert len(load_index(tmp_path / "index").articles) == 5
    fresh = FakeEmbedder()
    again = Engine.open(engine.settings, embedder=fresh, log=quiet)
    assert fresh.encoded_count == 0 and entry["article"] in again.index.articles
    assert again.index.articles[entry["article"]].title == "Bridge vote"


def test_a_duplicate_names_the_existing_article_and_stores_nothing(engine, tmp_path):
    first = engine.add_article(STORY, log=quiet)
    files = sorted(os.listdir(tmp_path / "articles"))
    with pytest.raises(DuplicateArticleError) as err:
        engine.add_article(STORY.replace("\n\n", "\n\n\n"), title="Another title", log=quiet)
    assert err.value.article_id == first["article"] and first["article"] in str(err.value)
    with pytest.raises(DuplicateArticleError) as err:  # an article that came from a file counts too
        engine.add_article(SMALL_CORPUS["bakery.txt"], log=quiet)
    assert err.value.article_id == "bakery"
    assert sorted(os.listdir(tmp_path / "articles")) == files


def test_the_article_cap_is_enforced(tmp_path):
    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow", max_articles=4)
    engine = Engine.open(settings, embedder=FakeEmbedder(), log=quiet)
    with pytest.raises(ArticleTooLargeError, match="holds 4 articles, the most allowed"):
        engine.add_article(STORY, log=quiet)
    assert len(os.listdir(corpus)) == 4


def test_removing_deletes_the_file_and_its_passages(engine, tmp_path):
    entry = engine.add_article(STORY, log=quiet)
    removed = engine.remove_article(entry["article"], log=quiet)
    assert removed["article"] == entry["article"]
    assert not (tmp_path / "articles" / f"{entry['article']}.txt").exists()
    assert entry["article"] not in engine.index.articles and len(engine.index.chunks) == 12
    with pytest.raises(ArticleNotFoundError, match="No article"):
        engine.remove_article(entry["article"], log=quiet)
    with pytest.raises(ArticleNotFoundError):
        engine.ask("What did engineers find?", articles=[entry["article"]])


def test_the_last_article_cannot_be_removed(tmp_path):
    corpus = write_articles(tmp_path / "articles", {"bridge.txt": SMALL_CORPUS["bridge.txt"]})
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow")
    engine = Engine.open(settings, embedder=FakeEmbedder(), log=quiet)
    with pytest.raises(ArticleError, match="the only article"):
        engine.remove_article("bridge", log=quiet)


def test_another_engine_sees_an_added_article_at_its_next_question(engine, tmp_path):
    """The app's ask workers are other processes holding the index: each reloads the new one once."""
    other = Engine.open(engine.settings, embedder=FakeEmbedder(), log=quiet)
    entry = engine.add_article(STORY, log=quiet)
    answer = other.ask("What did engineers find in the steel girders?", articles=[entry["article"]])
    assert answer.passages[0].citation.article == entry["article"]
    engine.remove_article(entry["article"], log=quiet)
    assert entry["article"] not in other.ask("Who owns the bakery?").passages[0].citation.article
    assert entry["article"] not in other.index.articles


# --- crashes and concurrency ----------------------------------------------------------------------------------


ADD_SCRIPT = """
import sys
from qa import Engine, resolve_settings
sys.path.insert(0, sys.argv[3])
from helpers import FakeEmbedder
import time

class Slow(FakeEmbedder):
    def encode(self, texts, **kw):
        time.sleep(1.0)
        return super().encode(texts, **kw)

settings = resolve_settings(index_dir=sys.argv[1], articles=[sys.argv[2]], model="fake-bow")
engine = Engine.open(settings, embedder=Slow(), log=lambda m: None)
print("ready", flush=True)
engine.add_article(open(sys.argv[4]).read(), log=lambda m: None)
print("added", flush=True)
"""


def test_an_add_killed_at_random_moments_leaves_the_previous_index_intact(engine, tmp_path):
    """Killed (SIGKILL) at 7 random moments of an add: before the lock, while storing the file, while embedding;
    each time the previous index is intact and there is no half-written article file."""
    import random

    story = tmp_path / "story.txt"
    story.write_text(STORY * 3 + "\nA final paragraph about the ferry at Mill Point.\n", encoding="utf-8")
    before = read_manifest(tmp_path / "index")
    args = [sys.executable, "-c", ADD_SCRIPT, str(tmp_path / "index"), str(tmp_path / "articles"), str(Path(__file__).parent),
            str(story)]
    for delay in sorted(random.Random(7).uniform(0.0, 0.9) for _ in range(7)):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        index = load_index(tmp_path / "index")  # every file checks out against the manifest
        assert read_manifest(tmp_path / "index")["generation"] == before["generation"]
        assert set(index.articles) == {"bakery", "bridge", "library", "orchard"}
        for p in (tmp_path / "articles").glob("*.txt"):  # no half-written article file
            assert p.stem in index.articles or p.read_text(encoding="utf-8").endswith("Mill Point.\n"), p
            if p.stem not in index.articles:
                p.unlink()  # stored but not indexed when killed: the next start would index it
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)  # an add that is not killed completes
    assert done.stdout.split() == ["ready", "added"] and len(load_index(tmp_path / "index").articles) == 5
    assert not list((tmp_path / "articles").glob(".*.tmp"))
