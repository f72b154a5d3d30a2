"""Answer JSON -> HTML for the web chat: the reply, its plain-text copy, and the article panel.

Pure functions over the dicts of `Answer.to_json()` and the article's text; no Gradio here. Every piece of user
or article text goes through `esc` (HTML entities), so a question or an article holding markup shows as the
characters typed and never becomes markup; the only markup is the one written here. A reply is one HTML block
without blank lines, so the chat's Markdown renderer passes it through untouched (and still sanitizes it).

Citation markers link to the cited paragraph in the article panel (`#qa-<article>-p<n>`). Each reply carries its
turn's id as a class (`qa-turn-<id>`: the chat's sanitizer keeps classes, not data attributes), and the panel
the turn it shows (`qa-shows-<id>`), so the page's script (qa/assets/chat.js) can tell whether a clicked marker's
passage is the one in view, or ask for its own reply's article and passages first. The script also copies a
reply as plain text and sends its 👍 / 👎.

A reply is drawn by the function of its kind (`REPLY_BODIES`: answered; uncertain, where the article may not
answer and the closest sentence is quoted as such, never with a bold short answer; abstained), inside the frame
every reply shares: how the question was understood, the article it quotes, warnings, and the actions.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence

NOT_SAID = "The article does not say."
MAY_NOT_SAY = "The article may not answer this."
CLOSEST_QUOTE = "The closest it comes"
CLOSEST_LABEL = "Closest passages (not answers)"
SOURCES_LABEL = "Sources"


def esc(text: object) -> str:
    """Text as literal HTML: entities for & < > " '; line breaks and runs of blanks folded to one space."""
    return html.escape(" ".join(str(text).split()), quote=True)


def anchor(article: str, paragraph: int) -> str:
    """The element id of a story paragraph in the article panel (ids are not article ids: those may hold any
    character)."""
    return f"qa-{hashlib.sha1(article.encode('utf-8')).hexdigest()[:8]}-p{int(paragraph)}"


def _cite_link(passage: Mapping) -> str:
    c = passage["citation"]
    return (f'<a class="qa-cite" href="#{anchor(c["article"], c["paragraph"])}" title="Show paragraph '
            f'{int(c["paragraph"])} in the article">[{int(passage["rank"])}]</a>')


def _source_line(citation: Mapping) -> str:
    """Title (italic), date and source of a cited article."""
    parts = [f"<em>{esc(citation.get('title') or citation.get('article') or 'Untitled')}</em>"]
    parts += [esc(citation[key]) for key in ("date", "source") if citation.get(key)]
    return " · ".join(parts)


def _highlighted(passage: Mapping, span: Mapping | None = None) -> str:
    """The passage with its highlighted sentence in <mark> (and the short answer in <strong> inside it)."""
    text = passage["text"]
    offset = passage["citation"]["start"]
    h0 = min(max(passage["highlight"]["start"] - offset, 0), len(text))
    h1 = min(max(passage["highlight"]["end"] - offset, h0), len(text))
    sentence = text[h0:h1]
    if span and offset + h0 <= span["start"] < span["end"] <= offset + h1:
        s0, s1 = span["start"] - offset - h0, span["end"] - offset - h0
        inner = f"{esc(sentence[:s0])} <strong>{esc(sentence[s0:s1])}</strong> {esc(sentence[s1:])}"
    else:
        inner = esc(sentence)
    return f"{esc(text[:h0])} <mark>{inner}</mark> {esc(text[h1:])}".strip()


def _passage_list(passages: Sequence[Mapping], *, mark_rank: int | None, span: Mapping | None) -> str:
    """Passages grouped by article: the article's title line once, then one line per passage."""
    out, current = [], None
    for p in passages:
        c = p["citation"]
        if c["article"] != current:
            if current is not None:
                out.append("</ol>")
            current = c["article"]
            out.append(f'<p class="qa-source">{_source_line(c)}</p><ol class="qa-passages">')
        body = _highlighted(p, span) if mark_rank is not None and int(p["rank"]) == int(mark_rank) else esc(p["text"])
        out.append(f'<li>{_cite_link(p)} <span class="qa-para-no">¶{int(c["paragraph"])}</span> {body}</li>')
    if current is not None:
        out.append("</ol>")
    return "".join(out)


def plain_reply(result: Mapping) -> str:
    """The reply as plain text, for the copy button: the answer, then the citations as "[1] Title, date, ¶8"."""
    lines = []
    kind = reply_kind(result)
    if kind == "abstained":
        lines.append(result.get("reason") or NOT_SAID)
        heading = CLOSEST_LABEL
    elif kind == "uncertain":
        a = result["answer"]
        sentence = a["text"].strip()
        quoted = sentence if sentence[:1] in "\"“'‘" else f"“{sentence}”"  # a quotation is not quoted twice
        lines.append(f"{result.get('reason') or MAY_NOT_SAY} {CLOSEST_QUOTE}: {quoted} [{a['citation']}]")
        heading = CLOSEST_LABEL
    else:
        a = result["answer"]
        short = (a.get("span") or {}).get("text")
        lines.append((f"{short} — " if short else "") + f"{a['text']} [{a['citation']}]")
        heading = SOURCES_LABEL
    if result.get("passages"):
        lines += ["", f"{heading}:"]
        for p in result["passages"]:
            c = p["citation"]
            where = ", ".join(x for x in (c.get("title") or c["article"], c.get("date"), c.get("source")) if x)
            lines.append(f"[{p['rank']}] {where}, ¶{c['paragraph']}" + (f", {c['url']}" if c.get("url") else ""))
    return "\n".join(lines)


def _quote_with_link(answer: Mapping, passages: Sequence[Mapping]) -> str:
    """The answer's sentence in one pair of quotes, then the link to the passage it cites (when listed)."""
    cited = next((p for p in passages if int(p["rank"]) == int(answer["citation"])), None)
    sentence = answer["text"].strip()
    quoted = esc(sentence) if sentence[:1] in "\"“'‘" else f"<q>{esc(sentence)}</q>"
    return quoted + (f" {_cite_link(cited)}" if cited else "")


def _answered(result: Mapping) -> list[str]:
    """The answer first (the short answer bold, the sentence quoted once with its citation link), then the
    sources, collapsed."""
    passages = result.get("passages") or []
    a = result["answer"]
    span = a.get("span")
    short = f'<strong class="qa-short">{esc(span["text"])}</strong> — ' if span and span.get("text") else ""
    parts = [f'<p class="qa-answer">{short}{_quote_with_link(a, passages)}</p>']
    if passages:
        parts.append(f'<details class="qa-sources"><summary>{SOURCES_LABEL} ({len(passages)})</summary>'
                     f'{_passage_list(passages, mark_rank=a["citation"], span=span)}</details>')
    return parts


def _abstained(result: Mapping) -> list[str]:
    """The refusal in plain words, then the closest passages, collapsed."""
    passages = result.get("passages") or []
    parts = [f'<p class="qa-refusal"><strong>{esc(result.get("reason") or NOT_SAID)}</strong></p>']
    if passages:
        parts.append(f'<details class="qa-closest"><summary>{CLOSEST_LABEL} ({len(passages)})</summary>'
                     f'{_passage_list(passages, mark_rank=None, span=None)}</details>')
    return parts


def _uncertain(result: Mapping) -> list[str]:
    """The article may not answer: said first, then the closest sentence quoted as the closest text (never a bold
    short answer), then the closest passages, collapsed."""
    passages = result.get("passages") or []
    a = result["answer"]
    parts = [f'<p class="qa-uncertain" role="note"><strong>{esc(result.get("reason") or MAY_NOT_SAY)}</strong> '
             f'{CLOSEST_QUOTE}:</p>', f'<blockquote class="qa-closest-quote">{_quote_with_link(a, passages)}</blockquote>']
    if passages:
        parts.append(f'<details class="qa-closest"><summary>{CLOSEST_LABEL} ({len(passages)})</summary>'
                     f'{_passage_list(passages, mark_rank=a["citation"], span=None)}</details>')
    return parts


REPLY_BODIES = {"answered": _answered, "uncertain": _uncertain, "abstained": _abstained}


def reply_kind(result: Mapping) -> str:
    """The kind of reply, which decides how it is drawn: the answer's own "status" when it has one this chat
    draws, else "abstained" or "answered"."""
    status = result.get("status")
    if isinstance(status, str) and status in REPLY_BODIES:
        return status
    return "abstained" if result.get("abstained") or not result.get("answer") else "answered"


def _quoted_article(result: Mapping) -> Mapping | None:
    """The citation of the passage the reply quotes (an answer's cited passage; a refusal's closest one)."""
    passages = result.get("passages") or []
    answer = result.get("answer")
    cited = next((p for p in passages if answer and int(p["rank"]) == int(answer["citation"])), None)
    return (cited or (passages[0] if passages else None) or {}).get("citation")


VOTE_LABELS = {"right": "Marked right. Thank you.", "wrong_passage": "Reported: wrong passage. Thank you.",
               "is_said": "Reported: the article does say this. Thank you.",
               "not_said": "Reported: the article does not say this. Thank you."}


def _actions(plain: str, vote: str | None) -> str:
    """Copy, then 👍 / 👎 (their names for screen readers in hidden text: the chat keeps no aria-label), and the
    feedback already given."""
    voted = f'<span class="qa-voted" role="status">{esc(VOTE_LABELS.get(vote, ""))}</span>' if vote else ""
    return ('<p class="qa-actions"><button type="button" class="qa-copy">Copy</button>'
            '<button type="button" class="qa-vote qa-up" title="Right answer">👍'
            '<span class="qa-sr"> Right answer</span></button>'
            '<button type="button" class="qa-vote qa-down" title="Report a problem">👎'
            '<span class="qa-sr"> Report a problem</span></button>'
            f'{voted}</p><span class="qa-plain" hidden>{plain}</span>')


def render_reply(result: Mapping, *, turn: str | None = None, name_article: bool = False, vote: str | None = None) -> str:
    """The chat reply for one answer, drawn by its kind (an answer; a refusal in plain words with the closest
    passages and the technical reason behind a toggle), then the actions: Copy (plain text), 👍 and 👎.
    `turn`: its turn's id (the citations and feedback find their reply by it); `name_article`: say which article
    it quotes (when the question went to every article); `vote`: the feedback already given."""
    parts = []
    if result.get("interpreted_as") and result["interpreted_as"] != result.get("question"):
        parts.append(f'<p class="qa-understood">Understood as: {esc(result["interpreted_as"])}</p>')
    quoted = _quoted_article(result) if name_article else None
    if quoted:
        verb = "From" if reply_kind(result) == "answered" else "Closest in"
        parts.append(f'<p class="qa-from">{verb} {_source_line(quoted)}</p>')
    parts += REPLY_BODIES[reply_kind(result)](result)
    if result.get("details"):
        parts.append(f'<details class="qa-details"><summary>Details</summary><p>{esc(result["details"])}</p></details>')
    for warning in result.get("warnings") or ():
        parts.append(f'<p class="qa-warning">⚠ {esc(warning)}</p>')
    plain = html.escape(plain_reply(result), quote=True).replace("\n", "&#10;")  # line breaks kept, as entities:
    # a real one would end the HTML block in the chat's Markdown
    parts.append(_actions(plain, vote))
    return f'<div class="qa-reply{_turn_class(turn)}">{"".join(parts)}</div>'


def _turn_class(turn: str | None) -> str:
    return f" qa-turn-{turn}" if turn and turn.isalnum() else ""


def render_question(question: object, limit: int = 300) -> str:
    """The user's message as shown in the chat: escaped, and cut after `limit` characters."""
    text = str(question).strip()
    shown = esc(text[:limit]) + f"… ({len(text):,} characters)" if len(text) > limit else esc(text)
    return f'<p class="qa-question">{shown}</p>'  # an HTML block: the chat's Markdown leaves what is typed alone


def render_error(message: str, *, turn: str | None = None, keep: bool = False) -> str:
    """A reply for a question the engine refused (empty, too long, not text): the message, escaped. `keep`: the
    question goes back into the box (the page's script puts it there when the box is empty)."""
    return (f'<div class="qa-reply{_turn_class(turn)}"><p class="qa-error{" qa-keep" if keep else ""}" role="alert">'
            f'⚠ {esc(message)}</p></div>')


PENDING = '<div class="qa-reply"><p class="qa-pending" role="status">Looking in the article…</p></div>'


def render_chat(transcript, *, name_articles: bool = False) -> list[dict]:
    """The chat's messages for a transcript (qa.chatlog.Transcript): each question, then its reply or error."""
    messages: list[dict] = []
    for t in transcript.turns:
        if t.question.strip():
            messages.append({"role": "user", "content": render_question(t.question)})
        if t.result is not None:
            content = render_reply(t.result, turn=t.id, name_article=name_articles and t.scope is None, vote=t.vote)
        else:
            content = render_error(t.error or "", turn=t.id, keep=bool(t.question.strip()))
        messages.append({"role": "assistant", "content": content})
    return messages


# --- the article panel ---------------------------------------------------------------------------------------

def render_article_panel(article, passages: Sequence[Mapping] = (), answer: Mapping | None = None, *,
                         turn: str | None = None, note: str = "") -> str:
    """The article in view: its identity (headline, date, source, link), then every story paragraph with its
    number (the numbers citations use) and an anchor, lines that are not story text (headlines, promos) dimmed
    and unnumbered; the passages of this answer marked with their [n], the answer sentence in <mark>, the paragraph
    of the best-ranked passage shown here classed qa-top (after a refusal the panel scrolls to it).

    `article` is a qa.types.Article read from the indexed file (offsets intact); `passages` those of the answer
    (only this article's are marked); `turn` the chat turn whose reply this is (its markers then open it without
    asking the server again); `note` a line shown above the article (why it is the one in view)."""
    raw = article.raw
    own = [p for p in passages if p["citation"]["article"] == article.id]
    by_paragraph: dict[int, list[Mapping]] = {}
    for p in own:
        by_paragraph.setdefault(int(p["citation"]["paragraph"]), []).append(p)
    answer_passage = None
    if answer and answer.get("citation") is not None:
        answer_passage = next((p for p in own if int(p["rank"]) == int(answer["citation"])), None)
    top_rank = min((int(p["rank"]) for p in own), default=None)  # the panel scrolls there after a refusal
    meta = [esc(x) for x in (article.date, article.source) if x]
    if article.url:
        meta.append(f'<a href="{esc(article.url)}" target="_blank" rel="noopener noreferrer">original story</a>')
    out = [f'<div class="qa-article qa-shows-{turn if turn and turn.isalnum() else "none"}">']
    if note:
        out.append(f'<p class="qa-panel-note" role="status">{esc(note)}</p>')
    out.append(f'<h3 class="qa-headline">{esc(article.title)}</h3>')
    if meta:
        out.append(f'<p class="qa-meta">{" · ".join(meta)}</p>')
    blocks = sorted([(p.start, p.end, p) for p in article.paragraphs] + [(s.start, s.end, s) for s in article.skipped],
                    key=lambda b: b[0])
    for start, end, block in blocks:
        if not hasattr(block, "number"):
            out.append(f'<p class="qa-skipped" title="Not story text: {esc(block.reason)}">{esc(raw[start:end])}</p>')
            continue
        n = block.number
        cited = by_paragraph.get(n, [])
        markers = " ".join(f'<span class="qa-marker">[{int(p["rank"])}]</span>' for p in sorted(cited, key=lambda p: p["rank"]))
        if answer_passage is not None and answer_passage in cited:
            body = _paragraph_with_answer(raw, start, end, answer_passage, answer.get("span"))
        else:
            body = esc(raw[start:end])
        classes = "qa-para" + (" qa-cited" if cited else "") + (" qa-answer-para" if answer_passage in cited else "") \
            + (" qa-top" if any(int(p["rank"]) == top_rank for p in cited) else "")
        out.append(f'<p id="{anchor(article.id, n)}" class="{classes}"><span class="qa-num">¶{n}</span> '
                   f'{markers + " " if markers else ""}{body}</p>')
    out.append("</div>")
    return "".join(out)


def _paragraph_with_answer(raw: str, start: int, end: int, passage: Mapping, span: Mapping | None) -> str:
    h0, h1 = passage["highlight"]["start"], passage["highlight"]["end"]
    if not start <= h0 < h1 <= end:
        return esc(raw[start:end])
    # a space only where the article has one: "COPA</strong>, Andrea", not "COPA</strong> , Andrea"
    if span and h0 <= span["start"] < span["end"] <= h1:
        sentence = (f"{_esc_piece(raw[h0:span['start']])}<strong>{esc(raw[span['start']:span['end']])}</strong>"
                    f"{_esc_piece(raw[span['end']:h1])}")
    else:
        sentence = esc(raw[h0:h1])
    return f"{_esc_piece(raw[start:h0])}<mark>{sentence.strip()}</mark>{_esc_piece(raw[h1:end])}".strip()


def _esc_piece(text: str) -> str:
    """`esc` of a piece of a paragraph, keeping one space at either end where the piece has white space."""
    folded = esc(text)
    if not folded:
        return " " if text else ""
    return (" " if text[:1].isspace() else "") + folded + (" " if text[-1:].isspace() else "")


def render_panel_message(message: str, *, passage: Mapping | None = None, turn: str | None = None) -> str:
    """The panel when no article can be shown: the reason, and the passage a reply quoted from it, when there is
    one (an article removed since: the reply's own copy of its passage is all there is)."""
    out = [f'<div class="qa-article qa-shows-{turn if turn and turn.isalnum() else "none"}">'
           f'<p class="qa-meta qa-panel-note" role="status">{esc(message)}</p>']
    if passage is not None:
        c = passage["citation"]
        out.append(f'<p class="qa-source">{_source_line(c)}, ¶{int(c["paragraph"])}</p>'
                   f'<blockquote class="qa-removed-passage">{esc(passage["text"])}</blockquote>')
    out.append("</div>")
    return "".join(out)

