"""The index on disk: FAISS vectors, the passage table, the lexical index and manifest.json.

Atomic writes: every build writes its files under new names (suffixed by a generation id), then
replaces manifest.json in one `os.replace`; files the new manifest does not name are removed after.
A crash at any point leaves a manifest that names a complete set of files. The manifest records each
file's sha256, so a truncated or corrupt file is caught on load.

Writers hold the folder's writer lock (qa/locks.py) for a whole build, so the clean-up after one build
can only ever delete files of the previous generation or of builds that died; the commit and clean-up
also hold the reader lock exclusively, and `load_index` holds it shared, so no reader loses a file it is
reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .articles import aside_words, story_key
from .chunking import chunk_article
from .embedding import content_mask
from .errors import IndexCorruptError, IndexMissingError, IndexWriteError
from .lexical import LexicalIndex
from .locks import LOCK_FILES, read_lock
from .types import Article, ArticleInfo, Chunk, Span

FORMAT_VERSION = 3  # 3: articles carry content (duplicate check) and aside (headline-only words)
MANIFEST = "manifest.json"
REBUILD_HINT = "`qa build` rebuilds it (a damaged index is rebuilt from the articles)"
PART_PREFIXES = frozenset({"passages", "dense", "sentences", "tokens", "tokensentences", "lexical"})


@dataclass(frozen=True)
class ChunkVectors:
    """What the model gives for one passage: its vector, one per sentence, and its content word pieces."""

    passage: np.ndarray  # (dim,)
    sentences: np.ndarray  # (sentences, dim)
    tokens: np.ndarray  # (content pieces, dim) float16, unit rows
    token_sentence: np.ndarray  # (content pieces,) index of the sentence each piece is in


@dataclass
class StoredIndex:
    """An index in memory: what `build_index` makes and `load_index` reads back."""

    model: str
    dimension: int
    chunking: dict
    sources: list[str]
    articles: dict[str, ArticleInfo]
    chunks: list[Chunk]
    passage_vectors: np.ndarray  # (passages, dim), unit rows
    sentence_vectors: np.ndarray  # (sentences, dim), one row per sentence of each chunk, in order
    token_vectors: np.ndarray  # (pieces, dim): content word pieces of each chunk, in order; float16 as on disk
    # until token_matrix (made when an index is loaded or first queried) replaces it with float32
    token_counts: np.ndarray  # (passages,) pieces per chunk
    token_sentence: np.ndarray  # (pieces,) int16: sentence of each piece within its chunk
    lexical: LexicalIndex
    manifest: dict = field(default_factory=dict)
    embedded_by: dict = field(default_factory=dict)  # backend and precision of the model that embedded the passages
    _faiss: object = None
    root: Path | None = None  # the project root (the index folder's parent): citation paths are relative to it

    def __post_init__(self) -> None:
        counts = [len(c.sentences) for c in self.chunks]
        self.sentence_first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.token_first = np.concatenate([[0], np.cumsum(self.token_counts)]).astype(np.int64)

    @cached_property
    def _spaced_texts(self) -> list[str]:
        return [" ".join(c.text.split()) for c in self.chunks]

    def passage_holding(self, text: str) -> int | None:
        """The row of the first passage that holds `text` verbatim (whitespace aside): an earlier answer sentence's
        passage. The passages' texts are normalised once per index (a scan of 2,249 passages took 15 ms)."""
        wanted = " ".join(text.split())
        return next((r for r, t in enumerate(self._spaced_texts) if wanted and wanted in t), None)

    @cached_property
    def acronyms(self) -> dict[str, str]:
        """Words the passages write in capitals only, by their lower-case form: {"copa": "COPA", "cpd": "CPD"}. A
        refusal that repeats a question typed in lower case writes them as the article does ("what FOX 32 was
        reporting"). Other capitalised words are left as typed: "Office" and "Emergency" are names in one article
        and common words in a question."""
        forms: dict[str, str] = {}
        other: set[str] = set()
        for chunk in self.chunks:
            for w in re.findall(r"[A-Za-z][A-Za-z’'-]*", chunk.text):
                stem = re.sub(r"[’']s$", "", w)
                if len(stem) >= 2 and stem.isupper():
                    forms.setdefault(stem.lower(), stem)
                else:
                    other.add(stem.lower())
        return {low: w for low, w in forms.items() if low not in other}

    @cached_property
    def token_matrix(self) -> np.ndarray:
        """token_vectors as float32, made on first use: numpy multiplies float16 ~10x slower, and a build that
        answers no question (`qa build`) never needs it. The float32 copy then replaces the float16 one, so a
        serving process holds one copy (float16 is the file format; saving converts)."""
        matrix = np.ascontiguousarray(self.token_vectors, dtype=np.float32)
        self.token_vectors = matrix
        return matrix

    @cached_property
    def aside_vocabulary(self) -> set[str]:
        """Words that the articles hold only in lines that are not story text (related-story headlines, promos)."""
        return {w for a in self.articles.values() for w in a.aside} - set(self.lexical.vocabulary)

    @cached_property
    def article_rows(self) -> dict[str, np.ndarray]:
        """Each article's passage rows, in row order."""
        rows: dict[str, list[int]] = {}
        for i, c in enumerate(self.chunks):
            rows.setdefault(c.article_id, []).append(i)
        return {a: np.array(r, dtype=np.int64) for a, r in rows.items()}

    def rows_of(self, article_ids) -> np.ndarray:
        """Passage rows of these articles, in row order."""
        parts = [self.article_rows.get(a, np.zeros(0, np.int64)) for a in dict.fromkeys(article_ids)]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def vectors_of(self, row: int) -> ChunkVectors:
        s0, s1 = self.sentence_first[row], self.sentence_first[row + 1]
        t0, t1 = self.token_first[row], self.token_first[row + 1]
        return ChunkVectors(self.passage_vectors[row], self.sentence_vectors[s0:s1], self.token_vectors[t0:t1],
                            self.token_sentence[t0:t1])

    @property
    def faiss_index(self):
        if self._faiss is None:
            import faiss

            index = faiss.IndexFlatIP(self.dimension)  # exact inner product = cosine on unit vectors
            if len(self.passage_vectors):
                index.add(self.passage_vectors)
            self._faiss = index
        return self._faiss


def _rel(path: str, base: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(p.resolve())


def _abs(path: str, base: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (base / p).resolve())


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def embed_chunks(chunks: Sequence[Chunk], embedder, *, progress: bool = False, batch: int = 1024) -> list[ChunkVectors]:
    """One forward pass per passage. Sentence vectors are the mean of the sentence's word-piece vectors
    in the context of its passage; a one-sentence passage's sentence vector is its passage vector."""
    import sys

    from tqdm import tqdm

    out: list[ChunkVectors] = []
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
            out.append(ChunkVectors(vec, sentences, _unit(tok[keep]).astype(np.float16), owner[keep].astype(np.int16)))
    bar.close()
    return out


def build_index(
    articles: Sequence[Article | ArticleInfo],
    *,
    embedder,
    model: str,
    chunking: dict,
    sources: Sequence[str],
    previous: StoredIndex | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda _m: None,
    before_embedding: Callable[[Sequence[Chunk]], None] | None = None,
) -> StoredIndex:
    """Chunk and embed `articles`. Articles whose file is unchanged since `previous` (same sha256, same
    model and chunking) keep their passages and vectors: only changed articles are embedded. An ArticleInfo of
    `previous` stands for an article kept as it is (adding or removing one article reads no other file).
    `before_embedding(chunks)` is called once every passage is known and before any is embedded."""
    old_rows: dict[tuple[str, str], list[int]] = {}
    if previous is not None and previous.model == model and previous.chunking == chunking:
        for i, c in enumerate(previous.chunks):
            info = previous.articles[c.article_id]
            old_rows.setdefault((info.id, info.sha256), []).append(i)
    chunks: list[Chunk] = []
    vectors: list[ChunkVectors | None] = []
    infos: dict[str, ArticleInfo] = {}
    for article in articles:
        if isinstance(article, ArticleInfo):  # an article of `previous`, kept as it is (adding or removing others)
            infos[article.id] = article
        else:
            infos[article.id] = ArticleInfo(article.id, article.path, article.title, article.date, article.sha256,
                                            article.url, article.source, story_key(article), aside_words(article))
        kept = old_rows.get((article.id, article.sha256))
        if kept is not None:
            chunks.extend(previous.chunks[r] for r in kept)
            vectors.extend(previous.vectors_of(r) for r in kept)
            continue
        if isinstance(article, ArticleInfo):
            raise ValueError(f"article {article.id} is not in the previous index, so it must be given as an Article")
        new = chunk_article(article, max_tokens=chunking["max_tokens"], count_tokens=embedder.count_tokens,
                            max_sentences=chunking["max_sentences"])
        chunks.extend(new)
        vectors.extend([None] * len(new))
    todo = [i for i, v in enumerate(vectors) if v is None]
    if before_embedding is not None:
        before_embedding(chunks)  # e.g. refuse now, not after minutes of embedding, when the disk is too full
    if todo:
        reused = len(chunks) - len(todo)
        how = {"torch": "PyTorch", "onnx": "onnxruntime"}.get(getattr(embedder, "backend", ""), "the embedder")
        if getattr(embedder, "precision", "float32") != "float32":
            how += f", {embedder.precision}"
        log(f"Embedding {len(todo)} passages with {how}" + (f" ({reused} reused from the previous index)" if reused else ""))
        for i, v in zip(todo, embed_chunks([chunks[i] for i in todo], embedder, progress=progress)):
            vectors[i] = v
    dim = len(vectors[0].passage) if vectors else embedder.dimension
    empty = np.zeros((0, dim), np.float32)
    embedded_by = {"backend": getattr(embedder, "backend", "unknown"), "precision": getattr(embedder, "precision", "float32")}
    if previous is not None and not todo:
        embedded_by = previous.embedded_by or embedded_by
    return StoredIndex(
        model=model, dimension=dim, chunking=dict(chunking), sources=list(sources), articles=infos, chunks=chunks,
        embedded_by=embedded_by,
        passage_vectors=np.ascontiguousarray(np.stack([v.passage for v in vectors]) if vectors else empty, dtype=np.float32),
        sentence_vectors=np.ascontiguousarray(np.concatenate([v.sentences for v in vectors]) if vectors else empty, dtype=np.float32),
        token_vectors=np.concatenate([v.tokens for v in vectors]).astype(np.float16, copy=False) if vectors else empty.astype(np.float16),
        token_counts=np.array([len(v.tokens) for v in vectors], dtype=np.int64),
        token_sentence=np.concatenate([v.token_sentence for v in vectors]).astype(np.int16) if vectors else np.zeros(0, np.int16),
        lexical=LexicalIndex.build([c.text for c in chunks]),
    )


# --- on disk ---------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("article-qa", "faiss-cpu", "bm25s", "sentence-transformers", "numpy", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _chunk_row(c: Chunk, tokens: int) -> dict:
    return {"article": c.article_id, "paragraph": c.paragraph, "start": c.start, "end": c.end,
            "sentences": [[s.start, s.end] for s in c.sentences], "tokens": tokens, "text": c.text}


def _generation(folder: Path, index: StoredIndex, passages_text: str) -> str:
    """A content hash, so rebuilding the same corpus gives the same file names (no churn in a committed
    index/); suffixed when files of that name already exist (a repair of a damaged index of the same content)."""
    base = hashlib.sha256((index.model + json.dumps(index.chunking, sort_keys=True) + passages_text).encode()).hexdigest()[:12]
    gen, n = base, 1
    while any((folder / f"{prefix}-{gen}{ext}").exists() for prefix, ext in _PART_NAMES.values()):
        n += 1
        gen = f"{base}-{n}"
    return gen


_PART_NAMES = {  # part -> (file name prefix, extension)
    "passages": ("passages", ".jsonl"),
    "dense": ("dense", ".faiss"),
    "sentences": ("sentences", ".npy"),
    "tokens": ("tokens", ".npy"),
    "token_sentences": ("tokensentences", ".npy"),
    "lexical": ("lexical", ""),
}


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def remove_unreferenced(folder: Path, keep: set[str]) -> int:
    """Delete index parts and temporary files in `folder` that are not in `keep`: the previous generation, and
    what builds that died left behind. Call with the writer lock held. Returns the bytes freed."""
    freed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        name = entry.name
        garbage = (name.split("-")[0] in PART_PREFIXES and name not in keep) or name.startswith(f".{MANIFEST}.") \
            or name.startswith(".probe-")
        if garbage:
            try:
                freed += sum(f.stat().st_size for f in ([entry] if entry.is_file() else entry.rglob("*")) if f.is_file())
            except OSError:
                pass
            _remove(entry)
    return freed


def estimated_bytes(chunks: Sequence[Chunk], dimension: int) -> int:
    """A generous estimate of an index's size on disk, to refuse a build before embedding when the disk is too
    full: token vectors (about one content piece per 5 characters, float16) dominate."""
    chars = sum(len(c.text) for c in chunks)
    sentences = sum(len(c.sentences) for c in chunks)
    return int(1.5 * (chars / 5 * dimension * 2 + (len(chunks) + sentences) * dimension * 4 + chars * 3)) + (1 << 20)


def check_room(folder: Path, needed: int) -> None:
    """IndexWriteError, before any embedding, when `folder` cannot take an index of about `needed` bytes."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise IndexWriteError(
            f"Not enough disk space for the index in {folder}/: it needs about {needed / 1e6:,.0f} MB and "
            f"{free / 1e6:,.0f} MB are free. Free some space or choose another folder with --index / QA_INDEX_DIR. "
            "The previous index is intact."
        )


def save_index(index: StoredIndex, folder: Path) -> dict:
    """Write the index atomically; returns the manifest. The caller holds the folder's writer lock (Engine
    does); a failed write removes what it wrote and raises IndexWriteError, leaving the previous index."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexWriteError(f"Cannot create the index folder {folder}/ ({exc.strerror or exc}); choose another "
                              "folder with --index / QA_INDEX_DIR.") from None
    base = folder.resolve().parent
    passages_text = "".join(json.dumps(_chunk_row(c, int(n)), ensure_ascii=False) + "\n" for c, n in zip(index.chunks, index.token_counts))
    gen = _generation(folder, index, passages_text)
    names = {part: f"{prefix}-{gen}{ext}" for part, (prefix, ext) in _PART_NAMES.items()}
    tmp = folder / f".{MANIFEST}.{gen}.tmp"
    try:
        manifest = _write_parts(index, folder, names, passages_text, gen, base)
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        for name in [*names.values(), tmp.name]:
            _remove(folder / name)
        raise IndexWriteError(
            f"Cannot write the index in {folder}/ ({exc.strerror or exc}{': ' + exc.filename if getattr(exc, 'filename', None) else ''}); "
            "free some space or make the folder writable, or choose another with --index / QA_INDEX_DIR. "
            "The previous index is intact."
        ) from None
    with read_lock(folder, exclusive=True):
        os.replace(tmp, folder / MANIFEST)  # the commit point
        _fsync_dir(folder)
        remove_unreferenced(folder, set(names.values()) | {MANIFEST, *LOCK_FILES})
    index.manifest = manifest
    index.root = base
    return manifest


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


def _write_parts(index: StoredIndex, folder: Path, names: dict[str, str], passages_text: str, gen: str, base: Path) -> dict:
    import faiss

    (folder / names["passages"]).write_text(passages_text, encoding="utf-8")
    try:
        faiss.write_index(index.faiss_index, str(folder / names["dense"]))
    except RuntimeError as exc:  # faiss reports a failed write as a RuntimeError
        raise OSError(f"writing {names['dense']} failed: {str(exc).splitlines()[-1] if str(exc) else exc}") from None
    np.save(folder / names["sentences"], index.sentence_vectors, allow_pickle=False)
    np.save(folder / names["tokens"], index.token_vectors.astype(np.float16, copy=False), allow_pickle=False)
    np.save(folder / names["token_sentences"], index.token_sentence, allow_pickle=False)
    index.lexical.save(folder / names["lexical"])
    files: dict[str, dict] = {}
    for key, name in names.items():
        target = folder / name
        for f in sorted([target] if target.is_file() else target.rglob("*")):
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
                files[f.relative_to(folder).as_posix()] = {"sha256": _sha256(f), "bytes": f.stat().st_size}
    return {
        "format_version": FORMAT_VERSION,
        "generation": gen,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": index.model, "dimension": index.dimension},
        "chunking": index.chunking,
        "embedded_by": index.embedded_by,
        "sources": [_rel(s, base) for s in index.sources],
        "counts": {"articles": len(index.articles), "passages": len(index.chunks), "sentences": int(len(index.sentence_vectors))},
        "articles": [
            {**asdict(a), "path": _rel(a.path, base), "aside": list(a.aside)} for a in index.articles.values()
        ],
        "parts": names,
        "files": files,
        "versions": _versions(),
    }


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"No index at {folder}/ ({MANIFEST} is missing); build one with `qa build ARTICLES...`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        problem = _manifest_problem(manifest)
    except (OSError, ValueError) as exc:
        problem = str(exc)
    if problem:
        raise IndexCorruptError(f"{path} is not a valid index manifest ({problem}); {REBUILD_HINT}.")
    return manifest


_MANIFEST_SHAPE = {"format_version": int, "model": dict, "chunking": dict, "sources": list, "articles": list,
                   "counts": dict, "parts": dict, "files": dict}
_ARTICLE_KEYS = ("id", "path", "title", "date", "sha256")
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
    for a in manifest["articles"]:
        if not isinstance(a, dict) or any(k not in a for k in _ARTICLE_KEYS):
            return f"an entry of 'articles' lacks one of {list(_ARTICLE_KEYS)}"
    missing = [k for k in _PART_NAMES if k not in manifest["parts"]]
    if missing:
        return f"'parts' lacks {missing}"
    for key, name in manifest["parts"].items():
        if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
            return f"'parts'[{key!r}] is not a file name of this folder: {name!r}"
    for name, meta in manifest["files"].items():
        if not _SAFE_PATH.fullmatch(name) or ".." in name.split("/"):
            return f"'files' names {name!r}, which is not a file of this folder"
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str) or not isinstance(meta.get("bytes"), int):
            return f"'files'[{name!r}] needs a 'sha256' string and a 'bytes' count"
    for a in manifest["articles"]:
        if not all(isinstance(a[k], str) for k in ("id", "path", "title", "sha256")) \
                or not all(isinstance(a.get(k), (str, type(None))) for k in ("date", "url", "source", "content")) \
                or not isinstance(a.get("aside", []), list):
            return "an entry of 'articles' has a field of the wrong type"
    if not all(isinstance(x, str) for x in manifest["sources"]):
        return "'sources' must be a list of paths"
    return None


def load_index(folder: Path, manifest: dict | None = None) -> StoredIndex:
    """Read an index back, checking every file against the manifest. Embeds nothing. Without `manifest` the
    manifest is read and its files loaded under the folder's reader lock (a concurrent build cannot delete
    them meanwhile); a caller that passes one holds that lock or the writer lock itself."""
    if manifest is None:
        with read_lock(folder):
            return _load(folder, read_manifest(folder))
    return _load(folder, manifest)


def _load(folder: Path, manifest: dict) -> StoredIndex:
    import faiss

    base = folder.resolve().parent
    for name, meta in manifest["files"].items():
        f = folder / name
        if not f.is_file():
            raise IndexCorruptError(f"{f} is missing; {REBUILD_HINT}.")
        if f.stat().st_size != meta["bytes"] or _sha256(f) != meta["sha256"]:
            raise IndexCorruptError(f"{f} is truncated or corrupt (its size or sha256 differs from {MANIFEST}); {REBUILD_HINT}.")
    parts = manifest["parts"]
    try:
        chunks, token_counts = [], []
        with (folder / parts["passages"]).open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                token_counts.append(r["tokens"])
                chunks.append(Chunk(r["article"], r["paragraph"], r["start"], r["end"], r["text"],
                                    tuple(Span(s, e) for s, e in r["sentences"])))
        dense = faiss.read_index(str(folder / parts["dense"]))
        passage_vectors = dense.reconstruct_n(0, dense.ntotal) if dense.ntotal else np.zeros((0, dense.d), np.float32)
        sentence_vectors = np.load(folder / parts["sentences"], allow_pickle=False)
        token_vectors = np.load(folder / parts["tokens"], allow_pickle=False)
        token_sentence = np.load(folder / parts["token_sentences"], allow_pickle=False)
        lexical = LexicalIndex.load(folder / parts["lexical"])
        articles = {a["id"]: ArticleInfo(a["id"], _abs(a["path"], base), a["title"], a["date"], a["sha256"],
                                         a.get("url"), a.get("source"), a.get("content"), tuple(a.get("aside") or ()))
                    for a in manifest["articles"]}
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"The index in {folder}/ cannot be read ({type(exc).__name__}: {exc}); {REBUILD_HINT}.") from None
    if (dense.ntotal != len(chunks) or len(sentence_vectors) != sum(len(c.sentences) for c in chunks)
            or len(token_vectors) != sum(token_counts) or len(token_sentence) != len(token_vectors)):
        raise IndexCorruptError(f"The index in {folder}/ is inconsistent (vector and passage counts differ); {REBUILD_HINT}.")
    index = StoredIndex(
        model=manifest["model"]["name"], dimension=int(manifest["model"]["dimension"]), chunking=manifest["chunking"],
        sources=[_abs(s, base) for s in manifest["sources"]], articles=articles, chunks=chunks,
        passage_vectors=np.ascontiguousarray(passage_vectors, dtype=np.float32), sentence_vectors=sentence_vectors,
        token_vectors=token_vectors.astype(np.float16, copy=False), token_counts=np.asarray(token_counts, dtype=np.int64),
        token_sentence=token_sentence,
        lexical=lexical, manifest=manifest, _faiss=dense, root=base,
        embedded_by=manifest.get("embedded_by") if isinstance(manifest.get("embedded_by"), dict) else {},
    )
    del token_vectors
    # float32 now, while little else is allocated: made on the first query instead, it overlapped the query
    # encoder's first allocations and raised a SQuAD process's peak RSS from 618 to 748 MB
    index.token_matrix  # noqa: B018 - the property converts and keeps one copy
    return index
