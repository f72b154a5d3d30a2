"""The answering path as the pipeline it is: resolve → retrieve → read → decide → compose.

Each stage is a function with a small typed result, so each can be tested alone with hand-made inputs and a new
signal has one place to go:

- `resolve_question` (here): the question as it will be answered — a follow-up spelled out against the
  conversation (qa/conversation.py), typos corrected, what a refusal should say if it leans on nothing;
- `retrieve` (here): the passages, with the follow-up and introduction favours (qa/retrieval.py does the search);
- `read` (qa/reading.py): the reader's verdict on every candidate sentence of the best passages;
- `decide` (qa/decide.py): the rules that refuse with a reason, the one calibrated confidence, the status
  (answered / uncertain / abstained), the quoted sentence and its short answer;
- `compose_answer` (qa/answer.py): the Answer with its numbered citations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .conversation import Resolution, follow_up_boost, needs_context, no_context_reason, resolve
from .introductions import introduction_boost
from .references import gender_lookup, referent_lookup
from .resolver import Resolver
from .retrieval import Hit, Query, Retriever
from .store import MAX_INTRODUCTIONS, StoredIndex
from .validation import Turn


@dataclass(frozen=True)
class Resolved:
    """The question as it will be answered."""

    question: str  # as asked (checked)
    asked: str  # self-contained: what the answer answers (`interpreted_as`)
    search_text: str  # what retrieval reads: `asked`, or with earlier text when a reference stays open
    corrected: str  # the question as asked with typos corrected: names are looked up in it
    resolution: Resolution | None  # the follow-up's resolution, None for a question asked alone
    dangling: str | None = None  # the refusal for a follow-up with nothing to lean on ("Who said that?" alone)

    @property
    def referent(self) -> str | None:
        """A thing the previous answer left unnamed, found in the article ("10th District of Chicago")."""
        return self.resolution.referent if self.resolution else None

    @property
    def known_answer(self) -> str | None:
        """The referent, when the question asks for it ("Which district?"): the short answer where the sentence has it."""
        return self.referent if self.resolution and self.resolution.asks_for_referent else None


@dataclass(frozen=True)
class Retrieved:
    """The passages found, best first."""

    query: Query
    hits: tuple[Hit, ...]


def resolve_question(text: str, history: Sequence[Turn], index: StoredIndex, correct: Callable[[str], str],
                     resolver: Resolver | None = None, articles: Sequence[str] | None = None) -> Resolved:
    """Resolve a follow-up against the conversation (a question with no history is its own interpretation). The
    resolver, when given, reads the title of the article the conversation is about: the one asked about, else the
    one the last answer came from."""
    resolution = None
    if history:
        # rows holding a word, from the postings (the first MAX_INTRODUCTIONS of a common one: a sample of its uses)
        containing = lambda w: index.rows_containing(w, limit=MAX_INTRODUCTIONS)  # noqa: E731
        find = None
        if resolver is not None:
            title = _title_of_conversation(history, index, articles)
            find = lambda q, exchanges: resolver.find(q, title, exchanges)  # noqa: E731
        resolution = resolve(text, history, gender_lookup(index.chunks, containing),
                             referent_lookup(index.chunks, index.passage_holding), find)
    # "Who said that?" with nothing said before: if refused, say so, not "the article does not say who said that"
    dangling = no_context_reason(text) if (resolution is None or resolution.leaned_on is None) and needs_context(text) \
        else None
    asked = resolution.interpreted_as if resolution else text
    search = resolution.search_text if resolution else text
    return Resolved(text, asked, search, correct(text), resolution, dangling)


def _title_of_conversation(history: Sequence[Turn], index: StoredIndex, articles: Sequence[str] | None) -> str | None:
    """The title of the one article asked about, else of the article the last answer quoted (None: neither)."""
    article = articles[0] if articles and len(articles) == 1 else None
    if article is None:
        for turn in reversed(history):
            row = index.passage_holding(turn.content.partition(" — ")[2] or turn.content) \
                if turn.role == "assistant" else None
            if row is not None:
                article = index.chunks[row].article_id
                break
    info = index.articles.get(article) if article else None
    return info.title if info is not None else None


def retrieve(resolved: Resolved, index: StoredIndex, retriever: Retriever, encode: Callable[[str, bool], Query], k: int,
             rows: np.ndarray | None) -> Retrieved:
    """The k best passages for the resolved question (among `rows` when given), favouring the passage of the answer
    a follow-up follows and the passages that introduce whom a "who is" question asks about. `encode(text,
    correct)` makes the query (correcting typos first when `correct`)."""
    # the question as asked is searched with its typos corrected (done once, in resolve_question); earlier text
    # added by a follow-up is corrected with it
    if resolved.search_text == resolved.question:
        query = encode(resolved.corrected, False)
    else:
        query = encode(resolved.search_text, True)
    follows = resolved.resolution.follows if resolved.resolution else None
    boost = follow_up_boost(index, follows) if follows else {}
    introducing = lambda w: index.introducing(w, rows)  # noqa: E731
    for row, extra in introduction_boost(index.chunks, resolved.asked, rows, containing=introducing).items():
        boost[row] = max(boost.get(row, 0.0), extra)
    return Retrieved(query, tuple(retriever.search(query, k, rows=rows, boost=boost)))
