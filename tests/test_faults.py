"""The fault suite: each failure a hostile test found (the reliability issue's 16 items) injected again, with
the named error or the bounded outcome asserted. Index, build and article faults here; the HTTP doors' faults
are in tests/test_server_faults.py.

Most tests use the deterministic fake embedder (milliseconds); the few that need the real model say so.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import qa.errors
import qa.locks
import qa.segments
import qa.store
from helpers import SMALL_CORPUS, FakeEmbedder, seed_article_path, write_articles, qa_clean_env  # noqa: F401 - fixture
from qa import Engine, IndexCorruptError, resolve_settings
from qa.errors import IndexWriteError
from qa.locks import write_lock
from qa.store import MANIFEST, load_index, read_manifest

pytestmark = pytest.mark.usefixtures("qa_clean_env")

ROOT = Path(__file__).resolve().parent.parent
MODEL = "fake-bow-v1"


def quiet(_message: str) -> None:
    pass


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_articles(tmp_path / "articles", SMALL_CORPUS)


def open_engine(tmp_path: Path, corpus: Path, embedder=None, log=quiet, force=False, **extra) -> Engine:
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model=MODEL, **extra)
    return Engine.open(settings, embedder=embedder or FakeEmbedder(), log=log, force=force)


def assert_valid_index(folder: Path, passages: int = 12) -> None:
    """The manifest names a complete set of files whose sha256 checks out, and nothing else is left."""
    index = load_index(folder, verify=True)
    assert len(index.chunks) == passages
    names = {p.name for p in folder.iterdir()}
    expected = {seg["name"] for seg in read_manifest(folder)["segments"]} | {MANIFEST, ".read.lock", ".write.lock"}
    assert names <= expected | {"onnx"}, names - expected


class SlowEmbedder(FakeEmbedder):
    """Embeds slowly, so that two builds overlap for certain."""

    def encode(self, texts, **kwargs):
        time.sleep(0.15)
        return super().encode(texts, **kwargs)


def _build_in_child(tmp_path: str, corpus: str, out: str) -> None:
    said: list[str] = []
    try:
        settings = resolve_settings(index_dir=str(Path(tmp_path) / "index"), articles=[corpus], model=MODEL)
        Engine.open(settings, embedder=SlowEmbedder(), force=True, log=said.append)
        Path(out).write_text(json.dumps({"ok": True, "said": said}))
    except BaseException as exc:  # reported to the parent, which asserts
        Path(out).write_text(json.dumps({"ok": False, "error": repr(exc), "said": said}))


# --- 1. two builds at once ---------------------------------------------------------------------------------


def test_two_builds_at_once_ten_times_leave_a_valid_index(tmp_path, corpus):
    """Before: each build's clean-up deleted the other's files and both reported success."""
    fork = multiprocessing.get_context("fork")
    for round_ in range(10):
        outs = [tmp_path / f"out-{round_}-{i}.json" for i in range(2)]
        procs = [fork.Process(target=_build_in_child, args=(str(tmp_path), str(corpus), str(o))) for o in outs]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        results = [json.loads(o.read_text()) for o in outs]
        assert all(r["ok"] for r in results), results
        assert_valid_index(tmp_path / "index")
    # the builds took turns: some build waited for the other, and said so
    assert any("Waiting for another build or change" in m for o in tmp_path.glob("out-*.json")
               for m in json.loads(o.read_text())["said"])


def _hold_write_lock(folder: str, held, release) -> None:
    with write_lock(Path(folder)):
        held.set()
        release.wait(30)


def test_a_build_waits_for_the_writer_lock_then_builds(tmp_path, corpus):
    open_engine(tmp_path, corpus)
    folder = tmp_path / "index"
    (corpus / "bakery.txt").write_text(SMALL_CORPUS["bakery.txt"] + "\nThe bakery also sells rye bread.\n", encoding="utf-8")
    fork = multiprocessing.get_context("fork")
    held, release = fork.Event(), fork.Event()
    holder = fork.Process(target=_hold_write_lock, args=(str(folder), held, release))  # another writer, busy
    holder.start()
    assert held.wait(10)
    out = tmp_path / "child.json"
    child = fork.Process(target=_build_in_child, args=(str(tmp_path), str(corpus), str(out)))
    child.start()
    time.sleep(0.5)
    assert child.is_alive() and not out.exists()  # waiting, not building over the other writer
    release.set()
    holder.join(10)
    child.join(30)
    result = json.loads(out.read_text())
    assert result["ok"] and any("Waiting for another build" in m and f"pid {holder.pid}" in m for m in result["said"])
    assert_valid_index(folder, 13)


def test_a_reader_never_loses_files_to_a_concurrent_build(tmp_path, corpus):
    """Loads in a loop while another process rebuilds in a loop: every load succeeds."""
    open_engine(tmp_path, corpus)
    folder = tmp_path / "index"
    fork = multiprocessing.get_context("fork")
    stop = fork.Event()

    def rebuild_forever() -> None:
        settings = resolve_settings(index_dir=str(folder), articles=[str(corpus)], model=MODEL)
        while not stop.is_set():
            Engine.open(settings, embedder=FakeEmbedder(), force=True, log=quiet)

    child = fork.Process(target=rebuild_forever)
    child.start()
    try:
        loads = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert len(load_index(folder).chunks) == 12
            loads += 1
    finally:
        stop.set()
        child.join(30)
    assert loads > 10 and child.exitcode == 0


@pytest.mark.slow
def test_two_qa_build_commands_at_once_export_onnx_and_agree(tmp_path):
    """The real CLI and model, twice at once into one fresh folder: both succeed, one waits; a fresh build
    exports the ONNX query encoder (before: never on a fresh folder) and the index is valid."""
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(seed_article_path(), articles)
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "index"), "HF_HUB_OFFLINE": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("QA_") or k == "QA_INDEX_DIR"}
    procs = [subprocess.Popen([sys.executable, "-m", "qa.cli", "build", str(articles)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    logs = "\n".join(o[1] for o in outs)
    assert "Waiting for another build or change" in logs
    assert all("queries on onnx" in o[0] for o in outs), outs
    assert "disagrees" not in logs
    assert_valid_index(tmp_path / "index")
    assert (tmp_path / "index" / "onnx").is_dir() and not list((tmp_path / "index" / "onnx").glob("*.tmp*"))


# --- 2. a splitter that could hang ------------------------------------------------------------------------


PATHOLOGICAL = [
    "Overview" + "." * 60 + "12",  # a table-of-contents line: never finished before
    "Overview" + "." * 200_000 + "12. Next.",
    "a" * 10_000 + ". B",
    ("word" * 2_500 + ". B") * 20,  # a long letter run before many candidates: quadratic before
    "x" + ".a" * 50_000 + ". B",
    "?" * 100_000 + "x",
    "…" * 50_000 + "a",
    ("Mr. " * 20_000) + "Smith left.",
    "\u200b" * 10_000 + "Words. More words.",
]


def test_pathological_text_is_split_and_chunked_in_bounded_time(tmp_path):
    """In a child process with a deadline far above the linear-time cost (milliseconds): before, the first
    input never finished and the fourth took seconds."""
    script = (
        "import sys, json\n"
        "from qa.articles import parse_article\n"
        "from qa.chunking import chunk_article\n"
        "texts = json.loads(sys.stdin.read())\n"
        "for i, t in enumerate(texts):\n"
        "    a = parse_article('date 2024-01-01 ' + t + '\\n\\nSecond paragraph.', article_id=str(i), path='x', sha256='0')\n"
        "    chunks = chunk_article(a, max_tokens=256, count_tokens=lambda ts: [len(x.split()) for x in ts])\n"
        "    assert chunks and all(a.raw[c.start:c.end] == c.text for c in chunks)\n"
        "print('ok', len(texts))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(PATHOLOGICAL), capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ok {len(PATHOLOGICAL)}"


# --- 4 and 11. a damaged ONNX export is never served, and `qa build` repairs it ---------------------------


@pytest.fixture
def export_copy(tmp_path) -> Path:
    """A copy of the repository's ONNX export in a fresh index folder."""
    from qa.onnx_backend import export_dir

    source = export_dir(ROOT / "index", "all-MiniLM-L6-v2")
    target = export_dir(tmp_path / "index", "all-MiniLM-L6-v2")
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("damage", ["flip-model", "truncate-model", "garbage-meta", "garbage-tokenizer", "delete-model"])
def test_a_damaged_onnx_export_is_refused_with_its_name(export_copy, damage):
    from qa.onnx_backend import find_export

    target = {"flip-model": "model.onnx", "truncate-model": "model.onnx", "delete-model": "model.onnx",
              "garbage-meta": "meta.json", "garbage-tokenizer": "tokenizer.json"}[damage]
    path = export_copy / target
    if damage == "flip-model":  # altered in place, same size: served silently before (answer accuracy 0.84 -> 0.0)
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0x55]))
    elif damage == "truncate-model":
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 3)
    elif damage == "delete-model":
        path.unlink()
    else:
        path.write_text("{ this is not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError) as err:
        find_export(export_copy.parent.parent, "all-MiniLM-L6-v2")
    message = str(err.value)
    assert target in message and "qa build" in message and "QA_BACKEND=torch" in message


def test_the_repositorys_export_checks_out(export_copy):
    from qa.onnx_backend import find_export

    assert find_export(export_copy.parent.parent, "all-MiniLM-L6-v2") == export_copy


@pytest.mark.slow
def test_qa_build_repairs_a_damaged_export_and_index(tmp_path, export_copy):
    """The repair hint works: `qa build` (no --force) exports the model again and rebuilds a damaged index."""
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(seed_article_path(), articles)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"QA_INDEX_DIR": str(tmp_path / "index"), "HF_HUB_OFFLINE": "1"})
    build = [sys.executable, "-m", "qa.cli", "build", str(articles)]
    first = subprocess.run(build, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    model = export_copy / "model.onnx"
    with model.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 16)
    manifest = read_manifest(tmp_path / "index")
    (tmp_path / "index" / manifest["segments"][0]["name"] / "segment.bin").write_bytes(b"garbage")
    ask = [sys.executable, "-m", "qa.cli", "ask", "--no-rebuild", "Who is the chief administrator of COPA?"]
    refused = subprocess.run(ask, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "model.onnx" in refused.stderr and "qa build" in refused.stderr
    assert "Traceback" not in refused.stderr
    repaired = subprocess.run(build, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert repaired.returncode == 0, repaired.stderr
    assert "Exporting it again" in repaired.stderr and "Rebuilding it from the articles" in repaired.stderr
    assert "queries on onnx" in repaired.stdout
    answer = subprocess.run(ask, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0 and "Andrea Kersten" in answer.stdout


# --- 8 and 12. failed writes and what dead builds leave -----------------------------------------------------


def test_an_index_path_that_is_a_file_is_refused_before_embedding(tmp_path, corpus):
    (tmp_path / "index").write_text("not a folder")
    fake = FakeEmbedder()
    with pytest.raises(IndexWriteError) as err:
        open_engine(tmp_path, corpus, embedder=fake)
    assert str(tmp_path / "index") in str(err.value) and "--index" in str(err.value)
    assert fake.encoded_count == 0


def test_a_read_only_folder_is_refused_before_embedding(tmp_path, corpus, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(qa.locks.os, "open", read_only)
    fake = FakeEmbedder()
    with pytest.raises(IndexWriteError) as err:
        open_engine(tmp_path, corpus, embedder=fake)
    assert "Read-only file system" in str(err.value) and "Nothing was changed" in str(err.value)
    assert fake.encoded_count == 0


def test_a_full_disk_is_refused_before_embedding(tmp_path, corpus, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(qa.store.shutil, "disk_usage", lambda _p: usage._replace(free=1000))
    fake = FakeEmbedder()
    with pytest.raises(IndexWriteError) as err:
        open_engine(tmp_path, corpus, embedder=fake)
    assert "Not enough disk space" in str(err.value) and "MB are free" in str(err.value)
    assert fake.encoded_count == 0


def test_a_write_that_fails_half_way_leaves_the_previous_index_and_no_files(tmp_path, corpus, monkeypatch):
    open_engine(tmp_path, corpus)
    folder = tmp_path / "index"
    before = sorted(p.name for p in folder.iterdir())
    old_manifest = (folder / MANIFEST).read_bytes()

    def disk_full(path, arrays):
        path.write_bytes(b"\0" * 4096)  # half a segment's data, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(qa.segments, "_write_data", disk_full)
    with pytest.raises(IndexWriteError) as err:
        open_engine(tmp_path, corpus, force=True)
    assert "No space left on device" in str(err.value) and "previous index is intact" in str(err.value)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == before
    assert (folder / MANIFEST).read_bytes() == old_manifest
    assert_valid_index(folder)


def test_files_left_by_killed_builds_are_removed_by_the_next_build(tmp_path, corpus):
    """Before: 8 killed builds left 1.1 GB beside a 132 MB index, and a full disk stayed full."""
    open_engine(tmp_path, corpus)
    folder = tmp_path / "index"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended: the writer that died
    junk = [folder / f".seg-{pid}-0badf00d.tmp", folder / "seg-deadbeef0000"]  # a segment half-written, one never committed
    for d in junk:
        d.mkdir()
        (d / "segment.bin").write_bytes(b"\0" * 1_000_000)
    (folder / f".{MANIFEST}.{pid}.tmp").write_bytes(b"\0" * 1_000_000)
    junk.append(folder / f".{MANIFEST}.{pid}.tmp")
    (folder / "tokens-deadbeef0000-4242-1.npy").write_bytes(b"\0" * 500_000)  # the older format's files
    junk.append(folder / "tokens-deadbeef0000-4242-1.npy")
    alive = folder / f".seg-{os.getpid()}-0000beef.tmp"  # a live process's merge in progress: left alone
    alive.mkdir()
    (folder / "onnx" / "07db4e1f186d.tmp999").mkdir(parents=True)
    (corpus / "orchard.txt").write_text(SMALL_CORPUS["orchard.txt"] + "\nPrices may rise.\n", encoding="utf-8")
    said: list[str] = []
    open_engine(tmp_path, corpus, log=said.append)
    assert not any(f.exists() for f in junk) and alive.is_dir()
    alive.rmdir()
    assert any("Removed 3.5 MB" in m for m in said), said
    assert_valid_index(folder, 13)


# --- 8. a manifest of the wrong shape ---------------------------------------------------------------------


@pytest.mark.parametrize("edit", [
    lambda m: m.update(files=["seg-0/segment.bin"]),
    lambda m: m["files"].update({k: "abc" for k in list(m["files"])[:1]}),
    lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0", "bytes": 1}}),
    lambda m: m["segments"][0].update(name=7),
    lambda m: m["segments"][0].update(name="/etc/passwd"),
    lambda m: m["segments"][0].update(name="seg-0"),
    lambda m: m["segments"][0].update(deleted=[["not", "an id"]]),
    lambda m: m.update(sources=[1, 2]),
], ids=["files-list", "files-entry", "files-escape", "segment-number", "segment-absolute", "segment-unlisted",
        "deleted-list", "sources"])
def test_a_manifest_with_wrongly_typed_entries_is_named_not_a_traceback(tmp_path, corpus, edit):
    open_engine(tmp_path, corpus)
    path = tmp_path / "index" / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError) as err:
        open_engine(tmp_path, corpus, rebuild="never")
    assert MANIFEST in str(err.value) and "qa build" in str(err.value)
    open_engine(tmp_path, corpus)  # and a build repairs it
    assert_valid_index(tmp_path / "index")


def test_index_files_are_named_by_their_content(tmp_path, corpus):
    """Rebuilding the same corpus into a fresh folder gives the same file names (the committed index/ no longer
    churns on every rebuild)."""
    open_engine(tmp_path / "a", corpus)
    open_engine(tmp_path / "b", corpus)
    a = read_manifest(tmp_path / "a" / "index")
    b = read_manifest(tmp_path / "b" / "index")
    assert a["segments"] == b["segments"] and a["generation"] == b["generation"]
    assert {k: v["sha256"] for k, v in a["files"].items()} == {k: v["sha256"] for k, v in b["files"].items()}
    assert np.array_equal(load_index(tmp_path / "a" / "index").passage_vectors, load_index(tmp_path / "b" / "index").passage_vectors)


# --- 10. an article edited after it was indexed -------------------------------------------------------------


def test_an_article_edited_after_indexing_is_flagged_in_the_answer(tmp_path, corpus):
    """Before: answered from the old index with offsets that no longer matched the file, and nothing said so."""
    engine = open_engine(tmp_path, corpus)
    question = "How much will the bridge repairs cost?"
    fresh = engine.ask(question).to_json()
    assert fresh["warnings"] == [] and not any(p["citation"]["stale"] for p in fresh["passages"])
    (corpus / "bridge.txt").write_text("date 2024-03-02 Rewritten.\n\n" + SMALL_CORPUS["bridge.txt"], encoding="utf-8")
    edited = engine.ask(question).to_json()
    bridge = [p for p in edited["passages"] if p["citation"]["article"] == "bridge"]
    assert bridge and all(p["citation"]["stale"] for p in bridge)
    assert not any(p["citation"]["stale"] for p in edited["passages"] if p["citation"]["article"] != "bridge")
    assert len(edited["warnings"]) == 1 and "bridge" in edited["warnings"][0] and "qa build" in edited["warnings"][0]
    (corpus / "bridge.txt").write_text(SMALL_CORPUS["bridge.txt"], encoding="utf-8")  # restored: fine again
    assert engine.ask(question).to_json()["warnings"] == []


# --- 16. symbolic links out of the articles folder, articles too large to be news --------------------------


def test_a_symlink_leaving_the_articles_folder_is_refused(tmp_path, corpus):
    secret = tmp_path / "secret.txt"
    secret.write_text("The launch codes are 0000.\n", encoding="utf-8")
    (corpus / "innocent.txt").symlink_to(secret)
    fake = FakeEmbedder()
    with pytest.raises(qa.errors.ArticleError) as err:
        open_engine(tmp_path, corpus, embedder=fake)
    assert "innocent.txt" in str(err.value) and "outside the articles folder" in str(err.value)
    assert fake.encoded_count == 0
    (corpus / "innocent.txt").unlink()
    (corpus / "sub").mkdir()
    (corpus / "sub" / "linked.txt").symlink_to(corpus / "bakery.txt")  # a link within the folder is fine (and the
    assert sorted(open_engine(tmp_path, corpus).index.articles) == ["bakery", "bridge", "library", "orchard"]  # same file once)


def test_an_article_over_the_size_limit_is_refused_with_the_limit(tmp_path, corpus):
    (corpus / "huge.txt").write_bytes(b"date 2024-01-01 Words words words.\n\n" + b"More words. " * 5_000_000)
    fake = FakeEmbedder()
    with pytest.raises(qa.errors.ArticleTooLargeError) as err:
        open_engine(tmp_path, corpus, embedder=fake)
    assert "huge.txt: the file is 60.0 MB; the limit is 1.0 MB per article" in str(err.value)
    assert fake.encoded_count == 0
