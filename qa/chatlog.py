"""The web chat's conversation as a typed transcript: what was asked, about which articles, and what came back.

The chat keeps it in the browser (Gradio's BrowserState: localStorage), so a reload, or the app restarting,
keeps the conversation; every event sends it back. What comes back from a browser is checked like any input
(`Transcript.load`): a transcript that is not one (edited by hand, from an older version, too big) is started
over, never a traceback. From it come the history sent with each question (the plain messages of the answered
turns), the chat's messages, feedback lines (qa/feedback.py) and the exports (Markdown and JSON).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from .articles import web_address
from .conversation import reply_text
from .feedback import VERDICTS
from .render import reply_kind

VERSION = 1
MAX_TURNS = 50  # kept in the browser; older turns are dropped (the engine reads the last few anyway)
MAX_RESULT_CHARS = 64_000  # one stored reply (a k=10 answer is ~8 KB)
HISTORY_MESSAGES = 12  # plain messages sent along with a question: the last six exchanges are plenty
_TURN_ID = re.compile(r"[0-9a-f]{8}")


def new_turn_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class ChatTurn:
    """One question of the chat and what came back: an answer (`result`, the JSON of `Answer.to_json()`) or an
    error message (a refused question)."""

    id: str
    question: str
    scope: tuple[str, ...] | None  # the article ids it was restricted to; None: every article
    result: dict | None = None
    error: str | None = None
    vote: str | None = None  # the verdict staff gave it (qa/feedback.py VERDICTS)

    @property
    def answered(self) -> bool:
        return self.result is not None


@dataclass(frozen=True)
class Transcript:
    turns: tuple[ChatTurn, ...] = ()
    user: str | None = None  # the login the conversation belongs to (a shared browser: another user starts afresh)
    dropped: bool = field(default=False, compare=False)  # load() found something that was not a transcript

    # --- from and to the browser ---------------------------------------------------------------------------

    @classmethod
    def load(cls, value: object, user: str | None = None) -> Transcript:
        """The transcript a browser sent, checked; an empty one (with `dropped` set when something was thrown
        away) for anything else, or for another user's."""
        if value is None or value == {} or value == "":
            return cls(user=user)
        if not isinstance(value, Mapping) or value.get("v") != VERSION or value.get("user") != user:
            return cls(user=user, dropped=isinstance(value, Mapping) and value.get("user") == user)
        turns, dropped = [], False
        raw_turns = value.get("turns")
        for raw in raw_turns[-MAX_TURNS:] if isinstance(raw_turns, list) else ():
            turn = _turn(raw)
            if turn is None:
                dropped = True
            else:
                turns.append(turn)
        return cls(tuple(turns), user, dropped or not isinstance(raw_turns, list))

    def dump(self) -> dict:
        """As stored in the browser."""
        return {"v": VERSION, "user": self.user,
                "turns": [{"id": t.id, "question": t.question, "scope": list(t.scope) if t.scope is not None else None,
                           "result": t.result, "error": t.error, "vote": t.vote} for t in self.turns]}

    # --- the conversation ------------------------------------------------------------------------------------

    def add(self, turn: ChatTurn) -> Transcript:
        return replace(self, turns=(self.turns + (turn,))[-MAX_TURNS:])

    def turn(self, turn_id: object) -> ChatTurn | None:
        return next((t for t in self.turns if t.id == turn_id), None)

    def with_votes(self, votes: object) -> Transcript:
        """The feedback the browser remembers giving ({turn id: verdict}; anything else is ignored) on the turns."""
        if not isinstance(votes, Mapping):
            return self
        return replace(self, turns=tuple(replace(t, vote=votes[t.id]) if votes.get(t.id) in VERDICTS else t
                                         for t in self.turns))

    def history(self, before: str | None = None) -> list[dict]:
        """The plain chat messages of the answered turns (before the turn `before`, when given): the question, then
        the answer sentence or the refusal; the last HISTORY_MESSAGES."""
        messages: list[dict] = []
        for t in self.turns:
            if t.id == before:
                break
            if t.result is not None:
                messages += [{"role": "user", "content": t.question}, {"role": "assistant", "content": reply_text(t.result)}]
        return messages[-HISTORY_MESSAGES:]


def _turn(raw: object) -> ChatTurn | None:
    """A stored turn, checked (the browser may send anything), or None."""
    if not isinstance(raw, Mapping):
        return None
    turn_id, question, scope = raw.get("id"), raw.get("question"), raw.get("scope")
    result, error, vote = raw.get("result"), raw.get("error"), raw.get("vote")
    if not isinstance(turn_id, str) or not _TURN_ID.fullmatch(turn_id) or not isinstance(question, str) \
            or len(question) > 10_000:
        return None
    if scope is not None and (not isinstance(scope, list) or not 0 < len(scope) <= 100
                              or not all(isinstance(a, str) and 0 < len(a) <= 200 for a in scope)):
        return None
    if vote is not None and vote not in VERDICTS:
        vote = None
    if result is not None:
        if not _looks_like_an_answer(result):
            return None
        return ChatTurn(turn_id, question, tuple(scope) if scope is not None else None, result, None, vote)
    if isinstance(error, str) and len(error) <= 2_000:
        return ChatTurn(turn_id, question, tuple(scope) if scope is not None else None, None, error, None)
    return None


def _looks_like_an_answer(result: object) -> bool:
    """The shape of `Answer.to_json()` that rendering, history and exports read (what else it holds is kept)."""
    try:
        if not isinstance(result, Mapping) or len(json.dumps(result)) > MAX_RESULT_CHARS:
            return False
        if not isinstance(result.get("question"), str) or not isinstance(result.get("abstained"), bool):
            return False
        for key in ("reason", "details", "interpreted_as"):
            if result.get(key) is not None and not isinstance(result[key], str):
                return False
        answer = result.get("answer")
        if answer is not None and not (isinstance(answer, Mapping) and isinstance(answer.get("text"), str)
                                       and isinstance(answer.get("citation"), int)):
            return False
        if not isinstance(result.get("warnings", []), list) or not all(isinstance(w, str) for w in result.get("warnings", [])):
            return False
        passages = result.get("passages")
        if not isinstance(passages, list):
            return False
        for p in passages:
            c = p.get("citation") if isinstance(p, Mapping) else None
            h = p.get("highlight") if isinstance(p, Mapping) else None
            if not (isinstance(c, Mapping) and isinstance(h, Mapping) and isinstance(p.get("rank"), int)
                    and isinstance(p.get("text"), str) and isinstance(c.get("article"), str)
                    and all(isinstance(c.get(k), int) for k in ("paragraph", "start", "end"))
                    and all(isinstance(h.get(k), int) for k in ("start", "end"))
                    and all(c.get(k) is None or isinstance(c.get(k), str) for k in ("title", "date", "source", "url", "path"))):
                return False
        return True
    except (TypeError, ValueError, RecursionError):
        return False


# --- exports ------------------------------------------------------------------------------------------------

def _citations(result: Mapping) -> list[dict]:
    return [{"rank": p["rank"], "article": p["citation"]["article"], "title": p["citation"].get("title"),
             "date": p["citation"].get("date"), "paragraph": p["citation"]["paragraph"], "url": p["citation"].get("url"),
             "source": p["citation"].get("source"), "start": p["citation"]["start"], "end": p["citation"]["end"],
             "text": p["text"], "closest": bool(p.get("closest"))} for p in result.get("passages") or ()]


def export_json(transcript: Transcript, *, now: _dt.datetime | None = None) -> dict:
    """The conversation as data: each question with its reply (the answer sentence or the refusal) and citations
    (title, date, paragraph, URL, the passage's text and its characters in the article file)."""
    turns = []
    for n, t in enumerate(transcript.turns, 1):
        item: dict = {"n": n, "question": t.question, "articles": list(t.scope) if t.scope else "all"}
        if t.result is None:
            item.update(status="error", error=t.error)
        else:
            r = t.result
            answer = r.get("answer") or {}
            item.update(status=reply_kind(r), interpreted_as=r.get("interpreted_as"),
                        answer=answer.get("text") if not r.get("abstained") else None,
                        short_answer=(answer.get("span") or {}).get("text") if not r.get("abstained") else None,
                        cites=answer.get("citation") if not r.get("abstained") else None,
                        reason=r.get("reason"), citations=_citations(r), warnings=list(r.get("warnings") or ()))
        if t.vote:
            item["feedback"] = t.vote
        turns.append(item)
    return {"app": "article-qa", "exported": (now or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds"),
            "questions": len(turns), "turns": turns}


def _md(text: object) -> str:
    """Text for a Markdown line: its characters that would be markup escaped, line breaks folded."""
    return re.sub(r"([\\`*_{}\[\]<>#|!])", r"\\\1", " ".join(str(text).split()))


def export_markdown(transcript: Transcript, *, titles: Mapping[str, str] | None = None,
                    now: _dt.datetime | None = None) -> str:
    """The conversation as a Markdown document: each question, its reply, and its sources (title, date, ¶, URL,
    the passage quoted). `titles`: article id -> title, to name the articles a question was restricted to."""
    data = export_json(transcript, now=now)
    lines = ["# Conversation with article-qa", "", f"Exported {data['exported']} · {data['questions']} question(s)", ""]
    for item in data["turns"]:
        lines.append(f"## {item['n']}. {_md(item['question'])}")
        lines.append("")
        if item["articles"] != "all":
            named = ", ".join(_md((titles or {}).get(a, a)) for a in item["articles"])
            lines += [f"*Asked about:* {named}", ""]
        if item["status"] == "error":
            lines += [f"⚠ {_md(item['error'])}", ""]
            continue
        if item.get("interpreted_as") and item["interpreted_as"] != item["question"]:
            lines += [f"*Understood as:* {_md(item['interpreted_as'])}", ""]
        if item["answer"]:
            short = f"**{_md(item['short_answer'])}** — " if item.get("short_answer") else ""
            sentence = _md(item["answer"])
            quoted = sentence if item["answer"].strip()[:1] in "\"“'‘" else f"“{sentence}”"  # one pair of quotes
            lines += [f"{short}{quoted} [{item['cites']}]", ""]
        else:
            lines += [f"**{_md(item.get('reason') or 'The article does not say.')}**", ""]
        if item["citations"]:
            lines.append("Sources:" if item["answer"] else "Closest passages (not answers):")
            lines.append("")
            for c in item["citations"]:
                where = ", ".join(_md(x) for x in (c["title"] or c["article"], c["date"], c["source"]) if x)
                link = f" — <{c['url']}>" if web_address(c.get("url")) else ""
                lines.append(f"{c['rank']}. {where}, ¶{c['paragraph']}{link}")
                lines.append(f"   > {_md(c['text'])}")
            lines.append("")
        for w in item.get("warnings") or ():
            lines += [f"⚠ {_md(w)}", ""]
        if item.get("feedback"):
            lines += [f"*Feedback given:* {VERDICTS[item['feedback']]}", ""]
    return "\n".join(lines).rstrip() + "\n"


def scope_of(value: object) -> tuple[str, ...] | None:
    """The picker's value as the article ids a question is restricted to (None: every article)."""
    return (value,) if isinstance(value, str) and value and value != "*" else None


def titles_of(entries: Sequence[Mapping]) -> dict[str, str]:
    return {e["article"]: e["title"] for e in entries}
