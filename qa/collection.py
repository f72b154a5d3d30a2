"""Articles staff add: check the text (plain, Markdown or an HTML page) and its identity, name it by its content,
and store it as a plain-text file in the articles folder.

The stored file is the citation source, so every offset in an answer indexes it exactly. Its first lines hold
the identity as `key: value` front matter (title, date, source, url), which the article reader takes back, so
`qa build` rebuilds an index with the same titles and links from the files alone. Everything refused gets an
ArticleError (4xx) naming the problem and the limit, before anything is written.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .articles import decode_article, front_matter, parse_article, size_text, story_key
from .config import PERSISTENT_STORAGE
from .errors import ArticleError, ArticleTooLargeError, QAError

Format = Literal["auto", "text", "markdown", "html"]
MAX_PAGE_BYTES = 5_000_000  # an HTML page as pasted or uploaded; its story text has the article limit
MAX_TITLE_CHARS = 300
MIN_PAGE_WORDS = 25  # fewer words of prose than this in a page is a menu or a footer, not a story
MAX_URL_CHARS = 2048
_URL = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)


@dataclass(frozen=True)
class NewArticle:
    """An article ready to be stored: its id, the file's text (front matter, blank line, story) and identity."""

    id: str
    raw: str
    title: str
    date: str | None
    url: str | None
    source: str | None
    content: str  # content_key of the story: equal for the same story pasted twice
    notes: tuple[str, ...] = ()  # what was changed on the way in (values a page brought along, cleaned or dropped)


def slug(text: str, limit: int = 48) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].rstrip("-")


def article_id(title: str, content: str) -> str:
    """`<title slug>-<12 hex of the content key>`: stable, readable in a list, no path characters."""
    return f"{slug(title) or 'article'}-{content[:12]}"


# invisible characters allowed in a title or a source: the zero-width (non-)joiner, which Persian, Indic scripts and
# emoji sequences need; every other format character (bidi overrides, zero-width spaces, soft hyphens) is refused
_JOINERS = "\u200c\u200d"


def _invisible(text: str) -> str | None:
    """The first invisible format character (Unicode category Cf) of `text` that is not a joiner, if any."""
    return next((c for c in text if unicodedata.category(c) == "Cf" and c not in _JOINERS), None)


def _check_field(value: object, what: str, limit: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ArticleError(f"The {what} must be text, not {type(value).__name__}.")
    text = " ".join(value.split())
    if len(text) > limit:
        raise ArticleError(f"The {what} is {len(text):,} characters long; the limit is {limit:,}.")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise ArticleError(f"The {what} contains a control character; remove it.")
    hidden = _invisible(text)
    if hidden is not None:
        raise ArticleError(f"The {what} contains the invisible format character U+{ord(hidden):04X} "
                           f"({unicodedata.name(hidden, 'unnamed')}), which can disguise what is shown; remove it.")
    if re.search(r"[<>]", text):
        raise ArticleError(f"The {what} {text[:60]!r} contains markup (< or >); give it as plain text.")
    if "\\" in text or "../" in text or text.startswith("/"):
        raise ArticleError(f"The {what} {text[:60]!r} looks like a file path; give it as plain text.")
    return text


def check_url(url: object) -> str | None:
    if url is None or isinstance(url, str) and not url.strip():
        return None
    if not isinstance(url, str):
        raise ArticleError(f"The URL must be text, not {type(url).__name__}.")
    text = url.strip()
    if len(text) > MAX_URL_CHARS:
        raise ArticleError(f"The URL is {len(text):,} characters long; the limit is {MAX_URL_CHARS:,}.")
    parts = urllib.parse.urlsplit(text) if _URL.fullmatch(text) else None
    if parts is None or not parts.netloc or any(unicodedata.category(c) in ("Cc", "Cs", "Cf") for c in text):
        raise ArticleError(f"The URL {text[:80]!r} is not an http(s) address; give the story's address, e.g. "
                           "https://example.com/news/story, or leave it out.")
    return text


def check_date(date: object) -> str | None:
    if date is None or date == "":
        return None
    if not isinstance(date, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.strip()):
        raise ArticleError(f"The date must be YYYY-MM-DD, e.g. 2024-05-01, not {str(date)[:40]!r}.")
    try:
        return _dt.date.fromisoformat(date.strip()).isoformat()
    except ValueError:
        raise ArticleError(f"{date!r} is not a real date; give YYYY-MM-DD.") from None


def check_text(text: object, what: str = "article") -> str:
    """The text as a str: bytes must be UTF-8; no NUL or other control characters but tabs and line breaks."""
    if isinstance(text, (bytes, bytearray)):
        text = decode_article(bytes(text), f"The {what}", is_file=False)
    if not isinstance(text, str):
        raise ArticleError(f"The {what} must be text, not {type(text).__name__}.")
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            raise ArticleError(f"The {what} is not valid Unicode text (U+{ord(ch):04X} at character {i + 1}); send UTF-8.")
        if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f":
            raise ArticleError(f"The {what} contains the control character U+{ord(ch):04X} at character {i + 1}; "
                               "is it really text? Remove it.")
    if not text.strip():
        raise ArticleError(f"The {what} is empty; paste the story's text, or upload a .txt, .md or .html file.")
    return text


def _prose_words(text: str) -> int:
    """Words in lines that read as prose (end like a sentence): menus and link lists do not."""
    return sum(len(line.split()) for line in text.splitlines() if line.rstrip().endswith(tuple(".!?\"'”’)")))


_CHECKS = {"title": lambda v: _check_field(v, "title", MAX_TITLE_CHARS),
           "source": lambda v: _check_field(v, "source", MAX_TITLE_CHARS), "url": check_url, "date": check_date}


def _own_header(story: str) -> tuple[dict[str, str], str]:
    """The story's own `key: value` header lines (title, date, source, url: how stored articles begin, and what a
    colleague may paste), checked as the fields given beside it are, and the story without them."""
    fields, end = front_matter(story)
    checked = {}
    for key, value in fields.items():
        try:
            checked[key] = _CHECKS[key](value)
        except ArticleError as exc:
            line = f"{key}: {value}"
            raise ArticleError(f"The article's header line {line[:80]!r}: {exc} (Or remove that line.)") from None
    return checked, story[end:] if fields else story


# what a page may bring along that a field may not hold: markup, path characters, invisible and control characters
_TAGS = re.compile(r"</?[A-Za-z][^<>]*>")
_NOT_IN_FIELDS = re.compile(r"[<>\\\x00-\x1f\x7f]")


def _page_value(value: str | None, what: str, check) -> tuple[str | None, str | None]:
    """A title or publication name found in a page, made fit for the field (tags and forbidden characters removed),
    or dropped when nothing fit is left; with a note saying which, when it was changed."""
    if not value:
        return None, None
    try:
        return check(value), None
    except ArticleError:
        pass
    cleaned = "".join(c for c in _NOT_IN_FIELDS.sub(" ", _TAGS.sub(" ", value))
                      if unicodedata.category(c) not in ("Cf", "Cs") or c in _JOINERS)
    cleaned = " ".join(cleaned.replace("../", " ").split()).lstrip("/ ")
    try:
        kept = check(cleaned) if cleaned else None
    except ArticleError:
        kept = None
    shown = " ".join(value.split())[:80]
    if kept:
        return kept, f"The page's {what} {shown!r} held characters a {what} may not (markup, \\, control or invisible " \
                     f"characters); it was cleaned to {kept!r}."
    return None, f"The page's {what} {shown!r} could not be made plain text; it was left out."


def _page_url(value: str | None) -> tuple[str | None, str | None]:
    """A page's own URL (canonical link, og:url), with characters a URL may not hold percent-encoded, or dropped."""
    if not value:
        return None, None
    try:
        return check_url(value), None
    except ArticleError:
        pass
    encoded = urllib.parse.quote("".join(c for c in value.strip() if unicodedata.category(c) not in ("Cc", "Cf", "Cs")),
                                 safe=":/?#[]@!$&()*+,;=%~-._")
    try:
        kept = check_url(encoded)
    except ArticleError:
        return None, f"The page's URL {value[:80]!r} is not a usable http(s) address; it was left out."
    return kept, f"The page's URL {value[:80]!r} held characters a URL may not; they were percent-encoded: {kept}."


def prepare_article(text: object, *, title: object = None, date: object = None, url: object = None,
                    source: object = None, fmt: Format = "auto", max_bytes: int = 1_000_000) -> NewArticle:
    """Check an article staff add and make its file's text; ArticleError (or ArticleTooLargeError) otherwise.
    An HTML page's story and identity are extracted (qa/extract.py); explicit title, date, url and source win
    over the page's, and over the story's own header lines. What the user gives is checked and refused when wrong;
    what a page brings along is cleaned or dropped, and `notes` says which."""
    if fmt not in ("auto", "text", "markdown", "html"):
        raise ArticleError(f"The format must be text, markdown, html or auto, not {fmt!r}.")
    raw_size = len(text) if isinstance(text, (bytes, bytearray)) else len(text.encode("utf-8", "surrogatepass")) \
        if isinstance(text, str) else 0
    from .extract import looks_like_html

    is_html = fmt == "html" or fmt == "auto" and (
        looks_like_html(text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text)
        if isinstance(text, (str, bytes, bytearray)) else False)
    limit = MAX_PAGE_BYTES if is_html else max_bytes
    if raw_size > limit:
        raise ArticleTooLargeError(f"The {'page' if is_html else 'article'} is {size_text(raw_size)}; the limit is "
                                   f"{size_text(limit)} {'per page' if is_html else 'per article'}.")
    title, source = _check_field(title, "title", MAX_TITLE_CHARS), _check_field(source, "source", MAX_TITLE_CHARS)
    url, date = check_url(url), check_date(date)
    notes: list[str] = []
    if is_html:
        from .extract import extract_html

        page = text if isinstance(text, (bytes, bytearray)) else check_text(text, "page")
        found = extract_html(page)
        if not found.text or _prose_words(found.text) < MIN_PAGE_WORDS:
            raise ArticleError("No story text found in the HTML page (only navigation, links or scripts); paste the "
                               "story's text instead.")
        story = check_text(found.text)
        found_title, found_source, found_url = (
            (None, None) if title else _page_value(found.title, "title", _CHECKS["title"]),
            (None, None) if source else _page_value(found.source, "publication name", _CHECKS["source"]),
            (None, None) if url else _page_url(found.url))
        notes = [note for _value, note in (found_title, found_source, found_url) if note]
        title, source, url = title or found_title[0], source or found_source[0], url or found_url[0]
        date = date or found.date
    else:
        story = check_text(text)
        own, story = _own_header(story.lstrip("\ufeff"))
        title, date, source, url = (title or own.get("title"), date or own.get("date"), source or own.get("source"),
                                    url or own.get("url"))
    story = story.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if len(story.encode("utf-8")) > max_bytes:
        raise ArticleTooLargeError(f"The article's text is {size_text(len(story.encode('utf-8')))}; the limit is "
                                   f"{size_text(max_bytes)} per article.")
    raw = _with_header(story, title, date, source, url)
    article = parse_article(raw, article_id="new", path="the article", sha256="")  # ArticleError: no story text
    if date is None and article.date is not None:  # a date written in the story: kept as the file's own
        raw = _with_header(story, title, article.date, source, url)
        article = parse_article(raw, article_id="new", path="the article", sha256="")
    content = story_key(article)
    return NewArticle(article_id(article.title, content), raw, article.title, article.date, url, source, content,
                      tuple(notes))


def _with_header(story: str, title, date, source, url) -> str:
    header = [f"{key}: {value}" for key, value in (("title", title), ("date", date), ("source", source), ("url", url))
              if value]
    return "\n".join(header) + ("\n\n" if header else "") + story + "\n"


def write_article_file(folder: Path, article_id_: str, raw: str) -> Path:
    """Store the article as <folder>/<id>.txt atomically (a temporary file, fsync, rename): a crash leaves the
    whole file or none. Refuses to replace a different file of the same name. Call with the index's writer lock
    held: temporary files of writes that died are removed first."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
    target = folder / f"{article_id_}.txt"
    data = raw.encode("utf-8")
    if target.exists() and target.read_bytes() != data:
        raise ArticleError(f"{target} exists with other content; remove it or rename it first.")
    tmp = folder / f".{article_id_}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def on_persistent_storage(engine) -> bool:
    """False on a Hugging Face Space (SPACE_ID set) whose articles folder is not under its persistent storage,
    /data: added articles are then lost when the Space restarts."""
    if not os.environ.get("SPACE_ID"):
        return True
    try:
        folder = engine.articles_folder().resolve()
    except QAError:
        return False
    return folder.is_relative_to(PERSISTENT_STORAGE)
