"""The small frozen data objects passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A [start, end) range of characters in an article's raw text."""

    start: int
    end: int


@dataclass(frozen=True)
class Paragraph:
    """A story paragraph: `number` is 1-based among the story paragraphs of its article."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class SkippedLine:
    """A line kept out of the story (related-story headline, promo), with the rule that caught it."""

    start: int
    end: int
    reason: str


@dataclass(frozen=True)
class Article:
    id: str
    path: str  # absolute; citations show it relative to the project root when it is under it
    raw: str  # the file's text, untouched: every offset refers to it
    sha256: str  # of the file's bytes
    title: str
    date: str | None
    paragraphs: tuple[Paragraph, ...]
    skipped: tuple[SkippedLine, ...] = ()

    def text(self, span: Span | Paragraph | SkippedLine) -> str:
        return self.raw[span.start : span.end]


@dataclass(frozen=True)
class Chunk:
    """A passage: whole sentences of one story paragraph, with exact offsets into the raw text."""

    article_id: str
    paragraph: int
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...]


@dataclass(frozen=True)
class ArticleInfo:
    """What a citation needs of an article, kept in the index so queries never reread files."""

    id: str
    path: str
    title: str
    date: str | None
    sha256: str


@dataclass(frozen=True)
class Citation:
    article: str
    title: str
    date: str | None
    paragraph: int
    start: int
    end: int
    path: str


@dataclass(frozen=True)
class Passage:
    rank: int
    score: float  # fused score used for ranking
    dense: float  # cosine of question and passage: comparable across questions
    text: str
    highlight: Span  # the best sentence inside the passage
    highlight_score: float
    citation: Citation
    closest: bool = False  # True when the engine abstained: the nearest text, not an answer


@dataclass(frozen=True)
class Answer:
    question: str
    abstained: bool
    text: str | None  # the answer sentence, verbatim, or None when abstaining
    citation: int | None  # rank of the passage holding it
    passages: tuple[Passage, ...] = field(default_factory=tuple)
    reason: str | None = None  # why we abstained, in words

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "abstained": self.abstained,
            "reason": self.reason,
            "answer": None if self.text is None else {"text": self.text, "citation": self.citation},
            "passages": [
                {
                    "rank": p.rank,
                    "score": round(p.score, 6),
                    "dense": round(p.dense, 6),
                    "text": p.text,
                    "closest": p.closest,
                    "highlight": {"start": p.highlight.start, "end": p.highlight.end},
                    "citation": {
                        "article": p.citation.article,
                        "title": p.citation.title,
                        "date": p.citation.date,
                        "paragraph": p.citation.paragraph,
                        "start": p.citation.start,
                        "end": p.citation.end,
                        "path": p.citation.path,
                    },
                }
                for p in self.passages
            ],
        }
