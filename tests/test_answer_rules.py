"""Honest answers: the rules and the trained reader that decide between an answer and "the article does not
say", the short answer inside the sentence, and the refusal in plain words. Unit cases, then the real model on
the seed article (the questions the honest-answers issue names)."""

from __future__ import annotations

import pytest

from helpers import (SMALL_CORPUS, FakeEmbedder, not_answered, qa_clean_env, seed_engine,  # noqa: F401 - fixtures
                     seed_reader_engine, write_articles)
from qa import Engine, resolve_settings
from qa.evaluation import GoldQuestion, span_scores
from qa.grounding import expected_type, has_type, headline_only_words, span_fits, unmatched_offices, wants_short_answer


def test_a_name_question_needs_a_name_the_question_does_not_give():
    q = "What is the name of the accused officer?"
    assert expected_type(q) == "name" and expected_type("What is Kersten's first name?") == "name"
    assert not has_type("The tipster also said other officers in the 10th District did so, Kersten added.", "name", q)
    assert has_type("The officer, John Smith, was accused of misconduct.", "name", q)
    assert not has_type("Officer Smith was accused.", "name", "What is the name of officer Smith?")


def test_an_office_or_a_weekday_is_not_the_name_of_a_person_asked_for():
    q = "What is the district commander's name?"
    sentence = ("On Tuesday, the Civilian Office of Police Accountability (COPA) provided an update on claims that an "
                "officer assigned to the 10th District of Chicago took part in misconduct.")
    assert not has_type(sentence, "name", q)  # "Tuesday", "Civilian Office of ...", "District of Chicago"
    assert has_type("On Tuesday, police named Commander Jane Doe to lead it.", "name", q)
    assert has_type("The Civilian Office of Police Accountability said so.", "name", "What is the name of the agency?")


def test_an_ordinal_is_not_a_count():
    q = "How many investigators does she have on it?"
    assert expected_type(q) == "number"
    assert not has_type("An allegation of officers in the 19th District engaging in misconduct.", "number", q)
    assert has_type("Two investigators in the 19th District.", "number", q)
    assert has_type("It had 21 staff on the 3rd of May.", "number", q)


def test_how_long_asks_for_a_length_of_time_or_anything():
    q = "How long were the migrants there?"
    assert expected_type(q) == "duration" and expected_type("How long is the river?") == "duration"
    assert not has_type("The city began moving migrants out of the station.", "duration", q)
    assert has_type("They stayed for three weeks.", "duration", q)
    assert has_type("They have lived there since July.", "duration", q)
    assert has_type("The outcome is known in seconds.", "duration", q)
    assert has_type("The river is 1,230 km long.", "duration", "How long is the river?")
    assert not has_type("Officers of the 19th District were there.", "duration", q)  # a name, not a date


def test_which_country_asks_for_a_country_region_or_nationality():
    q = "Which country did the migrants come from?"
    assert expected_type(q) == "country" and expected_type("What nationality was he?") == "country"
    assert expected_type("What is the name of the country?") == "name"
    assert not has_type("An allegation of officers in the 19th District of Chicago.", "country", q)
    assert not has_type("The Civilian Office of Police Accountability said so in Indiana.", "country", q)
    for sentence in ("Most came from Venezuela.", "Venezuelan migrants arrived.", "They crossed from Mexico.",
                     "It sits on the U.S. border.", "The British invented it.", "Chinese imports fell.",
                     "Most live in Latin America.", "The USSR's invasion.", "The Dutch Republic.", "Iraqi forces left."):
        assert has_type(sentence, "country", q), sentence


def test_an_ordinal_that_starts_a_name_is_not_a_date():
    # "When was that complaint made?" was answered with the 19th District sentence, which gives no time
    q = "When was that complaint made?"
    assert not has_type("An allegation of officers in the 19th District engaging in misconduct.", "time", q)
    assert not has_type("The shop on 5th Avenue closed.", "time", q)
    assert has_type("It was built in the 19th Century.", "time", q)  # a century is a time, capitalised or not
    assert has_type("It happened on the 19th. Then police came.", "time", q)
    assert has_type("In the 19th District on July 6, police came.", "time", q)


def test_an_office_the_article_never_mentions_is_found():
    story = {"police": 3, "officer": 2, "said": 4, "mayor": 1}
    assert unmatched_offices("What did the governor say about the shelters?", story) == ["governor"]
    assert unmatched_offices("Did the Governors meet?", story) == ["governors"]
    assert unmatched_offices("What did the mayor say?", story) == []  # mentioned
    assert unmatched_offices("Was the officer fired?", story) == []  # not an office holder
    assert unmatched_offices("What did the cops say?", story) == []  # a common noun the article words differently


def test_words_only_in_headlines_are_found():
    story = {"police": 3, "officer": 2}
    assert headline_only_words("What did the mayor say?", story, {"mayor", "chicago"}) == ["mayor"]
    assert headline_only_words("When did police get the app?", story, {"get", "app"}) == []  # too short to be a topic


@pytest.mark.parametrize(("question", "span", "fits"), [
    ("When did the agency receive the information?", "July 6", True),
    ("When did the agency receive the information?", "the agency", False),
    ("How many migrants lived there?", "650", True),
    ("Who heads COPA?", "Andrea Kersten", True),
    ("Who heads COPA?", "the chief administrator", False),
    ("What was found?", "cracks in three steel girders in the old bridge span", False),  # over six words
])
def test_a_short_answer_must_have_the_shape_asked_for(question, span, fits):
    assert span_fits(question, span) is fits


def test_yes_no_and_why_questions_keep_the_sentence():
    assert not wants_short_answer("Were any victims identified?") and not wants_short_answer("Why did they move?")
    assert wants_short_answer("How many officers were involved?") and wants_short_answer("Who said that?")


def test_span_exact_match_and_f1_are_squad_style():
    gold = GoldQuestion("q", "When?", "July 6", ("July 6", "on July 6"), short=("July 6", "on July 6"))
    assert span_scores({"answer": {"span": {"text": "July 6,"}}}, gold) == (1.0, 1.0)
    em, f1 = span_scores({"answer": {"span": {"text": "July 6 about an allegation"}}}, gold)
    assert em == 0.0 and 0.5 < f1 < 0.7
    assert span_scores({"answer": None}, gold) == (0.0, 0.0)


def test_the_reader_can_be_switched_off(tmp_path):
    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow", reader="off")
    engine = Engine.open(settings, embedder=FakeEmbedder(), log=lambda _m: None)
    answer = engine.ask("How much will the bridge repairs cost?").to_json()
    # no reader, no confidence: answered by the rules alone; the short answer is still the amount asked for (spaCy's)
    assert engine.reader is None and answer["status"] == "answered" and answer["confidence"] is None
    assert answer["answer"]["span"]["text"] == "$4 million"


# --- the real model on the seed article -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("question", "reason"), [
    ("What did the mayor say about the allegations?", "The article mentions 'mayor' only in a related-story headline, not in the story."),
    ("What is the name of the accused officer?", "The article does not say what the name of the accused officer is."),
    ("Who is Chicago's new mayor?", "The article mentions 'mayor' only in a related-story headline, not in the story."),
    ("What is a good recipe for deep dish pizza?", None),
    ("What did the governor say about the shelters?", "The article never mentions 'governor'."),  # answered before
    ("When will the investigation end?", "The article does not say when the investigation will end."),
    ("How old was the girl?", "The article does not say how old the girl was."),
    # "On Tuesday, the Civilian Office of Police Accountability ..." used to count as a name
    ("What is the district commander's name?", "The article does not say what the district commander's name is."),
    # was answered "19th District": no country or nationality is named in the passage found
    ("Which country did the migrants come from?", "The article does not say which country the migrants came from."),
])
def test_near_topic_questions_the_article_does_not_answer_are_refused(seed_engine, question, reason):
    answer = seed_engine.ask(question).to_json()
    assert answer["status"] != "answered"  # refused, or its closest sentence shown as uncertain, never bold
    if reason:
        assert not_answered(answer, reason)
    assert answer["details"] and "QA_" not in answer["reason"]
    assert answer["passages"] and all(p["closest"] for p in answer["passages"])


@pytest.mark.slow
def test_a_factual_question_gets_its_short_answer_with_exact_offsets(seed_reader_engine):
    seed_engine = seed_reader_engine  # which span the stages choose, whatever the fitted thresholds
    answer = seed_engine.ask("When did the agency receive the information?").to_json()
    span = answer["answer"]["span"]
    assert span["text"] == "July 6"
    raw = open(seed_engine.index.articles["000_1377f01862d9140a"].path, encoding="utf-8", newline="").read()
    assert raw[span["start"]:span["end"]] == "July 6"
    p = answer["passages"][0]
    assert p["highlight"]["start"] <= span["start"] < span["end"] <= p["highlight"]["end"]  # inside the sentence
    assert seed_engine.ask("Were any victims identified?").to_json()["answer"]["span"] is None  # yes/no: the sentence


@pytest.mark.slow
def test_a_refusal_writes_the_articles_acronyms_as_the_article_does(seed_engine):
    assert seed_engine.index.acronyms == {"copa": "COPA", "cpd": "CPD", "fox": "FOX"}
    r = seed_engine.ask("when will copa finish").to_json()
    assert not_answered(r, "The article does not say when COPA will finish.")
