"""The follow-up resolver: CANARD read and split, the added-word measure, its candidates, phrases and spelled-out
questions on hand-made inputs, how it joins the rules, the training command, and the shipped model on real
follow-ups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import seed_engine  # noqa: F401 - fixture
from qa.canard import (DEFAULT_DIR, NO_ANSWER, article_id, chat_history, dialogue_articles, is_canard_file, load_dev,
                       load_train, part_of, split_dialogues)
from qa.conversation import spell_out
from qa.errors import ConfigError, GoldSetError
from qa.evaluation import added_word_scores, added_words
from qa.resolver import FEATURES, Phrase, Resolver, candidates, names_subject, phrases_of
from qa.validation import Turn

ROOT = Path(__file__).resolve().parent.parent
CANARD = DEFAULT_DIR.is_dir()


def canard_row(dialog: str, number: int, question: str, rewrite: str, history: list[str]) -> dict:
    return {"History": history, "QuAC_dialog_id": dialog, "Question": question, "Question_no": number, "Rewrite": rewrite}


ZAPPA = [
    canard_row("C_z_0", 1, "What group disbanded?", "What group disbanded?", ["Frank Zappa", "Disbandment"]),
    canard_row("C_z_0", 2, "When did they disband?", "When did Zappa and the Mothers of Invention disband?",
               ["Frank Zappa", "Disbandment", "What group disbanded?", "Zappa and the Mothers of Invention"]),
    canard_row("C_z_0", 3, "Why?", "Why did Zappa and the Mothers of Invention disband?",
               ["Frank Zappa", "Disbandment", "What group disbanded?", "Zappa and the Mothers of Invention",
                "When did they disband?", NO_ANSWER]),
]


def test_added_words_are_the_content_words_a_rewrite_adds():
    assert added_words("When did they disband?", "When did Zappa and the Mothers of Invention disband?") == \
        {"zappa", "mothers", "invention"}
    assert added_words("what was his legacy", "What was Cary Grant's legacy?") == {"cary", "grant"}
    assert added_words("Who said that?", "Who said that?") == set() == added_words("Who said that?", None)


def test_added_word_scores_are_micro_averaged_and_count_self_contained_questions_left_alone():
    m = added_word_scores([
        ("When did they disband?", "When did Zappa and the Mothers of Invention disband?", "When did Zappa disband (about: the band)?"),
        ("What group disbanded?", "What group disbanded?", "What group disbanded?"),
        ("Who sang?", "Who sang?", "Who sang (about: Zappa)?"),
    ])
    # added: zappa, band, zappa -> 1 of 3 right; the person's: zappa, mothers, invention -> 1 of 3 found
    assert (m["precision"], m["recall"], m["f1"]) == (0.3333, 0.3333, 0.3333)
    assert m["words_added"] == 3 and m["words_gold"] == 3 and m["untouched"] == 0.5 and m["turns"] == 3


def test_canard_dev_is_read_with_its_history_and_made_into_articles(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(ZAPPA))
    assert is_canard_file(path)
    rows = load_dev(path)
    assert [r.number for r in rows] == [1, 2, 3] and rows[0].title == "Frank Zappa" and rows[0].section == "Disbandment"
    assert rows[2].history[0].answer == "Zappa and the Mothers of Invention" and rows[2].history[1].answer is None
    (article,) = dialogue_articles(rows, str(path))
    assert article.id == article_id("C_z_0") and article.title == "Frank Zappa"
    assert article.raw == "Disbandment\n\nZappa and the Mothers of Invention"  # QuAC's "I don't know." is no text
    assert [article.text(p) for p in article.paragraphs] == ["Disbandment", "Zappa and the Mothers of Invention"]
    history = chat_history(rows[2])
    assert [m["role"] for m in history] == ["user", "assistant"] * 2
    assert history[3]["content"].startswith("The article does not say")  # the service's own refusal


def test_a_file_that_is_not_canard_is_refused_with_the_layout(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps([{"question": "q"}]))
    assert not is_canard_file(bad)
    with pytest.raises(GoldSetError, match="not a CANARD file"):
        load_dev(bad)
    with pytest.raises(GoldSetError, match="No CANARD part 'test'"):
        part_of([], "test")


def test_dev_is_split_by_dialogue_the_same_way_every_time():
    ids = [f"C_{i}_0" for i in range(490)]
    parts = split_dialogues(ids)
    assert parts == split_dialogues(list(reversed(ids)))  # a function of the ids and the seed only
    counts = {p: sum(v == p for v in parts.values()) for p in ("train", "tune", "held-out")}
    assert counts == {"train": 245, "tune": 98, "held-out": 147}
    assert parts != split_dialogues(ids, seed=1)


@pytest.mark.skipif(not CANARD, reason="CANARD is not in ../shared/bench-data")
def test_the_real_canard_files_load():
    dev = load_dev()
    assert len(dev) == 3430 and len({r.dialog for r in dev}) == 490
    held = part_of(dev, "held-out")
    assert not {r.dialog for r in held} & {r.dialog for r in part_of(dev, "train")}
    train = load_train()
    assert len(train) == 31526 and len({r.dialog for r in train}) == 4383
    assert train[1].history[0].question == train[0].question and train[1].history[0].answer is None


ZAPPA_HISTORY = [("What group disbanded?", "Zappa and the Mothers of Invention"), ("When did they disband?", None),
                 ("Why?", "In late 1969, Zappa broke up the band.")]


def test_candidates_are_the_history_words_the_question_lacks_with_one_feature_row_each():
    c = candidates("Why did the band break up?", "Frank Zappa", ZAPPA_HISTORY)
    assert c.features.shape == (len(c.words), len(FEATURES)) and c.features.dtype == np.float32
    assert {"frank", "zappa", "mothers", "invention", "disband", "disbanded", "late", "1969"} <= set(c.words)
    assert "band" not in c.words and "break" not in c.words  # the question has them
    row = dict(zip(FEATURES, c.features[c.words.index("zappa")]))
    # said in the title, and nearest in the last answer (1 exchange back), not in the last question
    assert row["in_title"] == 1 and row["answer_distance"] == 1 and row["in_last_answer"] == 1
    assert row["in_last_question"] == 0 and row["has_title"] == 1 and row["title_words"] == 2
    assert row["entity_PERSON"] == 1 or row["pos_PROPN"] == 1
    assert c.occurrences[c.words.index("zappa")].source == "answer"


def test_a_headline_is_not_read_as_the_subject_a_name_title_is():
    assert names_subject("Frank Zappa") and names_subject("Prince Bernhard of Lippe-Biesterfeld")
    assert not names_subject("Budget Bickering Shuts Down Parts of US Government; Vote Set for Monday")
    assert not names_subject("   ") and not names_subject(None)
    c = candidates("Who set that up?", "Budget Bickering Shuts Down Parts of US Government; Vote Set for Monday",
                   [("when is the senate voting", "McConnell scheduled a vote for 1 a.m. Monday.")])
    assert "bickering" not in c.words and "mcconnell" in c.words
    assert dict(zip(FEATURES, c.features[0]))["has_title"] == 0


def test_chosen_words_are_grouped_into_the_phrases_they_were_said_in():
    c = candidates("When did they disband?", "Frank Zappa", ZAPPA_HISTORY[:1])
    phrases = phrases_of(c, {"mothers": 0.9, "invention": 0.8, "frank": 0.4})
    assert [p.text for p in phrases] == ["Mothers of Invention", "Frank"]
    assert phrases[0].words == ("mothers", "invention") and phrases[0].score == 0.9 and phrases[0].source == "answer"
    assert phrases[1].source == "title" and phrases_of(c, {}) == []


def test_spelled_out_a_person_replaces_he_or_her_and_other_phrases_follow():
    zappa = Phrase("Frank Zappa", "title", 0, 0.9, ("frank", "zappa"), "PERSON")
    band = Phrase("the Mothers", "answer", 1, 0.6, ("mothers",), "ORG")
    assert spell_out("What was his legacy?", [zappa]) == "What was Frank Zappa's legacy?"
    assert spell_out("who appointed her", [zappa]) == "who appointed Frank Zappa"
    assert spell_out("what is her title", [zappa]) == "what is Frank Zappa's title"
    assert spell_out("When did he leave?", [zappa, band]) == "When did Frank Zappa leave?"  # the name alone
    assert spell_out("When did they disband?", [band, zappa]) == "When did they disband (about: the Mothers, Frank Zappa)?"
    assert spell_out("Why?", []) == "Why?"


def test_the_resolver_spells_out_the_rules_question_and_the_rules_stay_where_it_finds_nothing():
    from qa.conversation import resolve
    from qa.validation import Turn

    chat = [Turn("user", "Who runs COPA?"), Turn("assistant", "Andrea Kersten said the agency got the report.")]
    kersten = Phrase("Andrea Kersten", "answer", 1, 0.8, ("andrea", "kersten"), "PERSON")
    report = Phrase("the report", "answer", 1, 0.6, ("report",), "")
    seen = []

    def find(phrases):
        def call(question, exchanges):
            seen.append(exchanges)
            return phrases
        return call

    rules = resolve("Who said that?", chat)
    assert rules.interpreted_as != "Who said that?"  # the rules show the earlier text
    both = resolve("Who said that?", chat, find=find([report]))
    assert both.interpreted_as == "Who said that (about: the report)?" and both.search_text == rules.search_text
    assert seen[-1] == [("Who runs COPA?", "Andrea Kersten said the agency got the report.")]
    assert resolve("Who said that?", chat, find=find([])) == rules  # nothing found: the rules' reading stands
    # the resolver's person takes the place of "her"; the rules' own guess gives way
    her = resolve("What is her role?", chat, find=find([kersten, report]))
    assert her.interpreted_as == "What is Andrea Kersten's role?"
    # a person the article calls "she" does not stand for "his"
    his = resolve("What is his role?", chat, gender_of=lambda name: "f", find=find([kersten, report]))
    assert his.interpreted_as == "What is his role (about: the report)?"
    assert resolve("What is Andrea Kersten's role?", chat, find=find([kersten])) == \
        resolve("What is Andrea Kersten's role?", chat)  # nothing new to add: the rules' reading
    # a refused turn still shows what was asked; its answer is None
    refused = [Turn("user", "Who runs COPA?"), Turn("assistant", "The article does not say who runs COPA.")]
    resolve("And the police?", refused, find=find([]))
    assert seen[-1] == [("Who runs COPA?", None)]


def test_a_missing_damaged_or_foreign_model_folder_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="No follow-up resolver in .*`python -m qa.resolver_training"):
        Resolver.load(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ConfigError, match="version 99"):
        Resolver.load(tmp_path)
    shipped = json.loads((ROOT / "models" / "resolver" / "config.json").read_text())
    (tmp_path / "model.onnx").write_bytes((ROOT / "models" / "resolver" / "model.onnx").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({**shipped, "features": ["something", "else"]}))
    with pytest.raises(ConfigError, match="other features"):
        Resolver.load(tmp_path)


def test_the_shipped_resolver_spells_out_what_a_follow_up_leans_on_and_leaves_a_new_topic_alone():
    resolver = Resolver.load(threads=1)
    found = resolver.find("When did he join the military?", "Lew Wallace",
                          [("Where was he born?", "Wallace was born in Brookville, Indiana.")])
    assert {"lew", "wallace"} <= {w for p in found for w in p.words}
    assert spell_out("When did he join the military?", found).startswith("When did Lew Wallace join")
    news = [("who is berenice davila", "Berenice Davila, a 19-year-old DACA recipient from Texas, joined the protest.")]
    found = resolver.find("where is her family from originally", "Hundreds of Immigrant Youth Continue to Fight for a "
                          "DACA Solution", news)
    assert {"berenice", "davila"} & {w for p in found for w in p.words}
    assert not {"immigrant", "youth", "solution"} & {w for p in found for w in p.words}  # the headline is not read
    switch = "What did Senate Majority Leader Mitch McConnell promise on the Senate floor?"
    assert resolver.find(switch, None, news) == []


@pytest.mark.skipif(not CANARD, reason="CANARD is not in ../shared/bench-data")
def test_the_training_command_writes_a_folder_the_resolver_loads(tmp_path):
    from qa.resolver_training import main

    assert main(["--output", str(tmp_path / "resolver"), "--quick"]) == 0
    config = json.loads((tmp_path / "resolver" / "config.json").read_text())
    assert config["seed"] == 13 and config["features"] == list(FEATURES) and config["train_seconds"] > 0
    assert config["metrics"]["tune"]["max_export_difference"] < 1e-3  # the ONNX trees agree with scikit-learn
    assert "CC BY-SA 4.0" in (tmp_path / "resolver" / "MODEL_CARD.md").read_text()
    resolver = Resolver.load(tmp_path / "resolver", threads=1)
    found = resolver.find("when did they disband", "Frank Zappa", [("what did he do in 1970", "He re-formed the Mothers.")])
    assert all(p.source in ("title", "question", "answer") for p in found)
    assert "disband" not in {w for p in found for w in p.words}  # a phrase adds words the question lacks


def test_the_training_command_names_a_missing_canard_folder_and_writes_nothing(tmp_path, capsys):
    from qa.resolver_training import main

    assert main(["--output", str(tmp_path / "resolver"), "--canard", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere/dev.json" in err and "--canard" in err and not (tmp_path / "resolver").exists()


def test_a_new_model_folder_replaces_the_old_one_and_keeps_its_card(tmp_path):
    from qa.model_files import replace_folder

    old, new = tmp_path / "resolver", tmp_path / "resolver.tmp1"
    old.mkdir()
    (old / "model.onnx").write_bytes(b"old")
    (old / "MODEL_CARD.md").write_text("card")
    new.mkdir()
    (new / "model.onnx").write_bytes(b"new")
    replace_folder(new, old)
    assert not new.exists() and (old / "model.onnx").read_bytes() == b"new" and (old / "MODEL_CARD.md").read_text() == "card"


def test_qa_resolver_is_auto_or_off_and_off_leaves_the_rules_alone(seed_engine, monkeypatch):
    from qa import resolve_settings
    from qa.pipeline import resolve_question

    with pytest.raises(ConfigError, match="QA_RESOLVER must be auto or off, not 'maybe'"):
        resolve_settings(resolver="maybe")
    monkeypatch.setenv("QA_RESOLVER", "off")
    assert resolve_settings().resolver == "off"
    chat = [Turn("user", "Who is the chief administrator of COPA?"),
            Turn("assistant", "The chief administrator of COPA, Andrea Kersten, said the agency received information "
                              "on July 6 about an allegation of sexual misconduct involving at least one police "
                              "officer within the district.")]
    same = lambda t: t  # noqa: E731
    alone = resolve_question("When did the agency hear of it?", chat, seed_engine.index, same)
    assert alone.asked.startswith("When did the agency hear of it (about: The chief administrator")  # the rules' gist
    with_it = resolve_question("When did the agency hear of it?", chat, seed_engine.index, same, Resolver.load(threads=1))
    assert with_it.asked != alone.asked and "allegation" in with_it.asked  # the resolver's phrases
    assert with_it.search_text == alone.search_text  # what is searched stays the rules'
