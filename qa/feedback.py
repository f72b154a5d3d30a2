"""Feedback staff give on the chat's replies, kept as gold lines that `qa eval` scores: staff reports become a
regression set (`qa eval feedback.jsonl`).

One JSON object per line, appended to one file (QA_FEEDBACK; qa/config.py says where by default). A line is a gold
question of eval/*.jsonl (`id`, `question`, `answer`, `evidence`) asked as it was asked — with its `history` (the
chat messages before it) and its `scope` (the article ids it was restricted to) — plus what was judged:

| verdict | meaning | as gold |
|---|---|---|
| `right` (👍) | the reply is right | an answer: `answer` and `evidence` are the quoted sentence; a refusal: `answer` null |
| `wrong_passage` | it quotes the wrong sentence | answerable (`answer` ""), the sentence it gave in `wrong` |
| `is_said` | it refused, but the article does say | answerable (`answer` "") |
| `not_said` | it answered, but the article does not say | `answer` null, the sentence it gave in `wrong` |

An answerable line without `evidence` counts in `qa eval`'s false refusals and in `wrong_repeated` (the share of
replies that give a sentence staff marked wrong), not in hit@k. A note that quotes the article word for word
becomes the line's evidence. Several lines may share an `id` (a reply judged again): the last one counts.

Writing is durable and safe with several processes: one `write` of the whole line under an exclusive lock on the
file, then fsync; a line cut short by a crash is removed by the next writer before it appends.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import QAError

VERDICTS = {
    "right": "right",
    "wrong_passage": "wrong passage",
    "is_said": "the article does say this",
    "not_said": "the article does not say this",
}
MAX_NOTE_CHARS = 2_000
MAX_LINE_BYTES = 256 * 1024
FORMAT = 1  # the "feedback" field of a line: this format's version


class FeedbackError(QAError):
    """Feedback that cannot be stored: a bad verdict or note, or a file that cannot be written."""


def check_verdict(verdict: object) -> str:
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        raise FeedbackError(f"The verdict must be one of {list(VERDICTS)}, not {str(verdict)[:40]!r}.")
    return verdict


def check_note(note: object) -> str:
    if note is None:
        return ""
    if not isinstance(note, str):
        raise FeedbackError(f"The note must be text, not {type(note).__name__}.")
    if any("\ud800" <= c <= "\udfff" or c < " " and c not in "\t\n" for c in note):
        raise FeedbackError("The note holds a control character or is not valid Unicode; type it again as plain text.")
    text = note.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise FeedbackError(f"The note is {len(text):,} characters long; the limit is {MAX_NOTE_CHARS:,}. Shorten it.")
    return text


def _sentence(reply: Mapping) -> str | None:
    answer = reply.get("answer") if isinstance(reply, Mapping) else None
    text = answer.get("text") if isinstance(answer, Mapping) else None
    return text if isinstance(text, str) and text.strip() else None


def _cited_article(reply: Mapping) -> str | None:
    answer = reply.get("answer")
    for p in reply.get("passages") or ():
        if isinstance(answer, Mapping) and p.get("rank") == answer.get("citation"):
            return (p.get("citation") or {}).get("article")
    return None


def _quote(note: str) -> str:
    """The note without the quotation marks and the words around a quote ("It says: “...”" -> ...)."""
    m = re.search(r"[\"“”]([^\"“”]{12,})[\"“”]", note)
    return (m.group(1) if m else note).strip()


def gold_line(*, item: str, question: str, history: Sequence[Mapping], scope: Sequence[str] | None, reply: Mapping,
              verdict: str, note: str = "", user: str | None = None, in_article: Callable[[str], bool] | None = None,
              now: _dt.datetime | None = None) -> dict:
    """The gold line for one judged reply. `in_article(text)`: whether a text is a verbatim quote of the articles
    the question was asked about (then a note quoting them is the evidence)."""
    verdict = check_verdict(verdict)
    note = check_note(note)
    sentence = _sentence(reply)
    answered = sentence is not None and not reply.get("abstained")
    line: dict = {"id": f"feedback-{item}", "question": question}
    if verdict == "right" and answered:
        line.update(answer=sentence, evidence=[sentence])
        cited = _cited_article(reply)
        if cited:
            line["article"] = cited
    elif verdict == "right" or verdict == "not_said":
        line.update(answer=None, evidence=[])
    else:
        line.update(answer="", evidence=[])
    if verdict in ("wrong_passage", "not_said") and answered:
        line["wrong"] = [sentence]
    quote = _quote(note) if note else ""
    if line["answer"] == "" and quote and in_article is not None and in_article(quote):
        line.update(answer=quote, evidence=[quote])
    if history:
        line["history"] = [{"role": m["role"], "content": m["content"]} for m in history]
    if scope:
        line["scope"] = list(scope)
    line.update(verdict=verdict, note=note, user=user,
                time=(now or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds"),
                reply=dict(reply), feedback=FORMAT)
    return line


def append_line(path: str | Path, line: Mapping) -> None:
    """Append one JSON line durably: created with its folder if needed, written in one piece under an exclusive
    lock (so lines of several processes never interleave), fsynced before returning. A line left unfinished by a
    writer that died is cut off first, so the file stays one JSON object per line."""
    data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    if len(data) > MAX_LINE_BYTES:
        raise FeedbackError(f"The feedback is {len(data):,} bytes; the limit is {MAX_LINE_BYTES:,}.")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    except OSError as exc:
        raise FeedbackError(f"Cannot write the feedback file {target} ({exc.strerror or exc}); set QA_FEEDBACK to a "
                            "writable file.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut short: no writer ever finished it
            tail = os.pread(fd, min(size, MAX_LINE_BYTES + 1), size - min(size, MAX_LINE_BYTES + 1))
            cut = tail.rfind(b"\n")
            if cut >= 0 or len(tail) == size:
                os.ftruncate(fd, size - len(tail) + cut + 1)
            else:  # longer than any line written here: not ours to cut; start a line of our own
                data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"wrote {written} of {len(data)} bytes")
        os.fsync(fd)
    except OSError as exc:
        raise FeedbackError(f"Cannot write the feedback file {target} ({getattr(exc, 'strerror', None) or exc}); "
                            "the disk may be full or read-only.") from None
    finally:
        os.close(fd)  # closing releases the lock


def read_lines(path: str | Path) -> bytes:
    """The whole feedback file (b"" when there is none yet), read under a shared lock: only whole lines."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise FeedbackError(f"Cannot read the feedback file {path} ({exc.strerror or exc}).") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
    finally:
        os.close(fd)
    return data[: data.rfind(b"\n") + 1]
