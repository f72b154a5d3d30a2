"""Answer JSON -> Markdown for the web chat: the reply, the article header, the article with its citations marked.

Pure functions over the dicts of `Answer.to_json()`; no Gradio here. Every piece of user or article text goes
through `escape`, so a question or an article holding Markdown or HTML shows as the characters typed and never
becomes markup. The only markup is the one written here (`**`, `>`, `<em>`, `<mark>`, `<sup>`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Markdown punctuation that can start or end markup: emphasis, links, code, headings, lists, tables,
# setext underlines, autolinks (`:` `/` `@` `.`) and LaTeX. CommonMark and marked.js accept a backslash
# before any ASCII punctuation, so escaping a few harmless ones costs nothing.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~=:/@$^")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BLANK_RUN = re.compile(r"\n[ \t]*\n\s*")

NOT_SAID = "The article does not say."
CLOSEST_LABEL = "Closest passages (not answers)"
CITED_LABEL = "Cited passages"


def escape(text: object) -> str:
    """`text` as literal Markdown: HTML characters become entities, Markdown punctuation is backslashed."""
    out = []
    for c in str(text):
        if c in _ENTITIES:
            out.append(_ENTITIES[c])
        elif c in _MARKDOWN_SPECIAL:
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _inline(text: str) -> str:
    """Escaped, on one line: line breaks and runs of blanks become one space (for quotes and list items)."""
    return escape(" ".join(text.split()))


def _where(citation: Mapping) -> str:
    parts = [f"<em>{escape(citation.get('title') or citation.get('article') or 'Untitled')}</em>"]
    if citation.get("date"):
        parts.append(escape(citation["date"]))
    parts.append(f"paragraph {int(citation['paragraph'])}")
    return " · ".join(parts)


def _passage_body(passage: Mapping, mark: bool) -> str:
    """The passage on one line, its highlighted sentence in <mark> when `mark`."""
    text = passage["text"]
    if not mark:
        return _inline(text)
    offset = passage["citation"]["start"]
    h0 = min(max(passage["highlight"]["start"] - offset, 0), len(text))
    h1 = min(max(passage["highlight"]["end"] - offset, h0), len(text))
    before, sentence, after = _inline(text[:h0]), _inline(text[h0:h1]), _inline(text[h1:])
    if not sentence:
        return _inline(text)
    return " ".join(p for p in (before, f"<mark>{sentence}</mark>", after) if p)


def render_passages(passages: Sequence[Mapping], *, mark_rank: int | None = None) -> str:
    """Numbered passages: `**[n]** title · date · paragraph p`, then the passage quoted; in passage
    `mark_rank` (the one the answer cites) the answer sentence is in <mark>."""
    blocks = []
    for p in passages:
        body = _passage_body(p, mark_rank is not None and int(p["rank"]) == int(mark_rank))
        blocks.append(f"**\\[{int(p['rank'])}\\]** {_where(p['citation'])}\n\n> {body}")
    return "\n\n".join(blocks)


def render_answer(result: Mapping) -> str:
    """The chat reply for one `Answer.to_json()` dict."""
    passages = result.get("passages") or []
    if result.get("abstained") or not result.get("answer"):
        parts = [f"**{NOT_SAID}**" + (f" {escape(result['reason'])}" if result.get("reason") else "")]
        if passages:
            parts += [f"**{CLOSEST_LABEL}**", render_passages(passages)]
        return "\n\n".join(parts)
    answer = result["answer"]
    parts = [f"> {_inline(answer['text'])} \\[{int(answer['citation'])}\\]"]
    if passages:
        parts += [f"**{CITED_LABEL}**", render_passages(passages, mark_rank=answer["citation"])]
    return "\n\n".join(parts)


def render_question(question: object, limit: int = 300) -> str:
    """The user's message as shown in the chat: escaped, and cut after `limit` characters."""
    text = str(question).strip()
    if len(text) > limit:
        return _inline(text[:limit]) + f"… ({len(text):,} characters)"
    return _inline(text)


def render_error(message: str) -> str:
    """A reply for a question the engine refused (empty, too long, not text): the message, escaped."""
    return f"⚠️ {escape(message)}"


def render_article_header(title: str | None, date: str | None, article_id: str | None = None) -> str:
    """`### Title` and a line with the date (and the article id when given)."""
    lines = [f"### {escape(title or article_id or 'Untitled article')}"]
    meta = [escape(x) for x in (date, article_id) if x]
    if meta:
        lines.append(" · ".join(meta))
    return "\n\n".join(lines)


def _wrap(segment: str, open_tags: str, close_tags: str) -> str:
    """Wrap an escaped segment in inline tags, closing and reopening them around paragraph breaks
    (inline HTML cannot span blocks)."""
    if not open_tags or not segment.strip():
        return segment
    pieces = _BLANK_RUN.split(segment)
    seps = _BLANK_RUN.findall(segment)
    out = []
    for i, piece in enumerate(pieces):
        out.append(f"{open_tags}{piece}{close_tags}" if piece.strip() else piece)
        if i < len(seps):
            out.append(seps[i])
    return "".join(out)


def render_article(raw: str, passages: Sequence[Mapping], answer_rank: int | None = None) -> str:
    """The article's full text as Markdown, each cited passage in italics after its marker `[n]`, the answer
    sentence (the highlight of passage `answer_rank`) in <mark>.

    `raw` is the article file's text read with newline="" (the offsets in `passages` index into it);
    `passages` are those of this article. Spans outside the text are ignored.
    """
    n = len(raw)
    spans = []  # (start, end, rank)
    for p in passages:
        c = p["citation"]
        if 0 <= c["start"] < c["end"] <= n:
            spans.append((c["start"], c["end"], int(p["rank"])))
    mark = None
    for p in passages:
        if answer_rank is not None and int(p["rank"]) == int(answer_rank):
            h = p["highlight"]
            if 0 <= h["start"] < h["end"] <= n:
                mark = (h["start"], h["end"])
    cuts = sorted({0, n, *(s for s, _, _ in spans), *(e for _, e, _ in spans), *(mark or ())})
    labels: dict[int, list[int]] = {}
    for s, _, rank in spans:
        labels.setdefault(s, []).append(rank)
    out = []
    for a, b in zip(cuts, cuts[1:]):
        for rank in sorted(labels.get(a, [])):
            out.append(f"<sup>\\[{rank}\\]</sup> ")
        segment = escape(raw[a:b].replace("\r\n", "\n").replace("\r", "\n"))
        cited = any(s <= a and b <= e for s, e, _ in spans)
        marked = mark is not None and mark[0] <= a and b <= mark[1]
        open_tags = ("<mark>" if marked else "") + ("<em>" if cited else "")
        close_tags = ("</em>" if cited else "") + ("</mark>" if marked else "")
        out.append(_wrap(segment, open_tags, close_tags))
    # leading blanks would make an indented code block
    return "\n".join(line.lstrip(" \t") for line in "".join(out).split("\n"))
