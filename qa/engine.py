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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answer import compose_answer, display_path
from .articles import ArticleFiles, read_article, read_corpus
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
from .locks import read_lock, write_lock
from .conversation import follow_up_boost, needs_context, no_context_reason, resolve
from .grounding import unrecognised_words
from .introductions import introduction_boost
from .lexical import tokenize
from .references import gender_lookup, referent_lookup
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


def _generation(folder: Path) -> str | None:
    try:
        return read_manifest(folder).get("generation")
    except QAError:
        return None


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


@dataclass(frozen=True)
class Serving:
    """The index a question is answered from, with its retriever: replaced as one object, so a question asked
    while an article is added sees the old index or the new one, never half of each."""

    index: StoredIndex
    retriever: Retriever
    stamp: tuple[int, int, int] | None  # (mtime, inode, size) of the manifest it was loaded from


def _stamp(folder: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(folder / MANIFEST)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class Engine:
    """Load once, then `ask` many times; add and remove articles while serving."""

    def __init__(self, index: StoredIndex, embedder: Embedder, settings: Settings,
                 method: FusionMethod = "hybrid") -> None:
        _single_threaded_blas()
        self.embedder = embedder
        self.settings = settings
        self.method = method
        self.files = ArticleFiles()
        self._reload = threading.Lock()
        self._serving = self._serve(index)

    def _serve(self, index: StoredIndex) -> Serving:
        s = self.settings
        retriever = Retriever(index, dense_weight=s.dense_weight, maxsim_weight=s.maxsim_weight,
                              candidates=s.candidates, rerank=s.rerank, method=self.method)
        stamp = _stamp(s.index_path) if index.manifest.get("generation") == _generation(s.index_path) else None
        return Serving(index, retriever, stamp)

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

    def query(self, text: str, index: StoredIndex | None = None) -> Query:
        """Correct typos against the articles' words, then encode once: vector and content pieces."""
        corrected, _fixes = (index or self.index).lexical.correct(text, self.embedder.is_known_word)
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
        serving = self.refresh()
        index = serving.index
        rows = _rows_of(index, articles)
        content, unknown = unrecognised_words(text, index.lexical.vocabulary, self.embedder.is_known_word)
        if content and len(unknown) == len(content):
            shown = ", ".join(repr(w) for w in unknown[:3])
            return Answer(text, True, None, None, (), f"The question has no word I recognise ({shown}); ask it in plain words.",
                          details="none of its words is in the articles or in the model's vocabulary")
        containing = lambda w: np.flatnonzero(index.lexical.scores(tokenize(w)) > 0)  # noqa: E731 - rows holding a word
        resolution = resolve(text, history, gender_lookup(index.chunks, containing),
                             referent_lookup(index.chunks, index.passage_holding)) if history else None
        asked = resolution.interpreted_as if resolution else text
        query = self.query(resolution.search_text if resolution else text, index)
        boost = follow_up_boost(index, resolution.follows) if resolution and resolution.follows else {}
        introduced = introduction_boost(index.chunks, asked, rows, containing=containing)
        for row, extra in introduced.items():
            boost[row] = max(boost.get(row, 0.0), extra)
        hits = serving.retriever.search(query, k, rows=rows, boost=boost)
        # names are looked up in the question as asked (typos corrected), not in the earlier text searched with it
        names_in = query.text if resolution is None or resolution.search_text == text else \
            index.lexical.correct(text, self.embedder.is_known_word)[0]
        # "Who said that?" with nothing said before: if refused, say so, not "the article does not say who said that"
        dangling = no_context_reason(text) if (resolution is None or resolution.leaned_on is None) \
            and needs_context(text) else None
        # a reference found in the article ("the district" -> "10th District") makes the question about it, however
        # far a short "Which district?" is from every passage for the encoder (0.21, under the threshold)
        abstain_below = -1.0 if resolution and resolution.referent else self.settings.abstain_below
        answer = compose_answer(asked, hits, index, k=k, abstain_below=abstain_below, corrected=names_in,
                                reader=self.reader, answerability_below=self.settings.answerability_below,
                                unanswerable_because=dangling,
                                known_answer=resolution.referent if resolution and resolution.asks_for_referent else None)
        answer = replace(answer, question=text, interpreted_as=asked)
        if dangling and answer.reason == dangling and answer.details:
            answer = replace(answer, details=f"{answer.details}; the question leans on earlier turns and there are none "
                                             "answered to lean on")
        return self._flag_stale(answer, index)

    def _flag_stale(self, answer: Answer, index: StoredIndex) -> Answer:
        """Mark citations whose article file changed since it was indexed (their offsets may not match it any
        more) and say so in the answer's warnings."""
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
        Costs one stat of manifest.json per call; a newer index is loaded once, under the reader lock. An index that
        cannot be loaded leaves the current one in service (and is logged)."""
        serving = self._serving
        if serving.stamp is None:
            return serving  # not served from a folder that others write (an index built in memory)
        folder = self.settings.index_path
        if _stamp(folder) == serving.stamp:
            return serving
        with self._reload:
            serving = self._serving
            stamp = _stamp(folder)
            if stamp == serving.stamp or stamp is None:
                return serving
            try:
                with read_lock(folder):
                    manifest = read_manifest(folder)
                    if manifest.get("generation") == serving.index.manifest.get("generation"):
                        index = None
                    else:
                        index = load_index(folder, manifest)
                    stamp = _stamp(folder)
            except QAError as exc:
                _stderr(f"article-qa: kept the index in service; the newer one in {folder}/ cannot be loaded: {exc}")
                self._serving = replace(serving, stamp=stamp)
                return self._serving
            self._serving = replace(serving, stamp=stamp) if index is None else replace(self._serve(index), stamp=stamp)
            return self._serving

    # --- articles staff add and remove ----------------------------------------------------------------------

    def list_articles(self) -> list[dict]:
        """Every article of the index, in id order: id, title, date, source, url, passages, path."""
        serving = self.refresh()
        index = serving.index
        rows = index.article_rows
        root = index.root
        return [{"article": a.id, "title": a.title, "date": a.date, "source": a.source, "url": a.url,
                 "passages": int(len(rows.get(a.id, ()))), "path": display_path(a.path, root)}
                for a in sorted(index.articles.values(), key=lambda a: a.id)]

    def articles_folder(self) -> Path:
        """Where added articles are stored: the first folder among the corpus' sources."""
        for source in self.index.sources:
            if Path(source).is_dir():
                return Path(source)
        raise ConfigError(
            "Articles can only be added when the index is built from a folder of articles (its sources are "
            f"{self.index.sources or 'none'}); set QA_ARTICLES to a folder, e.g. QA_ARTICLES=articles, and run `qa build`.")

    def add_article(self, text: object, *, title: object = None, date: object = None, url: object = None,
                    source: object = None, fmt: str = "auto", wait: float = 60.0, log: Log = _stderr) -> dict:
        """Store an article (plain text, Markdown or an HTML page) in the articles folder and index it: only its
        passages are embedded, and the index in service is swapped for the new one in one step. Returns its entry
        of `list_articles()`. Raises ArticleError (and subclasses: a duplicate names the existing id) for input
        that cannot be added, IndexBusyError when another writer holds the index for over `wait` seconds."""
        from .collection import prepare_article, write_article_file

        new = prepare_article(text, title=title, date=date, url=url, source=source, fmt=fmt,  # type: ignore[arg-type]
                              max_bytes=self.settings.max_article_bytes)
        folder = self.settings.index_path
        with write_lock(folder, timeout=wait, log=log):
            current = self._latest()
            duplicate = self._find_content(current, new.content)
            if duplicate is not None:
                raise DuplicateArticleError(f"This article is already in the index as {duplicate!r}; ask about it, or "
                                            "remove it first to add it again.", duplicate)
            if len(current.articles) >= self.settings.max_articles:
                raise ArticleTooLargeError(f"The index holds {len(current.articles):,} articles, the most allowed "
                                           f"({self.settings.max_articles:,}); remove one first.")
            store = self.articles_folder()
            path = write_article_file(store, new.id, new.raw)
            try:
                article = read_article(path, new.id, self.settings.max_article_bytes)
                sources = current.sources if any(path.resolve().is_relative_to(Path(s).resolve()) for s in current.sources
                                                 if Path(s).is_dir()) else [*current.sources, str(path.resolve())]
                index = self._rebuild(current, [*current.articles.values(), article], sources)
                save_index(index, folder)
            except BaseException:
                path.unlink(missing_ok=True)  # nothing half-added: the file goes with the failed index
                raise
            self._serving = self._serve(index)
        log(f"Added article {new.id} ({len(index.article_rows.get(new.id, ()))} passages)")
        return next(a for a in self.list_articles() if a["article"] == new.id)

    def remove_article(self, article_id: str, *, wait: float = 60.0, log: Log = _stderr) -> dict:
        """Delete an article's file from the articles folder and drop it from the index. Returns its former entry
        of `list_articles()`. ArticleNotFoundError for an unknown id; ArticleError for the last article or one
        whose file lies outside the articles folder."""
        folder = self.settings.index_path
        with write_lock(folder, timeout=wait, log=log):
            current = self._latest()
            info = current.articles.get(article_id) if isinstance(article_id, str) else None
            if info is None:
                _rows_of(current, [str(article_id)])  # raises ArticleNotFoundError with the message
            assert info is not None
            if len(current.articles) == 1:
                raise ArticleError(f"{article_id!r} is the only article; add another before removing it.")
            entry = next(a for a in self.list_articles() if a["article"] == article_id)
            path = Path(info.path)
            if not any(path.resolve().is_relative_to(Path(s).resolve()) for s in current.sources if Path(s).is_dir()):
                raise ArticleError(f"Article {article_id!r} comes from {entry['path']}, outside the articles folder; "
                                   "remove that file and run `qa build`.")
            path.unlink(missing_ok=True)  # first: a crash after it leaves an index naming a missing file, which the
            # next start rebuilds without it (the other order would bring the article back)
            sources = [s for s in current.sources if Path(s).resolve() != path.resolve()]
            index = self._rebuild(current, [a for a in current.articles.values() if a.id != article_id], sources)
            save_index(index, folder)
            self._serving = self._serve(index)
        log(f"Removed article {article_id}")
        return entry

    def _latest(self) -> StoredIndex:
        """The index as committed on disk (another process may have changed it); call with the writer lock held."""
        folder = self.settings.index_path
        manifest = read_manifest(folder)
        if manifest.get("generation") == self.index.manifest.get("generation"):
            return self.index
        return load_index(folder, manifest)

    def _rebuild(self, current: StoredIndex, articles: list, sources: list[str]) -> StoredIndex:
        """`current` with articles added or removed: only new articles are embedded, by the query encoder."""
        return build_index(articles, embedder=self.embedder, model=current.model, chunking=current.chunking,
                           sources=sources, previous=current,
                           before_embedding=lambda chunks: check_room(self.settings.index_path,
                                                                      estimated_bytes(chunks, current.dimension)))

    def _find_content(self, index: StoredIndex, content: str) -> str | None:
        """The id of the article in `index` with this story, if any (older indexes lack the key: read the file)."""
        from .articles import story_key

        for info in index.articles.values():
            key = info.content
            if key is None:
                try:
                    key = story_key(read_article(Path(info.path), info.id, self.settings.max_article_bytes))
                except QAError:
                    continue
            if key == content:
                return info.id
        return None


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
