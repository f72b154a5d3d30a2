"""The engine: open (or build, or refresh) the index for a corpus, then answer questions.

`Engine.open` compares the manifest with the current articles and settings. A changed, added or removed
article, another model or other chunking settings is never served silently: the index is rebuilt,
re-embedding only the articles that changed, or, with `rebuild="never"`, refused with a message naming
what changed. Opening a fresh index embeds nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answer import compose_answer
from .articles import ArticleFiles, read_corpus
from .config import Settings, resolve_settings
from .embedding import Embedder, content_mask, make_embedder
from .errors import ArticleNotFoundError, IndexCorruptError, IndexMissingError, QAError, StaleIndexError
from .locks import read_lock, write_lock
from .grounding import unrecognised_words
from .retrieval import FusionMethod, Query, Retriever
from .store import (
    FORMAT_VERSION,
    MANIFEST,
    StoredIndex,
    build_index,
    check_room,
    estimated_bytes,
    load_index,
    read_manifest,
    remove_unreferenced,
    save_index,
)
from .types import Answer, Article
from .validation import Turn, check_k, check_question

Log = Callable[[str], None]


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


def describe_changes(manifest: dict, articles: Sequence[Article], model: str, chunking: dict) -> list[str]:
    """What differs between an index's manifest and the current corpus and settings (empty: fresh)."""
    changes = []
    if manifest.get("format_version") != FORMAT_VERSION:
        changes.append(f"index format {manifest.get('format_version')} (this version reads {FORMAT_VERSION})")
    if manifest["model"]["name"] != model:
        changes.append(f"model {manifest['model']['name']!r} -> {model!r}")
    if manifest.get("chunking") != chunking:
        changes.append(f"chunking settings {manifest.get('chunking')} -> {chunking}")
    old = {a["id"]: a["sha256"] for a in manifest["articles"]}
    new = {a.id: a.sha256 for a in articles}
    changes += [f"article changed: {i}" for i in sorted(old.keys() & new.keys()) if old[i] != new[i]]
    changes += [f"article added: {i}" for i in sorted(new.keys() - old.keys())]
    changes += [f"article removed: {i}" for i in sorted(old.keys() - new.keys())]
    return changes


def _peek_manifest(folder: Path) -> dict | None:
    """The manifest when there is a readable one (it names the corpus' sources), else None."""
    try:
        return read_manifest(folder)
    except QAError:
        return None


def _referenced(folder: Path) -> set[str]:
    """Names in the folder that the current manifest needs (or just the manifest, when it is unreadable)."""
    from .locks import LOCK_FILES

    keep = {MANIFEST, *LOCK_FILES, "onnx"}
    manifest = _peek_manifest(folder)
    if manifest is not None:
        keep |= set(manifest["parts"].values())
    return keep


def _load_if_fresh(folder: Path, articles: Sequence[Article], model: str, chunking: dict
                   ) -> tuple[StoredIndex | None, list[str] | QAError]:
    """(the loaded index, []) when the folder holds a sound index of exactly this corpus and these settings;
    else (None, what differs) or (None, the error that makes it unusable: missing or damaged). The manifest is
    read and its files loaded under the reader lock, so a concurrent build cannot remove them meanwhile."""
    with read_lock(folder):
        try:
            manifest = read_manifest(folder)
            changes = describe_changes(manifest, articles, model, chunking)
            if changes:
                return None, changes
            return load_index(folder, manifest), []
        except (IndexMissingError, IndexCorruptError) as exc:
            return None, exc


def _can_export() -> bool:
    from importlib.util import find_spec

    return bool(find_spec("torch") and find_spec("onnx"))


class Engine:
    """Load once, then `ask` many times."""

    def __init__(self, index: StoredIndex, embedder: Embedder, settings: Settings,
                 method: FusionMethod = "hybrid") -> None:
        _single_threaded_blas()
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.files = ArticleFiles()
        self.retriever = Retriever(index, dense_weight=settings.dense_weight, maxsim_weight=settings.maxsim_weight,
                                   candidates=settings.candidates, rerank=settings.rerank, method=method)

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
             export_onnx: bool = False, progress: bool = False, log: Log = _stderr,
             method: FusionMethod = "hybrid") -> Engine:
        """Open the index in `settings.index_dir` for the corpus, building, refreshing or repairing it when needed.

        The corpus is `articles` if given (already read, e.g. from SQuAD), else the files under
        `settings.articles`, else the sources recorded in the index, else `articles/`. With `export_onnx`
        (what `qa build` does), the model is exported to ONNX into the index folder once the articles have
        been read, so later queries run on onnxruntime; passages are embedded by `build_embedder`.
        A stale, missing or damaged index is rebuilt (only changed articles are embedded again) unless
        `settings.rebuild` is "never", which raises the error naming what is wrong instead. Builds hold the
        folder's writer lock (qa/locks.py): a second build waits, then finds the index fresh.
        """
        settings = settings or resolve_settings()
        folder = settings.index_path
        try:
            manifest = read_manifest(folder)
        except (IndexMissingError, IndexCorruptError):
            if settings.rebuild == "never":
                raise  # before reading articles or loading a model
            manifest = None
        if articles is None:
            if settings.articles is not None:
                sources = list(settings.articles)
            elif manifest is not None:
                sources = [str(Path(folder).resolve().parent / s) if not Path(s).is_absolute() else s for s in manifest["sources"]]
            else:
                sources = ["articles"]
            sources = [str(Path(s).resolve()) for s in sources]
            articles = read_corpus(sources, settings.max_article_bytes)
        sources = list(sources or [])
        if settings.rebuild == "never" and manifest is not None and manifest["model"]["name"] != settings.model:
            # before loading a model that may not even exist here (a hub name tries the network first)
            raise StaleIndexError(f"The index in {folder}/ was built with model {manifest['model']['name']!r}, not "
                                  f"{settings.model!r}; run `qa build --model {settings.model}` or drop --model / QA_MODEL.")
        if embedder is None:
            embedder = cls._query_embedder(settings, folder, export_onnx=export_onnx, log=log)
        chunking = cls.chunking_settings(settings, embedder)
        if not force:
            index, problem = _load_if_fresh(folder, articles, settings.model, chunking)
            if index is not None:
                return cls(index, embedder, settings, method)
            if settings.rebuild == "never":
                if isinstance(problem, list):
                    raise StaleIndexError(
                        f"The index in {folder}/ does not match the articles or settings: {'; '.join(problem)}. "
                        "Run `qa build` to update it, or unset QA_REBUILD / drop --no-rebuild to let it rebuild."
                    )
                raise problem
        with write_lock(folder, log=log):
            previous = None
            if not force:  # another writer may have brought the index up to date while we waited
                index, problem = _load_if_fresh(folder, articles, settings.model, chunking)
                if index is not None:
                    return cls(index, embedder, settings, method)
                if isinstance(problem, list):
                    log(f"Updating the index in {folder}/: {'; '.join(problem)}")
                    try:
                        previous = load_index(folder, read_manifest(folder))
                    except QAError:  # a damaged old index only costs us the reuse of its vectors
                        previous = None
                elif isinstance(problem, IndexMissingError):
                    log(f"Building the index in {folder}/ ({len(articles)} article(s))")
                else:
                    log(f"{problem} Rebuilding it from the articles.")
            else:
                log(f"Building the index in {folder}/ ({len(articles)} article(s))")
            freed = remove_unreferenced(folder, _referenced(folder))
            if freed:
                log(f"Removed {freed / 1e6:.1f} MB left in {folder}/ by builds that did not finish")
            builder = build_embedder(embedder, settings.model, build_precision(settings.build_precision))
            index = build_index(articles, embedder=builder, model=settings.model, chunking=chunking, sources=sources,
                                previous=previous, progress=progress, log=log,
                                before_embedding=lambda chunks: check_room(folder, estimated_bytes(chunks, embedder.dimension)))
            save_index(index, folder)
        log(f"Index ready: {len(index.articles)} article(s), {len(index.chunks)} passages in {folder}/")
        return cls(index, embedder, settings, method)

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

    def query(self, text: str) -> Query:
        """Correct typos against the articles' words, then encode once: vector and content pieces."""
        corrected, _fixes = self.index.lexical.correct(text, self.embedder.is_known_word)
        enc = self.embedder.encode([corrected])
        tokens = enc.tokens[0][content_mask(corrected, enc.offsets[0])]
        tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
        return Query(corrected, enc.vectors[0], tokens.astype(np.float32))

    def ask(self, question: object, k: int | None = None, *, history: Sequence[Turn] = (),
            articles: Sequence[str] | None = None) -> Answer:
        """Answer one question, from the articles `articles` (ids) or all of them. Raises QuestionError for an
        empty, too long or non-text question, ArticleNotFoundError for an unknown article id."""
        text = check_question(question, self.settings.max_question_chars)
        k = check_k(k, 50) or self.settings.top_k
        rows = self.rows_of(articles)
        content, unknown = unrecognised_words(text, self.index.lexical.vocabulary, self.embedder.is_known_word)
        if content and len(unknown) == len(content):
            shown = ", ".join(repr(w) for w in unknown[:3])
            return Answer(text, True, None, None, (), f"The question has no word I recognise ({shown}); ask it in plain words.",
                          details="none of its words is in the articles or in the model's vocabulary")
        query = self.query(text)
        hits = self.retriever.search(query, k, rows=rows)
        answer = compose_answer(text, hits, self.index, k=k, abstain_below=self.settings.abstain_below, corrected=query.text)
        return self._flag_stale(answer)

    def _flag_stale(self, answer: Answer) -> Answer:
        """Mark citations whose article file changed since it was indexed (their offsets may not match it any
        more) and say so in the answer's warnings."""
        stale = {}
        for p in answer.passages:
            info = self.index.articles.get(p.citation.article)
            if info is not None and info.id not in stale:
                stale[info.id] = not self.files.unchanged(info.path, info.sha256)
        if not any(stale.values()):
            return answer
        passages = tuple(replace(p, citation=replace(p.citation, stale=True)) if stale.get(p.citation.article) else p
                         for p in answer.passages)
        warnings = tuple(f"The file of article {a} ({self.index.articles[a].path}) has changed since it was indexed: "
                         "the quoted text and offsets are those of the indexed version. Run `qa build` to index it again."
                         for a, changed in stale.items() if changed)
        return replace(answer, passages=passages, warnings=answer.warnings + warnings)

    def rows_of(self, articles: Sequence[str] | None) -> np.ndarray | None:
        """Passage rows of the given articles (None: every row)."""
        if articles is None:
            return None
        known = self.index.articles
        unknown = [a for a in articles if a not in known]
        if unknown:
            raise ArticleNotFoundError(
                f"No article {unknown[0]!r} in the index ({len(known)} article(s)); `qa list` or GET /api/articles "
                "lists their ids.")
        return self.index.rows_of(articles)
