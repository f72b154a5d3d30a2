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
    # Paragraphs are counted first, in one tokenizer call, and sentences only of the paragraphs that must be
    # split (news and SQuAD paragraphs mostly fit: counting every sentence as well tokenized the text twice).
    fits = [n <= max_tokens and (not max_sentences or len(sentences) <= max_sentences)
            for n, sentences in zip(count_tokens([raw[p.start : p.end] for p in article.paragraphs]), split)]
    sentence_counts = iter(count_tokens([raw[s.start : s.end] for ok, ss in zip(fits, split) if not ok for s in ss]))
    for para, sentences, ok in zip(article.paragraphs, split, fits):
        if ok:
            groups = [list(sentences)]
        else:
            units: list[tuple[Span, int]] = []
            for s in sentences:
                n = next(sentence_counts)
                if n <= max_tokens:
                    units.append((s, n))
                else:
                    units.extend((p, count_tokens([raw[p.start : p.end]])[0])
                                 for p in _cut_long_sentence(raw, s, max_tokens, count_tokens))
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

