"""The index on disk: round trips, manifest and segments, incremental refresh, staleness, corruption, atomic
writes, adds as new segments, removes as tombstones, merges.

All with the deterministic fake embedder (tests/helpers.py), so every test takes milliseconds and the
embedder's counters tell exactly which passages were embedded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import qa.store
from helpers import SMALL_CORPUS, FakeEmbedder, write_articles, qa_clean_env  # noqa: F401 - fixture
from qa import Engine, IndexCorruptError, IndexMissingError, StaleIndexError, resolve_settings
from qa.chunking import SPLITTER_VERSION
from qa.embedding import content_mask
from qa.lexical import LEXICAL_VERSION, tokenize
from qa import quantize
from qa.store import FORMAT_VERSION, MANIFEST, load_index, read_manifest

pytestmark = pytest.mark.usefixtures("qa_clean_env")

MODEL = "fake-bow-v1"


def quiet(_message: str) -> None:
    pass


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_articles(tmp_path / "articles", SMALL_CORPUS)


def settings_for(tmp_path: Path, articles, **extra):
    return resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(a) for a in articles], model=MODEL, **extra)


def open_engine(tmp_path, articles, embedder=None, log=quiet, **extra) -> tuple[Engine, FakeEmbedder]:
    embedder = embedder or FakeEmbedder()
    return Engine.open(settings_for(tmp_path, articles, **extra), embedder=embedder, log=log), embedder


# --- build, save, load --------------------------------------------------------------------------------


def test_build_save_load_round_trip(tmp_path, corpus):
    engine, fake = open_engine(tmp_path, [corpus])
    built = engine.index
    # 4 + 3 + 3 + 2 story paragraphs, each a single sentence and a single passage
    assert len(built.chunks) == 12
    assert fake.encoded_count == 12
    loaded = load_index(tmp_path / "index", verify=True)
    assert loaded.chunks == built.chunks
    assert list(loaded.chunks) == [loaded.chunks[i] for i in range(12)]
    assert loaded.articles == built.articles
    assert loaded.model == MODEL and loaded.dimension == fake.dimension
    assert loaded.chunking == built.chunking
    rows = np.arange(12)
    assert np.array_equal(np.asarray(loaded.passage_vectors), np.asarray(built.passage_vectors))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.sentence_vectors_of(rows), built.sentence_vectors_of(rows)))
    assert dict(loaded.lexical.vocabulary) == dict(built.lexical.vocabulary)
    q = tokenize("steel girders cracks inspection")
    assert np.allclose(loaded.lexical.scores(q), built.lexical.scores(q))
    for row, chunk in enumerate(loaded.chunks):
        # the passage vectors are the embedder's own: nothing is recomputed or reordered on the way
        assert np.allclose(loaded.passage_vectors[row], fake.vector(chunk.text))
        # the token vectors come back (in the codec's rotated space) within its precision: one per content word
        tokens, owners = loaded.tokens_of([row])[0]
        enc = FakeEmbedder().encode([chunk.text])
        expected = quantize.rotate(enc.tokens[0][content_mask(chunk.text, enc.offsets[0])])
        assert tokens.shape == expected.shape and (owners == 0).all()
        assert np.min(np.sum(tokens * expected, axis=1) / np.linalg.norm(tokens, axis=1)) > 0.98
    # and the first stage searches the loaded index as the built one
    query = fake.vector("cracks in steel girders")
    assert loaded.dense_search(query, 3)[0].tolist() == built.dense_search(query, 3)[0].tolist()


def test_building_again_gives_an_equal_index_and_removes_the_old_segment(tmp_path, corpus):
    engine, _ = open_engine(tmp_path, [corpus])
    folder = tmp_path / "index"
    first = read_manifest(folder)
    again = Engine.open(settings_for(tmp_path, [corpus]), embedder=FakeEmbedder(), log=quiet, force=True)
    second = read_manifest(folder)
    names = {seg["name"] for seg in second["segments"]}
    assert set(os.listdir(folder)) == names | {MANIFEST, ".write.lock", ".read.lock"}
    assert first["segments"] != second["segments"]  # a new segment (the same content: the name gets a suffix), the old gone
    assert [seg["name"].split("-")[1] for seg in first["segments"]] == [seg["name"].split("-")[1] for seg in second["segments"]]
    assert again.index.chunks == engine.index.chunks
    assert np.array_equal(np.asarray(again.index.passage_vectors), np.asarray(engine.index.passage_vectors))


def test_manifest_and_segment_contents(tmp_path, corpus):
    engine, fake = open_engine(tmp_path, [corpus])
    folder = tmp_path / "index"
    m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert m["format_version"] == FORMAT_VERSION
    assert m["model"] == {"name": MODEL, "dimension": fake.dimension}
    assert m["chunking"] == {"max_tokens": fake.max_tokens, "max_sentences": 0, "splitter": SPLITTER_VERSION,
                             "lexical": LEXICAL_VERSION}
    assert m["counts"] == {"articles": 4, "passages": 12, "sentences": 12, "segments": 1}
    assert m["codec"] == quantize.CODEC
    assert m["sources"] == ["articles"]
    assert [seg["deleted"] for seg in m["segments"]] == [[]]
    for pkg in ("python", "numpy", "faiss-cpu"):
        assert m["versions"][pkg]
    # every file of the index is listed with its size, mtime and sha256, and every listed file is there
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST, ".read.lock", ".write.lock"}
    assert set(m["files"]) == on_disk
    for name, meta in m["files"].items():
        data = (folder / name).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                        "mtime_ns": (folder / name).stat().st_mtime_ns}
    # the articles live in their segment's table: identity, file stamp, rows
    segment = json.loads((folder / m["segments"][0]["name"] / "segment.json").read_text(encoding="utf-8"))
    by_id = {a["id"]: a for a in segment["articles"]}
    assert list(by_id) == ["bakery", "bridge", "library", "orchard"]  # files sorted by name
    for name in SMALL_CORPUS:
        entry = by_id[Path(name).stem]
        assert entry["sha256"] == hashlib.sha256((corpus / name).read_bytes()).hexdigest()
        assert entry["path"] == f"articles/{name}"  # relative to the index folder's parent
        assert entry["stamp"] == [(corpus / name).stat().st_size, (corpus / name).stat().st_mtime_ns]
    assert by_id["bridge"]["date"] == "2024-03-02" and by_id["library"]["date"] is None
    assert by_id["library"]["title"] == "Library extends opening hours"
    assert by_id["orchard"]["title"] == "Frost damages apple orchard"
    assert [by_id[a]["rows"] for a in by_id] == [[0, 3], [3, 4], [7, 3], [10, 2]]


def test_the_passage_table_and_texts_are_plain_arrays(tmp_path, corpus):
    """segment.bin holds plain little-endian arrays where segment.json says: read with nothing but numpy."""
    open_engine(tmp_path, [corpus])
    seg = tmp_path / "index" / read_manifest(tmp_path / "index")["segments"][0]["name"]
    meta = json.loads((seg / "segment.json").read_text(encoding="utf-8"))
    data = (seg / "segment.bin").read_bytes()

    def array(name):
        spec = meta["arrays"][name]
        return np.frombuffer(data, dtype=spec["dtype"], count=int(np.prod(spec["shape"])),
                             offset=spec["offset"]).reshape(spec["shape"])

    rows, text = array("rows"), array("text").tobytes()
    assert rows.shape == (13, 7) and meta["passages"] == 12
    raw = (corpus / "bridge.txt").read_text(encoding="utf-8")
    bridge = [r for r in rows[:-1] if r[0] == 1]  # article 1 of the table: bridge
    assert [int(r[1]) for r in bridge] == [1, 2, 3, 4]
    for r in bridge:
        i = next(k for k in range(12) if (rows[k] == r).all())
        passage = text[r[4] : rows[i + 1][4]].decode("utf-8")
        assert raw[r[2] : r[3]] == passage
    assert text[bridge[0][4] : rows[4][4]].decode() == "The Harlow river bridge will close for repairs next month."
    assert int(bridge[0][2]) == len("date 2024-03-02 ")


# --- opening and refreshing ---------------------------------------------------------------------------


def test_opening_a_fresh_index_embeds_nothing(tmp_path, corpus):
    open_engine(tmp_path, [corpus])
    fresh = FakeEmbedder()
    messages: list[str] = []
    engine, _ = open_engine(tmp_path, [corpus], embedder=fresh, log=messages.append)
    assert fresh.encoded_count == 0 and fresh.encode_calls == 0
    assert messages == []
    assert len(engine.index.chunks) == 12
    # without articles in the settings the index's own sources are used, still embedding nothing
    engine = Engine.open(resolve_settings(index_dir=str(tmp_path / "index"), model=MODEL), embedder=fresh, log=quiet)
    assert fresh.encoded_count == 0
    assert len(engine.index.chunks) == 12


def test_changing_one_article_reembeds_only_its_passages(tmp_path):
    folder = write_articles(tmp_path / "articles", {k: SMALL_CORPUS[k] for k in ("bridge.txt", "bakery.txt")})
    engine, _ = open_engine(tmp_path, [folder])
    before = engine.index
    bridge_rows = [i for i, c in enumerate(before.chunks) if c.article_id == "bridge"]
    changed = SMALL_CORPUS["bakery.txt"].replace("forty years old", "ninety years old")
    (folder / "bakery.txt").write_text(changed, encoding="utf-8")
    fake = FakeEmbedder()
    messages: list[str] = []
    engine, _ = open_engine(tmp_path, [folder], embedder=fake, log=messages.append)
    bakery = [c.text for c in engine.index.chunks if c.article_id == "bakery"]
    assert fake.encoded == bakery  # exactly the changed article's 3 passages, nothing else
    assert len(bakery) == 3
    assert "Owner Marta Quist said her starter culture is ninety years old." in bakery
    assert any("article changed: bakery" in m for m in messages)
    after = engine.index
    after_rows = [i for i, c in enumerate(after.chunks) if c.article_id == "bridge"]
    assert [after.chunks[i] for i in after_rows] == [before.chunks[i] for i in bridge_rows]
    assert np.array_equal(after.passage_vectors[after_rows], before.passage_vectors[bridge_rows])
    # the refreshed index is the one on disk
    assert load_index(tmp_path / "index").chunks == after.chunks


def test_added_article_is_detected_and_only_it_is_embedded(tmp_path):
    folder = write_articles(tmp_path / "articles", {"bridge.txt": SMALL_CORPUS["bridge.txt"]})
    open_engine(tmp_path, [folder])
    write_articles(folder, {"orchard.txt": SMALL_CORPUS["orchard.txt"]})
    fake = FakeEmbedder()
    messages: list[str] = []
    engine, _ = open_engine(tmp_path, [folder], embedder=fake, log=messages.append)
    assert any("article added: orchard" in m for m in messages)
    assert fake.encoded == [c.text for c in engine.index.chunks if c.article_id == "orchard"]
    assert fake.encoded_count == 2
    assert sorted(engine.index.articles) == ["bridge", "orchard"]


def test_removed_article_is_detected_and_nothing_is_embedded(tmp_path, corpus):
    open_engine(tmp_path, [corpus])
    (corpus / "orchard.txt").unlink()
    fake = FakeEmbedder()
    messages: list[str] = []
    engine, _ = open_engine(tmp_path, [corpus], embedder=fake, log=messages.append)
    assert any("article removed: orchard" in m for m in messages)
    assert fake.encoded_count == 0
    assert "orchard" not in engine.index.articles
    assert {c.article_id for c in engine.index.chunks} == {"bakery", "bridge", "library"}
    assert len(engine.index.chunks) == 10
    assert "orchard" not in engine.index.lexical.vocabulary


@pytest.mark.parametrize("change, expected", [
    ("edit", "article changed: bakery"),
    ("add", "article added: extra"),
    ("remove", "article removed: orchard"),
])
def test_rebuild_never_refuses_a_stale_index(tmp_path, corpus, change, expected):
    open_engine(tmp_path, [corpus])
    if change == "edit":
        (corpus / "bakery.txt").write_text(SMALL_CORPUS["bakery.txt"] + "\nA new paragraph.\n", encoding="utf-8")
    elif change == "add":
        (corpus / "extra.txt").write_text("An extra story.\n", encoding="utf-8")
    else:
        (corpus / "orchard.txt").unlink()
    fake = FakeEmbedder()
    with pytest.raises(StaleIndexError) as err:
        open_engine(tmp_path, [corpus], embedder=fake, rebuild="never")
    assert expected in str(err.value)
    assert "qa build" in str(err.value)
    assert fake.encoded_count == 0


def test_another_model_rebuilds_everything(tmp_path, corpus):
    open_engine(tmp_path, [corpus])
    fake = FakeEmbedder(name="other")
    messages: list[str] = []
    engine = Engine.open(resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="other-model"),
                         embedder=fake, log=messages.append)
    assert fake.encoded_count == 12  # no vector of another model is reused
    assert any(f"model '{MODEL}' -> 'other-model'" in m for m in messages)
    assert read_manifest(tmp_path / "index")["model"]["name"] == "other-model"
    assert engine.index.model == "other-model"


def test_another_model_with_rebuild_never_names_the_models(tmp_path, corpus):
    open_engine(tmp_path, [corpus])
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="other-model",
                                rebuild="never")
    with pytest.raises(StaleIndexError) as err:
        Engine.open(settings, embedder=FakeEmbedder(), log=quiet)
    assert "other-model" in str(err.value) and MODEL in str(err.value)


def test_other_chunking_settings_rebuild_everything(tmp_path, corpus):
    open_engine(tmp_path, [corpus])
    fake = FakeEmbedder()
    messages: list[str] = []
    open_engine(tmp_path, [corpus], embedder=fake, log=messages.append, max_sentences=1)
    assert fake.encoded_count == 12
    assert any("chunking settings" in m for m in messages)


def test_force_reembeds_everything(tmp_path, corpus):
    open_engine(tmp_path, [corpus])
    fake = FakeEmbedder()
    Engine.open(settings_for(tmp_path, [corpus]), embedder=fake, log=quiet, force=True)
    assert fake.encoded_count == 12


def test_missing_index_with_rebuild_never(tmp_path, corpus):
    with pytest.raises(IndexMissingError) as err:
        open_engine(tmp_path, [corpus], rebuild="never")
    assert str(tmp_path / "index") in str(err.value)
    assert "qa build" in str(err.value)
    assert not (tmp_path / "index").exists()


# --- corruption -----------------------------------------------------------------------------------------


def _index_file(folder: Path, part: str) -> Path:
    m = read_manifest(folder)
    names = sorted(n for n in m["files"] if n.endswith("/" + part))
    assert names, part
    return folder / names[0]


@pytest.mark.parametrize("part", ["segment.json", "segment.bin"])
@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_index_file_is_named(tmp_path, corpus, part, damage):
    open_engine(tmp_path, [corpus])
    target = _index_file(tmp_path / "index", part)
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    else:
        target.unlink()
    fake = FakeEmbedder()
    with pytest.raises(IndexCorruptError) as err:
        open_engine(tmp_path, [corpus], embedder=fake, rebuild="never")
    msg = str(err.value)
    assert target.name in msg
    assert "qa build" in msg
    assert ("missing" if damage == "delete" else "truncated or corrupt") in msg
    # what the message says works: a build (rebuild allowed) repairs it, saying why, and re-embeds everything
    said: list[str] = []
    engine, _ = open_engine(tmp_path, [corpus], embedder=fake, log=said.append)
    assert any(target.name in m and "Rebuilding it from the articles" in m for m in said), said
    assert fake.encoded_count == 12 and len(engine.index.chunks) == 12
    rel = target.relative_to(tmp_path / "index").as_posix()
    assert not target.exists() or damage == "delete" or rel not in read_manifest(tmp_path / "index")["files"]
    assert len(open_engine(tmp_path, [corpus], rebuild="never")[0].index.chunks) == 12


def test_every_listed_file_is_checked(tmp_path, corpus):
    """Whatever files the index is made of, truncating any one of them is caught and named."""
    open_engine(tmp_path, [corpus])
    folder = tmp_path / "index"
    names = sorted(read_manifest(folder)["files"])
    assert len(names) == 2
    pristine = {n: (folder / n).read_bytes() for n in names}
    for name in names:
        (folder / name).write_bytes(pristine[name][:-1])
        with pytest.raises(IndexCorruptError) as err:
            open_engine(tmp_path, [corpus], rebuild="never")
        assert Path(name).name in str(err.value) and "qa build" in str(err.value), name
        (folder / name).write_bytes(pristine[name])
    assert len(open_engine(tmp_path, [corpus])[0].index.chunks) == 12  # restored: loads again


@pytest.mark.parametrize("content", [
    "",  # emptied
    '{"format_version": 1, "model": {"na',  # truncated
    "[1, 2, 3]\n",  # not an object
    '{"format_version": 1}\n',  # keys missing
])
def test_corrupt_manifest_is_named(tmp_path, corpus, content):
    open_engine(tmp_path, [corpus])
    (tmp_path / "index" / MANIFEST).write_text(content, encoding="utf-8")
    with pytest.raises(IndexCorruptError) as err:
        open_engine(tmp_path, [corpus], rebuild="never")
    assert MANIFEST in str(err.value)
    assert "qa build" in str(err.value)
    # and `qa build` (rebuild allowed) repairs it
    engine, fake = open_engine(tmp_path, [corpus])
    assert fake.encoded_count == 12 and read_manifest(tmp_path / "index")["counts"]["passages"] == 12


@pytest.mark.parametrize("drop", ["segments", "sources", "counts", "files"])
@pytest.mark.parametrize("rebuild", ["auto", "never"])
def test_manifest_missing_a_section_is_corrupt(tmp_path, corpus, drop, rebuild):
    open_engine(tmp_path, [corpus])
    path = tmp_path / "index" / MANIFEST
    m = json.loads(path.read_text(encoding="utf-8"))
    del m[drop]
    path.write_text(json.dumps(m), encoding="utf-8")
    # An incomplete manifest is a corrupt index: IndexCorruptError naming the file (or, when rebuilding is
    # allowed, a rebuild), never a bare KeyError.
    try:
        engine, _ = open_engine(tmp_path, [corpus], rebuild=rebuild)
    except IndexCorruptError as err:
        assert MANIFEST in str(err) and "qa build" in str(err)
    else:
        assert len(engine.index.chunks) == 12


# --- atomic writes ------------------------------------------------------------------------------------


def test_crash_before_the_manifest_is_replaced_keeps_the_previous_index(tmp_path, corpus, monkeypatch):
    engine, _ = open_engine(tmp_path, [corpus])
    folder = tmp_path / "index"
    old_manifest = (folder / MANIFEST).read_bytes()
    old_chunks = engine.index.chunks
    original = (corpus / "bridge.txt").read_bytes()
    (corpus / "bridge.txt").write_text(SMALL_CORPUS["bridge.txt"].replace("$4 million", "$9 million"), encoding="utf-8")

    real_replace = os.replace
    calls = []

    def crash_on_manifest(src, dst, *args, **kwargs):
        if Path(dst).name == MANIFEST:
            calls.append(Path(src).name)
            raise OSError("simulated crash before the commit point")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(qa.store.os, "replace", crash_on_manifest)
    with pytest.raises(OSError, match="simulated crash"):
        open_engine(tmp_path, [corpus])
    monkeypatch.setattr(qa.store.os, "replace", real_replace)
    assert calls and calls[0].startswith(f".{MANIFEST}")  # the data files were written, the manifest not yet
    assert (folder / MANIFEST).read_bytes() == old_manifest
    assert len(list(folder.glob("seg-*"))) == 2  # the new generation's segment is there, unused

    # the previous index loads, checks out and answers, for the articles it was built from
    (corpus / "bridge.txt").write_bytes(original)
    fake = FakeEmbedder()
    engine, _ = open_engine(tmp_path, [corpus], embedder=fake, rebuild="never")
    assert engine.index.chunks == old_chunks
    assert fake.encoded_count == 0
    answer = engine.ask("How much will the bridge repairs cost?")
    assert not answer.abstained
    assert answer.text == "The repairs will cost $4 million, paid by the state transport fund."

    # the next successful change clears the abandoned segment
    engine.add_article("A new ferry will serve Mill Point from May.\n", title="Ferry", log=quiet, merge="none")
    assert len(list(folder.glob("seg-*"))) == 2 == len(read_manifest(folder)["segments"])
    assert not list(folder.glob(f".{MANIFEST}*"))
