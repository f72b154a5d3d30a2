"""The news gold sets against their stories (fast, no model).

eval/news-dev.jsonl and eval/conversations-news.jsonl are about the 15 Voice of America stories of
../shared/news-dev (docs/news-dev.md). Every evidence quote must be the story's own text within one sentence (as
qa/sentences.py splits it, after qa/evaluation.py's normalisation), since a reply counts as right only when its
sentence holds a quote; every short answer must be in a sentence that holds one of its quotes; ids, kinds and
parts must be consistent; and the held-out part must be the stories the recorded seed draws.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from qa.articles import read_article
from qa.evaluation import load_conversations, load_gold, normalize
from qa.sentences import split_sentences

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "news-dev.jsonl"
CONVERSATIONS = ROOT / "eval" / "conversations-news.jsonl"
HELD_OUT = ["n142", "n146", "n148", "n160", "n170"]  # recorded in docs/news-dev.md
KINDS = {"fact", "yes_no", "unanswerable"}
TURN_KINDS = {"first", "pronoun", "ellipsis", "bare", "switch", "unanswerable", "offtopic"}  # as eval/conversations*.jsonl
DEPENDS = {"none", "question", "answer", "earlier"}

_spec = importlib.util.spec_from_file_location("news_dev_corpus", ROOT / "scripts" / "news_dev_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sentences(story: str) -> list[str]:
    """The story's sentences, normalised: one paragraph a line, split as the service splits them."""
    return [normalize(line[s.start:s.end]) for line in story.split("\n") for s in split_sentences(line)]


def quote_problems(sentences: list[str], evidence: list[str], short: list[str]) -> list[str]:
    """What is wrong with a gold line's quotes against its story's sentences (empty when nothing)."""
    problems, holding = [], []
    for quote in evidence:
        found = [s for s in sentences if normalize(quote) in s]
        if not found:
            problems.append(f"evidence {quote!r} is not within one sentence of the story")
        holding += found
    for answer in short:
        if not any(normalize(answer) in s for s in holding):
            problems.append(f"short answer {answer!r} is in none of the evidence quotes' sentences")
    return problems


@pytest.fixture(scope="module")
def stories() -> dict[str, list[str]]:
    if not (corpus.STORIES / "articles.json").is_file():
        pytest.skip(f"{corpus.STORIES} (the news-dev stories) is missing on this machine")
    return {e["id"]: _sentences(e["data"].decode("utf-8")) for e in corpus.read_stories()}


def test_the_held_out_stories_are_those_of_the_recorded_seed():
    assert corpus.HELD_OUT_SEED == 22
    assert corpus.held_out() == sorted(random.Random(22).sample(sorted(corpus.SHA256), 5)) == HELD_OUT


def test_questions_are_well_formed():
    rows = _rows(QUESTIONS)
    assert len(load_gold(QUESTIONS)) == len(rows) >= 165
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({(r["article"], normalize(r["question"])) for r in rows}) == len(rows), "a question is asked twice"
    for r in rows:
        assert set(r) == {"id", "article", "part", "kind", "question", "answer", "evidence", "short"}, r["id"]
        assert r["article"] in corpus.SHA256 and r["id"].startswith(r["article"] + "-"), r["id"]
        assert r["part"] == ("held-out" if r["article"] in HELD_OUT else "tuning"), r["id"]
        assert r["kind"] in KINDS, r["id"]
        if r["kind"] == "unanswerable":
            assert r["answer"] is None and r["evidence"] == [] and r["short"] == [], r["id"]
        else:
            assert isinstance(r["answer"], str) and r["answer"].strip() and r["evidence"], r["id"]
        if r["kind"] == "fact":
            assert r["short"], r["id"]
        if r["kind"] == "yes_no":
            assert r["answer"].startswith(("Yes", "No")) and r["short"] == [], r["id"]
    per_story = Counter(r["article"] for r in rows)
    assert set(per_story) == set(corpus.SHA256) and min(per_story.values()) >= 11
    share = {k: n / len(rows) for k, n in Counter(r["kind"] for r in rows).items()}
    assert 0.55 <= share["fact"] <= 0.65 and 0.08 <= share["yes_no"] <= 0.15 and 0.25 <= share["unanswerable"] <= 0.35
    for part in ("tuning", "held-out"):  # each part has every kind
        assert {r["kind"] for r in rows if r["part"] == part} == KINDS


def test_question_quotes_and_short_answers_are_in_the_story(stories):
    problems = [f"{r['id']}: {p}" for r in _rows(QUESTIONS)
                for p in quote_problems(stories[r["article"]], r["evidence"], r["short"])]
    assert not problems, "\n".join(problems)


def test_conversations_are_well_formed():
    rows = _rows(CONVERSATIONS)
    assert len(load_conversations(CONVERSATIONS)) == len(rows) == 30
    assert len({r["id"] for r in rows}) == len(rows)
    assert Counter(r["article"] for r in rows) == {a: 2 for a in corpus.SHA256}
    follow_ups = []
    for r in rows:
        assert set(r) == {"id", "article", "part", "turns"} and r["id"].startswith(r["article"] + "-c"), r["id"]
        assert r["part"] == ("held-out" if r["article"] in HELD_OUT else "tuning"), r["id"]
        assert 3 <= len(r["turns"]) <= 5, r["id"]  # a first question and 2-4 follow-ups
        for i, t in enumerate(r["turns"]):
            where = f"{r['id']} turn {i + 1}"
            assert set(t) == {"question", "answer", "evidence", "kind", "interpreted_as", "depends_on"}, where
            assert t["kind"] in TURN_KINDS and t["depends_on"] in DEPENDS, where
            assert (t["kind"] == "first") == (i == 0), where
            assert isinstance(t["interpreted_as"], str) and t["interpreted_as"].strip(), where
            if i == 0 or t["kind"] in ("switch", "offtopic"):
                assert t["depends_on"] == "none", where
            elif t["kind"] != "unanswerable":
                assert t["depends_on"] != "none", where  # a follow-up that leans on nothing is a switch
            if t["kind"] in ("unanswerable", "offtopic"):
                assert t["answer"] is None and t["evidence"] == [], where
            else:
                assert isinstance(t["answer"], str) and t["answer"].strip() and t["evidence"], where
        follow_ups += r["turns"][1:]
    assert 75 <= len(follow_ups) <= 95
    assert 0.15 <= sum(t["answer"] is None for t in follow_ups) / len(follow_ups) <= 0.3
    assert sum(t["kind"] == "switch" for t in follow_ups) >= 5


def test_conversation_quotes_are_in_the_story(stories):
    problems = [f"{r['id']} turn {i + 1}: {p}" for r in _rows(CONVERSATIONS) for i, t in enumerate(r["turns"])
                for p in quote_problems(stories[r["article"]], t["evidence"], [])]
    assert not problems, "\n".join(problems)


def test_the_check_catches_quotes_that_are_not_the_story_s():
    sentences = _sentences("The House voted 360-59 on Tuesday. “It is a first step,” he said.\nThe Senate waits.")
    assert quote_problems(sentences, ["the house  voted 360-59"], ["360-59"]) == []
    assert quote_problems(sentences, ["it is a first step"], []) == []  # curly quotes and case folded
    assert quote_problems(sentences, ["The House voted 360–59"], []) != []  # a changed character
    assert quote_problems(sentences, ["on Tuesday. “It is"], []) != []  # across a sentence boundary
    assert quote_problems(sentences, ["The House voted"], ["Senate"]) != []  # short answer outside its sentence


def test_the_corpus_is_stored_as_qa_add_stores_it(stories, tmp_path):
    written = corpus.write_corpus(tmp_path / "corpus")
    assert sorted(p.stem for p in written) == sorted(corpus.SHA256)
    listing = {e["id"]: e for e in json.loads((corpus.STORIES / "articles.json").read_text(encoding="utf-8"))}
    for path in written:
        data = path.read_bytes()
        story = (corpus.STORIES / listing[path.stem]["file"]).read_bytes()
        assert data.endswith(b"\n\n" + story)
        article = read_article(path)
        assert (article.id, article.title) == (path.stem, listing[path.stem]["title"])
        assert data.startswith(f"title: {listing[path.stem]['title']}\nsource: Voice of America\n".encode())
    (tmp_path / "corpus" / "notes.txt").write_text("not a story")
    with pytest.raises(SystemExit, match="notes.txt"):
        corpus.write_corpus(tmp_path / "corpus")
