"""The archive as segments: an add writes one small segment and rewrites nothing, a remove is a tombstone, opening
reads no unchanged article, merges (by policy, in the background, by `qa build`) keep every answer, the codec and
the postings keep what they replace, and readers never see half a generation.

The deterministic fake embedder (tests/helpers.py) keeps these at milliseconds."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

import qa.engine
import qa.store
from helpers import SMALL_CORPUS, FakeEmbedder, qa_clean_env, write_articles  # noqa: F401 - fixture
from qa import Engine, IndexCorruptError, StaleIndexError, resolve_settings
from qa import quantize
from qa.lexical import LexicalIndex, Postings, tokenize
from qa.segments import NewArticle, SegmentBuilder, ChunkVectors
from qa.store import MANIFEST, FilesStore, load_index, merge_plan, read_manifest
from qa.types import ArticleInfo, Chunk, Span

pytestmark = pytest.mark.usefixtures("qa_clean_env")
MODEL = "fake-bow-v1"
STORIES = [f"The {town} council voted to repair the {thing} on {day}.\n\nWork on the {thing} starts in {month}.\n"
           for town, thing, day, month in [("Alder", "pier", "Monday", "May"), ("Birch", "library", "Tuesday", "June"),
                                           ("Cedar", "bridge", "Friday", "July"), ("Dunmore", "station", "Sunday", "April"),
                                           ("Elm", "school", "Monday", "March"), ("Fenwick", "clock tower", "Tuesday", "May"),
                                           ("Garth", "harbour wall", "Friday", "June"), ("Holm", "market hall", "Monday", "July"),
                                           ("Ivy", "swimming pool", "Sunday", "August"),
                                           ("Juniper", "town hall", "Friday", "May"),
                                           ("Kestrel", "fire station", "Tuesday", "March")]]


def quiet(_m: str) -> None:
    pass


def settings_for(tmp_path: Path, **extra):
    return resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(tmp_path / "articles")], model=MODEL, **extra)


@pytest.fixture
def engine(tmp_path) -> Engine:
    write_articles(tmp_path / "articles", SMALL_CORPUS)
    return Engine.open(settings_for(tmp_path), embedder=FakeEmbedder(), log=quiet)


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("seg-*/*")}


# --- adds, removes, opening --------------------------------------------------------------------------------


def test_a_trusted_open_as_qa_add_and_remove_do_does_not_list_the_articles_folder(engine, tmp_path, monkeypatch):
    import qa.engine as engine_module

    (tmp_path / "articles" / "by-hand.txt").write_text(STORIES[1], encoding="utf-8")  # put there by hand, not indexed
    listed = []
    real = engine_module.find_article_files
    monkeypatch.setattr(engine_module, "find_article_files", lambda paths: listed.append(paths) or real(paths))
    trusted = Engine.open(settings_for(tmp_path), embedder=FakeEmbedder(), log=quiet, trust_index=True)
    assert not listed and "by-hand" not in trusted.index.articles  # opened as committed: the folder is not listed
    added = trusted.add_article(STORIES[0], title="Pier repairs", log=quiet, merge="none")["article"]
    assert not listed
    # without trust_index, the full check as before: the hand-made file is found
    other = Engine.open(settings_for(tmp_path), embedder=FakeEmbedder(), log=quiet)
    assert listed and "by-hand" in other.index.articles and added in other.index.articles


def test_an_add_writes_one_small_segment_and_rewrites_nothing(engine, tmp_path):
    folder = tmp_path / "index"
    before = files_of(folder)
    entry = engine.add_article(STORIES[0], title="Pier repairs", log=quiet, merge="none")
    m = read_manifest(folder)
    assert len(m["segments"]) == 2 and m["counts"]["articles"] == 5
    after = files_of(folder)
    assert {k: v for k, v in after.items() if k in before} == before  # the first segment is untouched
    new = json.loads((folder / m["segments"][1]["name"] / "segment.json").read_text())
    assert [a["id"] for a in new["articles"]] == [entry["article"]] and new["passages"] == 2
    answer = engine.ask("When does work on the pier start?")
    assert answer.passages[0].citation.article == entry["article"]


def test_opening_reads_no_article_whose_file_is_unchanged(engine, tmp_path, monkeypatch):
    read: list[str] = []
    real = qa.engine.read_article
    monkeypatch.setattr(qa.engine, "read_article", lambda path, *a, **k: read.append(Path(path).name) or real(path, *a, **k))
    fresh = FakeEmbedder()
    Engine.open(settings_for(tmp_path), embedder=fresh, log=quiet)
    assert read == [] and fresh.encoded_count == 0
    (tmp_path / "articles" / "bakery.txt").write_text(SMALL_CORPUS["bakery.txt"] + "\nIt also sells rye bread.\n")
    Engine.open(settings_for(tmp_path), embedder=fresh, log=quiet)
    assert read == ["bakery.txt"] and fresh.encoded_count == 4  # only the changed article, read once and embedded


def test_a_remove_is_a_tombstone_and_bm25_is_that_of_the_rest(engine, tmp_path):
    folder = tmp_path / "index"
    before = files_of(folder)
    engine.remove_article("orchard", log=quiet)
    m = read_manifest(folder)
    assert files_of(folder) == before  # nothing written but the manifest
    assert m["segments"][0]["deleted"] == ["orchard"] and m["counts"] == {"articles": 3, "passages": 10, "sentences": 10,
                                                                          "segments": 1}
    index = engine.index
    assert "orchard" not in index.articles and "frost" not in index.lexical.vocabulary
    assert len(index.chunks) == 10 and all(c.article_id != "orchard" for c in index.chunks)
    # the removed passages are out of the statistics too: BM25 equals that of an index built without them
    rest = tmp_path / "rest"
    write_articles(rest / "articles", {k: v for k, v in SMALL_CORPUS.items() if k != "orchard.txt"})
    built = Engine.open(settings_for(rest), embedder=FakeEmbedder(), log=quiet).index
    assert built.chunks == index.chunks
    for question in ("apple harvest frost", "bridge repairs cost", "library night shifts volunteers"):
        assert np.allclose(built.lexical.scores(tokenize(question)), index.lexical.scores(tokenize(question)))
    assert all(p.citation.article != "orchard" for p in engine.ask("What destroyed the apple blossoms?").passages)


def test_an_article_changed_on_disk_is_replaced_not_duplicated(engine, tmp_path):
    (tmp_path / "articles" / "bridge.txt").write_text(SMALL_CORPUS["bridge.txt"].replace("$4 million", "$9 million"))
    again = Engine.open(settings_for(tmp_path), embedder=FakeEmbedder(), log=quiet)
    m = read_manifest(tmp_path / "index")
    assert [s["deleted"] for s in m["segments"]] == [["bridge"], []]
    assert sorted(again.index.articles) == ["bakery", "bridge", "library", "orchard"] and len(again.index.chunks) == 12
    assert again.ask("How much will the bridge repairs cost?").text == \
        "The repairs will cost $9 million, paid by the state transport fund."


def test_an_older_format_is_refused_with_the_fix_or_rebuilt(tmp_path):
    write_articles(tmp_path / "articles", SMALL_CORPUS)
    folder = tmp_path / "index"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"format_version": 3, "parts": {"dense": "dense-0.faiss"}, "articles": []}))
    (folder / "dense-0.faiss").write_bytes(b"old")
    with pytest.raises(StaleIndexError) as err:
        Engine.open(settings_for(tmp_path, rebuild="never"), embedder=FakeEmbedder(), log=quiet)
    assert "older version (3; this version reads 4)" in str(err.value) and "qa build" in str(err.value)
    engine = Engine.open(settings_for(tmp_path), embedder=FakeEmbedder(), log=quiet)
    assert len(engine.index.chunks) == 12 and not (folder / "dense-0.faiss").exists()


# --- merges ---------------------------------------------------------------------------------------------------


def test_too_many_segments_are_merged_and_answers_stay(engine, tmp_path):
    ids = [engine.add_article(s, title=f"Story {i}", log=quiet, merge="none")["article"] for i, s in enumerate(STORIES[:10])]
    engine.remove_article(ids[3], log=quiet, merge="none")  # its segment had nothing else: it goes
    engine.remove_article("bakery", log=quiet, merge="none")  # a tombstone in the first segment
    index = engine.index
    assert len(index.segments) == 10 and merge_plan(index)
    question = "When does work on the clock tower start?"
    before = engine.ask(question).to_json()
    merged = engine.merge_segments()
    assert len(merged.segments) < 10 and not merge_plan(merged)
    assert sorted(merged.articles) == sorted(index.articles) and merged.chunks == index.chunks
    assert engine.ask(question).to_json() == before
    assert read_manifest(tmp_path / "index")["counts"]["segments"] == len(merged.segments)
    assert len(list((tmp_path / "index").glob("seg-*"))) == len(merged.segments)  # the merged ones are gone


def test_qa_build_merges_everything_into_one_segment_without_removed_rows(engine, tmp_path):
    for i, s in enumerate(STORIES[:3]):
        engine.add_article(s, title=f"Story {i}", log=quiet, merge="none")
    engine.remove_article("bakery", log=quiet, merge="none")
    fresh = FakeEmbedder()
    built = Engine.open(settings_for(tmp_path), embedder=fresh, log=quiet, compact=True).index
    m = read_manifest(tmp_path / "index")
    assert fresh.encoded_count == 0 and [s["deleted"] for s in m["segments"]] == [[]]
    assert len(built.chunks) == 9 + 6 and built.segments[0].passages == 15
    assert built.chunks == engine.index.chunks


def test_a_merge_keeps_a_removal_made_while_it_ran(engine, tmp_path):
    for i, s in enumerate(STORIES[:10]):
        engine.add_article(s, title=f"Story {i}", log=quiet, merge="none")
    planned = engine.index
    plan = merge_plan(planned)
    victim = "bakery"  # in the first segment, which the merge takes
    assert planned.segments[0].name in plan
    other = Engine.open(settings_for(tmp_path), embedder=FakeEmbedder(), log=quiet)
    other.remove_article(victim, log=quiet, merge="none")  # committed after the merge was planned
    merged = engine.store.merge(planned, plan)
    assert merged is not None and victim not in merged.articles
    entry = next(s for s in read_manifest(tmp_path / "index")["segments"] if s["name"] not in {x.name for x in planned.segments})
    assert entry["deleted"] == [victim]
    assert len(merged.articles) == 13


def test_a_background_merge_swaps_the_index_in_service(engine):
    for i, s in enumerate(STORIES[:10]):
        engine.add_article(s, title=f"Story {i}", log=quiet, merge="background")
    deadline = time.monotonic() + 30
    while (engine._merging.locked() or merge_plan(engine.refresh().index)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not merge_plan(engine.index) and len(engine.index.segments) < 11 and len(engine.index.articles) == 14


def _churn(index_dir: str, articles: str, stop) -> None:
    import qa.store as store

    store.MERGE_FACTOR = 3  # merges every few adds
    settings = resolve_settings(index_dir=index_dir, articles=[articles], model=MODEL)
    engine = Engine.open(settings, embedder=FakeEmbedder(), log=quiet)
    i = 0
    while not stop.is_set():
        entry = engine.add_article(STORIES[i % len(STORIES)], title=f"Churn {i}", log=quiet, merge="small")
        engine.remove_article(entry["article"], log=quiet, merge="small")
        i += 1


def test_readers_see_whole_generations_while_adds_removes_and_merges_run(engine, tmp_path):
    fork = multiprocessing.get_context("fork")
    stop = fork.Event()
    child = fork.Process(target=_churn, args=(str(tmp_path / "index"), str(tmp_path / "articles"), stop))
    child.start()
    try:
        loads, seen = 0, set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            index = load_index(tmp_path / "index")
            n = len(index.chunks)
            assert n in (12, 14) and sum(len(index.article_rows[a]) for a in index.articles) == n
            assert [c.article_id for c in index.chunks][:12] == [c.article_id for c in engine.index.chunks]
            seen.add(len(index.segments))
            loads += 1
    finally:
        stop.set()
        child.join(30)
    assert loads > 10 and child.exitcode == 0


# --- the parts: codec, postings, first stage, passages -----------------------------------------------------------


def test_the_token_codec_keeps_dot_products_and_rows_stand_alone():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((8, 384)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rows = quantize.encode(x)
    assert rows.shape == (500, quantize.row_bytes(384)) == (500, 242) and rows.dtype == np.uint8
    r = quantize.rotation(384)
    assert np.allclose(r @ r.T, np.eye(384), atol=1e-5)
    error = quantize.rotate(q) @ quantize.decode(rows, 384).T - q @ x.T
    assert np.abs(error).max() < 0.015 and np.abs(error).mean() < 0.0025
    assert np.allclose(np.linalg.norm(quantize.decode(rows, 384), axis=1), 1, atol=1e-5)
    sentences = quantize.encode8(x)
    assert sentences.shape == (500, 386) and np.abs(quantize.decode8(sentences, 384) - x).max() < 0.002
    assert np.array_equal(quantize.decode(rows[100:120], 384), quantize.decode(rows, 384)[100:120])  # a row needs nothing else


TEXTS = ["Engineers found cracks in three steel girders during an inspection in February.",
         "The Civilian Office of Police Accountability (COPA) said Andrea Kersten leads it.",
         "Kersten said COPA would report in July; the COPA report is due.",
         "the of and",  # a passage without a BM25 token
         "Steel prices rose in February, engineers said."]


def test_bm25_over_postings_equals_bm25s():
    bm25s = pytest.importorskip("bm25s")
    from qa.lexical import stem_tokens, words

    reference = bm25s.BM25()
    reference.index([stem_tokens(words(t)) or [""] for t in TEXTS], show_progress=False)
    lexical = LexicalIndex.build(TEXTS)
    for question in ("steel girders cracks", "Who leads COPA?", "February engineers", "Kersten Kersten report"):
        tokens = tokenize(question)
        assert np.allclose(lexical.scores(tokens), np.asarray(reference.get_scores(tokens)), atol=1e-6), question
    assert lexical.acronym("copa") == "COPA" and lexical.acronym("steel") is None
    assert lexical.introducing("Kersten").tolist() == [1]  # "Andrea Kersten": a long form; row 2 is the bare name
    assert lexical.rows_with_words(["steel", "february"]).tolist() == [0, 4]


def test_merged_postings_equal_those_built_from_the_kept_passages():
    a, b = Postings.build(TEXTS[:3]), Postings.build(TEXTS[3:])
    merged = Postings.merge([(a, np.array([0, 2])), (b, np.array([0, 1]))])
    built = Postings.build([TEXTS[0], TEXTS[2], TEXTS[3], TEXTS[4]])
    for name in Postings.FILES:
        assert np.array_equal(getattr(merged, name), getattr(built, name)), name


def _segment_of(tmp_path: Path, vectors: np.ndarray, monkeypatch) -> FilesStore:
    """One segment of two articles ("first", "second": each half of the rows), of one-sentence passages with these
    passage vectors."""
    import qa.segments

    monkeypatch.setattr(qa.segments, "GRAPH_MIN_PASSAGES", 1000)
    d = vectors.shape[1]
    half = len(vectors) // 2
    articles = []
    for name, part in (("first", vectors[:half]), ("second", vectors[half:])):
        text = "".join(f"Passage {i}.\n\n" for i in range(len(part)))
        chunks, at = [], 0
        for i in range(len(part)):
            t = f"Passage {i}."
            chunks.append(Chunk(name, i + 1, at, at + len(t), t, (Span(at, at + len(t)),)))
            at += len(t) + 2
        vecs = [ChunkVectors(v, v[None, :], v[None, :].astype(np.float16), np.zeros(1, np.int16)) for v in part]
        (tmp_path / f"{name}.txt").write_text(text)
        articles.append(NewArticle(ArticleInfo(name, str(tmp_path / f"{name}.txt"), name.title(), None, name), None,
                                   chunks, vecs))
    store = FilesStore(tmp_path / "index")
    with store.writing():
        store.write(None, add=articles, header={"model": {"name": "x", "dimension": d}, "chunking": {}, "sources": []})
    return store


def test_the_graph_finds_what_exact_search_finds(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 64))
    x = (centres[rng.integers(0, 40, 4000)] + 0.35 * rng.standard_normal((4000, 64))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = _segment_of(tmp_path, x, monkeypatch)
    index = store.open()
    seg = index.segments[0]
    assert seg.graph is not None and "dense" not in seg.meta["arrays"]  # the vectors are kept once, in the graph file
    assert np.array_equal(np.asarray(seg.dense), x)
    found = 0
    queries = x[rng.integers(0, 4000, 50)] + 0.1 * rng.standard_normal((50, 64)).astype(np.float32)
    for q in queries:
        exact = np.argsort(-(x @ q))[:10]
        found += len(set(exact) & set(index.dense_search(q, 10)[0].tolist()))
    assert found / 500 >= 0.98
    scoped = np.arange(100, 200)
    assert set(index.dense_search(queries[0], 5, scoped)[0]) <= set(scoped.tolist())  # the scope is exact
    # a removed article's rows are never found (filtered while the graph is searched), the other's still are
    with store.writing():
        after = store.write(index, remove=["first"])
    assert after.segments[0] is seg and after.segments[0].graph is not None
    for q in queries[:10]:
        rows, _ = after.dense_search(q, 10)
        exact = 2000 + np.argsort(-(x[2000:] @ q))[:10]
        assert len(rows) == 10 and all(after.chunks[int(r)].article_id == "second" for r in rows)
        assert len({after.chunks[int(r)].paragraph + 1999 for r in rows} & set(exact.tolist())) >= 9
    # a merge drops the removed rows and makes the graph again from the mapped vectors (nothing embedded)
    merged = store.merge(after, [seg.name])
    assert merged.segments[0].graph is not None and merged.segments[0].passages == 2000
    assert np.array_equal(np.asarray(merged.segments[0].dense), x[2000:])
    assert [int(r) for r in merged.dense_search(queries[0], 5)[0]] == [int(r) for r in after.dense_search(queries[0], 5)[0]]
    # the graph file is checked as the others are: a damaged one is named and refused
    graph_file = tmp_path / "index" / merged.segments[0].name / "segment.faiss"
    del index, after, seg, merged
    gc.collect()
    with graph_file.open("r+b") as f:
        f.truncate(graph_file.stat().st_size - 4)
    with pytest.raises(IndexCorruptError, match="segment.faiss"):
        store.open()


def test_passages_are_made_on_demand(engine):
    chunks = engine.index.chunks
    assert len(chunks) == 12 and chunks[-1] == chunks[11] and list(chunks)[3] == chunks[3]
    assert chunks[0:2] == [chunks[0], chunks[1]]
    with pytest.raises(IndexError):
        chunks[12]
    assert isinstance(engine.index.segments[0].dense, np.memmap) or isinstance(engine.index.segments[0].dense.base, np.memmap)


def _format3(folder: Path, corpus: Path, fake: FakeEmbedder, chunking: dict) -> None:
    """An index as the previous version wrote it (format 3), made by hand: what `read_format3` migrates."""
    import faiss

    from qa.articles import read_corpus
    from qa.chunking import chunk_article
    from qa.store import embed_chunks

    folder.mkdir(parents=True)
    articles = read_corpus([corpus])
    chunks = [c for a in articles for c in chunk_article(a, max_tokens=chunking["max_tokens"], count_tokens=fake.count_tokens)]
    vectors = list(embed_chunks(chunks, fake))
    lines = [json.dumps({"article": c.article_id, "paragraph": c.paragraph, "start": c.start, "end": c.end,
                         "sentences": [[s.start, s.end] for s in c.sentences], "tokens": len(v.tokens), "text": c.text})
             for c, v in zip(chunks, vectors)]
    (folder / "passages-0.jsonl").write_text("\n".join(lines) + "\n")
    dense = faiss.IndexFlatIP(fake.dimension)
    dense.add(np.stack([v.passage for v in vectors]).astype(np.float32))
    faiss.write_index(dense, str(folder / "dense-0.faiss"))
    np.save(folder / "sentences-0.npy", np.concatenate([v.sentences for v in vectors]).astype(np.float32))
    np.save(folder / "tokens-0.npy", np.concatenate([v.tokens for v in vectors]).astype(np.float16))
    np.save(folder / "tokensentences-0.npy", np.concatenate([v.token_sentence for v in vectors]).astype(np.int16))
    parts = {"passages": "passages-0.jsonl", "dense": "dense-0.faiss", "sentences": "sentences-0.npy",
             "tokens": "tokens-0.npy", "token_sentences": "tokensentences-0.npy"}
    files = {name: {"sha256": __import__("hashlib").sha256((folder / name).read_bytes()).hexdigest(),
                    "bytes": (folder / name).stat().st_size} for name in parts.values()}
    manifest = {"format_version": 3, "model": {"name": MODEL, "dimension": fake.dimension}, "chunking": chunking,
                "embedded_by": {"backend": "fake", "precision": "float32"}, "sources": ["articles"], "parts": parts,
                "files": files, "articles": [{"id": a.id, "path": f"articles/{Path(a.path).name}", "title": a.title,
                                              "date": a.date, "sha256": a.sha256} for a in articles]}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_an_index_of_the_previous_format_is_migrated_without_embedding(tmp_path):
    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    fake = FakeEmbedder()
    chunking = Engine.chunking_settings(settings_for(tmp_path), fake)
    _format3(tmp_path / "index", corpus, fake, chunking)
    (corpus / "orchard.txt").write_text(SMALL_CORPUS["orchard.txt"] + "\nPrices may rise.\n")  # changed since
    fresh = FakeEmbedder()
    said: list[str] = []
    engine = Engine.open(settings_for(tmp_path), embedder=fresh, log=said.append)
    assert fresh.encoded == [c.text for c in engine.index.chunks if c.article_id == "orchard"]  # only the changed one
    assert any("from the index of the older format" in m for m in said)
    assert sorted(os.listdir(tmp_path / "index")) == sorted([*(s["name"] for s in read_manifest(tmp_path / "index")["segments"]),
                                                              MANIFEST, ".read.lock", ".write.lock"])
    assert engine.ask("How much will the bridge repairs cost?").text == \
        "The repairs will cost $4 million, paid by the state transport fund."


def _town(i: int, chair: str) -> str:
    return (f"title: Council news {i}\n\nThe council of Town{i} met on Monday, said chair Ana {chair}.\n\n"
            f"{chair} said the budget of Town{i} would rise. She also said roads would be repaired.\n\n"
            f"Residents of Town{i} asked about the library and the bus depot.\n")


def _passages_made(folder: Path, n: int, chair, monkeypatch) -> int:
    import qa.segments
    from helpers import converse

    write_articles(folder / "articles", {f"town{i:03d}.txt": _town(i, chair(i)) for i in range(n)})
    engine = Engine.open(settings_for(folder), embedder=FakeEmbedder(), log=quiet)
    made: list[int] = []
    real = qa.segments.Segment.chunk
    monkeypatch.setattr(qa.segments.Segment, "chunk", lambda self, local: made.append(local) or real(self, local))
    converse(engine, "Who is Ana Ruiz3?", "What did she say about roads?", "What did residents of Town5 ask about?")
    monkeypatch.undo()
    return len(made)


def test_a_question_reads_as_many_passages_at_40_or_400_articles(tmp_path, monkeypatch):
    """Every passage that a question, a who-is question and a follow-up (a pronoun to resolve) make into a Chunk is
    counted: the introductions, the earlier answer's passage and the gender votes come from postings, so the count
    does not grow with the archive; and a name in very many passages costs a bounded number of them."""
    from qa.store import MAX_INTRODUCTIONS

    small = _passages_made(tmp_path / "small", 40, lambda i: f"Ruiz{i}", monkeypatch)
    large = _passages_made(tmp_path / "large", 400, lambda i: f"Ruiz{i}", monkeypatch)
    assert 0 < large <= small + 2, (small, large)
    common = _passages_made(tmp_path / "common", 400, lambda i: "Ruiz3", monkeypatch)  # one name in every article
    assert common <= 2 * MAX_INTRODUCTIONS + 40, common


def test_article_paths_resolve_as_path_resolve_does_with_links(tmp_path):
    """A segment stores each article's path as `_rel` makes it (resolved, relative to the index's parent); opening
    resolves only its folder, once a folder: the result is Path.resolve's, through a linked folder and a linked file
    too (whose target `_rel` stored)."""
    from qa.segments import _abs, _rel

    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "sub" / "a.txt").write_text("a")
    (tmp_path / "real" / "b.txt").write_text("b")
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "c.txt").symlink_to(tmp_path / "real" / "sub" / "a.txt")
    folders: dict[str, str] = {}
    for path in ("linked/sub/a.txt", "linked/b.txt", "real/c.txt", "linked/./b.txt", "real/missing.txt", str(tmp_path / "x")):
        stored = _rel(str(tmp_path / path), tmp_path)
        assert _abs(stored, tmp_path, folders) == _abs(stored, tmp_path) == str((tmp_path / path).resolve()), path
    # a path stored by an older version, unresolved, through a linked folder
    assert _abs("linked/b.txt", tmp_path, folders) == str((tmp_path / "real" / "b.txt").resolve())


def test_a_graph_file_faiss_cannot_read_is_refused_with_the_fix(tmp_path):
    from qa.segments import Graph

    bad = tmp_path / "segment.faiss"
    bad.write_bytes(b"IHNf" + bytes(100))
    with pytest.raises(IndexCorruptError, match=r"segment.faiss cannot be read as a graph .*`qa build` rebuilds it"):
        Graph(bad, 10, 384)
