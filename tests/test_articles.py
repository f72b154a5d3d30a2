"""Reading article files: date header, title, story paragraphs, skipped lines, and errors that name the file."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from helpers import seed_article_path, qa_clean_env  # noqa: F401 - fixture
from qa.articles import (
    TITLE_MAX_CHARS,
    article_ids,
    find_article_files,
    parse_article,
    read_article,
    read_corpus,
    skip_reason,
)
from qa.errors import ArticleError

pytestmark = pytest.mark.usefixtures("qa_clean_env")


def parse(raw: str):
    return parse_article(raw, article_id="t", path="t.txt", sha256="0" * 64)


def texts(article) -> list[str]:
    return [article.text(p) for p in article.paragraphs]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --- the seed article -------------------------------------------------------------------------------


def test_seed_article_structure():
    path = seed_article_path()
    a = read_article(path)
    assert a.id == "000_1377f01862d9140a"
    assert a.date == "2023-07-18"
    assert len(a.paragraphs) == 12
    assert [p.number for p in a.paragraphs] == list(range(1, 13))
    assert a.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert a.raw == path.read_bytes().decode("utf-8")  # untouched
    # the date header is not story text; the story starts on the same line right after it
    assert a.raw.startswith(" date 2023-07-18 A Chicago police")
    assert texts(a)[0].startswith("A Chicago police oversight agency")
    assert a.paragraphs[0].start == len(" date 2023-07-18 ")
    assert texts(a)[7].startswith('"This investigation remains open and ongoing')
    assert texts(a)[11].startswith("Last week, the news station reported, nearly 5,000 immigrants")
    # paragraphs come in file order and never overlap
    ends = [(p.start, p.end) for p in a.paragraphs]
    assert all(e1 <= s2 for (_s1, e1), (s2, _e2) in zip(ends, ends[1:]))


def test_seed_article_skipped_lines():
    a = read_article(seed_article_path())
    skipped = [a.text(s) for s in a.skipped]
    assert len(skipped) == 4
    assert skipped[0] == "CHICAGO POLICE STATIONS BECOME UNOFFICIAL MIGRANT SHELTERS AMID CRISIS"
    assert skipped[-1] == "CLICK HERE TO GET THE FOX NEWS APP"
    assert all(s.isupper() for s in skipped)
    story = " ".join(texts(a))
    for s in skipped:
        assert s not in story


def test_seed_article_title_is_the_shortened_lead_sentence():
    a = read_article(seed_article_path())
    lead = "A Chicago police oversight agency charged with investigating sexual misconduct allegations"
    assert a.title.endswith("…")
    assert len(a.title) <= TITLE_MAX_CHARS
    body = a.title[:-1]
    assert lead.startswith(body)
    assert lead[len(body)] == " "  # cut at a word boundary
    assert body == "A Chicago police oversight agency charged with investigating sexual misconduct"


# --- date and title ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "date 2023-07-18 The council met on Monday. It voted.\n\nSecond paragraph.\n",
    " date 2023-07-18 The council met on Monday. It voted.\n\nSecond paragraph.\n",
    "\ufeffdate 2023-07-18 The council met on Monday. It voted.\n\nSecond paragraph.\n",
    "Date: 2023-07-18 The council met on Monday. It voted.\n\nSecond paragraph.\n",
])
def test_date_header_followed_by_story_on_the_same_line(raw):
    a = parse(raw)
    assert a.date == "2023-07-18"
    assert texts(a) == ["The council met on Monday. It voted.", "Second paragraph."]
    assert a.paragraphs[0].start == raw.index("The council")
    assert a.title == "The council met on Monday."


def test_date_header_on_its_own_line():
    raw = "date 2021-01-05\n\nSnow closed the schools. Buses stayed home.\n"
    a = parse(raw)
    assert a.date == "2021-01-05"
    assert texts(a) == ["Snow closed the schools. Buses stayed home."]


def test_no_date_and_invalid_date():
    assert parse("Snow closed the schools.\n").date is None
    # 2023-13-45 is not a date: the line is story text, not a header
    a = parse("date 2023-13-45 Snow closed the schools.\n")
    assert a.date is None
    assert texts(a) == ["date 2023-13-45 Snow closed the schools."]


def test_title_is_the_lead_sentence_when_short():
    a = parse("Snow closed the schools. Buses stayed home.\n\nMore snow is due.\n")
    assert a.title == "Snow closed the schools."


def test_long_lead_sentence_is_shortened_at_a_word_with_ellipsis():
    words = ["word%02d" % i for i in range(30)]  # 30 x 7 chars = 209 chars with spaces
    lead = " ".join(words) + "."
    a = parse(lead + " Second sentence.\n")
    # the longest run of whole words that fits in TITLE_MAX_CHARS - 1 characters, then "…"
    n = (TITLE_MAX_CHARS - 1 + 1) // 7  # each word plus its space is 7 chars: 12 words = 83 chars
    assert a.title == " ".join(words[:n]) + "…"
    assert len(a.title) <= TITLE_MAX_CHARS


def test_markdown_heading_is_the_title_and_not_a_paragraph():
    raw = "# Storm floods the harbour\n\nWaves broke over the sea wall. Boats sank.\n\nThe port reopened.\n"
    a = parse(raw)
    assert a.title == "Storm floods the harbour"
    assert texts(a) == ["Waves broke over the sea wall. Boats sank.", "The port reopened."]
    assert a.paragraphs[0].number == 1


def test_title_line_is_the_title():
    raw = "title: Storm floods the harbour\n\nWaves broke over the sea wall.\n"
    a = parse(raw)
    assert a.title == "Storm floods the harbour"
    assert texts(a) == ["Waves broke over the sea wall."]


def test_date_then_heading():
    raw = "date 2022-02-02\n# Storm floods the harbour\n\nWaves broke over the sea wall.\n"
    a = parse(raw)
    assert (a.date, a.title) == ("2022-02-02", "Storm floods the harbour")
    assert texts(a) == ["Waves broke over the sea wall."]


@pytest.mark.parametrize("header", ["# Storm floods the harbour", "title: Storm floods the harbour"])
def test_heading_directly_followed_by_story_keeps_the_story(header):
    # No blank line between the heading and the story: the heading is the title, the story is paragraph 1.
    raw = header + "\nWaves broke over the sea wall. Boats sank.\n\nThe port reopened.\n"
    a = parse(raw)
    assert a.title == "Storm floods the harbour"
    assert texts(a) == ["Waves broke over the sea wall. Boats sank.", "The port reopened."]


# --- skipped lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "SENATOR WARNS OF BUDGET SHORTFALL AS TALKS STALL",
    "FLOODWATERS RECEDE IN DAYTON’S NORTH END",
    "TRUCK DRIVERS’ UNION VOTES TO STRIKE OVER PAY",
])
def test_all_caps_related_story_headlines_are_skipped(line):
    raw = f"The mayor opened the new park.\n\n{line}\n\nChildren played on the swings.\n"
    a = parse(raw)
    assert texts(a) == ["The mayor opened the new park.", "Children played on the swings."]
    assert [a.text(s) for s in a.skipped] == [line]
    assert "all-caps" in a.skipped[0].reason


@pytest.mark.parametrize("line", [
    "CLICK HERE TO READ MORE FROM THE DAILY COURIER",
    "Click here to get the Courier app",
    "Sign up for our morning briefing",
    "Download the Courier app for breaking news",
    "Subscribe to our podcast",
    "Tap here to watch the video",
    "Follow us on Instagram for more photos",
    "Read more: the council's full statement",
])
def test_promo_lines_are_skipped(line):
    raw = f"The mayor opened the new park.\n\n{line}\n\nChildren played on the swings.\n"
    a = parse(raw)
    assert texts(a) == ["The mayor opened the new park.", "Children played on the swings."]
    assert [a.text(s) for s in a.skipped] == [line]


@pytest.mark.parametrize("line", [
    "NASA said the launch is on track for Friday.",
    "Downloads of the app doubled in March, the company said.",
    "Watchdog groups criticized the plan.",
    "Subscribers will get refunds, the company said.",
    "FBI agents searched the house on Tuesday, officials said.",
])
def test_story_lines_that_look_like_promos_or_caps_are_kept(line):
    assert skip_reason(line) is None
    a = parse(f"The mayor opened the new park.\n\n{line}\n")
    assert texts(a) == ["The mayor opened the new park.", line]


@pytest.mark.parametrize("line", [
    "Tap water in the city is safe to drink again, officials said.",
    "Watch parties were held across the city on Sunday night.",
    "Follow-up inspections found no violations on Monday.",
])
def test_story_sentences_starting_with_a_promo_verb_are_kept(line):
    # A full news sentence that merely starts with "Tap", "Watch" or "Follow" is story text, not a promo.
    assert skip_reason(line) is None


def test_related_label_is_a_promo():
    # the rule lists "related:"; a "Related: ..." cross-link line must be caught
    assert skip_reason("Related: Storm hits the coast again") is not None


def test_skip_reason_for_bare_link():
    assert skip_reason("https://example.com/story/123") == "bare link"


# --- layouts ----------------------------------------------------------------------------------------


def test_one_paragraph_per_line_without_blank_lines():
    raw = (
        "The bridge closed on Monday.\n"
        "Engineers found cracks in the girders.\n"
        "BRIDGE CLOSURE SNARLS MORNING TRAFFIC\n"
        "Sign up for our traffic alerts\n"
        "Repairs will take six weeks, officials said.\n"
        "\"It is safe now,\" the mayor said."
    )
    a = parse(raw)
    assert texts(a) == [
        "The bridge closed on Monday.",
        "Engineers found cracks in the girders.",
        "Repairs will take six weeks, officials said.",
        "\"It is safe now,\" the mayor said.",
    ]
    assert [p.number for p in a.paragraphs] == [1, 2, 3, 4]
    assert [a.text(s) for s in a.skipped] == ["BRIDGE CLOSURE SNARLS MORNING TRAFFIC", "Sign up for our traffic alerts"]


def test_hard_wrapped_paragraphs_are_joined():
    raw = (
        "The council voted on Tuesday to extend\n"
        "the curfew for another two weeks, a\n"
        "spokesman said.\n"
        "\n"
        "Shops may open\n"
        "until nine.\n"
    )
    a = parse(raw)
    assert len(a.paragraphs) == 2
    first = a.paragraphs[0]
    assert (first.start, first.end) == (0, raw.index("said.") + len("said."))
    assert a.text(first) == "The council voted on Tuesday to extend\nthe curfew for another two weeks, a\nspokesman said."
    assert texts(a)[1] == "Shops may open\nuntil nine."


def test_crlf_and_extra_blank_lines_keep_exact_offsets():
    raw = "\r\n\r\n  Snow closed the schools.  \r\n\r\n\r\n\tBuses stayed home.\r\n"
    a = parse(raw)
    assert texts(a) == ["Snow closed the schools.", "Buses stayed home."]
    assert a.paragraphs[0].start == raw.index("Snow")
    assert a.paragraphs[1].end == raw.index("home.") + len("home.")


# --- files and errors -------------------------------------------------------------------------------


def test_read_article_keeps_bytes_hash_and_id(tmp_path):
    data = "date 2020-05-05 Café owners cheered. 🎉\n\nThe square reopened.\n".encode()
    p = write(tmp_path, "cafe.md", data)
    a = read_article(p)
    assert a.id == "cafe"
    assert a.path == str(p.resolve())
    assert a.sha256 == hashlib.sha256(data).hexdigest()
    assert texts(a) == ["Café owners cheered. 🎉", "The square reopened."]


@pytest.mark.parametrize("data", [b"", b"   \n\n\t  \r\n"])
def test_empty_and_whitespace_files_are_refused(tmp_path, data):
    p = write(tmp_path, "blank.txt", data)
    with pytest.raises(ArticleError) as err:
        read_article(p)
    assert str(p) in str(err.value)
    assert "empty" in str(err.value)


def test_binary_file_is_refused(tmp_path):
    p = write(tmp_path, "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ArticleError) as err:
        read_article(p)
    assert str(p) in str(err.value)
    assert "binary" in str(err.value) and "NUL" in str(err.value)


def test_latin1_file_names_the_byte_and_offset(tmp_path):
    data = "Caf\u00e9 owners cheered.".encode("latin-1")
    p = write(tmp_path, "latin.txt", data)
    with pytest.raises(ArticleError) as err:
        read_article(p)
    msg = str(err.value)
    assert str(p) in msg
    assert "not UTF-8" in msg
    assert "0xe9" in msg and "offset 3" in msg
    assert "iconv" in msg  # says how to fix it


def test_file_with_only_skipped_lines_is_refused(tmp_path):
    p = write(tmp_path, "promo.txt", b"CLICK HERE TO GET THE COURIER APP\n\nSign up for our newsletter\n")
    with pytest.raises(ArticleError) as err:
        read_article(p)
    assert str(p.resolve()) in str(err.value)
    assert "no story text" in str(err.value)


def test_folder_without_articles(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n")
    (tmp_path / "hidden").mkdir()
    with pytest.raises(ArticleError) as err:
        find_article_files([tmp_path])
    assert str(tmp_path) in str(err.value)
    assert "no articles" in str(err.value) and ".txt" in str(err.value)


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(ArticleError) as err:
        read_corpus([missing])
    assert str(missing) in str(err.value)
    assert "no such file" in str(err.value)


def test_wrong_extension(tmp_path):
    p = write(tmp_path, "story.docx", b"The mayor spoke.")
    with pytest.raises(ArticleError) as err:
        find_article_files([p])
    assert str(p) in str(err.value)
    assert ".txt or .md" in str(err.value)


def test_no_paths():
    with pytest.raises(ArticleError, match="No article paths"):
        find_article_files([])


def test_folder_expansion_is_sorted_recursive_and_skips_hidden(tmp_path):
    write(tmp_path, "b.txt", b"Bee story.")
    write(tmp_path, "a.md", b"Ay story.")
    write(tmp_path, "c.json", b"{}")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "d.txt", b"Dee story.")
    (tmp_path / ".git").mkdir()
    write(tmp_path / ".git", "e.txt", b"Hidden.")
    files = find_article_files([tmp_path, tmp_path / "b.txt"])  # b.txt twice: kept once
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.md", "b.txt", "sub/d.txt"]
    articles = read_corpus([tmp_path])
    assert [a.id for a in articles] == ["a", "b", "d"]


def test_same_stem_in_two_folders_gets_distinct_ids(tmp_path):
    ids = article_ids([Path("x/story.txt"), Path("y/story.txt"), Path("y/other.txt")])
    assert ids == ["x/story", "y/story", "other"]


# --- the top of a pasted story: headline, bylines and dates are not paragraphs --------------------------------------

PASTES = Path(__file__).parent / "fixtures" / "pastes"
NEWS_DEV = Path(__file__).resolve().parents[2] / "shared" / "news-dev"
# file -> (title, date, first paragraph's opening, paragraphs, skipped lines as "reason: opening")
PASTED = {
    "ap.txt": ("Maine town votes to restore 150-year-old lighthouse", None, "KELL POINT, Maine (AP) — Residents", 4,
               ["headline: Maine town", "byline: By JANE DOE", "byline or label: Associated Press"]),
    "reuters.txt": ("Exclusive: Harbour authority weighs sale of ferry terminal, sources say", "2024-03-12",
                    "LONDON, March 12 (Reuters) - Britain's", 4,
                    ["headline: Exclusive:", "byline: By Anna Lind", "reading time: 4 minute read",
                     "date line: March 12, 2024 3:45 PM UTC Updated", "credit line: (Reporting by"]),
    "bbc.txt": ("Lighthouse keeper's diary found in attic", "2024-03-12", "A diary kept by", 3,
                ["headline: Lighthouse keeper's", "date line: 12 March 2024", "byline or label: Share",
                 "byline or label: Jane Doe", "byline or label: BBC News, Cornwall"]),
    "guardian.txt": ("Council approves 20mph limit across city centre", "2024-03-12", "The city council has approved", 3,
                     ["headline: Council approves", "standfirst: Speed limit will apply",
                      "byline or label: Sam Patel", "date line: Tue 12 Mar 2024"]),
    "local.txt": ("School board delays vote on new start times", "2024-04-03", "The Riverside school board", 3,
                  ["headline: School board", "date line: Published: April 3, 2024"]),
    "dateline_year.txt": ("Floods close coastal road", "2024-03-12", "WASHINGTON, March 12, 2024 — Floods", 2,
                          ["headline: Floods close"]),
    "plain_nobreak.txt": ("Harbour authority picks new chief", None, "The harbour authority named", 3,
                          ["headline: Harbour authority", "byline: By Maria Gonzalez"]),
    "kicker.txt": ("Senate passes water bill after long debate", None, "The Senate passed", 2,
                   ["byline or label: Politics", "headline: Senate passes"]),
    "wrapped.txt": ("The city council voted on Monday to close the Harlow river bridge for repairs after…", None,
                    "The city council voted", 2, []),
}


@pytest.mark.parametrize("name", sorted(PASTED))
def test_a_pasted_storys_headline_bylines_and_dates_are_not_paragraphs(name):
    title, date, opening, count, skipped = PASTED[name]
    raw = (PASTES / name).read_text(encoding="utf-8")
    a = parse(raw)
    assert (a.title, a.date) == (title, date)
    assert texts(a)[0].startswith(opening) and len(a.paragraphs) == count
    shown = [f"{s.reason}: {a.text(s)}" for s in a.skipped]
    assert len(shown) == len(skipped) and all(got.startswith(want) for got, want in zip(shown, skipped)), shown


@pytest.mark.parametrize("line", ["By Monday, the river had risen.", "By the numbers", "On March 12, 2024, the council voted.",
                                  "Reporting by the New York Times revealed that the mayor lied.",
                                  "By 2030, the city hopes to grow",
                                  "He was born on 4 March 1960"])
def test_sentences_that_look_like_bylines_or_dates_are_story_text(line):
    assert skip_reason(line) is None


@pytest.mark.parametrize("line", ["By JANE DOE", "By Jane Doe and Li Wei, Associated Press", "By Reuters",
                                  "Published: April 3, 2024", "Mar. 4, 2024 at 10:15 a.m. EST", "Updated 2 hours ago",
                                  "3 min read", "(Reporting by Anna Lind; Editing by Mark Potter)",
                                  "Heba Habib contributed to this report."])
def test_bylines_dates_and_credits_are_not_story_text(line):
    assert skip_reason(line) is not None


def test_stories_without_a_headline_keep_every_paragraph():
    """The 15 news-dev stories (one paragraph a line, no headline) and the seed article parse as before."""
    stories = sorted(NEWS_DEV.glob("n*.txt"))
    if not stories:
        pytest.skip(f"{NEWS_DEV} is not here")
    for path in stories:
        raw = path.read_text(encoding="utf-8")
        a = parse(raw)
        starts = {m.start() for m in re.finditer(r"^(?=\S)", raw, re.MULTILINE)}
        assert a.skipped == () and a.date is None and a.paragraphs[0].start == 0, path.name
        assert all(p.start in starts for p in a.paragraphs)  # each paragraph a line (or lines) of the file
    seed = read_article(seed_article_path())
    assert len(seed.paragraphs) == 12 and [s.reason[:7] for s in seed.skipped] == ["all-cap"] * 4
    assert seed.date == "2023-07-18"
