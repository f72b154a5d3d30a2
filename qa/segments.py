"""Segments: the immutable parts an index is made of, on disk and opened.

A segment is a folder `seg-<id>/` of two files (three when it is large), written once and never changed:
- `segment.json`: its articles (identity, the rows their passages take, the file's size and mtime when it was
  indexed), its counts, and where each array lies in the data file (name, dtype, shape, offset);
- `segment.bin`: the arrays back to back, each at a 64-byte boundary (plain little-endian numbers, no pickle):
  `rows` the passage table (article, paragraph, start, end, text offset, first sentence, first piece; one row more
  at the end for the totals), `text` the passages' UTF-8 text, `spans` each sentence's [start, end) in its article,
  `dense` the passage vectors (float32), `sentences` the sentence vectors (int8 rows), `tokens` the content pieces'
  vectors (5-bit rows, qa/quantize.py), `owners` each piece's sentence within its passage and the lexical postings
  (qa/lexical.py: `keys`, `offsets`, `docs`, `freqs`, `lengths`);
- `segment.faiss`, in segments of GRAPH_MIN_PASSAGES passages or more: the first stage's HNSW graph (FAISS
  `IndexHNSWFlat`, inner product, in FAISS's own file format), which holds the passage vectors: its last
  passages·dimension float32 are the `dense` array of the segment (not written twice).
The files are memory-mapped (FAISS maps the graph file itself): a question reads the rows of its candidates only,
and every process that opens the segment shares the same pages.

An add writes one small segment; merges (qa/store.py decides when) write one segment from several, copying the
rows of their live articles; nothing is embedded or tokenized again.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import quantize
from .errors import IndexCorruptError
from .lexical import Postings
from .types import ArticleInfo, Chunk, Span

SEGMENT_PREFIX = "seg-"
META, DATA = "segment.json", "segment.bin"
ALIGN = 64
ROW_COLUMNS = ("article", "paragraph", "start", "end", "text", "sentence", "token")
R_ARTICLE, R_PARAGRAPH, R_START, R_END, R_TEXT, R_SENTENCE, R_TOKEN = range(7)
GRAPH = "segment.faiss"
# Exact first-stage search reads every passage vector of a segment (1.5 KB each): 10,000 of them take ~2 ms on one
# core, 50,000 ~9 ms, 100,000 ~50 ms (measured; past the CPU caches). Larger segments get an HNSW graph.
GRAPH_MIN_PASSAGES = 20_000
# HNSW: neighbours a node (M), candidates kept while building and while searching. On 113,753 synthetic passages
# without topical clusters (the hard case) recall@10 against exact search is 0.981 at efSearch 128 and 0.995 at
# 256 (1.5 ms a question); on the benchmark's 10,000-article archive 0.971 at 256, 0.993 counting its identical
# passages (docs/archive.md "First stage").
GRAPH_M = 32
GRAPH_EF_CONSTRUCTION = 64
GRAPH_EF_SEARCH = 256
COPY_ROWS = 65_536  # rows copied at a time by a merge


@dataclass(frozen=True)
class ChunkVectors:
    """What the model gives for one passage: its vector, one per sentence, and its content word pieces."""

    passage: np.ndarray  # (dim,)
    sentences: np.ndarray  # (sentences, dim)
    tokens: np.ndarray  # (content pieces, dim) float16, unit rows
    token_sentence: np.ndarray  # (content pieces,) index of the sentence each piece is in


@dataclass
class NewArticle:
    """An article to index: identity, file stamp, passages and their vectors."""

    info: ArticleInfo
    stamp: tuple[int, int] | None  # (bytes, mtime_ns) of its file when it was read; None for an article not from a file
    chunks: list[Chunk]
    vectors: list[ChunkVectors]


def _rel(path: str, base: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(p.resolve())


def _abs(path: str, base: Path, folders: dict[str, str] | None = None) -> str:
    """The resolved path of a path `_rel` stored. `folders` remembers the resolved folders of one table's articles:
    Path.resolve of each (an lstat per component of its path) was most of opening an archive of 10,000 articles.
    `_rel` stored the file's own resolved path, so only its folder is resolved here, once a folder; the file is not
    looked at (a link put in its place since is a changed file, which its stamp tells)."""
    if os.path.isabs(path):
        return path
    if folders is None:
        return str((base / path).resolve())
    folder, name = os.path.split(os.path.join(base, path))
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder)
    return os.path.join(real, name)


# --- the data file -----------------------------------------------------------------------------------------


@dataclass
class ArraySource:
    """An array to write: its dtype and shape, and its contents as a sequence of row blocks."""

    dtype: np.dtype
    shape: tuple[int, ...]
    blocks: Iterable[np.ndarray]

    @classmethod
    def of(cls, array: np.ndarray) -> ArraySource:
        a = np.ascontiguousarray(array)
        return cls(a.dtype, a.shape, [a])


def _write_data(path: Path, arrays: dict[str, ArraySource]) -> tuple[dict, str, int]:
    """Write the arrays into `path`; returns (layout, sha256, bytes)."""
    layout: dict[str, dict] = {}
    digest = hashlib.sha256()
    offset = 0
    with path.open("wb") as f:
        for name, src in arrays.items():
            pad = (-offset) % ALIGN
            if pad:
                f.write(b"\0" * pad)
                digest.update(b"\0" * pad)
                offset += pad
            dtype = np.dtype(src.dtype)
            layout[name] = {"dtype": dtype.str, "shape": list(src.shape), "offset": offset}
            written = 0
            for block in src.blocks:
                data = np.ascontiguousarray(block, dtype=dtype).tobytes()
                f.write(data)
                digest.update(data)
                written += len(data)
            expected = int(np.prod(src.shape, dtype=np.int64)) * dtype.itemsize
            if written != expected:
                raise ValueError(f"array {name}: wrote {written} bytes, expected {expected}")
            offset += written
        f.flush()
        os.fsync(f.fileno())
    return layout, digest.hexdigest(), offset


def _views(data: np.ndarray, layout: dict, where: Path) -> dict[str, np.ndarray]:
    out = {}
    for name, spec in layout.items():
        dtype, shape, offset = np.dtype(spec["dtype"]), tuple(spec["shape"]), int(spec["offset"])
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset < 0 or offset + size > len(data):
            raise IndexCorruptError(f"{where} is shorter than its layout says (array {name}); `qa build` rebuilds it.")
        out[name] = np.ndarray(shape, dtype=dtype, buffer=data, offset=offset)
    return out


# arrays a question reads a few rows of, here and there: the kernel should not read ahead around each
RANDOM_ACCESS = ("rows", "text", "spans", "sentences", "tokens", "owners", "docs", "freqs")
# the largest of them (the token and sentence vectors: ~80 % of a segment) are read with pread, not mapped: a page
# fault maps the whole page-cache folio around the row (2 MB on this machine's ext4, whatever the madvise), so after a
# few hundred questions every process mapped most of the file; read, the rows stay in the shared page cache only
READ_NOT_MAPPED = ("sentences", "tokens")


class _Fd:
    """An open file descriptor, closed when the last array reading through it is gone."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except (OSError, AttributeError):
            pass

    def read(self, offset: int, size: int) -> bytes:
        data = os.pread(self.fd, size, offset)
        while len(data) < size:  # a regular file returns less only at its end, which the layout check excludes
            more = os.pread(self.fd, size - len(data), offset + len(data))
            if not more:
                raise IndexCorruptError(f"a segment file ended early (read {len(data)} of {size} bytes at {offset}); "
                                        "`qa build` rebuilds it.")
            data += more
        return data


class FileRows:
    """A read-only array that lies in a file and is read, not mapped: `a[i:j]` (rows i..j-1) and `a[i]` are one pread
    each; `np.asarray(a)` reads it all."""

    def __init__(self, file: _Fd, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.file, self.offset, self.dtype, self.shape = file, offset, np.dtype(dtype), tuple(shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("FileRows reads contiguous rows only")
            stop = max(start, stop)
            data = self.file.read(self.offset + start * self.row_bytes, (stop - start) * self.row_bytes) if stop > start else b""
            return np.frombuffer(data, dtype=self.dtype).reshape((stop - start, *self.shape[1:]))
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"row {key} of {self.shape[0]}")
            return self[i : i + 1][0]
        raise IndexError(f"FileRows takes an int or a slice, not {type(key).__name__}")

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _advise_random(data: np.ndarray, layout: dict) -> None:
    """madvise(MADV_RANDOM) on the regions of RANDOM_ACCESS arrays: a candidate's rows are read without the
    read-ahead meant for files read in order (which, on a cold page cache, reads and maps far more than asked)."""
    mm = getattr(data, "_mmap", None)
    advice = getattr(mmap, "MADV_RANDOM", None)
    if mm is None or advice is None:
        return
    page = mmap.PAGESIZE
    for name in RANDOM_ACCESS:
        spec = layout.get(name)
        if not spec:
            continue
        size = int(np.prod(spec["shape"], dtype=np.int64)) * np.dtype(spec["dtype"]).itemsize
        start = int(spec["offset"]) // page * page
        length = int(spec["offset"]) + size - start
        if size and length > 0:
            try:
                mm.madvise(advice, start, length)
            except (OSError, ValueError):
                return


# --- the first stage's graph ------------------------------------------------------------------------------


def write_graph(path: Path, blocks: Iterable[np.ndarray], n: int, d: int) -> str:
    """The HNSW graph of n passage vectors given a block at a time, written to `path` (fsynced); returns its
    sha256. The file holds the vectors: the segment maps them from its tail instead of storing them again."""
    import faiss

    graph = faiss.IndexHNSWFlat(d, GRAPH_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = GRAPH_EF_CONSTRUCTION
    for block in blocks:
        graph.add(np.ascontiguousarray(block, dtype=np.float32))
    if graph.ntotal != n:
        raise ValueError(f"the graph holds {graph.ntotal} vectors, expected {n}")
    faiss.write_index(graph, str(path))
    del graph
    with path.open("rb") as f:
        os.fsync(f.fileno())
        digest = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Graph:
    """A segment's HNSW graph, memory-mapped by FAISS (IO_FLAG_MMAP_IFC: neither the graph nor the vectors are
    copied into the heap), and its vectors as a numpy array mapped from the same file."""

    def __init__(self, path: Path, n: int, d: int) -> None:
        import faiss

        try:
            self.index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as exc:  # FAISS's own error for a file it cannot parse
            raise IndexCorruptError(f"{path} cannot be read as a graph ({str(exc).strip().splitlines()[-1][:200]}); "
                                    "`qa build` rebuilds it.") from None
        if self.index.ntotal != n or self.index.d != d:
            raise IndexCorruptError(f"{path} holds {self.index.ntotal} vectors of {self.index.d} dimensions, the segment "
                                    f"{n} of {d}; `qa build` rebuilds it.")
        size = path.stat().st_size
        self.vectors = np.memmap(path, dtype=np.float32, mode="r", offset=size - n * d * 4, shape=(n, d)) if n \
            else np.zeros((0, d), np.float32)
        storage = faiss.downcast_index(self.index.storage)
        if n and not np.array_equal(faiss.rev_swig_ptr(storage.get_xb(), d), self.vectors[0]):
            raise IndexCorruptError(f"{path} does not end with its vectors (not a graph this version wrote); "
                                    "`qa build` rebuilds it.")

    def search(self, query: np.ndarray, k: int, live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the k nearest vectors, best first; only rows where `live` is True when given."""
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = max(GRAPH_EF_SEARCH, k)
        if live is not None:
            bits = np.packbits(live, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(live), faiss.swig_ptr(bits))
            params.sel = selector
        scores, rows = self.index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep]


# --- an opened segment -------------------------------------------------------------------------------------


class Segment:
    """One segment, opened: its article table and memory-mapped arrays."""

    def __init__(self, folder: Path, name: str, meta: dict, arrays: dict[str, np.ndarray], base: Path,
                 graph: Graph | None = None) -> None:
        self.folder, self.name, self.meta = folder, name, meta
        self.dimension = int(meta["dimension"])
        self.passages = int(meta["passages"])
        self.rows = arrays["rows"]
        self.text = arrays["text"]
        self.spans = arrays["spans"]
        self.dense = arrays["dense"]
        self.sentences = arrays["sentences"]
        self.tokens = arrays["tokens"]
        self.owners = arrays["owners"]
        self.postings = Postings(**{k: arrays[k] for k in Postings.FILES})
        self.graph = graph
        self.order: list[str] = []
        self.articles: dict[str, ArticleInfo] = {}
        self.ranges: dict[str, tuple[int, int]] = {}
        self.stamps: dict[str, tuple[int, int] | None] = {}
        self.by_content: dict[str, list[str]] = {}
        self.aside: dict[str, set[str]] = {}  # word -> articles whose set-aside lines hold it
        folders: dict[str, str] = {}
        for a in meta["articles"]:
            info = ArticleInfo(a["id"], _abs(a["path"], base, folders), a["title"], a["date"], a["sha256"], a.get("url"),
                               a.get("source"), a.get("content"), tuple(a.get("aside") or ()))
            self.order.append(info.id)
            self.articles[info.id] = info
            self.ranges[info.id] = (int(a["rows"][0]), int(a["rows"][1]))
            self.stamps[info.id] = tuple(a["stamp"]) if a.get("stamp") else None  # type: ignore[assignment]
            if info.content:
                self.by_content.setdefault(info.content, []).append(info.id)
            for w in info.aside:
                self.aside.setdefault(w, set()).add(info.id)
        self.base = base
        self.meta = {k: v for k, v in meta.items() if k != "articles"}  # the table lives on as the objects above
        self._live: dict[frozenset, np.ndarray | None] = {}
        self.file_ids: tuple | None = None  # (inode, size, mtime) of its files when opened (qa/store.py)

    @classmethod
    def open(cls, index: Path, name: str, base: Path) -> Segment:
        folder = index / name
        meta_path, data_path = folder / META, folder / DATA
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            size = data_path.stat().st_size
            data = np.memmap(data_path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
            arrays = _views(data, meta["arrays"], data_path)
            _advise_random(data, meta["arrays"])
            if size:
                file = _Fd(data_path)
                for array in READ_NOT_MAPPED:
                    spec = meta["arrays"][array]
                    arrays[array] = FileRows(file, int(spec["offset"]), np.dtype(spec["dtype"]), tuple(spec["shape"]))
            graph = None
            if meta.get("graph"):
                graph = Graph(folder / GRAPH, int(meta["passages"]), int(meta["dimension"]))
                arrays["dense"] = graph.vectors
            segment = cls(folder, name, meta, arrays, base, graph)
        except IndexCorruptError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"Segment {folder} cannot be read ({type(exc).__name__}: {exc}); `qa build` "
                                    "rebuilds it.") from None
        segment.check()
        return segment

    def check(self) -> None:
        """Counts that must agree, so a wrong file is refused here and not by a strange error in a question."""
        n, s, t = self.passages, int(self.meta["sentences"]), int(self.meta["pieces"])
        problems = [
            self.rows.shape != (n + 1, len(ROW_COLUMNS)), self.dense.shape != (n, self.dimension),
            self.sentences.shape != (s, quantize.sentence_bytes(self.dimension)), self.spans.shape != (s, 2),
            self.tokens.shape != (t, quantize.row_bytes(self.dimension)), self.owners.shape != (t,),
            len(self.postings.lengths) != n, n and (int(self.rows[n, R_SENTENCE]) != s or int(self.rows[n, R_TOKEN]) != t
                                                    or int(self.rows[n, R_TEXT]) != len(self.text)),
            sum(c for _f, c in self.ranges.values()) != n,
        ]
        if any(problems):
            raise IndexCorruptError(f"Segment {self.folder} is inconsistent (its counts and arrays differ); `qa build` "
                                    "rebuilds it.")

    def live(self, deleted: frozenset[str]) -> np.ndarray | None:
        """Bool per row, False for the rows of `deleted` articles; None when every row is live."""
        gone = deleted & self.ranges.keys()
        if not gone:
            return None
        key = frozenset(gone)
        if key not in self._live:
            mask = np.ones(self.passages, dtype=bool)
            for a in gone:
                first, count = self.ranges[a]
                mask[first : first + count] = False
            self._live[key] = mask
        return self._live[key]

    def sentences_of(self, article_ids) -> int:
        """Sentences of these articles' passages."""
        total = 0
        for a in article_ids:
            first, count = self.ranges[a]
            total += int(self.rows[first + count, R_SENTENCE] - self.rows[first, R_SENTENCE])
        return total

    def entry(self, article_id: str, first: int) -> dict:
        """The article's line of segment.json, for a segment that takes its rows from `first` on."""
        return _article_entry(self.articles[article_id], self.stamps[article_id], first, self.ranges[article_id][1],
                              self.base)

    def chunk(self, local: int) -> Chunk:
        a, paragraph, start, end, t0, s0, _k0 = self.rows[local].tolist()
        t1, s1 = int(self.rows[local + 1, R_TEXT]), int(self.rows[local + 1, R_SENTENCE])
        text = bytes(self.text[t0:t1]).decode("utf-8")
        spans = self.spans[s0:s1].tolist()
        return Chunk(self.order[a], paragraph, start, end, text, tuple(Span(x, y) for x, y in spans))

    def sentence_range(self, local: int) -> tuple[int, int]:
        return int(self.rows[local, R_SENTENCE]), int(self.rows[local + 1, R_SENTENCE])

    def token_range(self, local: int) -> tuple[int, int]:
        return int(self.rows[local, R_TOKEN]), int(self.rows[local + 1, R_TOKEN])


# --- writing ---------------------------------------------------------------------------------------------


def _article_entry(info: ArticleInfo, stamp, first: int, count: int, base: Path) -> dict:
    return {**asdict(info), "path": _rel(info.path, base), "aside": list(info.aside), "rows": [first, count],
            "stamp": list(stamp) if stamp else None}


def segment_name(index: Path, entries: Sequence[dict], model: str, chunking: dict) -> str:
    """A content hash, so the same articles give the same folder name (no churn in a committed index/), with a
    suffix when that name is taken (a repair of a damaged index of the same content)."""
    text = json.dumps([model, chunking, quantize.CODEC, [(e["id"], e["sha256"], e["rows"]) for e in entries]])
    base = SEGMENT_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:12]
    name, n = base, 1
    while (index / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


@dataclass
class Written:
    """A segment written into a temporary folder of this process, not yet in place (`publish`)."""

    tmp: Path
    entries: list[dict]
    files: dict[str, dict]  # file name -> {sha256, bytes}
    counts: dict


def _write_segment(index: Path, arrays: dict[str, ArraySource], entries: list[dict], counts: dict, dimension: int) -> Written:
    """Write a segment into a temporary folder `.seg-<pid>-<random>.tmp` (left alone by other writers' clean-up
    while this process lives). A segment of GRAPH_MIN_PASSAGES or more keeps its `dense` array in its graph file."""
    tmp = index / f".{SEGMENT_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.tmp"
    tmp.mkdir(parents=True)
    try:
        graph_sha = None
        if counts["passages"] >= GRAPH_MIN_PASSAGES:
            graph_sha = write_graph(tmp / GRAPH, arrays["dense"].blocks, counts["passages"], dimension)
            arrays = {k: v for k, v in arrays.items() if k != "dense"}
        layout, sha, size = _write_data(tmp / DATA, arrays)
        meta = {"format": 1, "dimension": dimension, "codec": quantize.CODEC, **counts, "articles": entries,
                "arrays": layout, "data": {"bytes": size, "sha256": sha}, "graph": graph_sha is not None}
        text = json.dumps(meta, ensure_ascii=False, indent=1) + "\n"
        (tmp / META).write_text(text, encoding="utf-8")
        with (tmp / META).open("rb") as fh:
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {META: {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}, DATA: {"sha256": sha}}
    if graph_sha is not None:
        files[GRAPH] = {"sha256": graph_sha}
    return Written(tmp, entries, files, counts)


def publish(index: Path, written: Written, model: str, chunking: dict) -> tuple[str, dict]:
    """Move a written segment into place under its name; returns (name, {"name/file": {sha256, bytes, mtime_ns}}).
    Call in the writer's turn (the name is chosen among those in the folder)."""
    name = segment_name(index, written.entries, model, chunking)
    os.rename(written.tmp, index / name)
    _fsync_dir(index)
    files = {}
    for fname, meta in written.files.items():
        st = (index / name / fname).stat()
        files[f"{name}/{fname}"] = {"sha256": meta["sha256"], "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return name, files


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class SegmentBuilder:
    """Collects new articles' passages in the compact stored form (tokens are compressed as they come), then
    writes them as one segment."""

    dimension: int
    base: Path  # the index folder's parent: article paths are stored relative to it
    entries: list[dict] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)
    text: list[bytes] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    dense: list[np.ndarray] = field(default_factory=list)
    sentences: list[np.ndarray] = field(default_factory=list)
    tokens: list[np.ndarray] = field(default_factory=list)
    owners: list[np.ndarray] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    _text_bytes: int = 0
    _sentence_count: int = 0
    _token_count: int = 0

    @property
    def passages(self) -> int:
        return len(self.rows)

    def add(self, article: NewArticle) -> None:
        first = len(self.rows)
        number = len(self.entries)
        for c, v in zip(article.chunks, article.vectors):
            data = c.text.encode("utf-8")
            self.rows.append([number, c.paragraph, c.start, c.end, self._text_bytes, self._sentence_count, self._token_count])
            self.text.append(data)
            self.texts.append(c.text)
            self._text_bytes += len(data)
            self.spans.extend((s.start, s.end) for s in c.sentences)
            self._sentence_count += len(c.sentences)
            self.dense.append(np.asarray(v.passage, dtype=np.float32))
            self.sentences.append(quantize.encode8(np.asarray(v.sentences, dtype=np.float32).reshape(-1, self.dimension)))
            self.tokens.append(quantize.encode(np.asarray(v.tokens, dtype=np.float32).reshape(-1, self.dimension)))
            self.owners.append(np.asarray(v.token_sentence, dtype=np.uint8))
            self._token_count += len(v.tokens)
        self.entries.append(_article_entry(article.info, article.stamp, first, len(article.chunks), self.base))

    def write(self, index: Path) -> Written:
        d = self.dimension
        n = len(self.rows)
        rows = np.array(self.rows + [[-1, 0, 0, 0, self._text_bytes, self._sentence_count, self._token_count]], np.int64)
        dense = np.stack(self.dense) if n else np.zeros((0, d), np.float32)
        arrays = {
            "rows": ArraySource.of(rows),
            "text": ArraySource.of(np.frombuffer(b"".join(self.text), dtype=np.uint8)),
            "spans": ArraySource.of(np.array(self.spans, np.int64).reshape(-1, 2)),
            "dense": ArraySource.of(dense),
            "sentences": ArraySource.of(np.concatenate(self.sentences) if n else
                                        np.zeros((0, quantize.sentence_bytes(d)), np.uint8)),
            "tokens": ArraySource.of(np.concatenate(self.tokens) if n else np.zeros((0, quantize.row_bytes(d)), np.uint8)),
            "owners": ArraySource.of(np.concatenate(self.owners) if n else np.zeros(0, np.uint8)),
        }
        postings = Postings.build(self.texts)
        arrays.update({k: ArraySource.of(np.asarray(getattr(postings, k))) for k in Postings.FILES})
        counts = {"passages": n, "sentences": self._sentence_count, "pieces": self._token_count}
        return _write_segment(index, arrays, self.entries, counts, d)


def merge(index: Path, parts: Sequence[tuple[Segment, frozenset[str]]]) -> Written:
    """One segment made of the live articles of several, in their order: rows are copied, postings merged, nothing
    embedded or tokenized again. Written into a temporary folder (`publish` puts it in place)."""
    d = parts[0][0].dimension
    plan = []  # (segment, [(first, count) of its live articles in row order], ids)
    for seg, deleted in parts:
        keep = [a for a in seg.order if a not in deleted]
        plan.append((seg, [seg.ranges[a] for a in keep], keep))
    entries: list[dict] = []
    n = s = t = text_bytes = 0
    row_blocks: list[np.ndarray] = []
    for seg, ranges, keep in plan:
        for (first, count), a in zip(ranges, keep):
            entries.append(seg.entry(a, n))
            block = np.array(seg.rows[first : first + count], dtype=np.int64)
            if count:
                block[:, R_ARTICLE] = len(entries) - 1
                block[:, R_TEXT] += text_bytes - int(seg.rows[first, R_TEXT])
                block[:, R_SENTENCE] += s - int(seg.rows[first, R_SENTENCE])
                block[:, R_TOKEN] += t - int(seg.rows[first, R_TOKEN])
            row_blocks.append(block)
            n += count
            text_bytes += int(seg.rows[first + count, R_TEXT] - seg.rows[first, R_TEXT])
            s += int(seg.rows[first + count, R_SENTENCE] - seg.rows[first, R_SENTENCE])
            t += int(seg.rows[first + count, R_TOKEN] - seg.rows[first, R_TOKEN])
    row_blocks.append(np.array([[-1, 0, 0, 0, text_bytes, s, t]], np.int64))

    def copy(name: str, column: int | None) -> Iterator[np.ndarray]:
        """The live rows of array `name` of every part; `column` of `rows` maps passages to the array's rows."""
        for seg, ranges, _keep in plan:
            source = getattr(seg, name)
            for first, count in ranges:
                lo, hi = (first, first + count) if column is None else \
                    (int(seg.rows[first, column]), int(seg.rows[first + count, column]))
                for b0 in range(lo, hi, COPY_ROWS):
                    yield np.asarray(source[b0 : min(hi, b0 + COPY_ROWS)])

    dense_src = ArraySource(np.dtype(np.float32), (n, d), copy("dense", None))
    arrays = {
        "rows": ArraySource(np.dtype(np.int64), (n + 1, len(ROW_COLUMNS)), row_blocks),
        "text": ArraySource(np.dtype(np.uint8), (text_bytes,), copy("text", R_TEXT)),
        "spans": ArraySource(np.dtype(np.int64), (s, 2), copy("spans", R_SENTENCE)),
        "dense": dense_src,
        "sentences": ArraySource(np.dtype(np.uint8), (s, quantize.sentence_bytes(d)), copy("sentences", R_SENTENCE)),
        "tokens": ArraySource(np.dtype(np.uint8), (t, quantize.row_bytes(d)), copy("tokens", R_TOKEN)),
        "owners": ArraySource(np.dtype(np.uint8), (t,), copy("owners", R_TOKEN)),
    }
    kept_rows = []
    for seg, ranges, _keep in plan:
        kept_rows.append((seg.postings, np.concatenate([np.arange(f, f + c) for f, c in ranges]) if ranges
                          else np.zeros(0, np.int64)))
    postings = Postings.merge(kept_rows)
    arrays.update({k: ArraySource.of(np.asarray(getattr(postings, k))) for k in Postings.FILES})
    counts = {"passages": n, "sentences": s, "pieces": t}
    return _write_segment(index, arrays, entries, counts, d)
