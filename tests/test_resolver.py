"""The follow-up resolver: CANARD read and split, the added-word measure, the resolver's input and its phrase
decoding on hand-made inputs, and the shipped model on real follow-ups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.canard import (DEFAULT_DIR, NO_ANSWER, article_id, chat_history, dialogue_articles, is_canard_file, load_dev,
                       load_train, part_of, split_dialogues)
from qa.errors import ConfigError, GoldSetError
from qa.evaluation import added_word_scores, added_words
from qa.resolver import Phrase, Segment, decode_phrases, encode, segments, select

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


class Pieces:
    """A stand-in for `tokenizers.Tokenizer`: one piece per word or punctuation mark, ids counted from 1000."""

    def token_to_id(self, token: str) -> int:
        return {"[CLS]": 101, "[SEP]": 102}[token]

    def encode_batch(self, texts, add_special_tokens=False):
        import re

        class E:
            def __init__(self, text):
                ms = list(re.finditer(r"\w+|[^\w\s]", text))
                self.ids = [1000 + i for i, _ in enumerate(ms)]
                self.offsets = [(m.start(), m.end()) for m in ms]

        return [E(t) for t in texts]


def test_the_input_keeps_the_headline_and_the_most_recent_turns_that_fit():
    history = segments("Frank Zappa", [("What group disbanded?", "Zappa and the Mothers of Invention"),
                                       ("When did they disband?", None), ("Why?", "In late 1969, Zappa broke up the band.")])
    assert [s.kind for s in history] == ["headline", "question", "answer", "question", "question", "answer"]
    enc = encode(Pieces(), "What did he do next?", history, 30)
    assert len(enc.ids) <= 30 and enc.ids[0] == 101
    kept = {enc.where[t][0] for t in range(len(enc.ids)) if enc.where[t][0] >= 0}
    assert 0 in kept and 5 in kept and 1 not in kept  # the headline and the latest answer; not the oldest question
    assert enc.type_ids.count(0) == len("What did he do next ?".split()) + 2


def test_phrases_are_decoded_from_the_tags_and_scored_by_their_words():
    history = [Segment("headline", "Frank Zappa", 0), Segment("answer", "Zappa and the Mothers of Invention", 1)]
    enc = encode(Pieces(), "When did they disband?", history, 64)
    words = {t: history[s].text[a:b] for t, (s, a, b) in enumerate(enc.where) if s >= 0}
    keep = np.zeros(len(enc.ids))
    bio = np.tile(np.array([1.0, 0.0, 0.0]), (len(enc.ids), 1))  # O everywhere ...
    for t, w in words.items():
        if w in ("Mothers", "Invention"):
            keep[t] = 0.9
        if w == "the":
            bio[t] = [0, 1, 0]  # ... but "the Mothers of Invention", a phrase
        if w in ("Mothers", "of", "Invention"):
            bio[t] = [0, 0, 1]
        if w in ("Frank", "Zappa") and enc.where[t][0] == 0:
            bio[t] = [0, 1, 0] if w == "Frank" else [0, 0, 1]
            keep[t] = 0.4
    phrases = decode_phrases(enc, keep, bio)
    by_text = {p.text: p for p in phrases}
    assert set(by_text) == {"the Mothers of Invention", "Frank Zappa"}
    assert by_text["the Mothers of Invention"].words == ("mothers", "invention")
    assert by_text["the Mothers of Invention"].score == pytest.approx(0.9) and by_text["Frank Zappa"].score == pytest.approx(0.4)
    chosen = select(phrases, "When did they disband?", 0.5)
    assert [p.text for p in chosen.phrases] == ["the Mothers of Invention"] and chosen.words == {"mothers", "invention"}
    assert [p.text for p in select(phrases, "When did they disband?", 0.3).phrases] == ["the Mothers of Invention", "Frank Zappa"]
    # the headline only when nothing nearer fits
    assert [p.text for p in select(phrases, "When did they disband?", 0.3, headline_last=True).phrases] == ["the Mothers of Invention"]
    # a phrase adding nothing the question lacks is not chosen
    assert select(phrases, "When did the Mothers of Invention disband?", 0.5).phrases == ()


def test_select_caps_the_phrases():
    ps = [Phrase(f"thing{i}", "answer", 1, 0.9 - i / 10, (f"thing{i}",)) for i in range(5)]
    assert [p.text for p in select(ps, "what?", 0.1, max_phrases=2).phrases] == ["thing0", "thing1"]


def test_a_missing_or_damaged_model_folder_is_refused_with_the_fix(tmp_path):
    from qa.resolver import Resolver

    with pytest.raises(ConfigError, match="No follow-up resolver in .*`python -m qa.resolver_training"):
        Resolver.load(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ConfigError, match="version 99"):
        Resolver.load(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not CANARD, reason="CANARD is not in ../shared/bench-data")
def test_the_training_command_writes_a_folder_the_resolver_loads(tmp_path):
    from qa.resolver import Resolver
    from qa.resolver_training import main

    assert main(["--output", str(tmp_path / "resolver"), "--quick"]) == 0
    config = json.loads((tmp_path / "resolver" / "config.json").read_text())
    assert config["training"]["seed"] == 13 and "CC BY-SA 4.0" in config["data"]
    assert config["training"]["train_cpu_seconds"] >= 0 and config["tuning"]["part"] == "tune"
    resolver = Resolver.load(tmp_path / "resolver", threads=1)
    found = resolver.find("when did they disband", "Frank Zappa", [("what did he do in 1970", "He re-formed the Mothers.")])
    assert all(p.kind in ("headline", "question", "answer") for p in found.phrases)
    assert "disband" not in found.words  # a phrase adds words the question lacks


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
