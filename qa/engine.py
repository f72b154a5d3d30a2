"""The engine: open (or build, or refresh) the index for a corpus, then answer questions.

`Engine.open` compares the manifest with the current articles and settings. A changed, added or removed
article, another model or other chunking settings is never served silently: the index is rebuilt,
re-embedding only the articles that changed, or, with `rebuild="never"`, refused with a message naming
what changed. Opening a fresh index embeds nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from .answer import compose_answer, display_path
from .articles import ArticleFiles, article_ids, aside_words, find_article_files, read_article, story_key
from .chunking import chunk_article
from .config import Settings, resolve_settings
from .embedding import Embedder, content_mask, make_embedder
from .errors import (
    ArticleError,
    ArticleNotFoundError,
    ArticleTooLargeError,
    ConfigError,
    DuplicateArticleError,
    IndexCorruptError,
    IndexMissingError,
    QAError,
    StaleIndexError,
)
from .decide import Decision, decide
from .grounding import unrecognised_words
from .locks import write_lock
from .pipeline import Resolved, Retrieved, resolve_question, retrieve
from .reading import SentenceReading, read
from .retrieval import FusionMethod, Query, Retriever
from .store import (
    MANIFEST,
    FilesStore,
    NewArticle,
    StoredIndex,
    check_room,
    embed_chunks,
    estimated_bytes,
    merge_plan,
    read_format3,
    read_manifest,
    remove_unreferenced,
)
from .types import Answer, Article, ArticleInfo
from .validation import Turn, check_k, check_question

Log = Callable[[str], None]
MergeMode = Literal["background", "small", "none"]


def give_back_free_memory() -> None:
    """Return the C heap's free pages to the system (glibc's malloc_trim; elsewhere nothing). An add embeds its
    passages on a thread of the app, whose malloc arena keeps what it freed: measured in the app at 1,000 articles,
    the server's memory grew by 32 MB over an add, by 21 MB trimmed after it. Took 0.2-1.2 ms there."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _single_threaded_blas() -> None:
    """A query multiplies small matrices: BLAS threads only compete with onnxruntime's (measured: MaxSim
    12 -> 2 ms, a SQuAD query 50 -> 26 ms p50 on 2 busy cores). Process-wide, as BLAS pools are."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def build_precision(setting: str) -> str:
    """QA_BUILD_PRECISION resolved: auto is bfloat16 where the CPU has bfloat16 matrix instructions."""
    if setting != "auto":
        return setting
    from .embedding import bfloat16_in_hardware

    return "bfloat16" if bfloat16_in_hardware() else "float32"


def build_embedder(query_embedder: Embedder, model: str, precision: str = "float32") -> Embedder:
    """What embeds passages: PyTorch when it is installed, since its batched encode is at least as fast as
    onnxruntime's in float32 and 2.7x that in bfloat16 on CPUs with AMX, while one short question is faster
    on ONNX. The vectors agree (float32: cosine 1.0000; bfloat16: >= 0.9999), so an index built by one
    serves queries of the other."""
    from importlib.util import find_spec

    if not (find_spec("torch") and find_spec("sentence_transformers")):
        return query_embedder
    if query_embedder.backend == "torch" and getattr(query_embedder, "precision", "float32") == precision:
        return query_embedder
    if query_embedder.backend not in ("onnx", "torch"):
        return query_embedder  # an embedder of the caller's (tests' fakes): it embeds its own passages
    return _passage_embedder(model, precision)


@lru_cache(maxsize=2)
def _passage_embedder(model: str, precision: str) -> Embedder:
    """One loaded model per (model, precision) and process: a process that rebuilds often loads it once."""
    from .embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model, precision=precision)


INLINE_MERGE_PASSAGES = 25_000  # `qa add` / `qa remove` merge segments themselves only up to this size (~ seconds)


def _info(article: Article) -> ArticleInfo:
    return ArticleInfo(article.id, article.path, article.title, article.date, article.sha256, article.url,
                       article.source, story_key(article), aside_words(article))


def _stamp_of(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


@dataclass
class Corpus:
    """The articles an index is to hold: files listed (read only when the index's stamp of one differs), or articles
    already read (SQuAD)."""

    files: list[tuple[str, Path]] | None = None  # (id, path)
    articles: list[Article] | None = None
    max_bytes: int = 1_000_000
    _paths: dict = field(default_factory=dict, repr=False)
    _read: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.files if self.files is not None else self.articles or [])

    def ids(self) -> list[str]:
        return [i for i, _ in self.files] if self.files is not None else [a.id for a in self.articles or []]

    def read(self, article_id: str) -> tuple[Article, tuple[int, int] | None]:
        """An article with the stamp (size, mtime) its file had before it was read (read once while unchanged: a
        build checks the corpus before and after taking the writer lock)."""
        if self.files is None:
            return next(a for a in self.articles or [] if a.id == article_id), None
        path = self._paths.setdefault("", dict(self.files))[article_id]  # type: ignore[index]
        stamp = _stamp_of(path)
        kept = self._read.get(article_id)
        if kept is not None and kept[1] == stamp and stamp is not None:
            return kept
        article = read_article(path, article_id, self.max_bytes)
        if len(self._read) < 2000:
            self._read[article_id] = (article, stamp)
        return article, stamp


@dataclass
class Changes:
    """What differs between an index and its corpus: `notes` in words; the articles to (re)index and to drop."""

    notes: list[str]
    add: dict[str, tuple[Article, tuple[int, int] | None] | None]  # id -> (article, stamp) when already read
    remove: list[str]
    everything: bool = False  # another model, chunking or format: every article is embedded again


def describe_changes(index: StoredIndex, corpus: Corpus, model: str, chunking: dict) -> Changes:
    """What differs between an index and the current corpus and settings. A file whose size and mtime are those
    the index recorded is taken as unchanged without reading it; another is read and compared by sha256."""
    notes: list[str] = []
    if index.model != model:
        notes.append(f"model {index.model!r} -> {model!r}")
    if index.chunking != chunking:
        notes.append(f"chunking settings {index.chunking} -> {chunking}")
    if notes:
        return Changes(notes, {i: None for i in corpus.ids()}, [], everything=True)
    add: dict[str, tuple[Article, tuple[int, int] | None] | None] = {}
    changed, added = [], []
    known = index.articles
    if corpus.files is not None:
        for article_id, path in corpus.files:
            info = known.get(article_id)
            stamp = _stamp_of(path)
            if info is not None and stamp is not None and index.stamp_of(article_id) == stamp and info.path == str(path):
                continue
            article, stamp = corpus.read(article_id)
            if info is None:
                added.append(article_id)
            elif info.sha256 != article.sha256 or Path(info.path) != Path(article.path):
                changed.append(article_id)
            else:
                continue
            add[article_id] = (article, stamp)
    else:
        for article in corpus.articles or []:
            info = known.get(article.id)
            if info is None or info.sha256 != article.sha256:
                (added if info is None else changed).append(article.id)
                add[article.id] = (article, None)
    wanted = set(corpus.ids())
    removed = [a for a in known if a not in wanted]
    notes += [f"article changed: {i}" for i in sorted(changed)]
    notes += [f"article added: {i}" for i in sorted(added)]
    notes += [f"article removed: {i}" for i in sorted(removed)]
    return Changes(notes, add, removed + changed)


def _generation(folder: Path) -> str | None:
    try:
        return read_manifest(folder).get("generation")
    except QAError:
        return None


def _referenced(folder: Path) -> set[str]:
    """Names in the folder that the current manifest needs (or just the manifest, when it is unreadable)."""
    from .locks import LOCK_FILES

    keep = {MANIFEST, *LOCK_FILES, "onnx"}
    try:
        keep |= {seg["name"] for seg in read_manifest(folder)["segments"]}
    except QAError:
        pass
    return keep


def _open_if_fresh(store: FilesStore, corpus: Corpus, model: str, chunking: dict, *, verify: bool = False
                   ) -> tuple[StoredIndex | None, Changes | QAError | None]:
    """(the opened index, None) when the folder holds a sound index of exactly this corpus and these settings;
    (the opened index, what differs) when it holds another; (None, the error) when it cannot be used (missing,
    damaged, of an older format)."""
    try:
        index = store.latest(None, verify=verify)
    except (IndexMissingError, IndexCorruptError, StaleIndexError) as exc:
        return None, exc
    changes = describe_changes(index, corpus, model, chunking)
    return index, (changes if changes.notes else None)


def _folder_corpus(sources: Sequence[str], max_bytes: int) -> Corpus:
    """The article files under these folders and files (listed, not read)."""
    files = find_article_files(sources)
    return Corpus(files=list(zip(article_ids(files), [Path(os.path.abspath(f)) for f in files])), max_bytes=max_bytes)


def _open_trusted(store: FilesStore, model: str, chunking: dict, sources: Sequence[str]) -> StoredIndex | None:
    """The committed index when it is sound and of this model, chunking and these article sources (Engine.open's
    `trust_index`); None when it is not, for the full check to say what differs."""
    try:
        index = store.latest(None)
    except (IndexMissingError, IndexCorruptError, StaleIndexError):
        return None
    same_sources = sorted(str(Path(s).resolve()) for s in index.sources) == sorted(sources)
    return index if index.model == model and index.chunking == chunking and same_sources else None


def _index_articles(store: FilesStore, current: StoredIndex | None, corpus: Corpus, changes: Changes, embedder: Embedder,
                    model: str, chunking: dict, sources: list[str], dimension: int, *, progress: bool, log: Log,
                    reuse: dict[str, NewArticle] | None = None, reused_by: dict | None = None) -> StoredIndex:
    """Chunk and embed the articles of `changes.add` (reading those not read yet) and commit them, with
    `changes.remove` tombstoned, as one change (every article, into fresh segments, when `changes.everything`).
    Articles are read, chunked and embedded a batch at a time, so a large build holds one batch in memory; every
    file is read once before any embedding, so a bad one is refused first. `reuse`: passages and vectors of an
    index of the older format (`read_format3`), taken for each article whose sha256 is unchanged."""
    import sys

    from tqdm import tqdm

    todo = [i for i in corpus.ids() if i in changes.add]
    chars = 0
    for i in todo:  # validate everything first, keeping what a small change has read
        got = changes.add[i]
        if got is None:
            got = corpus.read(i)
            chars += len(got[0].raw)
            changes.add[i] = got if len(todo) <= 2000 else None
        else:
            chars += len(got[0].raw)
    check_room(store.folder, estimated_bytes(chars, dimension))
    how = {"torch": "PyTorch", "onnx": "onnxruntime"}.get(getattr(embedder, "backend", ""), "the embedder")
    if getattr(embedder, "precision", "float32") != "float32":
        how += f", {embedder.precision}"
    reuse = reuse or {}
    again = [i for i in todo if i in reuse and changes.add[i] is not None and reuse[i].info.sha256 == changes.add[i][0].sha256]
    if reuse:
        log(f"Taking the passages and vectors of {len(again)} article(s) from the index of the older format")
    kept = "" if current is None else f" ({current.passages} reused from the previous index)"
    if len(todo) > len(again):
        log(f"Embedding the passages of {len(todo) - len(again)} article(s) with {how}{kept}")
    again_set = set(again)
    bar = tqdm(total=len(todo), desc="Embedding", unit="article", disable=not (progress and sys.stderr.isatty()))
    count = embedder.count_tokens
    max_tokens, max_sentences = chunking["max_tokens"], chunking["max_sentences"]

    def articles() -> Iterator[NewArticle]:
        batch: list[tuple[Article, tuple[int, int] | None, list]] = []
        passages = 0

        def flush() -> Iterator[NewArticle]:
            flat = [c for _a, _s, chunks in batch for c in chunks]
            vectors = list(embed_chunks(flat, embedder))
            at = 0
            for article, stamp, chunks in batch:
                yield NewArticle(_info(article), stamp, chunks, vectors[at : at + len(chunks)])
                at += len(chunks)
            bar.update(len(batch))

        for i in todo:
            article, stamp = changes.add[i] or corpus.read(i)
            changes.add[i] = None  # read and embedded: let it go
            if i in again_set:
                yield NewArticle(_info(article), stamp, reuse[i].chunks, reuse[i].vectors)
                bar.update(1)
                continue
            chunks = chunk_article(article, max_tokens=max_tokens, count_tokens=count, max_sentences=max_sentences)
            batch.append((article, stamp, chunks))
            passages += len(chunks)
            if passages >= 1024:
                yield from flush()
                batch, passages = [], 0
        if batch:
            yield from flush()

    embedded_by = {"backend": getattr(embedder, "backend", "unknown"), "precision": getattr(embedder, "precision", "float32")}
    if reused_by and len(again) == len(todo):
        embedded_by = reused_by
    header = {"model": {"name": model, "dimension": dimension}, "chunking": chunking, "sources": sources,
              "embedded_by": embedded_by if current is None else (current.embedded_by or embedded_by)}
    try:
        return store.write(None if changes.everything else current, add=articles(), remove=changes.remove,
                           header=header, replace_all=changes.everything)
    finally:
        bar.close()


def _can_export() -> bool:
    from importlib.util import find_spec

    return bool(find_spec("torch") and find_spec("onnx"))


@dataclass(frozen=True)
class Serving:
    """The index a question is answered from, with its retriever: replaced as one object, so a question asked
    while an article is added sees the old index or the new one, never half of each."""

    index: StoredIndex
    retriever: Retriever
    stamp: tuple | None  # (mtime, inode, size) of the manifest it was opened from; ("qdrant", generation) in Qdrant


@dataclass(frozen=True)
class Trace:
    """One question through the pipeline: what each stage made (None for stages a refusal skipped)."""

    resolved: Resolved | None = None
    retrieved: Retrieved | None = None
    readings: tuple[SentenceReading, ...] = ()
    decision: Decision | None = None
    answer: Answer | None = None


class Engine:
    """Load once, then `ask` many times; add and remove articles while serving."""

    def __init__(self, index: StoredIndex, embedder: Embedder, settings: Settings,
                 method: FusionMethod = "hybrid", store=None) -> None:
        _single_threaded_blas()
        self.embedder = embedder
        self.settings = settings
        self.method = method
        self.files = ArticleFiles()
        self.store = store if store is not None else FilesStore(index.folder)  # or a QdrantStore (qa/qdrant_store.py)
        self._reload = threading.Lock()
        self._merging = threading.Lock()  # one background merge at a time in this process
        self._serving = self._serve(index)

    def _serve(self, index: StoredIndex) -> Serving:
        s = self.settings
        retriever = Retriever(index, dense_weight=s.dense_weight, maxsim_weight=s.maxsim_weight,
                              candidates=s.candidates, rerank=s.rerank, method=self.method)
        if self.store.shared:  # the state lives in the store (Qdrant): its generation says when it changed
            return Serving(index, retriever, ("qdrant", index.generation))
        if index.stamp is None:
            index.stamp = self.store.stamp() if _generation(index.folder) == index.generation else None
        return Serving(index, retriever, index.stamp)

    @cached_property
    def resolver(self):
        """The follow-up resolver (models/resolver), loaded on first use; None with QA_RESOLVER=off."""
        if self.settings.resolver == "off":
            return None
        from .resolver import Resolver

        return Resolver.load(threads=1)

    @cached_property
    def reader(self):
        """The trained reader (models/answerability), loaded on first use; None with QA_READER=off."""
        if self.settings.reader == "off":
            return None
        from .answerability import AnswerabilityModel

        return AnswerabilityModel.load(threads=1)  # measured: 4 ms a sentence on 1 thread, 11 ms on 2 (too small to split)

    @property
    def index(self) -> StoredIndex:
        return self._serving.index

    @property
    def retriever(self) -> Retriever:
        return self._serving.retriever

    # --- opening ------------------------------------------------------------------------------------

    @staticmethod
    def chunking_settings(settings: Settings, embedder: Embedder) -> dict:
        from .chunking import SPLITTER_VERSION
        from .lexical import LEXICAL_VERSION

        return {"max_tokens": embedder.max_tokens, "max_sentences": settings.max_sentences, "splitter": SPLITTER_VERSION,
                "lexical": LEXICAL_VERSION}

    @classmethod
    def open(cls, settings: Settings | None = None, *, articles: Sequence[Article] | None = None,
             sources: Sequence[str] | None = None, embedder: Embedder | None = None, force: bool = False,
             export_onnx: bool = False, compact: bool = False, progress: bool = False, log: Log = _stderr,
             method: FusionMethod = "hybrid", trust_index: bool = False) -> Engine:
        """Open the index in `settings.index_dir` for the corpus, building, refreshing or repairing it when needed.

        The corpus is `articles` if given (already read, e.g. from SQuAD), else the files under
        `settings.articles`, else the sources recorded in the index, else `articles/`. A file whose size and mtime
        are those the index recorded is not read again. With `export_onnx` (what `qa build` does), the model is
        exported to ONNX into the index folder; with `compact` (`qa build` too), every index file is hashed and the
        segments are merged into one, dropping removed articles' rows. Passages are embedded by `build_embedder`.
        A stale, missing, damaged or older-format index is rebuilt (a changed, added or removed article is a small
        new segment or a tombstone; only a model, chunking or format change embeds everything again) unless
        `settings.rebuild` is "never", which raises the error naming what is wrong instead. Changes hold the folder's
        writer lock (qa/locks.py): a second build waits, then finds the index fresh.

        With `trust_index` (`qa add` and `qa remove`), an index of this model, chunking and articles folder is opened
        as committed, without listing the folder and comparing every file with it: one add or remove then costs the
        same at 10 or 100,000 articles. Files changed in the folder by hand are found by the next open without it
        (`qa build`, `qa ask`, the app's start).
        """
        settings = settings or resolve_settings()
        if settings.store == "qdrant":
            return cls._open_qdrant(settings, articles=articles, sources=sources, embedder=embedder, force=force,
                                    export_onnx=export_onnx, compact=compact, progress=progress, log=log, method=method)
        folder = settings.index_path
        store = FilesStore(folder)
        try:
            manifest = read_manifest(folder)
        except (IndexMissingError, IndexCorruptError, StaleIndexError):
            if settings.rebuild == "never":
                raise  # before reading articles or loading a model
            manifest = None
        if articles is None:
            if settings.articles is not None:
                sources = list(settings.articles)
            elif manifest is not None:
                sources = [str(Path(folder).resolve().parent / s) if not Path(s).is_absolute() else s
                           for s in manifest["sources"]]
            else:
                sources = ["articles"]
            sources = [str(Path(s).resolve()) for s in sources]
            # listed now, before any model work (a folder without articles is refused first), unless trusted
            corpus = None if trust_index else _folder_corpus(sources, settings.max_article_bytes)
        else:
            corpus = Corpus(articles=list(articles))
        sources = list(sources or [])
        if settings.rebuild == "never" and manifest is not None and manifest["model"]["name"] != settings.model:
            # before loading a model that may not even exist here (a hub name tries the network first)
            raise StaleIndexError(f"The index in {folder}/ was built with model {manifest['model']['name']!r}, not "
                                  f"{settings.model!r}; run `qa build --model {settings.model}` or drop --model / QA_MODEL.")
        if embedder is None:
            embedder = cls._query_embedder(settings, folder, export_onnx=export_onnx, log=log)
        chunking = cls.chunking_settings(settings, embedder)
        if trust_index and corpus is None and not force and not compact and manifest is not None:
            trusted = _open_trusted(store, settings.model, chunking, sources)
            if trusted is not None:
                return cls(trusted, embedder, settings, method)
        if corpus is None:
            corpus = _folder_corpus(sources, settings.max_article_bytes)
        if not force and manifest is not None:
            index, problem = _open_if_fresh(store, corpus, settings.model, chunking, verify=compact)
            if index is not None and problem is None and not (compact and merge_plan(index, everything=True)):
                return cls(index, embedder, settings, method)
            if problem is not None and settings.rebuild == "never":
                if isinstance(problem, Changes):
                    raise StaleIndexError(
                        f"The index in {folder}/ does not match the articles or settings: {'; '.join(problem.notes)}. "
                        "Run `qa build` to update it, or unset QA_REBUILD / drop --no-rebuild to let it rebuild."
                    )
                raise problem
        with store.writing(log=log):
            current, changes = None, None
            if not force:  # another writer may have brought the index up to date while we waited
                index, problem = _open_if_fresh(store, corpus, settings.model, chunking, verify=compact)
                if isinstance(problem, Changes):
                    log(f"Updating the index in {folder}/: {'; '.join(problem.notes)}")
                    changes = problem
                    current = None if problem.everything else index
                elif index is not None:
                    current, changes = index, Changes([], {}, [])
                elif isinstance(problem, IndexMissingError):
                    log(f"Building the index in {folder}/ ({len(corpus)} article(s))")
                else:
                    log(f"{problem} Rebuilding it from the articles.")
            else:
                log(f"Building the index in {folder}/ ({len(corpus)} article(s))")
            legacy = None if force else read_format3(folder)  # before the clean-up removes its files
            freed = remove_unreferenced(folder, _referenced(folder))
            if freed:
                log(f"Removed {freed / 1e6:.1f} MB left in {folder}/ by builds that did not finish")
            reuse, reused_by = None, None
            if changes is None or changes.everything:
                changes = Changes([], {i: None for i in corpus.ids()}, [], everything=True)
                if legacy is not None and legacy[0]["model"].get("name") == settings.model and legacy[0]["chunking"] == chunking:
                    reuse, reused_by = legacy[1], legacy[0]["embedded_by"]
            index = current
            if changes.add or changes.remove or current is None:
                builder = build_embedder(embedder, settings.model, build_precision(settings.build_precision)) \
                    if not reuse or set(changes.add) - set(reuse) else embedder
                index = _index_articles(store, current, corpus, changes, builder, settings.model, chunking, sources,
                                        embedder.dimension, progress=progress, log=log, reuse=reuse, reused_by=reused_by)
            if compact:
                plan = merge_plan(index, everything=True)
                if plan:
                    log(f"Merging {len(plan)} segment(s) into one")
                    index = store.merge(index, plan, log=log, locked=True) or store.latest(None)
        log(f"Index ready: {len(index.articles)} article(s), {len(index.chunks)} passages in {folder}/")
        return cls(index, embedder, settings, method)

    @classmethod
    def _open_qdrant(cls, settings: Settings, *, articles, sources, embedder, force: bool, export_onnx: bool,
                     compact: bool, progress: bool, log: Log, method: FusionMethod) -> Engine:
        """Open the archive in Qdrant (QA_STORE=qdrant). When Qdrant holds none, or on `qa build` (`compact`), the
        files index is built or brought up to date as usual and copied into Qdrant with its vectors (no
        re-embedding); otherwise no article file and no index folder is read: the state is Qdrant's."""
        from .qdrant_store import QdrantStore, copy_index

        store = QdrantStore.connect(url=settings.qdrant_url, api_key=settings.qdrant_api_key, path=settings.qdrant_path,
                                    collection=settings.qdrant_collection)
        snapshot = None
        if not (compact or force):
            try:
                snapshot = store.open()
            except IndexMissingError:
                if settings.rebuild == "never":
                    raise
        if snapshot is not None and articles is not None and {a.id for a in articles} != set(snapshot.articles):
            # an explicit corpus (`qa eval --squad`) that is not the archive Qdrant holds: copied there, as a stale
            # files index is rebuilt
            if settings.rebuild == "never":
                raise StaleIndexError(f"The archive in Qdrant {store.where} does not hold these articles; run "
                                      "`qa build --store qdrant`, or unset QA_REBUILD / drop --no-rebuild.")
            snapshot = None
        if snapshot is None:
            files = cls.open(replace(settings, store="files"), articles=articles, sources=sources, embedder=embedder,
                             force=force, export_onnx=export_onnx, compact=compact, progress=progress, log=log,
                             method=method)
            log(f"Copying the index in {settings.index_path}/ to Qdrant {store.where} (its vectors: nothing is embedded)")
            snapshot = copy_index(files.index, store, log=log)
            embedder = files.embedder
        elif snapshot.model != settings.model:
            raise StaleIndexError(f"The archive in Qdrant {store.where} was built with model {snapshot.model!r}, not "
                                  f"{settings.model!r}; run `qa build` with QA_STORE=qdrant, or drop --model / QA_MODEL.")
        if embedder is None:
            embedder = cls._query_embedder(settings, settings.index_path, export_onnx=False, log=log)
        log(f"Index ready: {len(snapshot.articles)} article(s), {len(snapshot.chunks)} passages in Qdrant {store.where}")
        return cls(snapshot, embedder, settings, method, store=store)

    @staticmethod
    def _query_embedder(settings: Settings, folder: Path, *, export_onnx: bool, log: Log) -> Embedder:
        """The ONNX export when there is a sound one (exported first with `export_onnx`, or again when damaged
        and rebuilding is allowed), else PyTorch."""
        from .onnx_backend import export_model, find_export

        if settings.backend == "torch":
            return make_embedder(settings.model, "torch", folder)
        try:
            healthy = find_export(folder, settings.model) is not None
        except IndexCorruptError:
            if settings.rebuild == "never" or not export_onnx and not _can_export():
                raise
            healthy = False
            export_onnx = True  # a damaged export is exported again, as a damaged index is rebuilt
        if export_onnx and not healthy:
            with write_lock(folder, log=log):
                export_model(settings.model, folder, log=log)
        return make_embedder(settings.model, settings.backend, folder)

    # --- asking -------------------------------------------------------------------------------------

    def query(self, text: str, index: StoredIndex | None = None, *, correct: bool = True) -> Query:
        """Correct typos against the articles' words (unless `correct` is false: already done), then encode once:
        vector and content pieces."""
        corrected = (index or self.index).lexical.correct(text, self.embedder.is_known_word)[0] if correct else text
        enc = self.embedder.encode([corrected])
        tokens = enc.tokens[0][content_mask(corrected, enc.offsets[0])]
        tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
        return Query(corrected, enc.vectors[0], tokens.astype(np.float32))

    def queries(self, texts: Sequence[str], index: StoredIndex | None = None, batch: int = 256) -> list[Query]:
        """`query` for many texts, encoded in batches (a training run's thousands of questions)."""
        index = index or self.index
        corrected = [index.lexical.correct(t, self.embedder.is_known_word)[0] for t in texts]
        out = []
        for b in range(0, len(corrected), batch):
            part = corrected[b : b + batch]
            enc = self.embedder.encode(part)
            for text, vec, tok, offs in zip(part, enc.vectors, enc.tokens, enc.offsets):
                tokens = tok[content_mask(text, offs)]
                tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
                out.append(Query(text, vec, tokens.astype(np.float32)))
        return out

    @cached_property
    def confidence_model(self):
        """The confidence model (models/confidence/model.json), loaded on first use, with the thresholds of
        QA_ANSWERED_ABOVE / QA_UNCERTAIN_ABOVE when set; None without a reader."""
        if self.reader is None:
            return None
        from .confidence import ConfidenceModel

        model = ConfidenceModel.load()
        fitted_for = model.info.get("reader_sha256")
        if fitted_for != self.reader.config.get("model_sha256"):
            raise ConfigError(f"The confidence model was fitted on another reader ({str(fitted_for)[:12]}…, the reader in "
                              f"{self.reader.folder} is {str(self.reader.config.get('model_sha256'))[:12]}…): its scores "
                              "would not mean what it thinks. Run `python -m qa.fit_confidence`, or restore models/ from git.")
        s = self.settings
        answered = model.answered if s.answered_above is None else s.answered_above
        # QA_ANSWERED_ABOVE alone under the model's uncertain threshold: nothing is uncertain
        uncertain = min(model.uncertain, answered) if s.uncertain_above is None else s.uncertain_above
        if uncertain > answered:
            raise ConfigError(f"The uncertain threshold {uncertain:.2f} is above the answered one {answered:.2f} "
                              "(QA_ANSWERED_ABOVE / QA_UNCERTAIN_ABOVE and the model's own); set both, or lower "
                              "QA_UNCERTAIN_ABOVE.")
        return replace(model, answered=answered, uncertain=uncertain)

    def warm_up(self) -> None:
        """Load now what a question would load on first use (the reader, the confidence model, spaCy's pipeline, the
        model's word list), so that no user waits for it and forked workers share it rather than each build its own."""
        from .nlp import parse

        self.confidence_model  # noqa: B018 - loads the reader too
        self.resolver  # noqa: B018
        parse("Who said what, and when?")
        self.embedder.is_known_word("when")

    def ask(self, question: object, k: int | None = None, *, history: Sequence[Turn] = (),
            articles: Sequence[str] | None = None) -> Answer:
        """Answer one question, from the articles `articles` (ids) or all of them. Raises QuestionError for an
        empty, too long or non-text question, ArticleNotFoundError for an unknown article id."""
        return self.trace(question, k, history=history, articles=articles).answer

    def trace(self, question: object, k: int | None = None, *, history: Sequence[Turn] = (),
              articles: Sequence[str] | None = None) -> Trace:
        """`ask`, keeping what each stage of the pipeline (qa/pipeline.py) made: resolve, retrieve, read, decide,
        compose."""
        text = check_question(question, self.settings.max_question_chars)
        k = check_k(k, 50) or self.settings.top_k
        serving = self.refresh()
        index = serving.index
        rows = _rows_of(index, articles)
        content, unknown = unrecognised_words(text, index.lexical.vocabulary, self.embedder.is_known_word)
        if content and len(unknown) == len(content):
            shown = ", ".join(repr(w) for w in unknown[:3])
            return Trace(answer=Answer(text, True, None, None, (), f"The question has no word I recognise ({shown}); ask "
                                       "it in plain words.", details="none of its words is in the articles or in the "
                                       "model's vocabulary"))
        correct = lambda t: index.lexical.correct(t, self.embedder.is_known_word)[0]  # noqa: E731
        resolved = resolve_question(text, history, index, correct, self.resolver, articles)
        retrieved = retrieve(resolved, index, serving.retriever, lambda t, c: self.query(t, index, correct=c), k, rows)
        readings = read(resolved.asked, retrieved.hits, index, self.reader)
        decision = decide(resolved, retrieved, readings, index, abstain_below=self.settings.abstain_below,
                          model=self.confidence_model)
        answer = compose_answer(text, retrieved.hits, index, decision, k=k)
        answer = replace(answer, interpreted_as=resolved.asked)
        if resolved.dangling and answer.reason == resolved.dangling and answer.details:
            answer = replace(answer, details=f"{answer.details}; the question leans on earlier turns and there are none "
                                             "answered to lean on")
        return Trace(resolved, retrieved, readings, decision, self._flag_stale(answer, index))

    def _flag_stale(self, answer: Answer, index: StoredIndex) -> Answer:
        """Mark citations whose article file changed since it was indexed (their offsets may not match it any
        more) and say so in the answer's warnings. A Qdrant store keeps the texts it cites: nothing to check."""
        if self.store.shared:
            return answer
        stale = {}
        for p in answer.passages:
            info = index.articles.get(p.citation.article)
            if info is not None and info.id not in stale:
                stale[info.id] = not self.files.unchanged(info.path, info.sha256)
        if not any(stale.values()):
            return answer
        passages = tuple(replace(p, citation=replace(p.citation, stale=True)) if stale.get(p.citation.article) else p
                         for p in answer.passages)
        paths = {p.citation.article: p.citation.path for p in passages}
        warnings = tuple(f"The file of article {a} ({paths[a]}) has changed since it was indexed: the quoted text and "
                         "offsets are those of the indexed version. Run `qa build` to index it again."
                         for a, changed in stale.items() if changed)
        return replace(answer, passages=passages, warnings=answer.warnings + warnings)

    def rows_of(self, articles: Sequence[str] | None) -> np.ndarray | None:
        """Passage rows of the given articles (None: every row)."""
        return _rows_of(self.index, articles)

    # --- keeping up with other processes -----------------------------------------------------------------

    def refresh(self) -> Serving:
        """The index to answer from: the one loaded, or the newer one another process (or thread) committed since.
        Costs one stat of manifest.json per call; a newer generation is opened once, under the reader lock, reusing
        the segments already open (after an add, only the new segment is read). An index that cannot be loaded
        leaves the current one in service (and is logged)."""
        serving = self._serving
        if serving.stamp is None:
            return serving  # not served from a folder that others write
        if self.store.shared:
            return self._refresh_from_store(serving)
        if self.store.stamp() == serving.stamp:
            return serving
        with self._reload:
            serving = self._serving
            stamp = self.store.stamp()
            if stamp == serving.stamp or stamp is None:
                return serving
            try:
                index = self.store.latest(serving.index)
            except QAError as exc:
                _stderr(f"article-qa: kept the index in service; the newer one in {self.store.folder}/ cannot be "
                        f"loaded: {exc}")
                self._serving = replace(serving, stamp=stamp)
                return self._serving
            self._serving = replace(serving, stamp=index.stamp) if index is serving.index else self._serve(index)
            return self._serving

    def _refresh_from_store(self, serving: Serving) -> Serving:
        """A store other processes and servers write (Qdrant): one read of its state's generation a question; a newer
        state is opened once, reusing the writes already read. Qdrant unreachable is the question's error."""
        if not self.store.changed(serving.index):
            return serving
        with self._reload:
            serving = self._serving
            index = self.store.latest(serving.index)
            if index is not serving.index:
                self._serving = self._serve(index)
            return self._serving

    def article_text(self, info) -> str | None:
        """The text an article's citations point into: its file as indexed, or for a Qdrant store the copy kept
        there (a server that never saw the file still shows it). None when it is gone or changed."""
        if self.store.shared:
            return self.index.article_text(info.id)
        return self.files.text(info.path, info.sha256)

    # --- articles staff add and remove ----------------------------------------------------------------------

    @staticmethod
    def _entry(index: StoredIndex, article_id: str) -> dict:
        a = index.articles[article_id]
        return {"article": a.id, "title": a.title, "date": a.date, "source": a.source, "url": a.url,
                "passages": int(len(index.article_rows.get(a.id, ()))), "path": display_path(a.path, index.root)}

    def list_articles(self) -> list[dict]:
        """Every article of the index, in id order: id, title, date, source, url, passages, path."""
        index = self.refresh().index
        return [self._entry(index, a) for a in sorted(index.articles)]

    def articles_folder(self) -> Path:
        """Where added articles are stored: the first folder among the corpus' sources."""
        for source in self.index.sources:
            if Path(source).is_dir():
                return Path(source)
        if self.store.shared and self.settings.articles:
            # a server of a shared Qdrant archive built elsewhere: added files are kept here too (Qdrant holds the text)
            folder = Path(self.settings.articles[0])
            if not folder.suffix:
                folder.mkdir(parents=True, exist_ok=True)
                return folder
        raise ConfigError(
            "Articles can only be added when the index is built from a folder of articles (its sources are "
            f"{self.index.sources or 'none'}); set QA_ARTICLES to a folder, e.g. QA_ARTICLES=articles, and run `qa build`.")

    def add_article(self, text: object, *, title: object = None, date: object = None, url: object = None,
                    source: object = None, fmt: str = "auto", wait: float = 60.0, log: Log = _stderr,
                    merge: MergeMode = "background") -> dict:
        """Store an article (plain text, Markdown or an HTML page) in the articles folder and index it: its passages
        are embedded and written as one small segment, and the index in service is swapped for the new generation in
        one step. Returns its entry of `list_articles()`. Raises ArticleError (and subclasses: a duplicate names the
        existing id) for input that cannot be added, IndexBusyError when another writer holds the index for over
        `wait` seconds. `merge`: when segments are due for a merge, merge them on a thread of this process
        ("background", the app), here when small ("small", the `qa` command), or not at all ("none")."""
        from .collection import prepare_article, write_article_file

        new = prepare_article(text, title=title, date=date, url=url, source=source, fmt=fmt,  # type: ignore[arg-type]
                              max_bytes=self.settings.max_article_bytes)
        with self.store.writing(timeout=wait, log=log):
            current = self._latest()
            duplicate = current.find_content(new.content)
            if duplicate is not None:
                raise DuplicateArticleError(f"This article is already in the index as “{current.articles[duplicate].title}” "
                                            f"({duplicate}); ask about it, or remove it first to add it again.", duplicate)
            if len(current.articles) >= self.settings.max_articles:
                raise ArticleTooLargeError(f"The index holds {len(current.articles):,} articles, the most allowed "
                                           f"({self.settings.max_articles:,}); remove one first.")
            store = self.articles_folder()
            path = write_article_file(store, new.id, new.raw)
            try:
                stamp = _stamp_of(path)
                article = read_article(path, new.id, self.settings.max_article_bytes)
                sources = current.sources if any(path.resolve().is_relative_to(Path(s).resolve()) for s in current.sources
                                                 if Path(s).is_dir()) else [*current.sources, str(path.resolve())]
                chunks = chunk_article(article, max_tokens=current.chunking["max_tokens"],
                                       count_tokens=self.embedder.count_tokens,
                                       max_sentences=current.chunking["max_sentences"])
                check_room(self.settings.index_path, estimated_bytes(len(article.raw), current.dimension))
                vectors = list(embed_chunks(chunks, self.embedder))
                index = self.store.write(current, add=[NewArticle(_info(article), stamp, chunks, vectors)],
                                         header={"sources": sources})
            except BaseException:
                path.unlink(missing_ok=True)  # nothing half-added: the file goes with the failed index
                raise
            self._serving = self._serve(index)
        log(f"Added article {new.id} ({len(index.article_rows.get(new.id, ()))} passages)")
        give_back_free_memory()
        self._merge_if_due(index, merge, log)
        entry = self._entry(index, new.id)
        return {**entry, "notes": list(new.notes)} if new.notes else entry

    def remove_article(self, article_id: str, *, wait: float = 60.0, log: Log = _stderr,
                       merge: MergeMode = "background") -> dict:
        """Delete an article's file from the articles folder and drop it from the index (a tombstone in its segment:
        nothing is rewritten). Returns its former entry of `list_articles()`. ArticleNotFoundError for an unknown
        id; ArticleError for the last article or one whose file lies outside the articles folder."""
        with self.store.writing(timeout=wait, log=log):
            current = self._latest()
            info = current.articles.get(article_id) if isinstance(article_id, str) else None
            if info is None:
                _rows_of(current, [str(article_id)])  # raises ArticleNotFoundError with the message
            assert info is not None
            if len(current.articles) == 1:
                raise ArticleError(f"{article_id!r} is the only article; add another before removing it.")
            entry = self._entry(current, article_id)
            path = Path(info.path)
            # a shared store (Qdrant) is the truth and a file here only a copy; else the file must be in the folder
            if not self.store.shared and not any(path.resolve().is_relative_to(Path(s).resolve())
                                                 for s in current.sources if Path(s).is_dir()):
                raise ArticleError(f"Article {article_id!r} comes from {entry['path']}, outside the articles folder; "
                                   "remove that file and run `qa build`.")
            path.unlink(missing_ok=True)  # first: a crash after it leaves an index naming a missing file, which the
            # next start rebuilds without it (the other order would bring the article back)
            sources = [s for s in current.sources if Path(s).resolve() != path.resolve()]
            index = self.store.write(current, remove=[article_id], header={"sources": sources})
            self._serving = self._serve(index)
        log(f"Removed article {article_id}")
        give_back_free_memory()
        self._merge_if_due(index, merge, log)
        return entry

    def _latest(self) -> StoredIndex:
        """The index as committed on disk (another process may have changed it); call with the writer lock held."""
        return self.store.latest(self.index)

    # --- merging segments -------------------------------------------------------------------------------------

    def _merge_if_due(self, index: StoredIndex, mode: MergeMode, log: Log) -> None:
        if mode == "none" or self.store.shared or not merge_plan(index):  # a shared store's writes are not merged
            return
        if mode == "small":
            index = self.merge_segments(limit=INLINE_MERGE_PASSAGES, log=log)
            if merge_plan(index):
                log(f"The index has {len(index.segments)} segments, some due for a merge too large to make here; "
                    "the app merges them in the background, or run `qa build`.")
        elif self._merging.acquire(blocking=False):
            threading.Thread(target=self._merge_in_background, args=(log,), name="qa-merge", daemon=True).start()

    def _merge_in_background(self, log: Log) -> None:
        try:
            self.merge_segments(log=log)
        except Exception as exc:  # a failed merge loses nothing: the segments stay as they are
            _stderr(f"article-qa: merging segments failed (the index is unchanged): {exc}")
        finally:
            self._merging.release()
            give_back_free_memory()

    def merge_segments(self, *, everything: bool = False, limit: int | None = None, log: Log = _stderr) -> StoredIndex:
        """Merge segments while the merge policy asks for it (`everything`: all into one, as `qa build` does; `limit`:
        only merges of at most so many passages). The merged segment is written while questions, adds and removes
        go on; the index in service is then swapped for the merged one in one step."""
        index = self.refresh().index
        while plan := merge_plan(index, everything=everything):
            if limit is not None and sum(seg.passages for seg in index.segments if seg.name in set(plan)) > limit:
                break
            merged = self.store.merge(index, plan, log=log)
            index = self.refresh().index  # the merged generation, or a newer one
            if merged is None or everything:
                break
        return index


def _rows_of(index: StoredIndex, articles: Sequence[str] | None) -> np.ndarray | None:
    """Passage rows of the given articles (None: every row); ArticleNotFoundError for an unknown id."""
    if articles is None:
        return None
    known = index.articles
    unknown = [a for a in articles if a not in known]
    if unknown:
        raise ArticleNotFoundError(
            f"No article {unknown[0]!r} in the index ({len(known)} article(s)); `qa list` or GET /api/articles "
            "lists their ids.")
    return index.rows_of(articles)
