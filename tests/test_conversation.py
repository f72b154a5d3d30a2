"""Follow-up questions: the resolver's rules on hand-made conversations, the engine answering in context with
the real model, and the conversation gold sets scored through `qa eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import engine_on_each_store, history, seed_engine  # noqa: F401 - fixtures
from qa.conversation import REFUSAL_PREFIX, _names, follow_up_boost, needs_context, reply_text, resolve, without_context
from qa.evaluation import is_conversation_file, load_conversations
from qa.validation import Turn

ROOT = Path(__file__).resolve().parent.parent
VICTIMS_SENTENCE = ('"This investigation remains open and ongoing, but I can confirm that to date, we have not identified any '
                    'migrants claiming to be the victim of sexual assault or any form of sexual misconduct by CPD members," '
                    'Kersten said.')
KERSTEN = "The chief administrator of COPA, Andrea Kersten, said the agency received information on July 6 about an allegation."


@pytest.mark.parametrize(("question", "leans"), [
    ("Who said that?", True), ("What is her role?", True), ("Who leads it?", True), ("Why?", True),
    ("How come?", True), ("And in the 19th District?", True), ("and in the shelters", True), ("From who?", True),
    ("Which agency is investigating the claims?", False), ("Was there a complaint about another district?", False),
    ("What is a good recipe for deep dish pizza?", False), ("When did COPA receive the information?", False),
])
def test_which_questions_lean_on_the_conversation(question, leans):
    assert needs_context(question) is leans


def test_a_self_contained_question_is_taken_as_it_is_mid_conversation():
    h = history(("Were any victims identified?", VICTIMS_SENTENCE))
    r = resolve("What is a good recipe for deep dish pizza?", h)
    assert r.interpreted_as == r.search_text == "What is a good recipe for deep dish pizza?" and r.follows is None


def test_pronouns_are_spelled_out_for_the_reader_not_searched():
    r = resolve("What is her role?", history(("Who runs the agency?", KERSTEN)))
    assert r.interpreted_as == "What is Andrea Kersten's role?"
    assert r.search_text == "What is her role?" and r.follows == KERSTEN
    r = resolve("Who said that?", history(("Were any victims identified?", VICTIMS_SENTENCE)))
    assert r.interpreted_as.startswith("Who said that (following on: Were any victims identified)")


def test_a_place_named_with_an_ordinal_is_kept_whole():
    tipster = ("The tipster also indicated several other officers in the 10th District may have engaged in similar "
               "misconduct, Kersten added.")
    assert _names(tipster) == ["the 10th District", "Kersten"]  # not "District"
    r = resolve("What is her title?", history(("Were other officers involved?", tipster)))
    assert r.interpreted_as == "What is Kersten's title?"


def test_her_as_the_object_is_not_made_a_possessive():
    h = history(("Who runs COPA?", KERSTEN))
    assert resolve("Who appointed her?", h).interpreted_as == "Who appointed Andrea Kersten?"  # not "Kersten's"
    assert resolve("Did anyone tell her about it?", h).interpreted_as.startswith("Did anyone tell Andrea Kersten about")
    assert resolve("What is her title?", h).interpreted_as == "What is Andrea Kersten's title?"


def test_it_and_they_are_not_replaced_by_a_guessed_name():
    # "it" is mostly a thing the text names in common words ("the investigation"): a guessed name read wrong,
    # and the refusal repeated it ("when Kersten expects to finish CPD")
    r = resolve("When does she expect to finish it?", history(("Who runs COPA?", KERSTEN)))
    assert r.interpreted_as.startswith("When does Andrea Kersten expect to finish it (about: ")  # not "finish COPA"
    assert without_context(r.interpreted_as) == "When does Andrea Kersten expect to finish it?"
    assert without_context("Who runs it (following on: Which agency (COPA) is it)?") == "Who runs it?"
    assert without_context("Who runs COPA?") == "Who runs COPA?"


def test_what_that_refers_to_is_shown_in_words_that_read_alone():
    tipster = ("The tipster also indicated several other officers in the 10th District may have engaged in similar "
               "misconduct, Kersten added.")
    one_word = history(("Which district?", f"10th — {tipster}"))
    assert resolve("Who told the agency that?", one_word).interpreted_as == \
        "Who told the agency that (about: The tipster also indicated several other officers in the 10th District may have…)?"
    named = history(("Who runs COPA?", f"Andrea Kersten — {KERSTEN}"))
    assert resolve("Is that her official title?", named).interpreted_as == "Is that Andrea Kersten's official title (about: Andrea Kersten)?"


def test_a_fragment_is_searched_with_the_previous_question():
    h = history(("How many migrants were living at police stations?", "650 continued living at police stations."))
    r = resolve("And in the shelters?", h)
    assert r.search_text == "And in the shelters? How many migrants were living at police stations?"
    assert "following on: How many migrants were living at police stations" in r.interpreted_as


def test_a_refused_turn_is_not_the_context():
    h = history(("Were any victims identified?", VICTIMS_SENTENCE),
                ("What's the weather tomorrow?", f"{REFUSAL_PREFIX}. No passage is close enough."))
    assert resolve("Who said that?", h).follows == VICTIMS_SENTENCE


def test_reply_text_is_the_answer_or_the_refusal_with_the_short_answer_first():
    answered = {"abstained": False, "answer": {"text": KERSTEN, "citation": 1, "span": {"start": 0, "end": 6, "text": "July 6"}}}
    assert reply_text(answered) == f"July 6 — {KERSTEN}"
    assert resolve("Who said it?", [Turn("user", "When?"), Turn("assistant", reply_text(answered))]).follows == KERSTEN
    refused = {"abstained": True, "answer": None, "reason": "The article does not say whether the officer was fired."}
    assert reply_text(refused) == "The article does not say whether the officer was fired."  # not said twice
    vague = {"abstained": True, "answer": None, "reason": "Nothing in the article is close to this question."}
    assert reply_text(vague) == "The article does not say. Nothing in the article is close to this question."


@pytest.mark.slow
def test_a_follow_up_is_answered_from_the_passage_of_the_answer_it_follows(engine_on_each_store):
    seed_engine = engine_on_each_store
    first = seed_engine.ask("Were any victims identified?").to_json()
    assert "not identified any migrants" in first["answer"]["text"]
    h = history(("Were any victims identified?", reply_text(first)))
    boost = follow_up_boost(seed_engine.index, first["answer"]["text"])
    assert len(boost) == 3 and max(boost.values()) > 0  # its passage and the two around it
    follow = seed_engine.ask("Who said that?", history=h).to_json()
    assert not follow["abstained"] and "Kersten said" in follow["passages"][0]["text"]
    assert follow["interpreted_as"] != follow["question"] == "Who said that?"
    alone = seed_engine.ask("Who said that?").to_json()  # without the conversation there is nothing to go on
    assert alone["abstained"] or "Kersten said" not in alone["passages"][0]["text"]


@pytest.mark.slow
def test_a_follow_up_with_nothing_to_follow_says_so(engine_on_each_store):
    seed_engine = engine_on_each_store
    alone = seed_engine.ask("Who said that?").to_json()
    assert alone["abstained"] and alone["reason"] == \
        "Nothing earlier in this conversation says what 'that' refers to: ask the whole question."
    assert "leans on earlier turns" in alone["details"]
    refused_before = history(("What is a good recipe for deep dish pizza?", f"{REFUSAL_PREFIX}. Nothing is close."))
    why = seed_engine.ask("Why?", history=refused_before).to_json()  # the only earlier turn was refused
    assert why["abstained"] and why["reason"].startswith("This reads as a follow-up, and there is no earlier answer")
    # a self-contained question keeps the article's own refusal
    governor = seed_engine.ask("What did the governor say about that?").to_json()  # the specific reason stays
    assert governor["abstained"] and governor["reason"] == "The article never mentions 'governor'."
    pizza = seed_engine.ask("What is a good recipe for deep dish pizza?").to_json()
    assert pizza["abstained"] and pizza["reason"] == "The article does not say what a good recipe for deep dish pizza is."


def test_conversation_gold_sets_are_well_formed():
    for name in ("conversations.jsonl", "conversations-holdout.jsonl", "conversations-squad.jsonl"):
        path = ROOT / "eval" / name
        assert is_conversation_file(path)
        conversations = load_conversations(path)
        assert all(c.kinds[0] == "first" for c in conversations)
    tuning, held = load_conversations(ROOT / "eval" / "conversations.jsonl"), load_conversations(ROOT / "eval" / "conversations-holdout.jsonl")
    assert len(tuning) + len(held) >= 25 and sum(len(c.turns) for c in tuning + held) >= 70
    asked = {t.question for c in tuning for t in c.turns}
    assert not asked & {t.question for c in held for t in c.turns}  # held out: no shared questions


@pytest.mark.slow
def test_qa_eval_scores_a_conversation_set(tmp_path):
    gold = tmp_path / "conv.jsonl"
    gold.write_text(json.dumps({"id": "t1", "turns": [
        {"question": "Were any victims identified?", "answer": "No", "evidence": ["we have not identified any migrants"]},
        {"question": "Who said that?", "answer": "Kersten", "evidence": ["sexual misconduct by CPD members,\" Kersten said"]},
        {"question": "What is the weather in Paris tomorrow?", "answer": None, "evidence": []}]}) + "\n")
    done = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(gold), "--json", "--index", str(ROOT / "index")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["first_turn"] == {"turns": 1, "hit@1": 1.0, "answer_accuracy": 1.0, "false_abstentions": 0.0}
    assert metrics["follow_up"]["turns"] == 1 and metrics["follow_up"]["hit@1"] == 1.0
    assert metrics["abstention"] == {"turns": 1, "correct_abstentions": 1.0}


@pytest.mark.slow
def test_qa_eval_no_history_asks_every_turn_alone(tmp_path):
    gold = tmp_path / "conv.jsonl"
    gold.write_text(json.dumps({"id": "t1", "turns": [
        {"question": "Were any victims identified?", "answer": "No", "evidence": ["we have not identified any migrants"]},
        {"question": "Who said that?", "answer": "Kersten", "evidence": ["sexual misconduct by CPD members,\" Kersten said"]}]}) + "\n")

    def interpreted(*extra: str) -> list[str]:
        out = tmp_path / "out.jsonl"
        done = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(gold), "--quiet", "--index", str(ROOT / "index"),
                               "--output", str(out), *extra], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["interpreted_as"] for line in out.read_text().splitlines()]

    in_context = interpreted()[1]  # in context, "that" is spelled out (by the resolver, or the rules)
    assert in_context.startswith("Who said that (") and in_context != "Who said that?"
    assert interpreted("--no-history") == ["Were any victims identified?", "Who said that?"]


def test_qa_eval_no_history_is_refused_for_single_questions():
    done = subprocess.run([sys.executable, "-m", "qa.cli", "eval", "eval/seed.jsonl", "--no-history"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "--no-history is for conversation files" in done.stderr
    assert "eval/seed.jsonl" in done.stderr and "Traceback" not in done.stderr
