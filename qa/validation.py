"""Input validation for every door: the HTTP API, the Gradio endpoint and chat, and the CLI all call
`parse_ask_request` (or the checks it is made of), so a bad question gets the same message everywhere.

Each check raises QuestionError (an HTTP 400, a CLI exit 2) whose message names what was wrong, the offending
value (shortened) and the fix; the value is never echoed in full, and never as markup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from .config import MAX_QUESTION_CHARS
from .errors import QuestionError

MAX_K = 10  # passages a web or API caller may ask for (the CLI and the library allow up to 50)
MAX_HISTORY_MESSAGES = 50  # earlier chat messages sent with a question; the resolver reads the last few
MAX_MESSAGE_CHARS = 8_000  # one earlier message (an answer sentence or a refusal, with room to spare)
MAX_HISTORY_CHARS = 100_000  # all earlier messages together
MAX_ARTICLE_IDS = 100
ROLES = ("user", "assistant")
ASK_FIELDS = ("question", "k", "history", "article")

# invisible characters pasted along with text (zero-width spaces and joiners, word joiner, BOM, soft hyphen):
# removed, so "vic\u200btims" is "victims" and a question of only these is empty
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_ARTICLE_ID = re.compile(r"[^\x00-\x1f\x7f/\\]{1,200}")


@dataclass(frozen=True)
class Turn:
    """One earlier chat message: who said it and what."""

    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class AskRequest:
    question: str
    k: int | None = None  # None: the engine's default
    history: tuple[Turn, ...] = ()
    articles: tuple[str, ...] | None = None  # None: every article

    def to_json(self) -> dict:
        """As the request body it was parsed from (what ask workers receive)."""
        return {"question": self.question, "k": self.k,
                "history": [{"role": t.role, "content": t.content} for t in self.history],
                "article": list(self.articles) if self.articles is not None else None}


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(value: object, what: str, max_chars: int) -> str:
    """`value` as clean text: a str, valid Unicode, no control characters but tab and line breaks, invisible
    characters removed, stripped, not empty, at most `max_chars` long."""
    if not isinstance(value, str):
        raise QuestionError(f"The {what} must be text, not {type(value).__name__} ({_shown(value)}).")
    text = value.translate(_INVISIBLE)
    for i, ch in enumerate(text):
        if "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8, as Python decodes command lines and pipes
            raise QuestionError(f"The {what} is not valid UTF-8 (byte 0x{ord(ch) - 0xDC00:02x} at character {i + 1}); "
                                "send it encoded as UTF-8.")
        if "\ud800" <= ch <= "\udfff":
            raise QuestionError(f"The {what} is not valid Unicode text (a lone surrogate U+{ord(ch):04X} at "
                                f"character {i + 1}); send it encoded as UTF-8.")
        if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r":
            raise QuestionError(f"The {what} contains the control character U+{ord(ch):04X} at character {i + 1}; "
                                "remove it.")
    text = text.strip()
    if not text:
        raise QuestionError(f"The {what} is empty; type a question about the article, e.g. \"Were any victims identified?\".")
    if len(text) > max_chars:
        raise QuestionError(f"The {what} is {len(text):,} characters long; the limit is {max_chars:,}. Shorten it.")
    return text


def check_question(question: object, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question, cleaned (see `check_text`); a QuestionError says what is wrong with it otherwise."""
    return check_text(question, "question", max_chars)


def check_k(k: object, max_k: int = MAX_K) -> int | None:
    """The number of passages as an int from 1 to `max_k` (a whole float is taken); None stays None (default)."""
    if k is None:
        return None
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise QuestionError(f"The number of passages must be a whole number from 1 to {max_k}, not {_shown(k)}.")
    return k


def check_history(history: object) -> tuple[Turn, ...]:
    """Earlier chat messages, oldest first: [{"role": "user" | "assistant", "content": str}, ...] (the convention
    of Gradio's Chatbot and of chat APIs), at most MAX_HISTORY_MESSAGES of at most MAX_MESSAGE_CHARS each."""
    if history is None:
        return ()
    example = '[{"role": "user", "content": "Were any victims identified?"}, {"role": "assistant", "content": "..."}]'
    if not isinstance(history, list):
        raise QuestionError(f"The history must be a list of chat messages like {example}, not {type(history).__name__}.")
    if len(history) > MAX_HISTORY_MESSAGES:
        raise QuestionError(f"The history has {len(history):,} messages; the limit is {MAX_HISTORY_MESSAGES}. Send the "
                            "most recent ones (only the last few turns are used).")
    turns, total = [], 0
    for i, message in enumerate(history, start=1):
        if not isinstance(message, Mapping) or set(message) - {"role", "content", "metadata", "options"}:
            raise QuestionError(f"History message {i} must be an object with \"role\" and \"content\", like {example}; "
                                f"got {_shown(message)}.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise QuestionError(f"History message {i} has role {_shown(role)}; a role is \"user\" or \"assistant\".")
        if not isinstance(content, str):
            raise QuestionError(f"History message {i} must have text content, not {type(content).__name__}.")
        if len(content) > MAX_MESSAGE_CHARS:
            raise QuestionError(f"History message {i} is {len(content):,} characters long; the limit is "
                                f"{MAX_MESSAGE_CHARS:,}. Send the answer sentence, not whole passages.")
        total += len(content)
        if total > MAX_HISTORY_CHARS:
            raise QuestionError(f"The history is over {MAX_HISTORY_CHARS:,} characters; send fewer messages.")
        turns.append(Turn(role, check_text(content, f"content of history message {i}", MAX_MESSAGE_CHARS)
                          if content.strip() else ""))
    return tuple(turns)


def check_article_ids(value: object) -> tuple[str, ...] | None:
    """None (every article), one article id or a list of them."""
    if value is None:
        return None
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, list) or not ids or len(ids) > MAX_ARTICLE_IDS:
        raise QuestionError(f"\"article\" must be an article id or a list of 1-{MAX_ARTICLE_IDS} ids (see GET /api/articles), "
                            f"not {_shown(value)}.")
    return tuple(dict.fromkeys(check_article_id(a) for a in ids))


def check_article_id(value: object, *, slash: bool = False) -> str:
    """One article id as the doors receive it (a path segment, a picker value, a command-line argument): text of
    1-200 characters, valid Unicode, without control, invisible format or path characters (`slash`: "/" allowed,
    as in the ids of two files of one name in subfolders). Only its beginning is echoed in the message."""
    if not isinstance(value, str) or not _ARTICLE_ID.fullmatch(value.replace("/", "") if slash and value != "/" else value) \
            or any(unicodedata.category(c) in ("Cs", "Cf") for c in value):
        raise QuestionError(f"{_shown(value)} is not an article id; the ids are listed by GET /api/articles (`qa list`).")
    return value


def parse_ask_request(payload: object, *, max_question_chars: int = MAX_QUESTION_CHARS, max_k: int = MAX_K) -> AskRequest:
    """A request body {"question": str, "k"?: int, "history"?: [...], "article"?: id | [ids]} checked field by
    field: the one validation every door calls."""
    if not isinstance(payload, Mapping):
        raise QuestionError('The request must be a JSON object like {"question": "Were any victims identified?", "k": 3}.')
    unknown = sorted(set(payload) - set(ASK_FIELDS))
    if unknown:
        raise QuestionError(f"Unknown field(s) {unknown}; the fields are {list(ASK_FIELDS)}.")
    if "question" not in payload:
        raise QuestionError('The request has no "question"; send {"question": "Were any victims identified?"}.')
    return AskRequest(
        question=check_question(payload["question"], max_question_chars),
        k=check_k(payload.get("k"), max_k),
        history=check_history(payload.get("history")),
        articles=check_article_ids(payload.get("article")),
    )
