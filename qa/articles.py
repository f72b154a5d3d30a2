"""Read article files: keep the raw text untouched, find the date, title and story paragraphs.

Lines that are not part of the story are recognised by general rules:
- a line whose letters are (almost) all capitals is a related-story headline or a section label;
- a short line that opens with a call to action (click, tap, download, subscribe, sign up, follow,
  read more, watch ...) is a promo.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from .config import MAX_ARTICLE_BYTES
from .errors import ArticleError, ArticleTooLargeError
from .sentences import split_sentences
from .types import Article, Paragraph, SkippedLine

ARTICLE_SUFFIXES = (".txt", ".md")
_DATE_HEADER = re.compile(r"[\s\ufeff]*date:?[ \t]+(\d{4}-\d{2}-\d{2})\b[ \t]*", re.IGNORECASE)
_TITLE_HEADER = re.compile(r"[\s\ufeff]*(?:#{1,6}[ \t]+|title:[ \t]*)(\S[^\r\n]*)", re.IGNORECASE)  # one line
_CALL_TO_ACTION = re.compile(
    r"^\W*(?:"
    r"(?:click|tap|swipe)\s+(?:here|to|on|below|the\s+link)\b"
    r"|(?:download|get|install)\s+(?:the|our)\b.*\bapps?\b"
    r"|(?:subscribe|sign\s+up)\b\s*(?:to|for|now|here|today|and)?\b"
    r"|follow\s+(?:us|@\w+|\w+(?:\s+\w+)?\s+on\s+(?:twitter|x|facebook|instagram|tiktok|threads|bluesky|youtube))\b"
    r"|(?:read|see)\s+(?:more|also)\b|(?:more|related|recommended)\s*(?:coverage|stories|reading)?\s*:"
    r"|(?:watch|listen)\s*(?::|\b(?:now|live|here|the\s+(?:full\s+)?(?:video|interview|episode|podcast)))"
    r"|advertisement\W*$|share\s+this\b"
    r")",
    re.IGNORECASE,
)
_SENTENCE_END = tuple(".!?…:;\"'”’)")
TITLE_MAX_CHARS = 90


def _lines(raw: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each line without its line break."""
    pos = 0
    for line in raw.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        yield pos, pos + len(body)
        pos += len(line)


def _blank(ch: str) -> bool:
    """White space of any kind, and invisible format or control characters (BOM, zero-width space)."""
    return ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc", "Zs", "Zl", "Zp")


def _strip_span(raw: str, start: int, end: int) -> tuple[int, int]:
    while start < end and _blank(raw[start]):
        start += 1
    while end > start and _blank(raw[end - 1]):
        end -= 1
    return start, end


def skip_reason(text: str) -> str | None:
    """Why a line is not story text, or None when it is."""
    words = text.split()
    letters = [c for c in text if c.isalpha()]
    if len(words) >= 3 and len(letters) >= 8:
        upper = sum(c.isupper() for c in letters)
        if upper / len(letters) >= 0.9:
            return "all-caps line (related-story headline or label)"
    if len(words) <= 25 and _CALL_TO_ACTION.search(text):
        return "call to action (promo)"
    if re.fullmatch(r"\W*(https?://\S+|www\.\S+)\W*", text):
        return "bare link"
    if re.match(r"#{1,6}\s", text):
        return "section heading"
    return None


_FRONT_MATTER = re.compile(r"[ \t\ufeff]*(title|date|source|url):[ \t]*(\S[^\r\n]*?)[ \t]*(?:\r\n|\r|\n|$)", re.IGNORECASE)
FRONT_MATTER_KEYS = ("title", "date", "source", "url")


def front_matter(raw: str) -> tuple[dict[str, str], int]:
    """`key: value` lines at the very top of the file (title, date, source, url; how added articles are stored),
    and the offset where the story starts."""
    fields: dict[str, str] = {}
    pos = 0
    while (m := _FRONT_MATTER.match(raw, pos)) is not None and m.group(1).lower() not in fields:
        key, value = m.group(1).lower(), m.group(2)
        if key == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            break  # "date 2023-07-18 The story starts here...": the first line of the story, with its date
        fields[key] = value
        pos = m.end()
    return fields, pos


def _blocks(raw: str, begin: int = 0) -> list[tuple[int, int]]:
    """Paragraph candidates: runs of non-blank lines. Inside a run, a line break after sentence
    punctuation, or next to a line that is not story text, also ends a paragraph (one paragraph a
    line files); other breaks are hard wraps."""
    blocks: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    prev_text = ""
    for start, end in _lines(raw):
        if start < begin:
            continue
        s, e = _strip_span(raw, start, end)
        text = raw[s:e]
        if not text:
            if current:
                blocks.append(current)
            current, prev_text = None, ""
            continue
        breaks = current is not None and (
            prev_text.endswith(_SENTENCE_END) or skip_reason(prev_text) or skip_reason(text)
            or _TITLE_HEADER.fullmatch(prev_text) is not None
        )
        if current is None or breaks:
            if current:
                blocks.append(current)
            current = (s, e)
        else:
            current = (current[0], e)
        prev_text = text
    if current:
        blocks.append(current)
    return blocks


def _shorten(text: str, limit: int = TITLE_MAX_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:—–- ") + "…"


def parse_article(raw: str, *, article_id: str, path: str, sha256: str) -> Article:
    """Find date, title, story paragraphs and skipped lines of an article's raw text."""
    fields, begin = front_matter(raw)
    date: str | None = _valid_date(fields.get("date"))
    title: str | None = fields.get("title")
    paragraphs: list[Paragraph] = []
    skipped: list[SkippedLine] = []
    for i, (start, end) in enumerate(_blocks(raw, begin)):
        if i == 0 and date is None:
            header = _DATE_HEADER.match(raw, start, end)
            if header:
                try:
                    date = _dt.date.fromisoformat(header.group(1)).isoformat()
                except ValueError:
                    header = None
            if header:
                start = header.end()
        if title is None and not paragraphs and not skipped:  # a heading before the story is the title
            heading = _TITLE_HEADER.match(raw, start, end)
            if heading:
                title = heading.group(1).strip()
                start = heading.end()
        start, end = _strip_span(raw, start, end)
        if start >= end:
            continue
        text = raw[start:end]
        reason = skip_reason(text)
        if reason:
            skipped.append(SkippedLine(start, end, reason))
        else:
            paragraphs.append(Paragraph(len(paragraphs) + 1, start, end))
    if not paragraphs:
        raise ArticleError(
            f"{path}: no story text found (every line is empty, a header, an all-caps headline or a promo); "
            "check that this is an article."
        )
    if title is None:
        first = paragraphs[0]
        lead = split_sentences(raw[first.start : first.end], first.start)[0]
        title = _shorten(raw[lead.start : lead.end])
    return Article(article_id, path, raw, sha256, title, date, tuple(paragraphs), tuple(skipped),
                   fields.get("url"), fields.get("source"))


def _valid_date(value: str | None) -> str | None:
    try:
        return _dt.date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


def content_key(story: str) -> str:
    """sha256 of a story's words (case and white space folded): a story pasted twice, or once as a file and once
    as text, has one key."""
    return hashlib.sha256(" ".join(story.lower().split()).encode("utf-8")).hexdigest()


def story_key(article: Article) -> str:
    """content_key of an article's story paragraphs (front matter, headlines and promos aside)."""
    return content_key(" ".join(article.text(p) for p in article.paragraphs))


def aside_words(article: Article) -> tuple[str, ...]:
    """The words of an article's lines that are not story text (related-story headlines, promos), sorted: a
    question about them is about another story ("What did the mayor say?" when only a headline names a mayor)."""
    from .lexical import STOPWORDS, words

    found = {w for line in article.skipped for w in words(article.text(line)) if w.isalpha() and len(w) > 2}
    return tuple(sorted(found - STOPWORDS))


def decode_article(data: bytes, path: str) -> str:
    """The file's text, or an ArticleError naming the file and the problem."""
    if b"\x00" in data[:8192]:
        raise ArticleError(f"{path}: this looks like a binary file (it contains NUL bytes), not a text article.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"convert it, e.g. `iconv -f latin1 -t utf-8 {path} > fixed.txt`."
        ) from None
    if all(_blank(ch) for ch in text):
        raise ArticleError(f"{path}: the file is empty (no visible text); add the article's text or remove the file.")
    return text


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} KB"


def read_article(path: Path, article_id: str | None = None, max_bytes: int = MAX_ARTICLE_BYTES) -> Article:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ArticleTooLargeError(f"{path}: the file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)} per "
                                       "article (QA_MAX_ARTICLE_BYTES). Is it really one news story?")
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    raw = decode_article(data, str(path))
    return parse_article(
        raw, article_id=article_id or path.stem, path=str(path.resolve()), sha256=hashlib.sha256(data).hexdigest()
    )


def find_article_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders into article files (.txt, .md), sorted within each folder. Only symbolic links are
    resolved (a folder of 100,000 articles is listed in a fraction of a second)."""
    if not paths:
        raise ArticleError("No article paths given; pass files or folders, e.g. `qa build articles/`.")
    files: list[tuple[Path, Path]] = []  # (as found, resolved)
    for given in paths:
        p = Path(given)
        if p.is_dir():
            root = p.resolve()
            found: list[tuple[Path, Path]] = []
            for folder, dirs, names in os.walk(p):  # symbolic links to folders are not followed, as rglob does
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                rel = os.path.relpath(folder, p)
                for name in names:
                    if name.startswith(".") or os.path.splitext(name)[1].lower() not in ARTICLE_SUFFIXES:
                        continue
                    f = Path(folder) / name
                    if os.path.islink(f):  # a link out of the folder would index (and quote) any file on the machine
                        target = f.resolve()
                        if not target.is_relative_to(root):
                            raise ArticleError(f"{f}: a symbolic link to {target}, outside the articles folder {p}; "
                                               "remove it, or copy the article into the folder.")
                        if not target.is_file():
                            continue
                    else:
                        target = root / rel / name if rel != "." else root / name
                    found.append((f, target))
            if not found:
                raise ArticleError(f"{p}: the folder has no articles (no .txt or .md files); add some or pass files.")
            files.extend(sorted(found))
        elif p.is_file():
            if p.suffix.lower() not in ARTICLE_SUFFIXES:
                raise ArticleError(f"{p}: articles are .txt or .md files; rename it if it is plain text.")
            files.append((p, p.resolve()))
        else:
            raise ArticleError(f"{p}: no such file or folder.")
    unique: dict[Path, Path] = {}
    for f, resolved in files:
        unique.setdefault(resolved, f)
    return list(unique.values())


def article_ids(files: Sequence[Path]) -> list[str]:
    """File stems, or the path without suffix where two files share a stem."""
    stems = [f.stem for f in files]
    counts = Counter(stems)
    ids = [stem if counts[stem] == 1 else f.with_suffix("").as_posix().lstrip("./") for f, stem in zip(files, stems)]
    if len(set(ids)) != len(ids):
        raise ArticleError("Two article files map to the same id; give them different names.")
    return ids


def read_corpus(paths: Sequence[str | Path], max_bytes: int = MAX_ARTICLE_BYTES) -> list[Article]:
    """Read every article under `paths`. Errors name the file and the problem."""
    files = find_article_files(paths)
    return [read_article(f, i, max_bytes) for f, i in zip(files, article_ids(files))]


class ArticleFiles:
    """Article files as they were indexed: whether one still holds the indexed text, and that text. A file is
    hashed again only when its size or modification time changes, so checking every answer's citations costs
    one stat per article."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._seen: dict[str, tuple[tuple[int, int], str, str | None]] = {}  # path -> (size, mtime), sha256, text

    def _read(self, path: str, sha256: str, *, want_text: bool) -> tuple[bool, str | None]:
        try:
            st = os.stat(path)
        except OSError:
            return False, None
        key = (st.st_size, st.st_mtime_ns)
        seen = self._seen.get(path)
        if seen is not None and seen[0] == key and (seen[2] is not None or not want_text):
            return seen[1] == sha256, seen[2] if seen[1] == sha256 else None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False, None
        digest = hashlib.sha256(data).hexdigest()
        text = data.decode("utf-8", "replace") if want_text and digest == sha256 else None
        if len(self._seen) >= self.capacity:
            self._seen.clear()
        self._seen[path] = (key, digest, text)
        return digest == sha256, text

    def unchanged(self, path: str, sha256: str) -> bool:
        """True when the file is there and holds exactly the bytes that were indexed."""
        return self._read(path, sha256, want_text=False)[0]

    def text(self, path: str, sha256: str) -> str | None:
        """The file's text with offsets intact, or None when it is gone or no longer the indexed text."""
        return self._read(path, sha256, want_text=True)[1]
