"""The Qdrant store (qa/qdrant_store.py) against the real qdrant-client in embedded local mode, and against a Qdrant
server when QA_QDRANT_URL is set: the same passages, scores and answers as the files store; the state lives in
Qdrant (another engine answers from an article added through the first, with exact citation spans); writers take
turns and never overwrite each other's commit; an unreachable Qdrant is a clear error, never a traceback.
No mock of Qdrant."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import models
from helpers import seed_engine  # noqa: F401  (fixture)

from qa import Engine
from qa.errors import IndexBusyError, StaleIndexError, StoreUnavailableError
from qa.qdrant_store import LEASE_ID, QdrantStore, copy_index

ROOT = Path(__file__).resolve().parent.parent
NEWS = ROOT.parent / "shared" / "news-dev"
STORY = """Council approves bike lanes on Main Street

The city council voted 7-2 on Tuesday to build protected bike lanes along Main Street.

Council member Dana Ortiz sponsored the measure, which will cost $4.2 million.

Construction is to begin in March and end by November, the transport department said.
"""


def _questions(*names: str) -> list[str]:
    return [json.loads(line)["question"] for name in names for line in (ROOT / "eval" / name).read_text().splitlines()
            if line.strip()]


def _key(answer) -> tuple:
    """What a reader sees of an answer: sentence, status, short answer, confidence, reason, and each passage's
    citation span and score."""
    return (answer.text, answer.status, answer.span, None if answer.confidence is None else round(answer.confidence, 5),
            answer.reason, [(p.citation.article, p.citation.start, p.citation.end, round(p.score, 5)) for p in answer.passages])


def _qdrant_engine(files_engine: Engine, path: Path, articles: Path, store: QdrantStore | None = None) -> Engine:
    store = store or QdrantStore.connect(path=path)
    snapshot = store.latest(None) if store.state() is not None else copy_index(files_engine.index, store)
    settings = replace(files_engine.settings, store="qdrant", qdrant_path=str(path), articles=(str(articles),))
    return Engine(snapshot, files_engine.embedder, settings, store=store)


@pytest.fixture
def qdrant_engine(seed_engine, tmp_path):  # noqa: F811
    engine = _qdrant_engine(seed_engine, tmp_path / "qdrant", tmp_path / "articles")
    yield engine
    engine.store.close()


def test_both_stores_give_the_same_answers_passages_and_scores(seed_engine, qdrant_engine):  # noqa: F811
    questions = _questions("seed.jsonl")  # holdout and SQuAD: benchmarks/qdrant.py (docs/qdrant.md)
    assert len(questions) >= 20
    differ = [q for q in questions if _key(seed_engine.ask(q)) != _key(qdrant_engine.ask(q))]
    assert differ == []
    scoped = seed_engine.index.chunks[0].article_id
    q = "Who is the chief administrator of COPA?"
    assert _key(seed_engine.ask(q, articles=[scoped])) == _key(qdrant_engine.ask(q, articles=[scoped]))


def test_the_snapshot_reads_back_what_the_files_index_holds(seed_engine, qdrant_engine):  # noqa: F811
    files, qd = seed_engine.index, qdrant_engine.index
    assert list(qd.articles.items()) == list(files.articles.items())
    assert list(qd.chunks) == list(files.chunks) and qd.counts()["sentences"] == files.counts()["sentences"]
    rows = np.arange(len(files.chunks))
    assert np.array_equal(qd.vectors_of(rows), files.vectors_of(rows))
    for (t1, o1), (t2, o2) in zip(qd.tokens_of(rows), files.tokens_of(rows)):
        assert np.array_equal(t1, t2) and np.array_equal(o1, o2)
    assert all(np.array_equal(a, b) for a, b in zip(qd.sentence_vectors_of(rows), files.sentence_vectors_of(rows)))
    for q in ("How many migrants were living at police stations?", "Who runs COPA?", "tracking numbers"):
        v = seed_engine.query(q).vector
        for scope in (None, rows[::3]):
            a, b = qd.dense_search(v, 7, scope), files.dense_search(v, 7, scope)
            assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=1e-5)
        tokens = ["migrant", "polic", "station"]
        assert np.array_equal(qd.lexical_search(tokens, 5)[0], files.lexical_search(tokens, 5)[0])


def test_an_article_added_through_one_engine_is_answered_by_another_then_removed(seed_engine, tmp_path):  # noqa: F811
    """Two engines with their own store objects over one Qdrant database (local mode lets one client hold it):
    what one adds, the other answers at its next question, with citation spans that cut the stored text exactly;
    what the second removes is gone from the first; and a fresh open of the path, with no index folder and no
    article file, is the state Qdrant holds."""
    first = _qdrant_engine(seed_engine, tmp_path / "qdrant", tmp_path / "articles")
    other_store = QdrantStore(first.store.client, where=first.store.where)
    second = _qdrant_engine(seed_engine, tmp_path / "qdrant", tmp_path / "articles", store=other_store)
    try:
        entry = first.add_article(STORY, log=lambda _m: None)
        answer = second.ask("Who sponsored the bike lane measure?")
        assert answer.passages[0].citation.article == entry["article"]
        stored = second.article_text(second.index.articles[entry["article"]])
        mine = [p for p in answer.passages if p.citation.article == entry["article"]]
        assert all(stored[p.citation.start : p.citation.end] == p.text for p in mine)
        assert any("Dana Ortiz sponsored the measure" in p.text for p in mine)
        assert entry["article"] in {a["article"] for a in second.list_articles()}

        # the article panel of a server whose disk never held the file shows the text Qdrant keeps
        (tmp_path / "articles" / f"{entry['article']}.txt").unlink()
        from qa.webchat import ChatHandlers

        article, problem = ChatHandlers(second, log=lambda _m: None)._article(entry["article"])
        assert problem is None and "Dana Ortiz sponsored the measure" in article.raw

        second.remove_article(entry["article"], log=lambda _m: None)
        assert entry["article"] not in {a["article"] for a in first.list_articles()}
        assert all(p.citation.article != entry["article"] for p in first.ask("Who sponsored the bike lane measure?").passages)
    finally:
        first.store.close()
    settings = replace(first.settings, index_dir=str(tmp_path / "no-index-here"), articles=None)
    reopened = Engine.open(settings, embedder=seed_engine.embedder, log=lambda _m: None)
    try:
        assert not (tmp_path / "no-index-here").exists()
        assert sorted(reopened.index.articles) == sorted(seed_engine.index.articles)
        assert _key(reopened.ask("How many migrants were living at police stations?")) == \
            _key(seed_engine.ask("How many migrants were living at police stations?"))
    finally:
        reopened.store.close()


def test_writers_take_turns_and_a_commit_never_overwrites_another(seed_engine, tmp_path):  # noqa: F811
    one = QdrantStore.connect(path=tmp_path / "qdrant")
    try:
        copy_index(seed_engine.index, one)
        two = QdrantStore(one.client, where=one.where)
        with two.writing():
            with pytest.raises(IndexBusyError, match="Another writer .* holds the archive"):
                with one.writing(timeout=0.3):
                    pass
        with one.writing(timeout=1):  # given back: the next writer gets it at once
            lease = one.client.retrieve(one.articles_collection, ids=[LEASE_ID])[0].payload
            assert lease["holder"] == one._holder
        stale = {"kind": "lease", "holder": "dead:1", "token": "t0", "since": 0.0}  # a writer that died long ago
        one.client.upsert(one.articles_collection, points=[models.PointStruct(id=LEASE_ID, vector={}, payload=stale)])
        with two.writing(timeout=1):
            assert two.client.retrieve(two.articles_collection, ids=[LEASE_ID])[0].payload["holder"] == two._holder
        read = one.state()
        current = two.latest(None)
        with two.writing():
            two.write(current, remove=[next(iter(current.articles))] if len(current.articles) > 1 else [])
        behind = dict(read, generation=read["generation"] + 1, commit=uuid.uuid4().hex)
        with pytest.raises(StaleIndexError, match="Another writer changed the archive"):
            one._commit(read, behind)
        assert one.state()["generation"] == read["generation"] + 1 and one.state()["commit"] != behind["commit"]
    finally:
        one.close()


def test_an_unreachable_qdrant_is_a_clear_error_at_start_and_per_question(seed_engine, qdrant_engine):  # noqa: F811
    down = "http://127.0.0.1:9"  # the discard port: nothing listens
    settings = replace(seed_engine.settings, store="qdrant", qdrant_url=down, qdrant_path=None)
    with pytest.raises(StoreUnavailableError, match=r"Qdrant at http://127.0.0.1:9 failed to .*QA_QDRANT_URL"):
        Engine.open(settings, embedder=seed_engine.embedder, log=lambda _m: None)
    # serving, then Qdrant goes away: each question gets the error; the engine keeps serving once it is back
    gone = QdrantStore.connect(url=down)
    serving_store = qdrant_engine.store
    qdrant_engine.store = gone
    with pytest.raises(StoreUnavailableError, match="Nothing was changed"):
        qdrant_engine.ask("Who runs COPA?")
    from qa.validation import parse_ask_request
    from qa.workers import answer_json

    status, body = answer_json(qdrant_engine, parse_ask_request({"question": "Who runs COPA?"}, max_question_chars=1000, max_k=50))
    assert status == 503 and "Qdrant at http://127.0.0.1:9" in json.loads(body)["error"]  # /api/ask's reply
    with pytest.raises(StoreUnavailableError):
        qdrant_engine.add_article(STORY, log=lambda _m: None)
    qdrant_engine.store = serving_store
    assert len(qdrant_engine.list_articles()) == 1  # the failed add committed nothing
    assert qdrant_engine.ask("Who runs COPA?").passages


def test_qdrant_settings_are_checked():
    from qa.config import resolve_settings
    from qa.errors import ConfigError

    with pytest.raises(ConfigError, match="exactly one of QA_QDRANT_URL"):
        resolve_settings(store="qdrant")
    with pytest.raises(ConfigError, match="QA_STORE must be files or qdrant"):
        resolve_settings(store="faiss")
    secret = resolve_settings(store="qdrant", qdrant_url="http://q:6333", qdrant_api_key="s3cret")
    assert "s3cret" not in repr(secret)


@pytest.mark.skipif(not os.environ.get("QA_QDRANT_URL"),
                    reason="needs a Qdrant server: set QA_QDRANT_URL (and QA_QDRANT_API_KEY); none can be installed "
                           "on the CI machine, whose embedded counterpart is the test above")
def test_two_app_engines_over_one_qdrant_server(seed_engine, tmp_path):  # noqa: F811
    url, key = os.environ["QA_QDRANT_URL"], os.environ.get("QA_QDRANT_API_KEY")
    collection = f"article_qa_test_{uuid.uuid4().hex[:8]}"
    stores = [QdrantStore.connect(url=url, api_key=key, collection=collection) for _ in range(2)]
    try:
        copy_index(seed_engine.index, stores[0])
        settings = replace(seed_engine.settings, store="qdrant", qdrant_url=url, qdrant_api_key=key,
                           qdrant_collection=collection, articles=(str(tmp_path / "articles"),))
        first, second = (Engine(s.latest(None), seed_engine.embedder, settings, store=s) for s in stores)
        entry = first.add_article(STORY, log=lambda _m: None)
        top = second.ask("Who sponsored the bike lane measure?").passages[0]
        assert top.citation.article == entry["article"]
        assert second.article_text(second.index.articles[entry["article"]])[top.citation.start : top.citation.end] == top.text
        # the article panel of a server whose disk never held the file shows the text Qdrant keeps
        (tmp_path / "articles" / f"{entry['article']}.txt").unlink()
        from qa.webchat import ChatHandlers

        article, problem = ChatHandlers(second, log=lambda _m: None)._article(entry["article"])
        assert problem is None and "Dana Ortiz sponsored the measure" in article.raw

        second.remove_article(entry["article"], log=lambda _m: None)
        assert entry["article"] not in {a["article"] for a in first.list_articles()}
    finally:
        for name in (f"{collection}_passages", f"{collection}_articles"):
            stores[0].client.delete_collection(name)
        for s in stores:
            s.close()


def test_every_seed_conversation_gets_the_same_replies_from_both_stores(seed_engine, qdrant_engine):  # noqa: F811
    """The seed article's conversation gold set, each turn asked with the service's own earlier replies as history
    (as the chat does): every reply the same on both stores, follow-ups included."""
    from qa.conversation import reply_text
    from qa.evaluation import load_conversations
    from qa.validation import check_history

    conversations = load_conversations(ROOT / "eval" / "conversations.jsonl")
    assert len(conversations) >= 15
    for c in conversations:
        turns: list = []
        for t in c.turns:
            files = seed_engine.ask(t.question, history=check_history(turns))
            assert _key(qdrant_engine.ask(t.question, history=check_history(turns))) == _key(files), (c.id, t.question)
            turns += [{"role": "user", "content": t.question}, {"role": "assistant", "content": reply_text(files.to_json())}]


def test_an_explicit_corpus_that_is_not_the_archive_in_qdrant_is_not_answered_from_it(seed_engine, tmp_path):  # noqa: F811
    from helpers import seed_article_path

    from qa.articles import read_article

    store = QdrantStore.connect(path=tmp_path / "qdrant")
    copy_index(seed_engine.index, store)
    store.close()
    other = read_article(seed_article_path(), "another-id", 1_000_000)
    settings = replace(seed_engine.settings, store="qdrant", qdrant_path=str(tmp_path / "qdrant"), rebuild="never")
    with pytest.raises(StaleIndexError, match="does not hold these articles"):
        Engine.open(settings, articles=[other], embedder=seed_engine.embedder, log=lambda _m: None)


def test_a_fresh_open_after_a_remove_from_a_shared_write_answers_as_the_files_store(seed_engine, tmp_path):  # noqa: F811
    """Two articles copied into Qdrant in one write, one of them removed, then the archive opened by a process that
    never saw it whole: the write's numbering now has a gap, and every reply still equals the files store's."""
    from helpers import seed_article_path

    from qa import resolve_settings

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "seed.txt").write_bytes(seed_article_path().read_bytes())
    (articles / "council.txt").write_text(STORY, encoding="utf-8")
    files = Engine.open(resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(articles)]),
                        embedder=seed_engine.embedder, log=lambda _m: None)
    first = _qdrant_engine(files, tmp_path / "qdrant", articles)
    assert len(first.index.segments) == 1 and len(first.index.articles) == 2  # one write holds both
    try:
        assert first.index.articles.where("council") is not None and first.index.article_rows["council"][0] == 0
        first.remove_article("council", log=lambda _m: None)  # the write's first passages
    finally:
        first.store.close()
    files.remove_article("council", log=lambda _m: None, merge="none")
    reopened = Engine.open(replace(first.settings, articles=None), embedder=seed_engine.embedder, log=lambda _m: None)
    try:
        for q in _questions("seed.jsonl")[:12]:
            assert _key(reopened.ask(q)) == _key(files.ask(q)), q
    finally:
        reopened.store.close()
