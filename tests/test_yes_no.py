"""Yes/no questions about events: the event word found, WordNet's synonyms and antonyms, the check itself."""

from __future__ import annotations

import pytest

from qa.yes_no import predicates, related, settles

SEED = ("The chief administrator of COPA, Andrea Kersten, said the agency received information on July 6 about an "
        "allegation of sexual misconduct. The agency has been unable to substantiate the claims.")


@pytest.mark.parametrize(("question", "events"), [
    ("Was the officer fired?", ["fire"]),
    ("did wray say anyone would be fired", ["fire"]),  # a verb of saying: the event is in what was said
    ("Is Manafort in jail right now?", ["jail"]),  # no verb: the word after the copula
    ("Has the accused officer been suspended?", ["suspend"]),  # "accused" names the officer
])
def test_the_event_a_yes_no_question_asks_about(question, events):
    assert predicates(question) == events


def test_wordnet_relates_synonyms_antonyms_and_derived_words():
    assert {"endorse", "support"} <= related("back")
    assert "disagree" in related("agree") and "tipster" in related("tip")
    assert related("zzzz") == {"zzzz"}


def test_an_event_the_text_never_speaks_of_is_not_settled():
    assert settles("Was the officer fired?", [SEED]) is False
    assert settles("Did the agency receive information?", [SEED]) is True
    assert settles("Has the agency confirmed the claims?", ["The agency denied the claims."]) is True  # an antonym
    assert settles("Who received the information?", [SEED]) is None  # not a yes/no question


def test_only_the_asked_word_and_its_own_relatives_settle_it():
    # the seed article's "officers ... may have engaged in" and "can" once settled "Was the officer fired?": "engage"
    # is a synonym of fire's antonym "hire" (not itself an antonym), and the modal "can" is not the verb "can" (sack)
    assert "hire" in related("fire") and "engage" not in related("fire")
    assert settles("Was the officer fired?", ["Other officers may have engaged in such conduct, and they can talk."]) is False
    assert settles("Was the officer fired?", ["The department dismissed the officer on Friday."]) is True
    assert predicates("Was the alleged victim a minor?") == ["minor"]  # who is asked about is not the event
    assert predicates("Did the probe turn up any other complaints?") == []  # a phrasal verb: nothing to look for
