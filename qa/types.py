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
    url: str | None = None  # from a `url:` header line, when the file has one
    source: str | None = None  # from a `source:` header line

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
    url: str | None = None  # where the story was published, when known (an added page's canonical URL)
    source: str | None = None  # the publication, when known (an added page's site name)
    content: str | None = None  # sha256 of the story's words (qa.articles.story_key): finds a story added twice
    aside: tuple[str, ...] = ()  # words found only in lines that are not story text (related-story headlines, promos)


@dataclass(frozen=True)
class Citation:
    article: str
    title: str
    date: str | None
    paragraph: int
    start: int
    end: int
    path: str
    url: str | None = None
    source: str | None = None
    stale: bool = False  # the file changed since it was indexed: these offsets may no longer match it


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
    reason: str | None = None  # why we abstained, in plain words
    span: Span | None = None  # the short answer inside the answer sentence (file offsets), for factual questions
    details: str | None = None  # the technical side of an abstention or answer: scores and thresholds
    interpreted_as: str | None = None  # the self-contained question answered (None: the question itself)
    warnings: tuple[str, ...] = ()
    status: str | None = None  # "answered", "uncertain" (the closest sentence, shown as such) or "abstained";
    # None: from `abstained`
    confidence: float | None = None  # P(the quoted sentence answers the question); None without the reader

    def __post_init__(self) -> None:
        if self.status is None:
            object.__setattr__(self, "status", "abstained" if self.abstained else "answered")
        if self.status not in ("answered", "uncertain", "abstained") or self.abstained != (self.status == "abstained"):
            raise ValueError(f"status {self.status!r} with abstained={self.abstained}: `abstained` is true exactly "
                             "when the status is 'abstained'")

    def to_json(self) -> dict:
        answer = None
        if self.text is not None:
            span = None
            if self.span is not None:
                cited = next(p for p in self.passages if p.rank == self.citation)
                offset = cited.citation.start
                span = {"start": self.span.start, "end": self.span.end,
                        "text": cited.text[self.span.start - offset : self.span.end - offset]}
            answer = {"text": self.text, "citation": self.citation, "span": span}
        return {
            "question": self.question,
            "interpreted_as": self.interpreted_as or self.question,
            "status": self.status,
            "abstained": self.abstained,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "reason": self.reason,
            "details": self.details,
            "answer": answer,
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
                        "url": p.citation.url,
                        "source": p.citation.source,
                        "stale": p.citation.stale,
                    },
                }
                for p in self.passages
            ],
            "warnings": list(self.warnings),
        }
