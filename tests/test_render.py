"""Answer JSON -> the chat's HTML: pure functions, checked on hand-made answers (the browser tests see them live)."""

from __future__ import annotations

import re

from qa.articles import parse_article
from qa.render import (
    CLOSEST_LABEL,
    PENDING,
    anchor,
    esc,
    plain_reply,
    render_article_panel,
    render_error,
    render_question,
    render_reply,
)

INJECTION = '<img src=x onerror="alert(1)"> **bold** [link](javascript:alert(1))'


def passage(rank: int, text: str, start: int, *, hl=None, paragraph=1, title="A title", article="a1", url=None):
    hl = hl or (start, start + len(text))
    return {"rank": rank, "score": 0.5, "dense": 0.5, "text": text, "closest": False,
            "highlight": {"start": hl[0], "end": hl[1]},
            "citation": {"article": article, "title": title, "date": "2023-07-18", "paragraph": paragraph,
                         "start": start, "end": start + len(text), "path": "articles/a1.txt", "url": url,
                         "source": "The Paper", "stale": False}}


def answered(span=None, interpreted="q"):
    text = "First sentence. The answer is here. Last one."
    p1 = passage(1, text, 100, hl=(116, 135), paragraph=8, title="Title <b>x</b>")
    p2 = passage(2, "Other passage *stars*.", 300, paragraph=2, title="Title <b>x</b>")
    p3 = passage(3, "From elsewhere.", 50, paragraph=1, title="Another", article="a2")
    return {"question": "q", "interpreted_as": interpreted, "abstained": False, "reason": None, "details": None,
            "answer": {"text": "The answer is here.", "citation": 1, "span": span}, "passages": [p1, p2, p3],
            "warnings": []}


def test_esc_makes_text_literal():
    assert esc(INJECTION) == '&lt;img src=x onerror=&quot;alert(1)&quot;&gt; **bold** [link](javascript:alert(1))'
    assert esc("a\n\nb   c") == "a b c"  # one line: no blank line ends the HTML block early


def test_a_reply_leads_with_the_answer_and_links_its_citation():
    html = render_reply(answered())
    assert html.startswith('<div class="qa-reply"><p class="qa-answer"><q>The answer is here.</q> '
                           f'<a class="qa-cite" href="#{anchor("a1", 8)}"')
    assert "\n\n" not in html and "\n" not in html
    assert "<b>" not in html and "Title &lt;b&gt;x&lt;/b&gt;" in html
    assert html.count('class="qa-source"') == 2  # each article's title line once, not once per passage
    assert html.count("<mark>") == 1 and "<mark>The answer is here.</mark>" in html  # in the cited passage only
    assert "<summary>Sources (3)</summary>" in html and "qa-understood" not in html


def test_the_short_answer_is_bold_before_the_quote_and_inside_the_mark():
    html = render_reply(answered(span={"start": 120, "end": 126, "text": "answer"}))
    assert '<p class="qa-answer"><strong class="qa-short">answer</strong> — <q>' in html
    assert "<mark>The <strong>answer</strong> is here.</mark>" in html


def test_a_follow_up_says_how_it_was_understood():
    html = render_reply(answered(interpreted="What is Andrea Kersten's role?"))
    assert '<p class="qa-understood">Understood as: What is Andrea Kersten&#x27;s role?</p>' in html


def test_a_quoted_sentence_gets_no_second_pair_of_quotes():
    result = answered()
    result["answer"]["text"] = '"We are looking into it," she said.'
    assert "<q>" not in render_reply(result)


def test_a_refusal_in_plain_words_with_details_behind_a_toggle():
    p = passage(1, "Nearby text.", 10)
    html = render_reply({"question": "q", "abstained": True, "reason": "The article does not say whether the officer was fired.",
                         "details": "best answer score 0.12, under 0.40", "answer": None, "passages": [p], "warnings": []})
    assert '<p class="qa-refusal"><strong>The article does not say whether the officer was fired.</strong></p>' in html
    assert f"<summary>{CLOSEST_LABEL} (1)</summary>" in html
    assert '<details class="qa-details"><summary>Details</summary><p>best answer score 0.12, under 0.40</p></details>' in html
    assert "<mark>" not in html


def test_plain_text_for_the_copy_button():
    text = plain_reply(answered(span={"start": 120, "end": 126, "text": "answer"}))
    assert text.splitlines() == ["answer — The answer is here. [1]", "", "Sources:",
                                 "[1] Title <b>x</b>, 2023-07-18, The Paper, ¶8", "[2] Title <b>x</b>, 2023-07-18, The Paper, ¶2",
                                 "[3] Another, 2023-07-18, The Paper, ¶1"]
    html = render_reply(answered())
    hidden = re.search(r'<span class="qa-plain" hidden>(.*?)</span>', html).group(1)
    assert "<b>" not in hidden and "&lt;b&gt;" in hidden  # the page's text of it is the plain text


def test_warnings_and_errors_are_shown_escaped():
    result = answered()
    result["warnings"] = ["The file of article a1 (articles/a1.txt) has changed <since>."]
    assert "⚠ The file of article a1 (articles/a1.txt) has changed &lt;since&gt;." in render_reply(result)
    assert render_error(INJECTION).count("<img") == 0 and 'role="alert"' in render_error("x")
    assert 'role="status"' in PENDING


def test_render_question_escapes_and_cuts():
    assert "<img" not in render_question(INJECTION)
    long = render_question("why " * 500)
    assert long.endswith("(1,999 characters)</p>") and len(long) < 450
    assert render_question("**bold** [x](y)") == '<p class="qa-question">**bold** [x](y)</p>'  # no Markdown inside


RAW = ("date 2023-07-18 First para, the lead.\n\nSecond para, the answer. More.\n\nRELATED STORY HEADLINE IN CAPITALS\n\n"
       "Third <i>para</i>.\n")


def test_the_article_panel_numbers_story_paragraphs_and_dims_the_rest():
    article = parse_article(RAW, article_id="a1", path="x", sha256="0")
    s2, e2 = RAW.index("Second"), RAW.index("More.") + len("More.")
    p = passage(1, RAW[s2:e2], s2, hl=(s2, RAW.index(" More.")), paragraph=2, article="a1")
    html = render_article_panel(article, [p], {"text": "Second para, the answer.", "citation": 1, "span": None})
    assert f'<p id="{anchor("a1", 1)}" class="qa-para"><span class="qa-num">¶1</span> First para, the lead.</p>' in html
    assert (f'<p id="{anchor("a1", 2)}" class="qa-para qa-cited qa-answer-para qa-top"><span class="qa-num">¶2</span> '
            '<span class="qa-marker">[1]</span> <mark>Second para, the answer.</mark> More.</p>') in html
    assert '<p class="qa-skipped" title="Not story text: all-caps line' in html and "RELATED STORY HEADLINE" in html
    assert "¶3</span> Third &lt;i&gt;para&lt;/i&gt;." in html and "<i>" not in html
    assert "date 2023-07-18" not in html and '<p class="qa-meta">2023-07-18</p>' in html


def test_after_a_refusal_the_best_ranked_passage_not_the_first_in_reading_order_is_marked_for_the_scroll():
    article = parse_article(RAW, article_id="a1", path="x", sha256="0")
    s1, e1 = RAW.index("First"), RAW.index("lead.") + len("lead.")
    s3, e3 = RAW.index("Third"), RAW.index("para</i>.") + len("para</i>.")
    later_first = passage(1, RAW[s3:e3], s3, hl=(s3, e3), paragraph=3, article="a1")
    earlier_second = passage(2, RAW[s1:e1], s1, hl=(s1, e1), paragraph=1, article="a1")
    html = render_article_panel(article, [later_first, earlier_second], None)
    assert f'<p id="{anchor("a1", 3)}" class="qa-para qa-cited qa-top">' in html
    assert f'<p id="{anchor("a1", 1)}" class="qa-para qa-cited">' in html and html.count("qa-top") == 1


def test_the_panel_links_the_original_story_safely():
    raw = 'title: T "x"\ndate: 2024-01-02\nsource: The <Paper>\nurl: https://ex.com/a?b=1&c=2\n\nStory text here.\n'
    html = render_article_panel(parse_article(raw, article_id="a9", path="x", sha256="0"))
    assert '<h3 class="qa-headline">T &quot;x&quot;</h3>' in html
    assert 'href="https://ex.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer"' in html
    assert "The &lt;Paper&gt;" in html
    for url in ('https://ex.com/a?c="2"', "javascript:alert(1)", "https://ex.com/\u202egnp.exe"):  # no link at all
        html = render_article_panel(parse_article(raw.replace("https://ex.com/a?b=1&c=2", url), article_id="a9", path="x",
                                                  sha256="0"))
        assert "href=" not in html and "original story" not in html


def test_anchors_are_safe_ids_for_any_article_id():
    assert re.fullmatch(r"qa-[0-9a-f]{8}-p12", anchor('Fresno,_California "quoted"/../x', 12))


def test_the_short_answer_in_the_panel_adds_no_space_before_a_comma():
    raw = "date 2023-07-18 The lead.\n\nThe chief administrator of COPA, Andrea Kersten, said so. More.\n"
    article = parse_article(raw, article_id="a1", path="x", sha256="0")
    s2, e2 = raw.index("The chief"), raw.index("More.") + len("More.")
    h1 = raw.index(" More.")
    p = passage(1, raw[s2:e2], s2, hl=(s2, h1), paragraph=2, article="a1")
    span = {"start": s2, "end": raw.index(","), "text": "The chief administrator of COPA"}
    html = render_article_panel(article, [p], {"text": raw[s2:h1], "citation": 1, "span": span})
    assert "<mark><strong>The chief administrator of COPA</strong>, Andrea Kersten, said so.</mark> More.</p>" in html


# --- issue 25: replies that find their own passages, feedback, the chat from a transcript ---------------------------


def test_a_reply_carries_its_turn_and_offers_feedback():
    from qa.render import render_reply

    html = render_reply(answered(), turn="0a1b2c3d")
    assert '<div class="qa-reply qa-turn-0a1b2c3d">' in html
    assert 'class="qa-vote qa-up"' in html and '<span class="qa-sr"> Right answer</span>' in html
    assert '<span class="qa-sr"> Report a problem</span>' in html and "qa-voted" not in html
    assert "Marked right" in render_reply(answered(), turn="0a1b2c3d", vote="right")
    assert "qa-turn-" not in render_reply(answered(), turn="../x")  # only a turn id becomes a class


def test_a_reply_names_its_article_when_asked_about_every_article():
    from qa.render import render_reply

    assert '<p class="qa-from">From <em>Title &lt;b&gt;x&lt;/b&gt;</em> · 2023-07-18 · The Paper</p>' in render_reply(
        answered(), name_article=True)
    refusal = {**answered(), "abstained": True, "answer": None, "reason": "The article does not say."}
    assert '<p class="qa-from">Closest in <em>' in render_reply(refusal, name_article=True)
    assert "qa-from" not in render_reply(answered())


def test_the_kind_of_reply_decides_how_it_is_drawn():
    from qa.render import REPLY_BODIES, reply_kind

    assert reply_kind(answered()) == "answered"
    assert reply_kind({**answered(), "abstained": True}) == "abstained"
    assert reply_kind({**answered(), "status": "uncertain"}) == "uncertain"
    assert reply_kind({**answered(), "status": "later"}) == "answered"  # a kind this chat does not draw
    assert set(REPLY_BODIES) == {"answered", "uncertain", "abstained"}


def test_an_uncertain_reply_says_so_first_and_quotes_the_closest_sentence_without_bold():
    from qa.render import plain_reply

    a = answered(span={"start": 120, "end": 126, "text": "answer"})
    assert "<strong>answer</strong>" in render_reply(a)  # bold when answered
    r = {**a, "status": "uncertain", "confidence": 0.4, "reason": "The article may not say when the agency knew."}
    html_ = render_reply(r)
    caveat = html_.index("The article may not say when the agency knew.")
    assert 'class="qa-uncertain" role="note"' in html_ and caveat < html_.index("qa-closest-quote")
    assert "qa-short" not in html_ and "<strong>answer</strong>" not in html_
    assert "Closest passages (not answers)" in html_ and "Sources (" not in html_
    text = plain_reply(r)
    assert text.startswith("The article may not say when the agency knew. The closest it comes: “")
    assert "Closest passages (not answers):" in text
    said = {**r, "answer": {**r["answer"], "text": "“We have not identified any,” she said."}}
    assert "comes: “We have not identified any,” she said. [1]" in plain_reply(said)  # a quotation is not quoted twice


def test_the_chat_is_drawn_from_a_transcript():
    from qa.chatlog import ChatTurn, Transcript
    from qa.render import render_chat

    t = Transcript(turns=(ChatTurn("00000001", "q <b>1</b>", None, answered()),
                          ChatTurn("00000002", "", None, error="The question is empty."),
                          ChatTurn("00000003", "x" * 1200, None, error="The question is 1,200 characters long.")))
    messages = render_chat(t, name_articles=True)
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "user", "assistant"]
    assert "q &lt;b&gt;1&lt;/b&gt;" in messages[0]["content"] and "qa-from" in messages[1]["content"]
    assert "qa-keep" not in messages[2]["content"] and "qa-keep" in messages[4]["content"]  # back into the box


def test_a_removed_articles_passage_is_shown_from_the_reply():
    from qa.render import render_panel_message

    p = answered()["passages"][0]
    html = render_panel_message("“Title” has been removed from the index since.", passage=p, turn="0a1b2c3d")
    assert "qa-shows-0a1b2c3d" in html and 'class="qa-removed-passage">First sentence.' in html and "¶8" in html
