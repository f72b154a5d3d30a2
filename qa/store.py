"""Where the passages live: the store contract the engine talks to, and the files store (the default).

The contract, as small as Haystack 2's `DocumentStore` protocol: a `Store` adds and removes articles' passages in
one atomic change, and opens `Snapshot`s; a snapshot is one committed state that questions are answered from
(passages by row, articles, the first stage's dense and BM25 searches with an article scope, vectors and token
vectors by row, the vocabulary). The engine and the retriever use nothing else, so another store (Qdrant, issue
26) is a second implementation of these two protocols, not a fork of the engine.

The files store keeps an index folder as immutable segments (qa/segments.py) and one small manifest naming the
live segments and, for each, the articles removed from it since it was written (tombstones), the way Lucene
keeps an index:
- an add writes one new segment and a new manifest; a remove writes only a new manifest. Nothing else is read,
  hashed or rewritten, and a process in service opens only the new segment (`FilesStore.latest`);
- the manifest is replaced in one `os.replace` (the commit point); a crash at any moment leaves the previous
  generation, and what a dead writer left behind is removed by the next one;
- segments are merged when there are too many of a size (`merge_plan`; in the app, in the background) and all
  into one by `qa build`, dropping removed articles' rows;
- opening trusts what the manifest recorded of each file (size and mtime); a file whose mtime changed is hashed
  and refused, named, when its sha256 differs. `qa build` hashes every file.

Writers hold the folder's writer lock (qa/locks.py) for a change, and the reader lock exclusively while they
replace the manifest and delete what it no longer names; readers open a generation under the shared reader lock
(every file of it is mapped before the lock is let go, so it can be deleted safely afterwards).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import time
import weakref
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol

import numpy as np

from . import quantize
from .errors import IndexCorruptError, IndexMissingError, IndexWriteError, StaleIndexError
from .lexical import LexicalIndex, LexicalPart, tokenize, words
from .locks import LOCK_FILES, read_lock, write_lock
from .segments import (
    DATA,
    GRAPH,
    META,
    SEGMENT_PREFIX,
    ChunkVectors,
    NewArticle,
    Segment,
    SegmentBuilder,
    Written,
    _abs,
    _fsync_dir,
    _rel,
    merge,
    publish,
)
from .types import ArticleInfo, Chunk, Span

__all__ = ["FORMAT_VERSION", "MANIFEST", "ChunkVectors", "FilesStore", "NewArticle", "Snapshot", "Store", "StoredIndex",
           "embed_chunks", "load_index", "read_manifest"]

FORMAT_VERSION = 4  # 4: segments (qa/segments.py), tombstones, 5-bit token and int8 sentence vectors; 3 is migrated
MANIFEST = "manifest.json"
REBUILD_HINT = "`qa build` rebuilds it (a damaged index is rebuilt from the articles)"
FLUSH_PASSAGES = 50_000  # a build writes a segment every so many passages (~0.5 GB of them in memory at most)
MERGE_FACTOR = 10  # this many segments of one size tier are merged into one
MERGE_FLOOR = 200  # passages: every segment under this is of the smallest tier
MAX_SEGMENT_PASSAGES = 5_000_000  # merges never make a larger segment
EXACT_MAX_PASSAGES = 20_000  # segments searched exactly (no graph) hold at most this many passages together
DELETED_SHARE = 0.3  # a segment with this share of its rows removed is rewritten
MAX_INTRODUCTIONS = 200  # a name introduced in more passages than this is no one story's person (introductions)
_OLD_PARTS = ("passages-", "dense-", "sentences-", "tokens-", "tokensentences-", "lexical-")  # format 3's files


# --- the contract -----------------------------------------------------------------------------------------


class Snapshot(Protocol):
    """One committed state of a store, as questions read it. Rows number its live passages 0..len(chunks)-1."""

    model: str
    dimension: int
    chunking: dict
    sources: list[str]
    root: Path | None
    manifest: dict
    articles: Mapping[str, ArticleInfo]
    chunks: Sequence[Chunk]
    lexical: LexicalIndex  # vocabulary, BM25 (`top`, `scores`), typo correction
    article_rows: Mapping[str, np.ndarray]

    def rows_of(self, article_ids: Iterable[str]) -> np.ndarray: ...

    def dense_search(self, vector: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k rows of highest inner product with `vector` and their scores, best first; among `rows` (exactly)."""
        ...

    def vectors_of(self, rows: np.ndarray) -> np.ndarray: ...

    def sentence_vectors_of(self, rows: Sequence[int]) -> list[np.ndarray]: ...

    def tokens_of(self, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per row: its content pieces' vectors (float32, in quantize.rotate's space) and each piece's sentence."""
        ...

    def passage_holding(self, text: str) -> int | None: ...

    def introducing(self, name: str, rows: np.ndarray | None = None) -> np.ndarray: ...

    def rows_containing(self, word: str, limit: int | None = None) -> np.ndarray: ...

    def find_content(self, content: str) -> str | None: ...


class Store(Protocol):
    """Where an archive's passages live: files in a folder (FilesStore), or a Qdrant collection (issue 26)."""

    # True when the store keeps the articles' texts and is shared by app servers (Qdrant): the engine then reads a
    # cited text from the snapshot, not from a file of this machine, follows the store's generation, and does not
    # merge; False for the files store.
    shared: bool

    def open(self, *, verify: bool = False) -> Snapshot:
        """The latest committed state (IndexMissingError, IndexCorruptError, StaleIndexError when unusable)."""
        ...

    def latest(self, current: Snapshot) -> Snapshot:
        """`current` when nothing was committed since, else the newer state (reusing what is already open)."""
        ...

    def changed(self, current: Snapshot) -> bool:
        """Whether a newer state may have been committed (cheap: called before every question)."""
        ...

    def writing(self, *, timeout: float | None = None, log=None) -> AbstractContextManager:
        """The writer's turn: adds, removes and merges of every process take turns."""
        ...

    def write(self, current: Snapshot | None, *, add: Sequence[NewArticle] = (), remove: Iterable[str] = (),
              header: dict | None = None) -> Snapshot:
        """One atomic change: these articles added, those removed (by id). Call in the writer's turn."""
        ...


# --- embedding (what every store is given) --------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def embed_chunks(chunks: Sequence[Chunk], embedder, *, progress: bool = False, batch: int = 1024) -> Iterator[ChunkVectors]:
    """One forward pass per passage, `batch` passages at a time (yielded as they come). Sentence vectors are the mean
    of the sentence's word-piece vectors in the context of its passage; a one-sentence passage's sentence vector is
    its passage vector."""
    import sys

    from tqdm import tqdm

    from .embedding import content_mask

    bar = tqdm(total=len(chunks), desc="Embedding", unit="passage", disable=not (progress and sys.stderr.isatty()))
    for b0 in range(0, len(chunks), batch):
        part = chunks[b0 : b0 + batch]
        enc = embedder.encode([c.text for c in part])
        bar.update(len(part))
        for c, vec, tok, offs in zip(part, enc.vectors, enc.tokens, enc.offsets):
            starts = np.array([s.start - c.start for s in c.sentences])
            # each piece's sentence: the last one starting at or before it (pieces never straddle sentences)
            owner = np.clip(np.searchsorted(starts, offs[:, 0], side="right") - 1, 0, len(starts) - 1)
            if len(c.sentences) == 1:
                sentences = vec[None, :]
            else:
                ends = np.array([s.end - c.start for s in c.sentences])
                inside = (offs[:, 0] >= starts[owner]) & (offs[:, 1] <= ends[owner]) & (offs[:, 1] > offs[:, 0])
                counts = np.bincount(owner[inside], minlength=len(starts))
                sums = np.zeros((len(starts), tok.shape[1]), np.float64)
                if inside.any():  # pieces of one sentence are contiguous: one reduceat sums them all
                    firsts = np.searchsorted(owner[inside], np.flatnonzero(counts))
                    sums[counts > 0] = np.add.reduceat(tok[inside].astype(np.float64), firsts, axis=0)
                sentences = np.where((counts > 0)[:, None], _unit(sums / np.maximum(counts, 1)[:, None]), vec[None, :])
                sentences = sentences.astype(np.float32)
            keep = content_mask(c.text, offs)
            yield ChunkVectors(vec, sentences, _unit(tok[keep]).astype(np.float16), owner[keep].astype(np.int16))
    bar.close()


def estimated_bytes(chars: int, dimension: int) -> int:
    """A generous estimate of what articles of `chars` characters take on disk, to refuse a build before embedding
    when the disk is too full: token vectors (about one content piece per 5 characters, 5-bit) dominate, then
    sentence vectors (one per ~110 characters, int8) and passage vectors (one per ~450, float32)."""
    return int(1.5 * (chars / 5 * quantize.row_bytes(dimension) + chars / 110 * (dimension + 2)
                      + chars / 450 * dimension * 4 + chars * 6)) + (1 << 20)


def check_room(folder: Path, needed: int) -> None:
    """IndexWriteError, before any embedding, when `folder` cannot take about `needed` more bytes."""
    try:
        free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        return
    if free < needed:
        raise IndexWriteError(
            f"Not enough disk space for the index in {folder}/: it needs about {needed / 1e6:,.0f} MB and "
            f"{free / 1e6:,.0f} MB are free. Free some space or choose another folder with --index / QA_INDEX_DIR. "
            "The previous index is intact."
        )


# --- the manifest ---------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("article-qa", "faiss-cpu", "sentence-transformers", "numpy", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


_MANIFEST_SHAPE = {"format_version": int, "generation": str, "model": dict, "chunking": dict, "sources": list,
                   "counts": dict, "segments": list, "files": dict}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SAFE_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*")


def _manifest_problem(manifest: object) -> str | None:
    """What is missing or of the wrong type in a manifest, or None."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    for key, kind in _MANIFEST_SHAPE.items():
        if not isinstance(manifest.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    if not isinstance(manifest["model"].get("name"), str) or not isinstance(manifest["model"].get("dimension"), int):
        return "'model' needs 'name' and 'dimension'"
    for seg in manifest["segments"]:
        if not isinstance(seg, dict) or not isinstance(seg.get("name"), str) or not _SAFE_NAME.fullmatch(seg["name"]) \
                or not seg["name"].startswith(SEGMENT_PREFIX):
            return f"an entry of 'segments' is not a segment of this folder: {seg!r:.80}"
        if not isinstance(seg.get("deleted", []), list) or not all(isinstance(a, str) for a in seg.get("deleted", [])):
            return f"'deleted' of segment {seg['name']} must be a list of article ids"
        for part in (META, DATA):
            if f"{seg['name']}/{part}" not in manifest["files"]:
                return f"'files' lacks {seg['name']}/{part}"
    for name, meta in manifest["files"].items():
        if not _SAFE_PATH.fullmatch(name) or ".." in name.split("/"):
            return f"'files' names {name!r}, which is not a file of this folder"
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str) or not isinstance(meta.get("bytes"), int):
            return f"'files'[{name!r}] needs a 'sha256' string and a 'bytes' count"
    if not all(isinstance(x, str) for x in manifest["sources"]):
        return "'sources' must be a list of paths"
    return None


def read_manifest(folder: Path) -> dict:
    """The committed manifest. IndexMissingError without one, IndexCorruptError for one that is not valid,
    StaleIndexError for an index of an older format (its fix: `qa build`)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"No index at {folder}/ ({MANIFEST} is missing); build one with `qa build ARTICLES...`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and isinstance(manifest.get("format_version"), int) \
                and manifest["format_version"] < FORMAT_VERSION and isinstance(manifest.get("parts"), dict):
            raise StaleIndexError(
                f"The index in {folder}/ is in the format of an older version ({manifest['format_version']}; this "
                f"version reads {FORMAT_VERSION}); run `qa build` to rebuild it (its articles are embedded again).")
        problem = _manifest_problem(manifest)
    except (OSError, ValueError) as exc:
        problem = str(exc)
    if problem:
        raise IndexCorruptError(f"{path} is not a valid index manifest ({problem}); {REBUILD_HINT}.")
    return manifest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _parts(files: dict, name: str) -> tuple[str, ...]:
    """The files of segment `name` that the manifest's `files` lists: segment.json, segment.bin, and the graph of a
    large segment."""
    return (META, DATA, GRAPH) if f"{name}/{GRAPH}" in files else (META, DATA)


def _verify(folder: Path, manifest: dict, name: str, full: bool) -> None:
    """The segment's files are there with the recorded size; a changed mtime (or `full`) means hashing them."""
    for part in _parts(manifest["files"], name):
        rel = f"{name}/{part}"
        meta = manifest["files"][rel]
        f = folder / rel
        try:
            st = f.stat()
        except OSError:
            raise IndexCorruptError(f"{f} is missing; {REBUILD_HINT}.") from None
        if st.st_size != meta["bytes"] or ((full or st.st_mtime_ns != meta.get("mtime_ns")) and _sha256(f) != meta["sha256"]):
            raise IndexCorruptError(f"{f} is truncated or corrupt (its size or sha256 differs from {MANIFEST}); {REBUILD_HINT}.")


# segments open in this process, shared by the snapshots that use them (an add opens only its new segment)
_OPEN: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _file_ids(folder: Path, name: str) -> tuple | None:
    """(inode, size, mtime) of a segment's files: a segment open in this process is reused only while its files are
    the very ones it mapped (a file changed in place must be checked again, not read through the old map)."""
    out = []
    for part in (META, DATA, GRAPH):
        try:
            st = os.stat(folder / name / part)
        except FileNotFoundError:
            if part == GRAPH:
                continue
            return None
        except OSError:
            return None
        out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _segment(folder: Path, manifest: dict, name: str, full: bool) -> Segment:
    key = (str(folder.resolve()), name, manifest["files"][f"{name}/{DATA}"]["sha256"])
    seg = None if full else _OPEN.get(key)
    if seg is None or seg.file_ids != _file_ids(folder, name):
        _verify(folder, manifest, name, full)
        seg = Segment.open(folder, name, folder.resolve().parent)
        seg.file_ids = _file_ids(folder, name)
        _OPEN[key] = seg
    return seg


def load_index(folder: Path, manifest: dict | None = None, *, verify: bool = False) -> StoredIndex:
    """Open an index's committed generation (embeds nothing). Without `manifest` the manifest is read and the
    segments opened under the folder's reader lock; a caller that passes one holds that lock or the writer lock.
    `verify` hashes every file (`qa build`); otherwise only those whose mtime changed."""
    if manifest is None:
        with read_lock(folder):
            manifest = read_manifest(folder)
            return _open(folder, manifest, verify)
    return _open(folder, manifest, verify)


def _open(folder: Path, manifest: dict, verify: bool = False) -> StoredIndex:
    segments, deleted = [], []
    for entry in manifest["segments"]:
        segments.append(_segment(folder, manifest, entry["name"], verify))
        deleted.append(frozenset(entry.get("deleted", ())))
    if segments and any(s.dimension != manifest["model"]["dimension"] for s in segments):
        raise IndexCorruptError(f"The index in {folder}/ is inconsistent (a segment's vectors are not of the model's "
                                f"dimension); {REBUILD_HINT}.")
    return StoredIndex(folder, manifest, segments, deleted)


def read_format3(folder: Path) -> tuple[dict, dict[str, NewArticle]] | None:
    """The articles of an index of format 3 (one generation of `passages-*.jsonl`, `dense-*.faiss`, `sentences-*`,
    `tokens-*` and `tokensentences-*.npy`), with their passages and vectors, so that the first build of this
    format reuses them instead of embedding again: ({"model", "chunking", "embedded_by"}, {id: NewArticle}).
    None when there is no such index or any of its files fails its sha256 (it is then rebuilt from the articles)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format_version") != 3 or not isinstance(manifest.get("parts"), dict):
            return None
        for name, meta in manifest["files"].items():
            f = folder / name
            if not _SAFE_PATH.fullmatch(name) or f.stat().st_size != meta["bytes"] or _sha256(f) != meta["sha256"]:
                return None
        import faiss

        parts = {k: folder / v for k, v in manifest["parts"].items()}
        rows = [json.loads(line) for line in parts["passages"].read_text(encoding="utf-8").splitlines() if line]
        dense = faiss.read_index(str(parts["dense"]))
        passage = dense.reconstruct_n(0, dense.ntotal) if dense.ntotal else np.zeros((0, dense.d), np.float32)
        sentences = np.load(parts["sentences"], allow_pickle=False)
        tokens = np.load(parts["tokens"], allow_pickle=False)
        owners = np.load(parts["token_sentences"], allow_pickle=False)
        base = folder.resolve().parent
        out: dict[str, NewArticle] = {}
        for a in manifest["articles"]:
            info = ArticleInfo(a["id"], _abs(a["path"], base), a["title"], a["date"], a["sha256"], a.get("url"),
                               a.get("source"), a.get("content"), tuple(a.get("aside") or ()))
            out[info.id] = NewArticle(info, None, [], [])
        s0 = t0 = 0
        for i, r in enumerate(rows):
            spans = tuple(Span(x, y) for x, y in r["sentences"])
            chunk = Chunk(r["article"], r["paragraph"], r["start"], r["end"], r["text"], spans)
            s1, t1 = s0 + len(spans), t0 + r["tokens"]
            vectors = ChunkVectors(passage[i], sentences[s0:s1], tokens[t0:t1], owners[t0:t1])
            out[r["article"]].chunks.append(chunk)
            out[r["article"]].vectors.append(vectors)
            s0, t0 = s1, t1
        if s0 != len(sentences) or t0 != len(tokens) or len(rows) != len(passage):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError, AttributeError):
        return None
    header = {"model": manifest["model"], "chunking": manifest["chunking"], "embedded_by": manifest.get("embedded_by") or {}}
    return header, out


# --- a snapshot of the files store ----------------------------------------------------------------------------


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest scores, best first (ties: the earlier position first)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.lexsort((part, -scores[part]))]


class Passages(Sequence):
    """The snapshot's passages by row, made from the segments on demand (a few microseconds each): a process holds
    the rows it has answered from lately, not a Python object per passage of the archive."""

    _CACHE = 1024

    def __init__(self, index: StoredIndex) -> None:
        self._index = index
        self._cache: dict[int, Chunk] = {}

    def __len__(self) -> int:
        return self._index.passages

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"passage row {i} out of range (0-{n - 1})")
        chunk = self._cache.get(i)
        if chunk is None:
            s, local = self._index.locate(i)
            chunk = self._index.segments[s].chunk(local)
            if len(self._cache) >= self._CACHE:
                self._cache.clear()
            self._cache[i] = chunk
        return chunk

    def __iter__(self) -> Iterator[Chunk]:
        for seg, live in zip(self._index.segments, self._index.live_rows):
            for local in (range(seg.passages) if live is None else live.tolist()):
                yield seg.chunk(local)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} passages>"


class ArticleMap(Mapping):
    """Article id -> ArticleInfo of the snapshot's live articles, read from the segments' tables."""

    def __init__(self, index: StoredIndex) -> None:
        self._index = index
        self._len = sum(len(s.order) - len(d & s.ranges.keys()) for s, d in zip(index.segments, index.deleted))

    def where(self, article_id: str) -> tuple[int, ArticleInfo] | None:
        """(segment number, info) of a live article."""
        for i in range(len(self._index.segments) - 1, -1, -1):
            seg = self._index.segments[i]
            info = seg.articles.get(article_id)
            if info is not None and article_id not in self._index.deleted[i]:
                return i, info
        return None

    def __getitem__(self, article_id: str) -> ArticleInfo:
        found = self.where(article_id) if isinstance(article_id, str) else None
        if found is None:
            raise KeyError(article_id)
        return found[1]

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and self.where(article_id) is not None

    def __iter__(self) -> Iterator[str]:
        for seg, d in zip(self._index.segments, self._index.deleted):
            yield from (a for a in seg.order if a not in d)

    def __len__(self) -> int:
        return self._len


class ArticleRows(Mapping):
    """Article id -> its passage rows in the snapshot, in row order."""

    def __init__(self, index: StoredIndex) -> None:
        self._index = index

    def __getitem__(self, article_id: str) -> np.ndarray:
        found = self._index.articles.where(article_id) if isinstance(article_id, str) else None
        if found is None:
            raise KeyError(article_id)
        s = found[0]
        first, count = self._index.segments[s].ranges[article_id]
        live = self._index.live_rows[s]
        at = first if live is None else int(np.searchsorted(live, first))
        return np.arange(count, dtype=np.int64) + int(self._index.bases[s]) + at

    def __iter__(self) -> Iterator[str]:
        return iter(self._index.articles)

    def __len__(self) -> int:
        return len(self._index.articles)


class RowVectors:
    """The passage vectors by row (`index.passage_vectors[rows]`), read from the segments: no copy of the matrix."""

    def __init__(self, index: StoredIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return self._index.passages

    @property
    def shape(self) -> tuple[int, int]:
        return (self._index.passages, self._index.dimension)

    dtype = np.dtype(np.float32)

    def __getitem__(self, rows):
        if np.isscalar(rows) or isinstance(rows, (int, np.integer)):
            return self._index.vectors_of(np.array([int(rows)]))[0]
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        return self._index.vectors_of(np.asarray(rows, dtype=np.int64))

    def __array__(self, dtype=None, copy=None):
        out = self._index.vectors_of(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)


class Acronyms(Mapping):
    """Lower-case word -> its capitals form, for words the passages write in capitals only ("copa" -> "COPA")."""

    def __init__(self, lexical: LexicalIndex) -> None:
        self._lexical = lexical

    def __getitem__(self, low: str) -> str:
        form = self._lexical.acronym(low) if isinstance(low, str) and low.islower() else None
        if form is None:
            raise KeyError(low)
        return form

    def __iter__(self) -> Iterator[str]:
        return iter(self._lexical.acronyms())

    def __len__(self) -> int:
        return len(self._lexical.acronyms())


class AsideWords:
    """Words that the articles hold only in lines that are not story text (related-story headlines, promos)."""

    def __init__(self, index: StoredIndex) -> None:
        self._index = index

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or word in self._index.lexical.vocabulary:
            return False
        return any(any(a not in d for a in seg.aside.get(word, ())) for seg, d in zip(self._index.segments, self._index.deleted))

    def __iter__(self) -> Iterator[str]:
        found = {w for seg in self._index.segments for w in seg.aside}
        return iter(sorted(w for w in found if w in self))


class StoredIndex:
    """One committed generation of a files index, opened: the snapshot questions are answered from."""

    def __init__(self, folder: Path, manifest: dict, segments: list[Segment], deleted: list[frozenset[str]]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.model: str = manifest["model"]["name"]
        self.dimension = int(manifest["model"]["dimension"])
        self.chunking: dict = manifest["chunking"]
        self.embedded_by: dict = manifest.get("embedded_by") if isinstance(manifest.get("embedded_by"), dict) else {}
        self.root: Path | None = folder.resolve().parent
        self.sources = [_abs(s, self.root) for s in manifest["sources"]]
        self.segments = segments
        self.deleted = deleted
        masks = [seg.live(d) for seg, d in zip(segments, deleted)]
        self.masks = masks
        self.stamp: tuple[int, int, int] | None = None  # of the manifest it was opened from (FilesStore.latest)
        self._matches: tuple[tuple[str, ...], tuple[np.ndarray, np.ndarray]] | None = None
        self.live_rows: list[np.ndarray | None] = [None if m is None else np.flatnonzero(m) for m in masks]
        counts = [seg.passages if r is None else len(r) for seg, r in zip(segments, self.live_rows)]
        self.bases = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64) if segments else np.zeros(1, np.int64)
        self._bases = self.bases.tolist()
        self.passages = int(self.bases[-1])
        self.lexical = LexicalIndex([LexicalPart(seg.postings, int(b), m) for seg, b, m in zip(segments, self.bases, masks)])
        self.articles = ArticleMap(self)
        self.article_rows = ArticleRows(self)
        self.chunks = Passages(self)
        self.passage_vectors = RowVectors(self)
        self.acronyms = Acronyms(self.lexical)
        self.aside_vocabulary = AsideWords(self)

    def __repr__(self) -> str:
        return (f"<StoredIndex {self.folder}/ {len(self.articles)} articles, {self.passages} passages, "
                f"{len(self.segments)} segments>")

    @property
    def generation(self) -> str | None:
        return self.manifest.get("generation")

    # rows
    def locate(self, row: int) -> tuple[int, int]:
        """(segment number, row within the segment) of a snapshot row."""
        s = bisect_right(self._bases, row) - 1
        live = self.live_rows[s]
        offset = row - self._bases[s]
        return s, (offset if live is None else int(live[offset]))

    def _by_segment(self, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(segment number, positions in `rows`, rows within the segment) for each segment `rows` touch."""
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.bases, rows, side="right") - 1
        for s in np.unique(which):
            at = np.flatnonzero(which == s)
            offset = rows[at] - self.bases[s]
            live = self.live_rows[s]
            yield int(s), at, (offset if live is None else live[offset])

    def _global(self, s: int, local: np.ndarray) -> np.ndarray:
        live = self.live_rows[s]
        return (local if live is None else np.searchsorted(live, local)) + self.bases[s]

    def rows_of(self, article_ids: Iterable[str]) -> np.ndarray:
        """Passage rows of these articles, in row order."""
        parts = [self.article_rows[a] for a in dict.fromkeys(article_ids) if a in self.articles]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    # vectors
    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.dimension), np.float32)
        for s, at, local in self._by_segment(rows):
            order = np.argsort(local)  # ascending reads of the memory map
            out[at[order]] = self.segments[s].dense[local[order]]
        return out

    def sentence_vectors_of(self, rows: Sequence[int]) -> list[np.ndarray]:
        out = []
        for r in rows:
            s, local = self.locate(int(r))
            seg = self.segments[s]
            a, b = seg.sentence_range(local)
            out.append(quantize.decode8(seg.sentences[a:b], self.dimension))
        return out

    def tokens_of(self, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for r in rows:
            s, local = self.locate(int(r))
            seg = self.segments[s]
            a, b = seg.token_range(local)
            out.append((quantize.decode(seg.tokens[a:b], self.dimension), np.asarray(seg.owners[a:b])))
        return out

    # the first stage
    def dense_search(self, vector: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            scores = self.vectors_of(rows) @ q
            top = _top(scores, k)
            return rows[top], scores[top]
        found_rows, found_scores = [], []
        for s, seg in enumerate(self.segments):
            live = self.live_rows[s]
            if seg.graph is not None:  # a large segment: its HNSW graph, removed rows filtered out while searching
                local, scores = seg.graph.search(q, k, None if live is None else self.masks[s])
            else:
                local = np.arange(seg.passages) if live is None else live
                scores = np.asarray(seg.dense) @ q
                if live is not None:
                    scores = scores[live]
                top = _top(scores, k)
                local, scores = local[top], scores[top]
            found_rows.append(self._global(s, local))
            found_scores.append(scores)
        if not found_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows_, scores_ = np.concatenate(found_rows), np.concatenate(found_scores)
        top = np.lexsort((rows_, -scores_))[:k]
        return rows_[top], scores_[top]

    def _lexical(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the passages holding a token; the last question's are kept (a question asks twice)."""
        key = tuple(tokens)
        kept = self._matches  # one read: another thread may replace it meanwhile
        if kept is None or kept[0] != key:
            kept = self._matches = (key, self.lexical.matches(list(tokens)))
        return kept[1]

    def lexical_search(self, tokens: Sequence[str], k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best BM25 rows (passages holding a token) and their scores, best first; among `rows` when given."""
        found, scores = self._lexical(tokens)
        if rows is not None and len(found):
            keep = np.isin(found, rows)
            found, scores = found[keep], scores[keep]
        top = _top(scores, k)
        return found[top], scores[top]

    def lexical_scores(self, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """BM25 scores of these rows (0 for a row holding no token)."""
        found, scores = self._lexical(tokens)
        rows = np.asarray(rows, dtype=np.int64)
        at = np.clip(np.searchsorted(found, rows), 0, max(len(found) - 1, 0))
        hit = (len(found) > 0) & (found[at] == rows) if len(found) else np.zeros(len(rows), bool)
        return np.where(hit, scores[at] if len(found) else 0.0, 0.0).astype(np.float32)

    # lookups for the answer's side
    def passage_holding(self, text: str) -> int | None:
        """The row of the first passage that holds `text` verbatim (whitespace aside): an earlier answer sentence's
        passage. Only passages holding every word of it are read (the postings), never the whole archive."""
        wanted = " ".join(text.split())
        if not wanted:
            return None
        for r in self.lexical.rows_with_words(words(wanted)).tolist():
            if wanted in " ".join(self.chunks[r].text.split()):
                return r
        return None

    def introducing(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows (among `rows`) that may introduce `name` in a long form, for qa/introductions.py; none when more than
        MAX_INTRODUCTIONS passages do (a name that common is no one story's person, and reading them all would make
        a question's cost grow with the archive)."""
        found = self.lexical.introducing(name)
        if rows is not None:
            found = np.intersect1d(found, rows)
        return found if len(found) <= MAX_INTRODUCTIONS else found[:0]

    def rows_containing(self, word: str, limit: int | None = None) -> np.ndarray:
        """Rows holding the word (its BM25 tokens), the first `limit` of them when given."""
        found = self.lexical.rows_with(tokenize(word))
        return found if limit is None else found[:limit]

    def find_content(self, content: str) -> str | None:
        """The id of a live article with this story key (qa.articles.story_key), if any."""
        for seg, d in zip(reversed(self.segments), reversed(self.deleted)):
            for a in seg.by_content.get(content, ()):
                if a not in d:
                    return a
        return None

    def stamp_of(self, article_id: str) -> tuple[int, int] | None:
        found = self.articles.where(article_id)
        return None if found is None else self.segments[found[0]].stamps.get(article_id)

    def counts(self) -> dict:
        return {"articles": len(self.articles), "passages": self.passages,
                "sentences": sum(int(seg.meta["sentences"]) - seg.sentences_of(d & seg.ranges.keys())
                                 for seg, d in zip(self.segments, self.deleted)), "segments": len(self.segments)}


# --- the files store: writing --------------------------------------------------------------------------------


def _generation(header: dict, entries: list[dict]) -> str:
    text = json.dumps([header["model"], header["chunking"], entries], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def remove_unreferenced(folder: Path, keep: set[str]) -> int:
    """Delete segments and temporary files in `folder` that are not in `keep`: merged or abandoned segments, what
    writers that died left behind, an older format's files. A segment being written by a live process (a merge
    in the background) is left alone. Call with the writer lock held. Returns the bytes freed."""
    freed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(f".{SEGMENT_PREFIX}") and name.endswith(".tmp"):
            pid = name[len(SEGMENT_PREFIX) + 1 :].split("-")[0]
            garbage = not (pid.isdigit() and _pid_alive(int(pid)))
        else:
            garbage = ((name.startswith(SEGMENT_PREFIX) or name.startswith(_OLD_PARTS)) and name not in keep) \
                or name.startswith(f".{MANIFEST}.") or name.startswith(".probe-")
        if garbage:
            try:
                freed += sum(f.stat().st_size for f in ([entry] if entry.is_file() else entry.rglob("*")) if f.is_file())
            except OSError:
                pass
            _remove(entry)
    return freed


def commit(folder: Path, header: dict, entries: list[dict], files: dict[str, dict], counts: dict) -> dict:
    """Write a manifest naming `entries` ([{name, deleted}]) and make it the committed generation, then remove what
    it no longer names. The caller holds the writer lock. Raises IndexWriteError when it cannot be written (the
    previous generation stays)."""
    base = folder.resolve().parent
    manifest = {
        "format_version": FORMAT_VERSION,
        "generation": _generation(header, entries),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": header["model"],
        "chunking": header["chunking"],
        "embedded_by": header.get("embedded_by") or {},
        "codec": quantize.CODEC,
        "sources": [_rel(s, base) for s in header["sources"]],
        "counts": counts,
        "segments": entries,
        "files": {f"{e['name']}/{part}": files[f"{e['name']}/{part}"] for e in entries for part in _parts(files, e["name"])},
        "versions": _versions(),
    }
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise IndexWriteError(
            f"Cannot write the index in {folder}/ ({exc.strerror or exc}); free some space or make the folder "
            "writable, or choose another with --index / QA_INDEX_DIR. The previous index is intact.") from None
    with read_lock(folder, exclusive=True):
        os.replace(tmp, folder / MANIFEST)  # the commit point
        _fsync_dir(folder)
        remove_unreferenced(folder, {e["name"] for e in entries} | {MANIFEST, *LOCK_FILES, "onnx"})
    return manifest


def _write_error(folder: Path, exc: OSError) -> IndexWriteError:
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return IndexWriteError(
        f"Cannot write the index in {folder}/ ({exc.strerror or exc}{where}); free some space or make the folder "
        "writable, or choose another with --index / QA_INDEX_DIR. The previous index is intact.")


class FilesStore:
    """An index folder of segments (the default store). Writers call `write` and `merge` inside `writing()`."""

    shared = False  # the texts are the article files; the folder is this machine's

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    # reading
    def open(self, *, verify: bool = False) -> StoredIndex:
        return load_index(self.folder, verify=verify)

    def stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.folder / MANIFEST)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def changed(self, current: StoredIndex) -> bool:
        return current.stamp is None or current.stamp != self.stamp()

    def latest(self, current: StoredIndex | None, *, verify: bool = False) -> StoredIndex:
        """The committed generation: `current` when it is still that one, else the newer one (segments already open
        in this process are reused, so after an add only the new segment is opened)."""
        with read_lock(self.folder):
            stamp = self.stamp()
            manifest = read_manifest(self.folder)
            if current is not None and manifest["generation"] == current.generation \
                    and Path(current.folder).resolve() == self.folder.resolve():
                current.stamp = stamp
                return current
            index = _open(self.folder, manifest, verify)
            index.stamp = stamp
            return index

    def writing(self, *, timeout: float | None = None, log=lambda _m: None):
        return write_lock(self.folder, timeout=timeout, log=log)

    # writing (inside `writing()`)
    def _header(self, current: StoredIndex | None, header: dict | None) -> dict:
        h = dict(header or {})
        if current is not None:
            h.setdefault("model", {"name": current.model, "dimension": current.dimension})
            h.setdefault("chunking", current.chunking)
            h.setdefault("sources", current.sources)
            h.setdefault("embedded_by", current.embedded_by)
        return h

    def write(self, current: StoredIndex | None, *, add: Sequence[NewArticle] | Iterable[NewArticle] = (),
              remove: Iterable[str] = (), header: dict | None = None, replace_all: bool = False) -> StoredIndex:
        """One atomic change: the articles of `add` in new segments, those of `remove` (ids) tombstoned in theirs.
        With `replace_all` the new segments are the whole index (a build from scratch). `add` may be an iterator
        (a build embeds as it goes; a segment is written every FLUSH_PASSAGES passages)."""
        header = self._header(None if replace_all else current, header)
        segments = [] if replace_all or current is None else list(current.segments)
        deleted = [] if replace_all or current is None else [set(d) for d in current.deleted]
        gone = set(remove)
        for s, seg in enumerate(segments):
            deleted[s] |= gone & seg.ranges.keys()
        files: dict[str, dict] = {}
        for seg in segments:
            files.update({k: v for k, v in current.manifest["files"].items() if k.startswith(seg.name + "/")})
        written: list[Written] = []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            builder = SegmentBuilder(header["model"]["dimension"], self.folder.resolve().parent)
            for article in add:
                # an article added again (a changed file) replaces its live copy in an older segment
                for s, seg in enumerate(segments):
                    if article.info.id in seg.ranges:
                        deleted[s].add(article.info.id)
                builder.add(article)
                if builder.passages >= FLUSH_PASSAGES:
                    written.append(builder.write(self.folder))
                    builder = SegmentBuilder(header["model"]["dimension"], self.folder.resolve().parent)
            if builder.entries:
                written.append(builder.write(self.folder))
            new_names = []
            for w in written:
                name, meta = publish(self.folder, w, header["model"]["name"], header["chunking"])
                new_names.append(name)
                files.update(meta)
        except BaseException as exc:
            for w in written:
                _remove(w.tmp)
            for name in locals().get("new_names", []):
                _remove(self.folder / name)
            if isinstance(exc, OSError):
                raise _write_error(self.folder, exc) from None
            raise
        opened = {seg.name: seg for seg in segments}
        for n in new_names:
            opened[n] = _OPEN[(str(self.folder.resolve()), n, files[f"{n}/{DATA}"]["sha256"])] = \
                Segment.open(self.folder, n, self.folder.resolve().parent)
            opened[n].file_ids = _file_ids(self.folder, n)
        entries = [{"name": seg.name, "deleted": sorted(d & seg.ranges.keys())} for seg, d in zip(segments, deleted)
                   if len(d & seg.ranges.keys()) < len(seg.ranges)]  # a segment with nothing live is dropped
        entries += [{"name": n, "deleted": []} for n in new_names]
        return self._commit(header, entries, files, opened)

    def _commit(self, header: dict, entries: list[dict], files: dict, opened: dict[str, Segment]) -> StoredIndex:
        segments = [opened[e["name"]] for e in entries]
        deleted = [frozenset(e["deleted"]) for e in entries]
        counts = {"articles": sum(len(s.order) - len(d) for s, d in zip(segments, deleted)),
                  "passages": sum(s.passages - sum(s.ranges[a][1] for a in d) for s, d in zip(segments, deleted)),
                  "sentences": sum(int(s.meta["sentences"]) - s.sentences_of(d) for s, d in zip(segments, deleted)),
                  "segments": len(segments)}
        manifest = commit(self.folder, header, entries, files, counts)
        index = StoredIndex(self.folder, manifest, segments, deleted)
        index.stamp = self.stamp()
        return index

    def merge(self, current: StoredIndex, names: Sequence[str], *, log=lambda _m: None, locked: bool = False
              ) -> StoredIndex | None:
        """Merge these segments of `current` into one, dropping their removed articles' rows. The new segment is
        written outside the writer's turn (adds and removes go on meanwhile) and committed in it: articles removed
        from those segments in the meantime are removed from the new one. Returns the new generation, or None when
        the segments are no longer all live (another writer merged or rebuilt them first). `locked`: the caller
        already has the writer's turn (`qa build`)."""
        wanted = set(names)
        chosen = [(seg, d) for seg, d in zip(current.segments, current.deleted) if seg.name in wanted]
        if len(chosen) != len(wanted):
            return None
        try:
            written = merge(self.folder, chosen)
        except OSError as exc:
            raise _write_error(self.folder, exc) from None
        try:
            with (nullcontext() if locked else self.writing(log=log)):
                latest = self.latest(None)
                now = {seg.name: d for seg, d in zip(latest.segments, latest.deleted)}
                if not wanted <= now.keys():
                    return None
                since = set().union(*(now[seg.name] - d for seg, d in chosen))
                name, files = publish(self.folder, written, latest.model, latest.chunking)
                merged = Segment.open(self.folder, name, self.folder.resolve().parent)
                merged.file_ids = _file_ids(self.folder, name)
                files = {**latest.manifest["files"], **files}
                _OPEN[(str(self.folder.resolve()), name, files[f"{name}/{DATA}"]["sha256"])] = merged
                opened = {seg.name: seg for seg in latest.segments} | {name: merged}
                entries, placed = [], False
                for seg, d in zip(latest.segments, latest.deleted):
                    if seg.name not in wanted:
                        entries.append({"name": seg.name, "deleted": sorted(d)})
                    elif not placed:
                        entries.append({"name": name, "deleted": sorted(since & merged.ranges.keys())})
                        placed = True
                return self._commit(self._header(latest, None), entries, files, opened)
        finally:
            _remove(written.tmp)


def merge_plan(index: StoredIndex, *, everything: bool = False) -> list[str]:
    """Segments to merge now, by size tier (Lucene's tiered merging, simplified): MERGE_FACTOR segments of one tier
    (sizes within a factor MERGE_FACTOR of each other, counted in live passages) are merged into one of the next;
    the segments searched exactly (without a graph) are merged into one when they hold more than
    EXACT_MAX_PASSAGES passages together (the result gets a graph), so a question's exact search stays
    small; a segment with DELETED_SHARE of its rows removed is rewritten. `everything`: all of them (and the
    removed rows), as `qa build` does, when there is more than one or any removed row."""
    sizes = [seg.passages if live is None else len(live) for seg, live in zip(index.segments, index.live_rows)]
    if everything:
        dirty = len(index.segments) > 1 or any(live is not None for live in index.live_rows)
        return [seg.name for seg in index.segments] if dirty and sum(sizes) <= MAX_SEGMENT_PASSAGES else []
    tiers: dict[int, list[int]] = {}
    for i, n in enumerate(sizes):
        tier = 0 if n < MERGE_FLOOR else int(np.log(n / MERGE_FLOOR) / np.log(MERGE_FACTOR)) + 1
        tiers.setdefault(tier, []).append(i)
    for tier in sorted(tiers):
        members = tiers[tier]
        if len(members) >= MERGE_FACTOR and sum(sizes[i] for i in members) <= MAX_SEGMENT_PASSAGES:
            return [index.segments[i].name for i in members[:MERGE_FACTOR]]
    exact = [i for i, seg in enumerate(index.segments) if seg.graph is None]
    if len(exact) > 1 and sum(sizes[i] for i in exact) > EXACT_MAX_PASSAGES:
        return [index.segments[i].name for i in exact]
    for i, (seg, live) in enumerate(zip(index.segments, index.live_rows)):
        if live is not None and seg.passages and 1 - len(live) / seg.passages >= DELETED_SHARE:
            return [seg.name]
    return []
