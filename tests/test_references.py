"""A follow-up's he/she is replaced only by a person the article refers to with that pronoun (qa/references.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from helpers import answering, converse, engine_on_each_store, history, seed_article_path, seed_engine, seed_reader_engine  # noqa: F401 - fixtures
from qa.conversation import definite_noun, demonstrative_noun, resolve
from qa.references import article_gender, gender_lookup, referent_lookup

STORY = ["The chief administrator of COPA, Andrea Kersten, said the agency received information on July 6.",
         "\"The investigation remains open,\" Kersten said.",
         "She also said the investigation led to additional complaints.",
         "Police Superintendent Larry Snelling said he would not comment. Snelling added that his office was told."]


def test_the_pronoun_after_a_mention_says_which_fits():
    assert article_gender(STORY, "Kersten") == "f"  # "... Kersten said." then "She also said ..."
    assert article_gender(STORY, "Andrea Kersten") == "f"
    assert article_gender(STORY, "Larry Snelling") == "m"
    assert article_gender(STORY, "COPA") is None  # no he or she after it
    assert article_gender(["Kersten said he left. Kersten said she stayed."], "Kersten") is None  # the votes disagree


@dataclass(frozen=True)
class _Chunk:
    article_id: str
    text: str


def test_an_index_is_read_passage_by_passage_with_the_next_one():
    chunks = [_Chunk("a", t) for t in STORY] + [_Chunk("b", "Kersten, a dentist, said it was closed.")]
    rows_with = {"Kersten": [0, 1, 4], "Snelling": [3], "Nobody": []}
    lookup = gender_lookup(chunks, lambda w: np.array(rows_with.get(w, []), dtype=np.int64))
    assert lookup("Kersten") == "f"  # passage 1 is read with passage 2; article b's passage says nothing
    assert lookup("Snelling") == "m"
    assert lookup("Nobody") is None


KERSTEN = "\"The investigation remains open,\" Kersten said."


def test_his_is_not_a_woman_the_article_calls_she():
    h = history(("Were any victims identified?", KERSTEN))
    women = {"Kersten": "f"}.get
    his = resolve("whats his name", h, women)
    assert his.interpreted_as.startswith("whats his name (about: ")  # left open, not "whats Kersten's name"
    assert resolve("whats her title", h, women).interpreted_as == "whats Kersten's title"
    assert resolve("whats his name", h).interpreted_as == "whats Kersten's name"  # without the article's word


@pytest.mark.slow
def test_a_refusal_does_not_put_a_wrong_name_in_the_question(engine_on_each_store):
    _, his = converse(engine_on_each_store, "Were any victims identified?", "Who said that?", "whats his name")
    assert his["abstained"] and his["reason"] == "The article does not say what his name is."


def test_who_in_who_said_that_is_not_a_speaker():
    # "Who said that?" matched the "<Name> said" pattern: "whats his name" became "whats Who's name"
    r = resolve("whats his name", history(("Who said that?", "The investigation remains open and ongoing.")))
    assert "Who's" not in r.interpreted_as and r.interpreted_as.startswith("whats his name (about: ")


ARTICLE = [_Chunk("a", "On Tuesday, COPA gave an update on claims that an officer assigned to the 10th District of Chicago "
                       "took part in misconduct."),
           _Chunk("a", "The agency received information about at least one police officer within the district."),
           _Chunk("a", "Four officers were with migrants living at the Ogden District police station."),
           _Chunk("a", "The city began moving migrants out of the station."),
           _Chunk("b", "The 19th District is in another article.")]


def _lookup(chunks):
    """referent_lookup over fake passages, found by their text as StoredIndex.passage_holding finds them."""
    return referent_lookup(chunks, lambda answer: next((r for r, c in enumerate(chunks) if answer in c.text), None))


def test_the_district_of_an_answer_is_the_one_named_before_it():
    lookup = _lookup(ARTICLE)
    assert lookup("district", ARTICLE[1].text) == "10th District of Chicago"
    assert lookup("station", ARTICLE[3].text) == "Ogden District police station"  # lower-case words between
    assert lookup("district", ARTICLE[0].text) is None  # nothing named before it in its article
    assert lookup("district", "A sentence that is in no passage.") is None


def test_which_noun_after_an_answer_that_leaves_it_unnamed_searches_the_named_one():
    h = history(("Who received the information?", ARTICLE[1].text))
    assert definite_noun("Which district?", ARTICLE[1].text) == "district"
    assert definite_noun("which district is that", ARTICLE[1].text) == "district"
    assert definite_noun("Which officer?", ARTICLE[1].text) is None  # the answer says "one police officer"
    assert definite_noun("Which district did the tipster name?", ARTICLE[1].text) is None  # a whole question
    r = resolve("Which district?", h, referent_of=_lookup(ARTICLE))
    assert r.referent == "10th District of Chicago" and r.search_text == "Which district? 10th District of Chicago"
    assert r.interpreted_as == "Which district ('the district' of the previous answer)?"
    assert resolve("Which district?", h).referent is None  # without the article: taken as it is


def test_that_bureau_is_spelled_out_with_the_name_the_article_gives_it():
    tracking = ("Two tracking numbers were assigned, one for COPA's investigation and the other for the Bureau of "
                "Internal Affairs.")
    chunks = ARTICLE[:2] + [_Chunk("a", tracking), _Chunk("a", "A Chicago police oversight agency said so.")]
    lookup = _lookup(chunks)
    assert lookup("bureau", tracking, True) == "Bureau of Internal Affairs"  # named in the answer itself
    assert lookup("bureau", tracking) is None  # "Which bureau?" looks before "the bureau", which this answer lacks
    h = history(("What tracking numbers were assigned?", tracking))
    assert demonstrative_noun("is that bureau part of cpd") == "bureau"
    assert demonstrative_noun("how did that one come up") is None and demonstrative_noun("is that so") is None
    r = resolve("is that bureau part of cpd", h, referent_of=lookup)
    assert r.interpreted_as == "is the Bureau of Internal Affairs part of cpd"
    assert r.search_text == "is that bureau part of cpd Bureau of Internal Affairs" and r.referent
    # nothing named "... agency" up to the answer: the reference stays open, as before
    assert resolve("what does that agency do", h, referent_of=lookup).referent is None


@pytest.mark.slow
def test_which_district_in_the_issues_conversation(engine_on_each_store):
    # "Which district?" was refused ("The article does not say"), and the 10th District is in the article
    _, which = converse(answering(engine_on_each_store), "Were any victims identified?", "Who said that?", "What is her role?",
                        "Which district?")
    assert not which["abstained"] and "10th District" in which["answer"]["text"]
    # the short answer is the district named, with offsets into the file (not the reader's "Chicago" or "10th")
    span = which["answer"]["span"]
    assert span["text"].startswith("10th District")
    assert seed_article_path().read_text(encoding="utf-8")[span["start"] : span["end"]] == span["text"]
