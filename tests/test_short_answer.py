"""The bold short answer: only the fact the question asks for, typed by spaCy's entities and tied to what is asked."""

from __future__ import annotations

import pytest

from qa.short_answer import NUMBER, PERSON, TIME, asked_labels, typed_span

SHELTERS = ("Last week, the news station reported, nearly 5,000 immigrants were living at 12 city-run makeshift shelters "
            "while 650 continued living at police stations as they awaited a bed in a shelter.")
COUNCIL = "The council voted 7-2 on Tuesday to approve the measure, known as Yes on 42, Mayor Karen Liu said."
COPA = ("The chief administrator of COPA, Andrea Kersten, said the agency received information on July 6 about an "
        "allegation of sexual misconduct.")


def bold(question: str, sentence: str, reader: tuple[int, int] | None = None) -> str | None:
    found = typed_span(question, sentence, reader)
    return None if found is None else sentence[found[0] : found[1]]


def test_of_two_numbers_the_one_said_of_what_is_asked():
    assert bold("How many migrants were living at police stations?", SHELTERS) == "650"
    assert bold("How many immigrants were living in city-run shelters?", SHELTERS) == "nearly 5,000"


def test_a_vote_count_is_the_tally_not_another_number():
    assert bold("What was the vote count?", COUNCIL) == "7-2"


def test_what_someone_said_gets_no_bold_name():
    assert asked_labels("What did the mayor say?") is None
    assert bold("What did the mayor say?", COUNCIL) is None


def test_the_kind_asked_for_decides_the_entity():
    assert asked_labels("When did the agency receive the information?") == TIME
    assert bold("When did the agency receive the information?", COPA) == "July 6"
    assert bold("Who is the chief administrator of COPA?", COPA) == "Andrea Kersten"
    assert asked_labels("how many fbi employees did the review fault") == NUMBER
    assert PERSON <= asked_labels("Which senator objected?")


@pytest.mark.parametrize("question", ["Why did the council vote?", "How did the vote go?", "Was the measure approved?",
                                      "What happened on Tuesday?"])
def test_questions_that_ask_for_no_typed_fact_get_no_bold(question):
    assert asked_labels(question) is None
    assert bold(question, COUNCIL) is None


def test_an_entity_the_question_names_is_not_its_answer():
    assert bold("When did the council vote?", COUNCIL) == "Tuesday"
    assert bold("Who is Karen Liu?", COUNCIL) is None  # a role question: the appositive rule's, not an entity


def test_a_tie_is_settled_by_the_reader_or_not_at_all():
    sentence = "Officials from Texas and Ohio attended."
    assert bold("Where were the officials from?", sentence) is None
    at = sentence.index("Ohio")
    assert bold("Where were the officials from?", sentence, (at, at + 4)) == "Ohio"


def test_spacy_loads_without_importing_torch():
    # an ask worker on onnxruntime must not import torch (0.5 s, 200 MB a process); thinc would, if it could
    import subprocess
    import sys

    code = ("import sys; from qa.nlp import parse; from qa.yes_no import settles; parse('Was the officer fired?'); "
            "settles('Was the officer fired?', ['He was dismissed.']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
