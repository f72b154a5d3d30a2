"""The answerability reader: the shipped model loads offline and behaves on hand-written cases, outputs are
deterministic, a tiny training run yields a loadable model, and a broken model folder is a ConfigError."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from qa.answerability import DEFAULT_FOLDER, AnswerabilityModel, is_yes_no
from qa.errors import ConfigError
from qa.sentences import split_sentences

ROOT = Path(__file__).resolve().parent.parent
SEED_ARTICLE = ROOT / "articles" / "000_1377f01862d9140a.txt"
KERSTEN = ("The chief administrator of COPA, Andrea Kersten, said the agency received information on July 6 about an "
           "allegation of sexual misconduct involving at least one police officer within the district.")


@pytest.fixture(scope="module")
def model() -> AnswerabilityModel:
    return AnswerabilityModel.load()


def _whole(text: str) -> list[tuple[int, int]]:
    return [(0, len(text))]


def _article_sentences() -> tuple[str, list[tuple[int, int]]]:
    raw = SEED_ARTICLE.read_text(encoding="utf-8")
    return raw, [(s.start, s.end) for s in split_sentences(raw)]


def test_shipped_model_loads_offline_with_its_threshold(model):
    assert model.folder == DEFAULT_FOLDER
    assert 0.0 < model.threshold < 1.0
    assert model.read_sentences >= 1
    assert model.config["calibration_articles"] and len(model.config["calibration_articles"]) == 6


def test_outputs_are_deterministic(model):
    raw, spans = _article_sentences()
    first = model.read("When did the agency receive the information?", raw, spans[:4])
    again = model.read("When did the agency receive the information?", raw, spans[:4])
    assert first == again  # frozen dataclasses: every float identical


def test_reading_order_and_indices(model):
    raw, spans = _article_sentences()
    readings = model.read("Who heads COPA?", raw, spans[:3])
    assert [r.sentence for r in readings] == [0, 1, 2]
    assert all(0.0 <= r.answer_prob <= 1.0 for r in readings)
    assert model.read("Who heads COPA?", raw, []) == []


def test_answerable_sentence_with_its_span(model):
    (r,) = model.read("When did the agency receive the information?", KERSTEN, _whole(KERSTEN))
    assert r.answer_prob >= model.threshold
    assert r.span is not None and KERSTEN[r.span[0] : r.span[1]] == "July 6"


def test_unrelated_sentence_is_not_an_answer(model):
    (r,) = model.read("How many people died in the fire?", KERSTEN, _whole(KERSTEN))
    assert r.answer_prob < model.threshold


def test_yes_no_question_the_article_does_not_address(model):
    """"Was the officer fired?" (the article never says) scores well below "Were any victims identified?" (it
    does). Measured: 0.37 vs 0.57 over all sentences; the shipped threshold (0.29) does NOT refuse the first
    on its own, so only the ordering and "under one half" are asserted (docs/answerability.md)."""
    raw, spans = _article_sentences()
    fired = max(r.answer_prob for r in model.read("Was the officer fired?", raw, spans))
    victims = max(r.answer_prob for r in model.read("Were any victims identified?", raw, spans))
    assert fired < 0.5 and fired < victims - 0.1
    assert all(r.span is None for r in model.read("Was the officer fired?", raw, spans))  # no short span for yes/no


def test_yes_no_detection():
    assert is_yes_no("Was the officer fired?") and is_yes_no("did anyone die?")
    assert not is_yes_no("When did the agency receive the information?")


def test_bad_sentence_span_is_refused(model):
    with pytest.raises(ValueError, match="not inside the passage"):
        model.read("Who?", "short", [(0, 50)])


# --- broken folders ---------------------------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    shutil.copytree(DEFAULT_FOLDER, folder)
    return folder


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist.*qa.training"):
        AnswerabilityModel.load(tmp_path / "nowhere")


def test_truncated_model_is_a_config_error(tmp_path):
    folder = _copy(tmp_path)
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="model.onnx has .* bytes"):
        AnswerabilityModel.load(folder)


def test_altered_model_is_a_config_error(tmp_path):
    folder = _copy(tmp_path)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="sha256"):
        AnswerabilityModel.load(folder)


def test_corrupt_config_is_a_config_error(tmp_path):
    folder = _copy(tmp_path)
    (folder / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        AnswerabilityModel.load(folder)
    (folder / "config.json").write_text(json.dumps({"version": 99}), encoding="utf-8")
    with pytest.raises(ConfigError, match="version 99"):
        AnswerabilityModel.load(folder)


def test_missing_tokenizer_is_a_config_error(tmp_path):
    folder = _copy(tmp_path)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match="tokenizer.json is missing"):
        AnswerabilityModel.load(folder)


def test_inference_never_imports_torch():
    import subprocess

    code = ("import sys; from qa.answerability import AnswerabilityModel; m = AnswerabilityModel.load(); "
            "m.read('Who heads COPA?', 'Andrea Kersten heads COPA.', [(0, 26)]); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- a tiny training run ----------------------------------------------------------------------------------


def _tiny_squad(tmp_path: Path) -> tuple[Path, Path]:
    """Eight one-paragraph v2.0 articles (six become calibration articles) and one allowed v1.1 article."""
    facts = [("Amsterdam", "the Dutch capital", "1275"), ("Lisbon", "the Portuguese capital", "1147"),
             ("Vienna", "the Austrian capital", "1221"), ("Prague", "the Czech capital", "1346"),
             ("Oslo", "the Norwegian capital", "1048"), ("Dublin", "the Irish capital", "841"),
             ("Athens", "the Greek capital", "1834"), ("Warsaw", "the Polish capital", "1596")]
    data = []
    for city, what, year in facts:
        context = (f"{city} is {what}. It became a city in {year}. The river through {city} is famous. "
                   f"Many tourists visit {city} every summer.")
        qas = [
            {"id": f"{city}-1", "question": f"When did {city} become a city?", "answers": [{"text": year, "answer_start": 0}],
             "is_impossible": False},
            {"id": f"{city}-2", "question": f"What is {city}?", "answers": [{"text": what, "answer_start": 0}],
             "is_impossible": False},
            {"id": f"{city}-3", "question": f"When did {city} stop being a city?", "answers": [], "is_impossible": True},
        ]
        data.append({"title": city, "paragraphs": [{"context": context, "qas": qas}]})
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    kenya = {"title": "Kenya", "paragraphs": [{"context": "Kenya is in East Africa. Its capital is Nairobi.", "qas": [
        {"id": "k1", "question": "What is the capital of Kenya?", "answers": [{"text": "Nairobi", "answer_start": 0}]}]}]}
    v11 = tmp_path / "v11.json"
    v11.write_text(json.dumps({"version": "1.1", "data": [kenya, data[0]]}), encoding="utf-8")
    return v2, v11


def test_tiny_training_run_gives_a_loadable_model(tmp_path):
    from qa.training import main

    v2, v11 = _tiny_squad(tmp_path)
    out = tmp_path / "model"
    assert main(["--output", str(out), "--quick", "--squad-v2", str(v2), "--squad-v11", str(v11)]) == 0
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["layers"] == 1 and "threshold" in config and config["training"]["steps"] >= 1
    m = AnswerabilityModel.load(out)
    (r,) = m.read("When did Oslo become a city?", "It became a city in 1048.", [(0, 25)])
    assert 0.0 <= r.answer_prob <= 1.0


def test_a_training_run_stopped_midway_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, monkeypatch):
    """A run too long for one sitting is done in parts: stopped after step 5 and started again, it ends where an
    unbroken run ends (same batches, same optimiser moments, same dropout), and a checkpoint of another run is
    refused by name."""
    import torch
    from tokenizers import Tokenizer

    from qa import training

    examples = [training.Example(f"When did city {i} open?", f"City {i} opened in {1900 + i}.", i % 2,
                                 (14 + len(str(i)), 18 + len(str(i))) if i % 2 else None, "pos") for i in range(20)]
    tokenizer = Tokenizer.from_file(str(Path(training.base_model_path()) / "tokenizer.json"))
    rows = training.encode_examples(tokenizer, examples, 32)
    opts = training.TrainOptions(layers=1, max_length=32, epochs=2.0, batch_size=8)  # 3 steps an epoch, 6 in all

    def run(checkpoint=None):
        training.set_seed(5, 1)
        model = training.build_reader(1)
        training.train(model, rows, opts, seed=5, checkpoint=checkpoint, every=4)
        return {k: v.clone() for k, v in model.state_dict().items()}

    unbroken = run()
    real_step, calls = training.apply_step, []

    def counted(*args):
        if stop_at is not None and len(calls) == stop_at:
            raise KeyboardInterrupt
        calls.append(1)
        return real_step(*args)

    monkeypatch.setattr(training, "apply_step", counted)
    stop_at = 5
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert (saved["step"], saved["in_epoch"]) == (4, 1)  # saved every 4 steps: one batch into the second epoch
    calls.clear()
    stop_at = None
    resumed = run(tmp_path / "ckpt")
    assert len(calls) == 2  # steps 5 and 6: the fifth again, not all six
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["step"] == 6
    assert all(torch.allclose(unbroken[k], resumed[k], atol=1e-6) for k in unbroken)
    initial = training.build_reader(1).state_dict()
    assert not all(torch.equal(unbroken[k], initial[k]) for k in unbroken)  # it did train

    other = training.TrainOptions(layers=1, max_length=32, epochs=2.0, batch_size=8, lr=5e-5)
    with pytest.raises(SystemExit, match="checkpoint .* is of another run"):
        training.train(training.build_reader(1), rows, other, seed=5, checkpoint=tmp_path / "ckpt")
