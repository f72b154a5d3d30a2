"""The Qdrant store (issue 26): the archive's passages, vectors and article texts in Qdrant, so several app servers
share one archive. A second implementation of the store contract in qa/store.py (`Store`, `Snapshot`).

Where it lives: `QdrantStore.connect(url=..., api_key=...)` for a Qdrant server or cluster, or `path=...` for
qdrant-client's embedded local mode (one process holds a path; tests and one-machine trials).

What Qdrant holds, in two collections named from one prefix (`article_qa` by default):
- `<prefix>_passages`: a point per passage, with its vectors as the files store reads them back: `dense` (the
  passage vector, inner product), `sentences` and `tokens` (multivectors, MaxSim, kept on disk, no graph: read by
  id for the rerank, never searched). Payload: article, write, seq (its row within the write), paragraph, exact
  start and end, text, sentence spans, the sentence of each token.
- `<prefix>_articles`: a point per article (identity, title, date, URL, file stamp, and the article's text, so a
  server that never saw the file still quotes it), and the state point: the model, chunking, sources and the
  list of live writes with the articles removed from each since (the files store's manifest, as a payload).

Writes are the files store's segments: an add is one write (points tagged with a new write number), committed by
replacing the state point; a remove is a tombstone in the state, then its points are deleted. A snapshot answers
from the writes its state names (a search filters on them), so a question never sees half an add. What a
snapshot keeps in memory per write is what a segment keeps in its files' small arrays: passage texts, spans and
the BM25 postings (rebuilt from the texts when a write is first read, then reused by every later snapshot);
vectors stay in Qdrant and are fetched by id for the 10-40 candidates of a question.

Writers take turns through a lease point (insert-only: one holder at a time across servers); the commit is a
conditional update of the state point (the generation it read), so two servers never overwrite each other's
change.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import quantize
from .articles import ArticleFiles
from .errors import IndexBusyError, IndexMissingError, StaleIndexError, StoreUnavailableError
from .lexical import Postings
from .segments import NewArticle, Segment
from .store import FORMAT_VERSION, StoredIndex
from .types import ArticleInfo, Chunk, Span

__all__ = ["DEFAULT_COLLECTION", "QdrantSnapshot", "QdrantStore", "StoreUnavailableError"]

DEFAULT_COLLECTION = "article_qa"
UPSERT_BATCH = 64  # points per upsert request
SCROLL_PAGE = 512
LEASE_SECONDS = 600.0  # a writer's lease older than this is taken over (its holder died)
_NS = uuid.UUID("6f1d3c2e-8a4b-4f7e-9c0d-2b5a1e3f4d6c")  # article-qa's point ids: uuid5(_NS, name)


def point_id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


STATE_ID = point_id("state")
LEASE_ID = point_id("writer-lease")


def _models():
    from qdrant_client import models

    return models


def _failures() -> tuple[type[BaseException], ...]:
    """What qdrant-client raises when the server is down, slow or refuses (not a mistake in this code)."""
    import httpx
    from qdrant_client.http.exceptions import ApiException

    found: list[type[BaseException]] = [ApiException, httpx.HTTPError, OSError]
    try:
        import grpc

        found.append(grpc.RpcError)
    except ImportError:
        pass
    return tuple(found)


# --- one write, as a snapshot holds it (the part of a segment that lives in memory) ----------------------------


class QdrantWrite:
    """The passages of one write as read from Qdrant: what `StoredIndex` needs of a segment, vectors aside."""

    graph = None

    def __init__(self, write: int, passages: list[dict], articles: list[dict]) -> None:
        self.write = write
        self.name = f"write-{write}"
        listed = {a["id"] for a in articles}  # a passage whose article point is gone (removed meanwhile) is not a row
        passages = sorted((p for p in passages if p["article"] in listed), key=lambda p: p["seq"])
        self.passages = len(passages)
        # the write's numbering (seq) has gaps when articles removed before this process read it are left out
        self.seqs = np.array([int(p["seq"]) for p in passages], dtype=np.int64)
        self.ids = [point_id(f"{p['article']}/{write}/{p['seq']}") for p in passages]
        self.texts = [p["text"] for p in passages]
        self._chunks = [Chunk(p["article"], int(p["paragraph"]), int(p["start"]), int(p["end"]), p["text"],
                              tuple(Span(int(a), int(b)) for a, b in p["sentences"])) for p in passages]
        self.postings = Postings.build(self.texts)
        self.order: list[str] = []
        self.articles: dict[str, ArticleInfo] = {}
        self.ranges: dict[str, tuple[int, int]] = {}
        self.stamps: dict[str, tuple[int, int] | None] = {}
        self.by_content: dict[str, list[str]] = {}
        self.aside: dict[str, set[str]] = {}
        first: dict[str, int] = {}
        count: dict[str, int] = {}
        for i, c in enumerate(self._chunks):
            first.setdefault(c.article_id, i)
            count[c.article_id] = count.get(c.article_id, 0) + 1
        for a in sorted(articles, key=lambda a: a["order"]):
            info = _info(a)
            if info.id not in first:
                continue  # an article without passages here (its points were deleted meanwhile)
            self.order.append(info.id)
            self.articles[info.id] = info
            self.ranges[info.id] = (first[info.id], count[info.id])
            self.stamps[info.id] = tuple(a["stamp"]) if a.get("stamp") else None  # type: ignore[assignment]
            if info.content:
                self.by_content.setdefault(info.content, []).append(info.id)
            for w in info.aside:
                self.aside.setdefault(w, set()).add(info.id)
        self._sentences = {a: sum(len(c.sentences) for c in self._chunks[f : f + n]) for a, (f, n) in self.ranges.items()}
        self.meta = {"sentences": sum(self._sentences.values()), "passages": self.passages}
        self._live: dict[frozenset, np.ndarray | None] = {}

    live = Segment.live

    def sentences_of(self, article_ids) -> int:
        return sum(self._sentences[a] for a in article_ids)

    def local_of(self, seq: int) -> int | None:
        """This part's row of the write's passage `seq`, None when it holds none."""
        i = int(np.searchsorted(self.seqs, seq))
        return i if i < len(self.seqs) and self.seqs[i] == seq else None

    def chunk(self, local: int) -> Chunk:
        return self._chunks[local]


def _info(a: dict) -> ArticleInfo:
    return ArticleInfo(a["id"], a["path"], a["title"], a.get("date"), a["sha256"], a.get("url"), a.get("source"),
                       a.get("content"), tuple(a.get("aside") or ()))


# --- a committed state, opened ---------------------------------------------------------------------------------


class QdrantSnapshot(StoredIndex):
    """One committed state of a Qdrant store: rows, articles and BM25 in memory as the files store has them; dense
    search, passage, sentence and token vectors from Qdrant."""

    def __init__(self, store: QdrantStore, state: dict, writes: list[QdrantWrite], deleted: list[frozenset[str]]) -> None:
        self.store = store
        super().__init__(store.folder, state, writes, deleted)  # type: ignore[arg-type]
        self.root = Path.cwd()  # paths are shown relative to the server's working folder when under it
        self.sources = list(state["sources"])
        self.stamp = None
        self._position = {w.write: s for s, w in enumerate(writes)}  # write number -> its place among the segments
        self._last_write = int(state.get("last_write", 0))
        self._tombstones = [(w.write, sorted(d)) for w, d in zip(writes, deleted) if d]

    def __repr__(self) -> str:
        return (f"<QdrantSnapshot {self.store.where} generation {self.generation}: {len(self.articles)} articles, "
                f"{self.passages} passages, {len(self.segments)} writes>")

    @property
    def generation(self) -> str | None:
        return str(self.manifest["generation"])

    def ids_of(self, rows: Sequence[int]) -> list[str]:
        out = []
        for r in rows:
            s, local = self.locate(int(r))
            out.append(self.segments[s].ids[local])
        return out

    def _row_of(self, write: int, seq: int) -> int | None:
        """The snapshot row of passage `seq` of a write, None when this state does not hold it (a write dropped or
        not yet committed, a removed article)."""
        s = self._position.get(write)
        local = None if s is None else self.segments[s].local_of(seq)  # type: ignore[attr-defined]
        if local is None:
            return None
        live = self.live_rows[s]
        if live is None:
            return int(self.bases[s]) + local
        at = int(np.searchsorted(live, local))
        return int(self.bases[s]) + at if at < len(live) and live[at] == local else None

    def _scope(self):
        """This state's points: writes up to its last (later ones are not committed for it; dropped ones are
        deleted, and `_row_of` leaves out what is still there), less its tombstones. Its size does not grow with
        the number of adds."""
        m = _models()
        must_not = [m.Filter(must=[m.FieldCondition(key="write", match=m.MatchValue(value=w)),
                                   m.FieldCondition(key="article", match=m.MatchAny(any=gone))])
                    for w, gone in self._tombstones]
        return m.Filter(must=[m.FieldCondition(key="write", range=m.Range(lte=self._last_write))],
                        must_not=must_not or None)

    def _vectors(self, rows: Sequence[int], name: str, payload: list[str] | bool = False) -> list:
        ids = self.ids_of(rows)
        found = {str(p.id): p for p in self.store.call("read passages", self.store.client.retrieve,
                                                      self.store.passages, ids=ids, with_vectors=[name],
                                                      with_payload=payload)}
        return [found.get(i) for i in ids]

    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), self.dimension), np.float32)
        for i, p in enumerate(self._vectors(rows, "dense")):
            if p is not None:  # a point removed meanwhile reads as zeros; the next question opens the new state
                out[i] = np.asarray(p.vector["dense"], dtype=np.float32)
        return out

    def sentence_vectors_of(self, rows: Sequence[int]) -> list[np.ndarray]:
        out = []
        for r, p in zip(rows, self._vectors(rows, "sentences")):
            n = len(self.chunks[int(r)].sentences)
            v = (p.vector or {}).get("sentences") if p is not None else None
            out.append(np.asarray(v, dtype=np.float32).reshape(-1, self.dimension) if v else np.zeros((n, self.dimension), np.float32))
        return out

    def tokens_of(self, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for p in self._vectors(rows, "tokens", ["owners"]):
            v = (p.vector or {}).get("tokens") if p is not None else None
            if not v:
                out.append((np.zeros((0, self.dimension), np.float32), np.zeros(0, np.uint8)))
                continue
            out.append((np.asarray(v, dtype=np.float32).reshape(-1, self.dimension), np.asarray(p.payload["owners"], np.uint8)))
        return out

    def dense_search(self, vector: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Qdrant's nearest points among this state's writes (exact search within `rows` when given), ordered as the
        files store orders them (score, then row)."""
        m = _models()
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        flt = self._scope()
        params = None
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if not len(rows):
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            flt = m.Filter(must=[m.HasIdCondition(has_id=self.ids_of(rows))])
            params = None if self.store.local else m.SearchParams(exact=True)  # local mode is always exact
        found = self.store.call("search passages", self.store.client.query_points, self.store.passages,
                                query=q.tolist(), using="dense", query_filter=flt, search_params=params, limit=k,
                                with_payload=["write", "seq"]).points
        hits = [(self._row_of(int(p.payload["write"]), int(p.payload["seq"])), float(p.score)) for p in found]
        hits = [(r, s) for r, s in hits if r is not None]
        if not hits:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows_ = np.array([r for r, _ in hits], np.int64)
        scores = np.array([s for _, s in hits], np.float32)
        top = np.lexsort((rows_, -scores))[:k]
        return rows_[top], scores[top]

    def article_text(self, article_id: str) -> str | None:
        """The article's text as stored in Qdrant (what its citations' offsets point into)."""
        where = self.articles.where(article_id)
        if where is None:
            return None
        write = self.segments[where[0]].write  # type: ignore[attr-defined]
        found = self.store.call("read an article", self.store.client.retrieve, self.store.articles_collection,
                                ids=[point_id(f"article/{article_id}/{write}")], with_payload=["text"])
        return found[0].payload.get("text") if found else None


# --- the store -----------------------------------------------------------------------------------------------


class QdrantStore:
    """An archive in Qdrant. `connect` it; `open` the latest state; `write` inside `writing()`."""

    shared = True  # it keeps the article texts, and every app server over it reads and writes the same state

    def __init__(self, client, *, where: str, collection: str = DEFAULT_COLLECTION, folder: Path | None = None) -> None:
        self.client = client
        self.where = where
        self.local = where.startswith("local mode")
        self.prefix = collection
        self.passages = f"{collection}_passages"
        self.articles_collection = f"{collection}_articles"
        self.folder = folder or Path.cwd() / ".qdrant"  # where relative sources are read from (never written)
        self._writes: dict[int, QdrantWrite] = {}  # writes read by this process, shared by its snapshots
        self._lock = threading.Lock()
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @classmethod
    def connect(cls, *, url: str | None = None, api_key: str | None = None, path: str | Path | None = None,
                collection: str = DEFAULT_COLLECTION, timeout: float = 10.0) -> QdrantStore:
        """A server at `url` (QA_QDRANT_URL, with QA_QDRANT_API_KEY), or embedded local mode in `path`
        (QA_QDRANT_PATH)."""
        try:
            from qdrant_client import QdrantClient
        except ImportError:
            raise StoreUnavailableError("QA_STORE=qdrant needs qdrant-client (requirements.txt): `pip install "
                                        "qdrant-client==1.20.0`, or QA_STORE=files.") from None
        if bool(url) == bool(path):
            raise StoreUnavailableError("QA_STORE=qdrant needs exactly one of QA_QDRANT_URL (a Qdrant server) and "
                                        f"QA_QDRANT_PATH (embedded local mode); got url={url!r}, path={path!r}.")
        where = url or f"local mode in {path}/"
        try:
            if url:
                client = QdrantClient(url=url, api_key=api_key or None, timeout=int(timeout))
            else:
                Path(path).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
                client = QdrantClient(path=str(path))
        except RuntimeError as exc:  # local mode: another process holds the folder
            raise StoreUnavailableError(f"Qdrant {where} cannot be opened: {exc}") from None
        except OSError as exc:
            raise StoreUnavailableError(f"Qdrant {where} cannot be opened ({exc}); choose a writable QA_QDRANT_PATH.") from None
        return cls(client, where=where, collection=collection)

    def close(self) -> None:
        self.client.close()

    def call(self, what: str, fn, *args, **kwargs):
        """One Qdrant request; a failure is a StoreUnavailableError naming it, the server and the fix."""
        try:
            return fn(*args, **kwargs)
        except _failures() as exc:
            raise StoreUnavailableError(
                f"Qdrant at {self.where} failed to {what} ({type(exc).__name__}: {str(exc)[:300]}); check that it "
                "runs and that QA_QDRANT_URL and QA_QDRANT_API_KEY are right. Nothing was changed.") from None

    # --- collections ---
    def _exists(self, name: str) -> bool:
        return bool(self.call("list collections", self.client.collection_exists, name))

    def _create(self, dimension: int) -> None:
        m = _models()
        if not self._exists(self.passages):
            multi = {"multivector_config": m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
                     "hnsw_config": m.HnswConfigDiff(m=0), "on_disk": True}
            self.call("create the passages collection", self.client.create_collection, self.passages, vectors_config={
                "dense": m.VectorParams(size=dimension, distance=m.Distance.DOT),
                "sentences": m.VectorParams(size=dimension, distance=m.Distance.DOT, **multi),
                "tokens": m.VectorParams(size=dimension, distance=m.Distance.DOT, **multi)})
            with warnings.catch_warnings():  # local mode has no payload indexes and says so
                warnings.simplefilter("ignore")
                for key, kind in (("article", m.PayloadSchemaType.KEYWORD), ("write", m.PayloadSchemaType.INTEGER)):
                    self.call("index a payload field", self.client.create_payload_index, self.passages, key, kind)
        self._create_articles_collection()

    def _create_articles_collection(self) -> None:
        if not self._exists(self.articles_collection):  # vectorless points: articles, the state, the writer's lease
            self.call("create the articles collection", self.client.create_collection, self.articles_collection,
                      vectors_config={})

    # --- reading ---
    def state(self) -> dict | None:
        if not self._exists(self.articles_collection):
            return None
        found = self.call("read the state", self.client.retrieve, self.articles_collection, ids=[STATE_ID])
        return json.loads(found[0].payload["state"]) if found else None

    def _scroll(self, collection: str, flt, fields) -> Iterator:
        offset = None
        while True:
            points, offset = self.call("read points", self.client.scroll, collection, scroll_filter=flt,
                                       limit=SCROLL_PAGE, offset=offset, with_payload=fields, with_vectors=False)
            yield from points
            if offset is None:
                return

    def _write_of(self, write: int, deleted: frozenset[str]) -> QdrantWrite:
        kept = self._writes.get(write)
        if kept is not None:  # a write never changes; articles removed from it since are masked by the snapshot
            return kept
        m = _models()
        by = m.Filter(must=[m.FieldCondition(key="write", match=m.MatchValue(value=write))],
                      must_not=[m.FieldCondition(key="article", match=m.MatchAny(any=sorted(deleted)))] if deleted else None)
        fields = ["article", "seq", "paragraph", "start", "end", "text", "sentences"]
        passages = [p.payload for p in self._scroll(self.passages, by, fields)]
        by_article = m.Filter(must=[m.FieldCondition(key="write", match=m.MatchValue(value=write)),
                                    m.FieldCondition(key="kind", match=m.MatchValue(value="article"))])
        articles = [p.payload for p in self._scroll(self.articles_collection, by_article,
                                                    ["id", "path", "title", "date", "sha256", "url", "source", "content",
                                                     "aside", "stamp", "order"])]
        w = QdrantWrite(write, passages, [a for a in articles if a["id"] not in deleted])
        self._writes[write] = w
        return w

    def _snapshot(self, state: dict) -> QdrantSnapshot:
        writes, deleted = [], []
        for e in state["writes"]:
            d = frozenset(e["deleted"])
            writes.append(self._write_of(int(e["write"]), d))
            deleted.append(d)
        live = {w.write for w in writes}
        for n in list(self._writes):
            if n not in live:
                del self._writes[n]
        return QdrantSnapshot(self, state, writes, deleted)

    def open(self, *, verify: bool = False) -> QdrantSnapshot:
        state = self.state()
        if state is None:
            raise IndexMissingError(f"Qdrant {self.where} holds no article-qa archive in {self.prefix}_*; run "
                                    "`qa build --store qdrant` to copy the files index there.")
        if state.get("format_version") != FORMAT_VERSION:
            raise StaleIndexError(f"The archive in Qdrant {self.where} is of format {state.get('format_version')!r}, "
                                  f"not {FORMAT_VERSION}; run `qa build --store qdrant` again.")
        return self._snapshot(state)

    def changed(self, current: QdrantSnapshot) -> bool:
        found = self.call("read the state", self.client.retrieve, self.articles_collection, ids=[STATE_ID],
                          with_payload=["generation"])
        return not found or str(found[0].payload.get("generation")) != current.generation

    def latest(self, current: QdrantSnapshot | None, *, verify: bool = False) -> QdrantSnapshot:
        state = self.state()
        if state is None:
            return self.open()
        if current is not None and str(state["generation"]) == current.generation:
            return current
        return self._snapshot(state)

    # --- writing ---
    @contextmanager
    def writing(self, *, timeout: float | None = None, log=lambda _m: None):
        """The writer's turn across every process and server: a lease point only one holder can insert."""
        m = _models()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):  # a writer of this process first
            raise IndexBusyError(f"Another writer of this process holds the archive in Qdrant {self.where}; try again "
                                 "when its change is done.")
        try:
            self._create_articles_collection()
            told = False
            token = uuid.uuid4().hex
            while True:
                self.call("take the writer's lease", self.client.upsert, self.articles_collection, points=[
                    m.PointStruct(id=LEASE_ID, vector={}, payload={"kind": "lease", "holder": self._holder,
                                                                   "token": token, "since": time.time()})],
                    update_mode=m.UpdateMode.INSERT_ONLY)
                held = self.call("read the writer's lease", self.client.retrieve, self.articles_collection, ids=[LEASE_ID])
                if held and held[0].payload.get("token") == token:
                    break
                if held and time.time() - float(held[0].payload.get("since", 0)) > LEASE_SECONDS:
                    self._drop_lease(str(held[0].payload.get("token")))  # that lease only, not one taken since
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    who = held[0].payload.get("holder") if held else "?"
                    raise IndexBusyError(f"Another writer ({who}) holds the archive in Qdrant {self.where}; try again "
                                         "when its change is done.")
                if not told:
                    log(f"Waiting for another writer of Qdrant {self.where} ...")
                    told = True
                time.sleep(0.2)
            try:
                yield
            finally:
                self._drop_lease(token)
        finally:
            self._lock.release()

    def _drop_lease(self, token: str) -> None:
        m = _models()
        self.call("give back the writer's lease", self.client.delete, self.articles_collection,
                  points_selector=m.FilterSelector(filter=m.Filter(must=[
                      m.HasIdCondition(has_id=[LEASE_ID]), m.FieldCondition(key="token", match=m.MatchValue(value=token))])))

    def write(self, current: QdrantSnapshot | None, *, add: Iterable[NewArticle] = (), remove: Iterable[str] = (),
              header: dict | None = None, replace_all: bool = False, decoded: bool = False) -> QdrantSnapshot:
        """One atomic change (call inside `writing()`): the articles of `add` as one new write, those of `remove`
        tombstoned, committed by one conditional update of the state point. A failed write leaves points of a write
        number no state names; the next writer deletes them. The vectors are stored as the files store reads its
        own back (its 5-bit and int8 codecs), so both stores score alike; `decoded`: they already are (a copy of a
        files index, `copy_index`)."""
        m = _models()
        state = self.state()
        header = dict(header or {})
        if current is not None and not replace_all:
            header.setdefault("model", {"name": current.model, "dimension": current.dimension})
            header.setdefault("chunking", current.chunking)
            header.setdefault("sources", current.sources)
            header.setdefault("embedded_by", current.embedded_by)
        dimension = int(header["model"]["dimension"])
        self._create(dimension)
        entries = [] if replace_all or state is None else [dict(e, deleted=list(e["deleted"])) for e in state["writes"]]
        generation = 0 if state is None else int(state["generation"])
        number = 1 + max([int(state.get("last_write", 0))] if state else [0])
        self.call("clear an unfinished write", self.client.delete, self.passages, points_selector=m.FilterSelector(
            filter=m.Filter(must=[m.FieldCondition(key="write", range=m.Range(gte=number))])))
        self.call("clear an unfinished write", self.client.delete, self.articles_collection,
                  points_selector=m.FilterSelector(filter=m.Filter(must=[
                      m.FieldCondition(key="kind", match=m.MatchValue(value="article")),
                      m.FieldCondition(key="write", range=m.Range(gte=number))])))
        gone = set(remove)
        files = ArticleFiles(capacity=1)
        added: list[str] = []
        passages, articles = [], []
        seq = 0
        for order, article in enumerate(add):
            info = article.info
            added.append(info.id)
            text = files.text(info.path, info.sha256)  # the indexed file's text, offsets intact; None if changed
            articles.append(m.PointStruct(id=point_id(f"article/{info.id}/{number}"), vector={}, payload={
                "kind": "article", "write": number, "order": order, "id": info.id, "path": info.path, "title": info.title,
                "date": info.date, "sha256": info.sha256, "url": info.url, "source": info.source, "content": info.content,
                "aside": list(info.aside), "stamp": list(article.stamp) if article.stamp else None, "text": text}))
            for c, v in zip(article.chunks, article.vectors):
                vectors = {"dense": np.asarray(v.passage, np.float32).tolist()}
                sentences = np.asarray(v.sentences, np.float32).reshape(-1, dimension)
                tokens = np.asarray(v.tokens, np.float32).reshape(-1, dimension)
                if not decoded:
                    sentences = quantize.decode8(quantize.encode8(sentences), dimension)
                    tokens = quantize.decode(quantize.encode(tokens), dimension)
                if len(sentences):
                    vectors["sentences"] = sentences.tolist()
                if len(tokens):
                    vectors["tokens"] = tokens.tolist()
                passages.append(m.PointStruct(id=point_id(f"{info.id}/{number}/{seq}"), vector=vectors, payload={
                    "kind": "passage", "article": info.id, "write": number, "seq": seq, "paragraph": c.paragraph,
                    "start": c.start, "end": c.end, "text": c.text, "sentences": [[s.start, s.end] for s in c.sentences],
                    "owners": np.asarray(v.token_sentence, np.uint8).tolist()}))
                seq += 1
                if len(passages) >= UPSERT_BATCH:
                    self.call("store passages", self.client.upsert, self.passages, points=passages)
                    passages = []
        if passages:
            self.call("store passages", self.client.upsert, self.passages, points=passages)
        for start in range(0, len(articles), UPSERT_BATCH):
            self.call("store articles", self.client.upsert, self.articles_collection, points=articles[start : start + UPSERT_BATCH])
        replaced = gone | set(added)  # an article added again replaces its copy in an older write
        holders = {} if current is None else {w.write: set(w.ranges) for w in current.segments}  # type: ignore[attr-defined]
        for e in entries:
            held = holders.get(int(e["write"])) or self._write_of(int(e["write"]), frozenset(e["deleted"])).ranges.keys()
            e["deleted"] = sorted(set(e["deleted"]) | (replaced & set(held)))
            e["_live"] = bool(set(held) - set(e["deleted"]))
        dropped = [int(e["write"]) for e in entries if not e["_live"]]
        entries = [{"write": int(e["write"]), "deleted": e["deleted"]} for e in entries if e["_live"]]
        if added:
            entries.append({"write": number, "deleted": []})
        new_state = {"format_version": FORMAT_VERSION, "generation": generation + 1, "commit": uuid.uuid4().hex,
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": header["model"],
                     "chunking": header["chunking"], "embedded_by": header.get("embedded_by") or {},
                     "sources": list(header.get("sources") or []), "codec": quantize.CODEC,
                     "last_write": number if added else (0 if state is None else int(state.get("last_write", 0))),
                     "writes": entries}
        self._commit(state, new_state)
        # the tombstoned and replaced articles' points of older writes, and writes with nothing live, are deleted now
        stale = m.Filter(must=[m.FieldCondition(key="write", match=m.MatchAny(any=dropped))])
        for coll in (self.passages, self.articles_collection):
            key = "article" if coll == self.passages else "id"
            if replaced:
                self.call("delete removed articles", self.client.delete, coll, points_selector=m.FilterSelector(filter=m.Filter(
                    must=[m.FieldCondition(key=key, match=m.MatchAny(any=sorted(replaced))),
                          m.FieldCondition(key="write", range=m.Range(lt=number))])))
            if dropped:
                self.call("delete empty writes", self.client.delete, coll, points_selector=m.FilterSelector(filter=stale))
        if replace_all and state is not None:
            old = [int(e["write"]) for e in state["writes"]]
            for coll in (self.passages, self.articles_collection):
                self.call("delete the old archive", self.client.delete, coll, points_selector=m.FilterSelector(
                    filter=m.Filter(must=[m.FieldCondition(key="write", match=m.MatchAny(any=old))])))
        return self._snapshot(new_state)

    def _commit(self, state: dict | None, new_state: dict) -> None:
        """Replace the state point, only if it is still the generation this writer read (compare-and-set)."""
        m = _models()
        point = m.PointStruct(id=STATE_ID, vector={}, payload={"kind": "state", "generation": new_state["generation"],
                                                               "state": json.dumps(new_state)})
        if state is None:
            self.call("commit", self.client.upsert, self.articles_collection, points=[point],
                      update_mode=m.UpdateMode.INSERT_ONLY)
        else:
            self.call("commit", self.client.upsert, self.articles_collection, points=[point], update_filter=m.Filter(
                must=[m.FieldCondition(key="generation", match=m.MatchValue(value=int(state["generation"])))]))
        now = self.state()
        if now is None or now.get("commit") != new_state["commit"]:
            raise StaleIndexError(f"Another writer changed the archive in Qdrant {self.where} during this change; "
                                  "nothing of this one was committed. Try again.")



def stored_articles(index: StoredIndex) -> Iterator[NewArticle]:
    """The articles of a files index with the vectors it stores, decoded (`write(..., decoded=True)`): a copy into
    Qdrant embeds nothing."""
    from .segments import ChunkVectors

    for article_id in index.articles:
        rows = index.article_rows[article_id]
        chunks = [index.chunks[int(r)] for r in rows]
        dense = index.vectors_of(rows)
        sentences = index.sentence_vectors_of(rows)
        tokens = index.tokens_of(rows)
        vectors = [ChunkVectors(d, s, t, owners) for d, s, (t, owners) in zip(dense, sentences, tokens)]
        yield NewArticle(index.articles[article_id], index.stamp_of(article_id), chunks, vectors)


def copy_index(index: StoredIndex, store: QdrantStore, *, log=lambda _m: None) -> QdrantSnapshot:
    """Replace the archive in `store` by the articles of a files index, re-using its vectors (no re-embedding)."""
    header = {"model": {"name": index.model, "dimension": index.dimension}, "chunking": index.chunking,
              "sources": index.sources, "embedded_by": index.embedded_by}
    with store.writing(log=log):
        current = store.latest(None) if store.state() is not None else None
        return store.write(current, add=stored_articles(index), header=header, replace_all=True, decoded=True)
