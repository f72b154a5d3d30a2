"""Questions about who someone is are answered where the story introduces them (qa/introductions.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from helpers import converse, seed_article_path, seed_engine, seed_reader_engine  # noqa: F401 - fixtures
from qa.introductions import INTRODUCTION_BOOST, introduction_boost, introduction_rows, role_span, short_form, subject_of


@pytest.mark.parametrize("question, subject", [
    ("Who is Kersten?", "Kersten"),
    ("who is andrea kersten", "andrea kersten"),
    ("Who was Frédéric Chopin?", "Frédéric Chopin"),
    ("What is COPA?", "COPA"),
    ("What's Andrea Kersten's job?", "Andrea Kersten"),
    ("whats Kersten's title exactly", "Kersten"),
    ("What is Kersten's role in the case?", "Kersten"),
    ("What is Kersten's role in the budget talks?", None),  # a role in something else is another question
    ("What position does Von Miller play?", "Von Miller"),
    ("What role does Kersten have?", "Kersten"),
    ("What was the occupation of Joseph Priestley?", "Joseph Priestley"),
    ("What does Kersten do?", "Kersten"),
    ("What did Kersten do for a living?", "Kersten"),
    ("Who is the Commissioner of the NFL?", "Commissioner of the NFL"),  # a name only if the article writes one
    # not about who someone is
    ("What is her role?", None),  # the pronoun is resolved first (conversation), then asked again
    ("Who is she?", None),
    ("What did Kersten do after the meeting?", None),
    ("Who was Robert's son?", None),
    ("Who won Super Bowl 50?", None),
    ("What happened?", None),
    ("What is happening with the migrants?", None),
])
def test_the_subject_of_a_question_about_who_someone_is(question, subject):
    assert subject_of(question) == subject


def test_the_short_form_is_a_persons_surname_or_the_whole_name():
    assert short_form("Andrea Kersten") == "Kersten"
    assert short_form("COPA") == "COPA"
    assert short_form("Office of Emergency Management") == "Office of Emergency Management"


@dataclass(frozen=True)
class _Chunk:
    article_id: str
    text: str


STORY = [
    _Chunk("a", "On Tuesday, the Civilian Office of Police Accountability (COPA) gave an update."),
    _Chunk("a", "The chief administrator of COPA, Andrea Kersten, said the agency received information on July 6."),
    _Chunk("a", "Kersten said the agency allocated significant resources."),
    _Chunk("a", "\"It remains open,\" Kersten said. But Kersten added nothing."),
    _Chunk("b", "Economist Andrea Kersten spoke at the conference."),
    _Chunk("b", "The kersten mentioned here is a common word, not a name."),
]


def test_the_passages_that_name_someone_in_full_are_where_they_are_introduced():
    # the full name (a capitalised word before the surname), not "Kersten said" nor "But Kersten"
    assert introduction_rows(STORY, "Kersten") == [1, 4]
    assert introduction_rows(STORY, "andrea kersten") == [1, 4]
    assert introduction_rows(STORY, "Andrea Kersten", rows=[0, 1, 2, 3]) == [1]
    # an acronym is introduced where it is defined in parentheses, not where it is used
    assert introduction_rows(STORY, "COPA") == [0]


def test_a_subject_the_articles_do_not_write_as_a_name_is_not_looked_for():
    assert introduction_rows(STORY, "chief administrator") == []  # written in lower case: not a name
    assert introduction_rows(STORY, "Jane Doe") == []  # the surname alone must not stand in for a name never written
    assert introduction_boost(STORY, "What did Kersten say?") == {}  # not a question about who she is
    assert introduction_boost(STORY, "Who is Andrea Kersten?") == {1: INTRODUCTION_BOOST, 4: INTRODUCTION_BOOST}


@pytest.mark.parametrize("sentence, subject, role", [
    ("The chief administrator of COPA, Andrea Kersten, said the agency received information.", "Kersten",
     "The chief administrator of COPA"),
    ("The chief administrator of COPA, Andrea Kersten, said the agency received information.", "andrea kersten",
     "The chief administrator of COPA"),
    ("Andrea Kersten, the chief administrator of COPA, said the agency received information.", "Andrea Kersten",
     "the chief administrator of COPA"),
    ("On Tuesday, the head of the union, John Smith, said no.", "Smith", "the head of the union"),
    # no appositive: no role
    ("The tipster also indicated other officers may have engaged in similar misconduct, Kersten added.", "Kersten", None),
    ("Kersten said the agency allocated significant resources.", "Kersten", None),
    # the subject must be a name the sentence writes: "Buyantu" alone does not make "the elites wish Buyantu" one
    ("The fourth Yuan emperor, Buyantu, was a reformer.", "Mongol elites wish Buyantu", None),
])
def test_the_role_a_news_appositive_gives(sentence, subject, role):
    span = role_span(sentence, subject)
    assert (sentence[span[0]:span[1]] if span else None) == role


@pytest.mark.slow
@pytest.mark.parametrize("question", ["Who is Kersten?", "What is Kersten's title?", "What does Kersten do?",
                                      "What is Kersten's job?"])
def test_who_someone_is_is_answered_where_the_story_introduces_them(seed_engine, seed_reader_engine, question):
    assert seed_engine.ask(question).status != "abstained"  # with the fitted thresholds: answered or uncertain
    # the later "Kersten said the agency allocated ..." matches the bare name better, and says nothing of who she is
    r = seed_reader_engine.ask(question).to_json()
    assert not r["abstained"] and r["answer"]["text"].startswith("The chief administrator of COPA, Andrea Kersten")
    # the short answer is her role, with exact offsets into the article file (not the reader's "COPA")
    span = r["answer"]["span"]
    assert span["text"] == "The chief administrator of COPA"
    assert seed_article_path().read_text(encoding="utf-8")[span["start"] : span["end"]] == span["text"]


@pytest.mark.slow
def test_her_role_after_who_said_that_is_her_introduction(seed_engine):
    # the example conversation
    _, role = converse(seed_engine, "Were any victims identified?", "Who said that?", "What is her role?")
    assert role["interpreted_as"] == "What is Kersten's role?"
    assert not role["abstained"] and "chief administrator of COPA" in role["answer"]["text"]
