"""Article -> passages (Chunks): whole sentences inside one story paragraph, exact [start, end) spans.

A paragraph that fits the model's input limit is one passage (`max_sentences=0`), or windows of
`max_sentences` sentences. A paragraph over the limit is split into consecutive sentence windows that fit,
so the model never truncates text silently; a single sentence over the limit is cut at word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .sentences import split_sentences
from .types import Article, Chunk, Span

TokenCounter = Callable[[Sequence[str]], list[int]]
SPLITTER_VERSION = 2  # bump when sentence or paragraph rules change: indexes built before are rebuilt


def _cut_long_sentence(raw: str, span: Span, max_tokens: int, count: TokenCounter) -> list[Span]:
    """Word-boundary pieces of one over-long sentence, each within max_tokens."""
    words = [Span(span.start + m.start(), span.start + m.end()) for m in re.finditer(r"\S+", raw[span.start : span.end])]
    pieces: list[Span] = []
    i = 0
    while i < len(words):
        lo, hi = i + 1, len(words)  # the longest run words[i:j] that fits, found by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count([raw[words[i].start : words[mid - 1].end]])[0] <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(Span(words[i].start, words[lo - 1].end))
        i = lo
    return pieces


def chunk_article(article: Article, *, max_tokens: int, count_tokens: TokenCounter, max_sentences: int = 0) -> list[Chunk]:
    """Passages of one article in reading order."""
    raw = article.raw
    chunks: list[Chunk] = []
    split = [split_sentences(raw[p.start : p.end], p.start) for p in article.paragraphs]
    # Paragraphs first, in one tokenizer call; sentences only of the paragraphs over the limit (news and SQuAD
    # paragraphs mostly fit: counting every sentence too tokenized the text twice).
    paragraph_counts = count_tokens([raw[p.start : p.end] for p in article.paragraphs])
    long = [i for i, n in enumerate(paragraph_counts) if n > max_tokens or max_sentences]
    flat = count_tokens([raw[s.start : s.end] for i in long for s in split[i]])
    sentence_counts: list[list[int]] = [[] for _ in split]
    at = 0
    for i in long:
        sentence_counts[i] = flat[at : at + len(split[i])]
        at += len(split[i])
    for para, sentences, counts, whole in zip(article.paragraphs, split, sentence_counts, paragraph_counts):
        if whole <= max_tokens and not max_sentences:
            chunks.append(Chunk(article.id, para.number, sentences[0].start, sentences[-1].end,
                                raw[sentences[0].start : sentences[-1].end], tuple(sentences)))
            continue
        units: list[tuple[Span, int]] = []
        for s, n in zip(sentences, counts):
            if n <= max_tokens:
                units.append((s, n))
            else:
                units.extend((p, count_tokens([raw[p.start : p.end]])[0]) for p in _cut_long_sentence(raw, s, max_tokens, count_tokens))
        if whole <= max_tokens and (max_sentences == 0 or len(units) <= max_sentences):
            groups = [[u[0] for u in units]]
        else:
            groups, current, used = [], [], 0
            for span, n in units:
                # +1 per joint: word pieces of adjacent sentences may merge differently; stay safely under
                if current and (used + n + 1 > max_tokens or (max_sentences and len(current) >= max_sentences)):
                    groups.append(current)
                    current, used = [], 0
                current.append(span)
                used += n + 1
            if current:
                groups.append(current)
        for group in groups:
            start, end = group[0].start, group[-1].end
            chunks.append(Chunk(article.id, para.number, start, end, raw[start:end], tuple(group)))
    return chunks


def chunk_articles(articles: Sequence[Article], **kwargs) -> list[Chunk]:
    return [c for a in articles for c in chunk_article(a, **kwargs)]
