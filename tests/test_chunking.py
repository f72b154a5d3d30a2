"""Sentences and passages keep exact [start, end) offsets into the raw text, on any article.

The property checks run on the seed article, on hand-made tricky articles and (with hypothesis) on generated
ones. Splitter and windowing unit tests use expected splits worked out by hand.
"""

from __future__ import annotations

import pytest

from helpers import seed_article_path, qa_clean_env  # noqa: F401 - fixture
from qa.articles import parse_article, read_article
from qa.chunking import chunk_article
from qa.errors import ArticleError
from qa.sentences import split_sentences
from qa.types import Span

pytestmark = pytest.mark.usefixtures("qa_clean_env")


def count_words(texts):
    """A fake token counter: one token per white-space separated word."""
    return [len(t.split()) for t in texts]


def parse(raw: str):
    return parse_article(raw, article_id="t", path="t.txt", sha256="0" * 64)


def check_article(article, chunks) -> None:
    """Every invariant the index and the citations rely on."""
    raw = article.raw
    paras = article.paragraphs
    assert [p.number for p in paras] == list(range(1, len(paras) + 1))
    for p, q in zip(paras, paras[1:]):
        assert p.end <= q.start
    for p in paras:
        text = raw[p.start : p.end]
        assert text.strip()  # some story text
        assert text[0] not in " \t\r\n\ufeff\u00a0" and text[-1] not in " \t\r\n\ufeff\u00a0"
    by_number = {p.number: p for p in paras}
    assert {c.paragraph for c in chunks} == set(by_number)  # every paragraph has passages
    previous_end = -1
    for c in chunks:
        assert raw[c.start : c.end] == c.text
        assert c.article_id == article.id
        para = by_number[c.paragraph]
        assert para.start <= c.start < c.end <= para.end  # never crosses a paragraph
        assert c.start >= previous_end  # reading order, no overlap
        previous_end = c.end
        assert c.sentences
        assert c.sentences[0].start == c.start and c.sentences[-1].end == c.end
        last = c.start
        for s in c.sentences:
            assert c.start <= s.start < s.end <= c.end
            assert s.start >= last  # in order, no overlap
            last = s.end
            sentence = raw[s.start : s.end]
            assert sentence == sentence.strip()
            assert c.text[s.start - c.start : s.end - c.start] == sentence
    # the sentences of a paragraph's passages cover all of its text: what lies between them is white space
    for p in paras:
        spans = [s for c in chunks if c.paragraph == p.number for s in c.sentences]
        assert raw[p.start : spans[0].start].strip() == "" and raw[spans[-1].end : p.end].strip() == ""
        for a, b in zip(spans, spans[1:]):
            assert raw[a.end : b.start].strip() == ""


# --- the seed article and hand-made tricky articles -------------------------------------------------


def test_seed_article_passages_and_sentences_are_exact():
    article = read_article(seed_article_path())
    chunks = chunk_article(article, max_tokens=256, count_tokens=count_words)
    check_article(article, chunks)
    # every paragraph fits 256 words: one passage per story paragraph
    assert [c.paragraph for c in chunks] == list(range(1, 13))
    assert [(c.start, c.end) for c in chunks] == [(p.start, p.end) for p in article.paragraphs]
    # paragraph 8 is one quoted sentence ('...by CPD members," Kersten said.'): the comma inside the quote
    # is no boundary; paragraph 4 has two sentences ("... migrant. The tipster also indicated ...")
    para8 = chunks[7]
    assert len(para8.sentences) == 1
    assert para8.text.startswith('"This investigation remains open') and para8.text.endswith('by CPD members," Kersten said.')
    para4 = [article.raw[s.start : s.end] for s in chunks[3].sentences]
    assert len(para4) == 2
    assert para4[0].startswith("The allegation identified a specific officer") and para4[0].endswith(".")
    assert para4[1].startswith("The tipster also indicated several other officers")


def test_seed_article_with_small_windows():
    article = read_article(seed_article_path())
    for max_tokens, max_sentences in [(12, 0), (30, 1), (256, 2)]:
        chunks = chunk_article(article, max_tokens=max_tokens, count_tokens=count_words, max_sentences=max_sentences)
        check_article(article, chunks)
        for c in chunks:
            assert count_words([c.text])[0] <= max_tokens
            if max_sentences:
                assert len(c.sentences) <= max_sentences


TRICKY = {
    "curly quotes and dashes": (
        "date 2023-07-18 “We will not back down,” Gov. Abbott said — and he meant it. ‘No,’ she said.\n\n"
        "The U.S. Senate met at 5 p.m. on Jan. 6, the No. 5 item on its list. Mr. Smith’s bill passed.\n"
    ),
    "numbers and dates": (
        "Nearly 5,000 people came; prices rose 3.5 percent in 2023. On 2023-07-18 the fund held $1.2 million.\n\n"
        "At 9:30 a.m. Tuesday, officials met. They left at 11 a.m. The meeting ended.\n"
    ),
    "crlf, no final newline": "First paragraph here. It has two sentences.\r\n\r\nSecond paragraph, no newline at end.",
    "leading whitespace and tabs": "\n\n   \tIndented story line. Another one.\n\n\t\tTabbed\tparagraph with\ttabs.  \n",
    "bom": "\ufeffdate 2020-01-01 Café owners in Zürich cheered 🎉. The square reopened!\n\nNaïve crème brûlée won.\n",
    "one paragraph per line": (
        "The bridge closed on Monday.\nEngineers found cracks.\nBRIDGE CLOSURE SNARLS MORNING TRAFFIC\n"
        "Sign up for our traffic alerts\nRepairs will take six weeks, officials said.\n"
    ),
    "hard wraps and crlf": "The council voted on Tuesday to extend\r\nthe curfew for another two weeks, a\r\nspokesman said. More later.\r\n",
    "ellipsis, questions, brackets": (
        "Wait... What happened? Nobody knew! (The police arrived.) She paused… Then she left.\n\n"
        "\"Is it over?\" she asked. “Yes.” [Editor's note: updated.]\n"
    ),
    "heading and initials": "# John F. Kennedy Airport expands\n\nJohn F. Kennedy airport opened a terminal. It cost $9.5 billion.\n",
}


@pytest.mark.parametrize("raw", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_articles_keep_exact_offsets(raw):
    article = parse(raw)
    for max_tokens in (256, 6, 3):
        check_article(article, chunk_article(article, max_tokens=max_tokens, count_tokens=count_words))


def test_tricky_article_paragraph_numbers():
    a = parse(TRICKY["one paragraph per line"])
    chunks = chunk_article(a, max_tokens=256, count_tokens=count_words)
    assert [(c.paragraph, c.text) for c in chunks] == [
        (1, "The bridge closed on Monday."),
        (2, "Engineers found cracks."),
        (3, "Repairs will take six weeks, officials said."),
    ]
    b = parse(TRICKY["bom"])
    assert b.date == "2020-01-01"
    chunks = chunk_article(b, max_tokens=256, count_tokens=count_words)
    assert [b.raw[s.start : s.end] for s in chunks[0].sentences] == [
        "Café owners in Zürich cheered 🎉.", "The square reopened!"]
    assert chunks[1].text == "Naïve crème brûlée won."


def test_line_of_unicode_space_is_not_a_paragraph():
    # An em space (U+2003) alone on a line is blank: it must neither become a paragraph nor crash chunking.
    raw = "Story one.\n\n\u2003\n\nStory two.\n"
    article = parse(raw)
    assert [article.text(p) for p in article.paragraphs] == ["Story one.", "Story two."]
    check_article(article, chunk_article(article, max_tokens=50, count_tokens=count_words))


def test_file_of_unicode_space_only_is_an_article_error():
    with pytest.raises(ArticleError):
        parse("\u3000\n")


# --- sentence splitter ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Gov. Abbott sent them. The mayor said no.", ["Gov. Abbott sent them.", "The mayor said no."]),
    ("John F. Kennedy spoke.", ["John F. Kennedy spoke."]),
    ('"Is it?" she asked.', ['"Is it?" she asked.']),
    ("The meeting is at 5 p.m. Monday.", ["The meeting is at 5 p.m. Monday."]),
    ("It ended at 5 p.m. The mayor left.", ["It ended at 5 p.m.", "The mayor left."]),
    ("Mr. Smith met Dr. Jones at No. 5 Main St. on Jan. 6.", ["Mr. Smith met Dr. Jones at No. 5 Main St. on Jan. 6."]),
    ("He moved to the U.S. in 2001. He likes it.", ["He moved to the U.S. in 2001.", "He likes it."]),
    ("The U.S. Senate voted.", ["The U.S. Senate voted."]),
    ("Shares of Acme Inc. fell.", ["Shares of Acme Inc. fell."]),
    ("About 5,000 people came. Prices rose 3.5 percent.", ["About 5,000 people came.", "Prices rose 3.5 percent."]),
    ("“We are ready,” he said. “Let’s go.”", ["“We are ready,” he said.", "“Let’s go.”"]),
    ("Wait... What happened?", ["Wait...", "What happened?"]),
    ("She paused… Then she left.", ["She paused…", "Then she left."]),
    ("Is it over? Yes! It is.", ["Is it over?", "Yes!", "It is."]),
    ("(He left.) She stayed.", ["(He left.)", "She stayed."]),
    ("It happened on Jan. 6. The House met.", ["It happened on Jan. 6.", "The House met."]),
    ("Sales rose 5%. Costs fell.", ["Sales rose 5%.", "Costs fell."]),
    ("  Leading and trailing space.  ", ["Leading and trailing space."]),
    ("No punctuation at all", ["No punctuation at all"]),
    ("", []),
])
def test_split_sentences(text, expected):
    assert [text[s.start : s.end] for s in split_sentences(text)] == expected


@pytest.mark.parametrize("text, expected", [
    ("The mayor said no. The council voted anyway.", ["The mayor said no.", "The council voted anyway."]),
    ("He said—and I quote—no. Then he left.", ["He said—and I quote—no.", "Then he left."]),
    ("He said: “No.” Then he left.", ["He said: “No.”", "Then he left."]),
])
def test_the_word_no_ends_a_sentence(text, expected):
    # "No." is an abbreviation only before a number ("No. 5"); the word "no" at the end of a sentence is not.
    assert [text[s.start : s.end] for s in split_sentences(text)] == expected


def test_split_sentences_offset_shifts_spans():
    text = "One here. Two here."
    assert split_sentences(text, 100) == [Span(100, 109), Span(110, 119)]


# --- windows over long paragraphs -------------------------------------------------------------------


def test_long_paragraph_is_split_into_windows_that_fit():
    sentences = [f"Sentence number {i} has five." for i in range(10)]  # 5 words each
    raw = " ".join(sentences) + "\n"
    article = parse(raw)
    chunks = chunk_article(article, max_tokens=12, count_tokens=count_words)
    check_article(article, chunks)
    # a window keeps sentences while sum(words + 1 per joint) <= 12: two sentences (12), not three (18)
    assert [len(c.sentences) for c in chunks] == [2, 2, 2, 2, 2]
    assert [c.text for c in chunks] == [" ".join(sentences[i : i + 2]) for i in range(0, 10, 2)]
    assert all(count_words([c.text])[0] <= 12 for c in chunks)
    assert {c.paragraph for c in chunks} == {1}


def test_paragraph_that_fits_is_one_passage():
    raw = "One two three. Four five six.\n"
    article = parse(raw)
    chunks = chunk_article(article, max_tokens=6, count_tokens=count_words)
    assert [c.text for c in chunks] == ["One two three. Four five six."]


def test_max_sentences_windows():
    raw = "A one. B two. C three. D four. E five.\n"
    article = parse(raw)
    chunks = chunk_article(article, max_tokens=256, count_tokens=count_words, max_sentences=2)
    check_article(article, chunks)
    assert [c.text for c in chunks] == ["A one. B two.", "C three. D four.", "E five."]


def test_sentence_over_the_limit_is_cut_at_word_boundaries():
    words = [f"Word{i}" for i in range(30)]
    sentence = " ".join(words) + "."
    raw = f"Short start. {sentence} Short end.\n"
    article = parse(raw)
    chunks = chunk_article(article, max_tokens=8, count_tokens=count_words)
    check_article(article, chunks)
    assert all(count_words([c.text])[0] <= 8 for c in chunks)
    # 30 words in pieces of at most 8: 8 + 8 + 8 + 6; "Short start." and "Short end." stay whole
    assert [c.text for c in chunks] == [
        "Short start.",
        " ".join(words[0:8]),
        " ".join(words[8:16]),
        " ".join(words[16:24]),
        " ".join(words[24:30]) + ".",
        "Short end.",
    ]
    # the pieces cover the sentence: joined by its single spaces they give it back
    assert " ".join(c.text for c in chunks[1:5]) == sentence


# --- generated articles (hypothesis) ----------------------------------------------------------------

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # `pip install hypothesis` (in the test extras) to run the generated cases
    given = None

if given is None:

    def test_generated_articles_need_hypothesis():
        pytest.skip("hypothesis is not installed; `pip install hypothesis` to run the generated-article properties")

else:
    WORDS = [
        "the", "Mayor", "said", "Mr.", "Gov.", "Abbott", "U.S.", "a.m.", "p.m.", "Jan.", "No.", "5", "5,000", "3.5",
        "2023-07-18", "“quoted”", "‘single’", "—", "–", "é", "Zürich", "🎉", "don’t", "(aside)", "St.", "J.", "e.g.",
        "$4", "50%", "CAPS", "Inc.", "\"Yes,\"", "...", "…", "?", "!", "x",
    ]
    sentence_st = st.builds(
        lambda ws, end: " ".join(ws) + end,
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=12),
        st.sampled_from([".", "?", "!", "…", ".”", "?\"", ".)", ""]),
    )
    paragraph_st = st.builds(
        lambda ss, sep: sep.join(ss), st.lists(sentence_st, min_size=1, max_size=6), st.sampled_from([" ", "  ", "\t", " \u00a0"]))
    article_st = st.builds(
        lambda head, paras, sep, tail: head + sep.join(paras) + tail,
        st.sampled_from(["", "\ufeff", "  ", "\n\n", "date 2023-07-18 ", " date 2023-07-18 ", "# Heading here\n\n", "title: T\n\n"]),
        st.lists(paragraph_st, min_size=1, max_size=6),
        st.sampled_from(["\n\n", "\r\n\r\n", "\n", "\r\n", "\n \n", "\n\n\n"]),
        st.sampled_from(["", "\n", "\r\n", "  \n\n"]),
    )


    @settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(raw=article_st, max_tokens=st.sampled_from([3, 8, 256]), max_sentences=st.sampled_from([0, 1, 3]))
    def test_generated_articles_keep_exact_offsets(raw, max_tokens, max_sentences):
        try:
            article = parse(raw)
        except ArticleError:
            return  # e.g. only all-caps lines: refused with a message, which is fine
        chunks = chunk_article(article, max_tokens=max_tokens, count_tokens=count_words, max_sentences=max_sentences)
        check_article(article, chunks)
        for c in chunks:
            if max_sentences:
                assert len(c.sentences) <= max_sentences
            # a passage over the limit can only be a single word no cut can shorten
            assert count_words([c.text])[0] <= max_tokens or len(c.text.split()) == 1


    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(text=st.text(max_size=200))
    def test_split_sentences_on_any_text(text):
        spans = split_sentences(text, 7)
        last = 7
        for s in spans:
            piece = text[s.start - 7 : s.end - 7]
            assert s.start >= last and s.end > s.start
            assert piece == piece.strip()
            last = s.end
        covered = "".join(text[s.start - 7 : s.end - 7] for s in spans)
        assert "".join(covered.split()) == "".join(text.split())  # nothing but white space is left out


    TRICKY_CHARS = list("Ab1 .?!,\"'\n\r\t") + ["Mr.", "U.S.", "“", "”", "’", "—", "é", "🎉", "\u00a0", "\ufeff", "\u200b",
                                                "\u2003", "\u3000", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028"]


    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(raw=st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
                         st.lists(st.sampled_from(TRICKY_CHARS), max_size=60).map("".join)))
    def test_any_text_is_an_article_or_an_article_error(raw):
        try:
            article = parse(raw)
        except ArticleError:
            return
        check_article(article, chunk_article(article, max_tokens=5, count_tokens=count_words))
