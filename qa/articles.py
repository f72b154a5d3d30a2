"""Read article files: keep the raw text untouched, find the date, title and story paragraphs.

Lines that are not part of the story are recognised by general rules:
- a line whose letters are (almost) all capitals is a related-story headline or a section label;
- a short line that opens with a call to action (click, tap, download, subscribe, sign up, follow,
  read more, watch ...) is a promo;
- a byline ("By Jane Doe, Associated Press"), a line that is only a date ("Published March 12, 2024 3:45 PM
  ET"), a reading time ("4 min read") and a credit line ("(Reporting by ...; Editing by ...)") are not story text;
- the top of a story as pasted from a page: the lines before its first paragraph that do not end like a sentence
  are its headline (the first of three words or more: the title when none is given), then its standfirst,
  bylines and labels. So paragraph numbers match the story's own, and a date written there (or in the dateline
  that opens the first paragraph, "WASHINGTON, March 12, 2024 —") is the article's date when none is given.
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
    if len(words) <= 14 and _is_byline(text):
        return "byline"
    if len(words) <= 14 and date_line(text) is not None:
        return "date line"
    if _READING_TIME.fullmatch(text):
        return "reading time"
    if len(words) <= 40 and _CREDIT.fullmatch(text):
        return "credit line"
    return None


# --- bylines, dates and the top of a story --------------------------------------------------------------------

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_WRITTEN_DATE = re.compile(
    rf"\b(?:(?P<m1>{_MONTH})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y1>(?:19|20)\d\d)"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m2>{_MONTH}),?\s+(?P<y2>(?:19|20)\d\d)"
    r"|(?P<y3>(?:19|20)\d\d)-(?P<m3>\d\d)-(?P<d3>\d\d))(?![\w-])", re.IGNORECASE)
# what may stand beside a date on a line that is only a date: labels, weekdays, times and time zones
_DATE_COMPANIONS = re.compile(
    r"\b(?:(?:first|last)\s+)?(?:published|updated|posted|modified|edited|on|at|and|am|pm|a\.m\.|p\.m\.|"
    r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?|[A-Z]{1,2}[SD]?T|GMT|UTC|BST|CES?T|IST|JST)(?![\w])|\d{1,2}[:.]\d{2}(?::\d{2})?",
    re.IGNORECASE)
_RELATIVE_DATE = re.compile(r"(?:(?:first|last)\s+)?(?:published|updated|posted)\W+(?:\d+|an?|one)\s+"
                            r"(?:second|minute|hour|day|week|month)s?\s+ago", re.IGNORECASE)
_READING_TIME = re.compile(r"\d{1,3}\s*-?\s*min(?:ute)?s?\.?\s+read", re.IGNORECASE)
_CREDIT_PART = r"(?:additional\s+)?(?:reporting|writing|editing|compiled|produced|translated|graphics)\s+by\s+[^();]+"
# "(Reporting by Anna Lind; Editing by Mark Potter)", "Reporting by X; editing by Y", "... contributed to this report."
_CREDIT = re.compile(rf"\(\s*{_CREDIT_PART}(?:;\s*{_CREDIT_PART})*\)\.?|{_CREDIT_PART}(?:;\s*{_CREDIT_PART})+\.?"
                     r"|[^.!?]{3,120}\bcontributed(?:\s+reporting)?\s+to\s+this\s+(?:report|story|article)\.?", re.IGNORECASE)
_BY = re.compile(r"(?:(?:words|story|written|text|reporting)\s+)?by\s+(\S.*)", re.IGNORECASE)
_NAME_JOINS = {"and", "&", "of", "the", "de", "van", "von", "der", "den", "da", "del", "della", "al", "bin", "la", "le",
               "du", "dos", "y"}


def written_date(text: str) -> str | None:
    """The first full date written out in `text` ("March 12, 2024", "12 Mar 2024", "2024-03-12") as YYYY-MM-DD."""
    for m in _WRITTEN_DATE.finditer(text):
        if m["y3"]:
            year, month, day = int(m["y3"]), int(m["m3"]), int(m["d3"])
        else:
            year = int(m["y1"] or m["y2"])
            month = _MONTHS[(m["m1"] or m["m2"]).lower()[:3]]
            day = int(m["d1"] or m["d2"])
        try:
            return _dt.date(year, month, day).isoformat()
        except ValueError:
            continue
    return None


def date_line(text: str) -> str | None:
    """For a line that holds only a date (with labels, a weekday, a time): that date, or "" for a relative one
    ("Updated 2 hours ago"); None for any other line."""
    if _RELATIVE_DATE.fullmatch(text.strip(" .·|")):
        return ""
    date = written_date(text)
    if date is None:
        return None
    rest = _DATE_COMPANIONS.sub(" ", _RELATIVE_DATE.sub(" ", _WRITTEN_DATE.sub(" ", text, count=1)))
    return date if not re.findall(r"[^\W\d_]{2,}", rest) else None


def _is_byline(text: str) -> bool:
    """"By Jane Doe", "By JANE DOE and Li Wei, Associated Press", "By Reuters": names, then perhaps a role or an
    outlet after a comma; never a sentence ("By Monday, the river had risen.")."""
    m = _BY.fullmatch(text.strip())
    if m is None or text.rstrip().endswith((".", "!", "?", ":", ";")) and not re.search(r"\b[A-Z]\.$", text.rstrip()):
        return False
    first, *rest = re.split(r"\s*[,|–—]\s*|\s+-\s+", m.group(1))
    names = [w for w in re.split(r"\s+", first) if w]
    capitalised = [w for w in names if w[:1].isupper()]
    if not names or any(w.lower() not in _NAME_JOINS and not w[:1].isupper() for w in names):
        return False
    return (len(capitalised) >= 2 or not rest and len(capitalised) == 1) and all(len(r.split()) <= 4 for r in rest)


def _ends_like_a_sentence(text: str) -> bool:
    """Ends with sentence punctuation (emoji and other symbols after it aside)."""
    return text.rstrip().rstrip("".join({c for c in text[-8:] if unicodedata.category(c) in ("So", "Sk")}) + " ") \
        .endswith(_SENTENCE_END)


def _is_prose(text: str) -> bool:
    """Ends like a sentence, or holds more than one: a paragraph, never a headline or a byline."""
    return _ends_like_a_sentence(text) or len(split_sentences(text, 0)) > 1


def _hard_wrapped(raw: str, begin: int) -> bool:
    """Whether the text wraps its paragraphs over several lines: a line that does not end like a sentence is
    followed by another line of text, after the top of the story (its first line ending like a sentence)."""
    in_story, prev = False, ""
    for start, end in _lines(raw):
        if start < begin:
            continue
        text = raw[slice(*_strip_span(raw, start, end))]
        if in_story and prev and text and not _ends_like_a_sentence(prev) and not skip_reason(prev) \
                and not skip_reason(text):
            return True
        in_story = in_story or _ends_like_a_sentence(text)
        prev = text
    return False


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
    lines_apart = not _hard_wrapped(raw, begin)  # a headline or byline line then is a line of its own
    top = True  # no line has ended like a sentence yet
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
            or top and lines_apart and text[:1].isupper() or top and lines_apart and text[:1] in "\"“‘'(0123456789"
        )
        top = top and not _is_prose(text)
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


TOP_BLOCKS = 8  # lines of headline, standfirst, bylines and labels a story may open with, at most


def _top_of_story(raw: str, blocks: list[tuple[int, int]]) -> dict[int, str]:
    """Reasons for the blocks at the top of a story that are not story text: those before its first paragraph
    (the first block that ends like a sentence) that do not end like one. The first of three words or more is the
    headline. Nothing is set aside when no paragraph follows (a text without punctuation is all story)."""
    first = next((i for i, (s, e) in enumerate(blocks) if _is_prose(raw[s:e])), None)
    if first is None or first == 0 or first > TOP_BLOCKS:
        return {}
    reasons, headline = {}, False
    for i in range(first):
        text = raw[slice(*blocks[i])]
        if skip_reason(text):
            continue  # a byline, a date line, an all-caps label: its own reason
        words = len(text.split())
        if not headline and 3 <= words <= 25:
            reasons[i], headline = "headline", True
        else:
            reasons[i] = "byline or label" if words <= 8 else "standfirst"
    return reasons


def parse_article(raw: str, *, article_id: str, path: str, sha256: str) -> Article:
    """Find date, title, story paragraphs and skipped lines of an article's raw text."""
    fields, begin = front_matter(raw)
    date: str | None = _valid_date(fields.get("date"))
    title: str | None = fields.get("title")
    paragraphs: list[Paragraph] = []
    skipped: list[SkippedLine] = []
    blocks = _blocks(raw, begin)
    if blocks:  # "date 2023-07-18 The story...": the date, then the story (the date is never story text)
        header = _DATE_HEADER.match(raw, *blocks[0])
        if header and _valid_date(header.group(1)):
            date = date or _valid_date(header.group(1))
            blocks[0] = (header.end(), blocks[0][1])
    top = _top_of_story(raw, blocks)
    written: list[tuple[str, bool]] = []  # dates found at the top of the story: (date, labelled as an update)
    for i, (start, end) in enumerate(blocks):
        if title is None and not paragraphs and not skipped:  # a heading before the story is the title
            heading = _TITLE_HEADER.match(raw, start, end)
            if heading:
                title = heading.group(1).strip()
                start = heading.end()
        start, end = _strip_span(raw, start, end)
        if start >= end:
            continue
        text = raw[start:end]
        reason = top.get(i) or skip_reason(text)
        if reason:
            skipped.append(SkippedLine(start, end, reason))
            if reason == "headline" and title is None:
                title = " ".join(text.split())
            if reason == "date line" and not paragraphs and date_line(text):
                written.append((date_line(text) or "", bool(re.search(r"updat|modif", text, re.IGNORECASE))))
        else:
            if not paragraphs:  # the dateline that opens a story: "WASHINGTON, March 12, 2024 (Reuters) —"
                opening = re.match(r"[^—–:]{0,80}?(?:—|–|\s-\s|:)", text)
                if opening and written_date(opening.group(0)):
                    written.append((written_date(opening.group(0)) or "", False))
            paragraphs.append(Paragraph(len(paragraphs) + 1, start, end))
    if date is None and written:  # a publication date before an update's
        date = min(written, key=lambda w: w[1])[0]
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
                   web_address(fields.get("url")), fields.get("source"))


_WEB_ADDRESS = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)


def web_address(url: str | None) -> str | None:
    """A header's `url:` when it is an http(s) address a link may point to; anything else (javascript:, markup,
    invisible characters) is no link at all."""
    if url and _WEB_ADDRESS.fullmatch(url) and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in url):
        return url
    return None


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


def decode_article(data: bytes, path: str, *, is_file: bool = True) -> str:
    """The file's text, or an ArticleError naming the file and the problem. `is_file=False`: `path` names text
    that is not a file (\"The article\" pasted or sent to the API), and the fix says so."""
    where = f"{path}:" if is_file else f"{path} is"
    if b"\x00" in data[:8192]:
        raise ArticleError(f"{path}: this looks like a binary file (it contains NUL bytes), not a text article." if is_file
                           else f"{path} looks like binary data (it contains NUL bytes), not text.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fix = (f"convert it, e.g. `iconv -f latin1 -t utf-8 {path} > fixed.txt`" if is_file else
               "save it as UTF-8 text and send it again")
        raise ArticleError(f"{where} not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); {fix}.") from None
    if all(_blank(ch) for ch in text):
        raise ArticleError(f"{where} {'the file is ' if is_file else ''}empty (no visible text); "
                           + ("add the article's text or remove the file." if is_file else "send the story's text."))
    return text


def size_text(n: int) -> str:
    """A size in bytes as people read it: 5.0 MB, 640 KB."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} KB"


def read_article(path: Path, article_id: str | None = None, max_bytes: int = MAX_ARTICLE_BYTES) -> Article:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ArticleTooLargeError(f"{path}: the file is {size_text(size)}; the limit is {size_text(max_bytes)} per "
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
