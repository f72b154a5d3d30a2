"""The decide stage and the confidence model, with hand-made inputs: statuses from thresholds, the best-scored
candidate quoted wherever it is, type gating, refusals by rule, the model file's checks, and the fit's pieces."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from helpers import SMALL_CORPUS, FakeEmbedder, qa_clean_env, write_articles  # noqa: F401 - fixture
from qa import Engine, resolve_settings
from qa.confidence import FEATURES, ConfidenceModel, fit_logistic, fit_platt
from qa.decide import decide
from qa.errors import ConfigError
from qa.types import Answer

pytestmark = pytest.mark.usefixtures("qa_clean_env")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decide")
    corpus = write_articles(folder / "articles", SMALL_CORPUS)
    settings = resolve_settings(index_dir=str(folder / "index"), articles=[str(corpus)], model="fake-bow", reader="off")
    return Engine.open(settings, embedder=FakeEmbedder(known_words=["how", "much", "what", "who"]), log=lambda _m: None)


def model_on(feature: str, *, answered: float = 0.8, uncertain: float = 0.3) -> ConfidenceModel:
    """A model whose score is one feature (a logit of that feature's value), confidence = sigmoid(score)."""
    n = len(FEATURES)
    weights = np.zeros(n)
    weights[FEATURES.index(feature)] = 1.0
    return ConfidenceModel(np.zeros(n), np.ones(n), weights, 0.0, (1.0, 0.0), answered, uncertain, {})


def traced(engine, question: str, logits: dict[int, float], articles=None):
    """The engine's stages for `question`, with the reader's logit of candidate i set to logits.get(i, -5)."""
    t = engine.trace(question, 3, articles=articles)
    readings = tuple(replace(r, logit=logits.get(i, -5.0)) for i, r in enumerate(t.readings))
    return t.resolved, t.retrieved, readings


def test_the_status_follows_the_confidence_thresholds(engine):
    for logit, status in ((3.0, "answered"), (0.0, "uncertain"), (-3.0, "abstained")):
        resolved, retrieved, readings = traced(engine, "What will the bridge repairs cost?", {0: logit})
        d = decide(resolved, retrieved, readings, engine.index, abstain_below=-1.0, model=model_on("reader"))
        assert d.status == status and d.confidence == pytest.approx(1 / (1 + np.exp(-logit)))
        assert (d.reason is None) == (status == "answered")
        assert d.reading is readings[0]
    assert "may not" in decide(*traced(engine, "What will the bridge repairs cost?", {0: 0.0}), engine.index,
                               abstain_below=-1.0, model=model_on("reader")).reason


def test_the_best_scored_candidate_is_quoted_even_outside_the_top_passage(engine):
    resolved, retrieved, readings = traced(engine, "What will the bridge repairs cost?", {})
    far = next(i for i, r in enumerate(readings) if r.candidate.rank > 0)
    readings = tuple(replace(r, logit=4.0 if i == far else -4.0) for i, r in enumerate(readings))
    d = decide(resolved, retrieved, readings, engine.index, abstain_below=-1.0, model=model_on("reader"))
    assert d.status == "answered" and d.reading is readings[far] and d.reading.candidate.rank > 0


def test_a_kind_of_fact_no_candidate_holds_is_refused_with_the_kind_named(engine):
    resolved, retrieved, readings = traced(engine, "How many desks does the library have?", {0: 4.0}, ["library"])
    assert readings and not any(ch.isdigit() for r in readings for ch in r.text)
    d = decide(resolved, retrieved, readings, engine.index, abstain_below=-1.0, model=model_on("reader"))
    assert d.status == "abstained" and d.details == "the closest passages give no number" and d.confidence is None


def test_without_a_model_the_top_passage_best_sentence_is_answered(engine):
    resolved, retrieved, readings = traced(engine, "What will the bridge repairs cost?", {})
    readings = tuple(replace(r, logit=None) for r in readings)
    d = decide(resolved, retrieved, readings, engine.index, abstain_below=-1.0, model=None)
    assert d.status == "answered" and d.confidence is None and d.reading.candidate.rank == 0


def test_the_answer_json_carries_status_and_confidence():
    a = Answer("q", False, "It is.", 1, (), "The article may not answer this.", status="uncertain", confidence=0.41)
    j = a.to_json()
    assert (j["status"], j["abstained"], j["confidence"]) == ("uncertain", False, 0.41)
    assert Answer("q", True, None, None, (), "No.").to_json()["status"] == "abstained"
    with pytest.raises(ValueError, match="abstained"):
        Answer("q", True, None, None, (), "No.", status="answered")


# --- the model file ---------------------------------------------------------------------------------------


def test_a_model_round_trips_through_its_json_file(tmp_path):
    m = model_on("coverage", answered=0.7, uncertain=0.2)
    m.save(tmp_path / "model.json")
    back = ConfidenceModel.load(tmp_path / "model.json")
    assert (back.answered, back.uncertain) == (0.7, 0.2) and np.allclose(back.weights, m.weights)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(features=["reader"]), "other features"),
    (lambda d: d.update(thresholds={"answered": 0.2, "uncertain": 0.5}), "must satisfy"),
    (lambda d: d.update(weights=[1.0]), "one value per feature"),
])
def test_a_damaged_model_file_is_refused_with_the_fix(tmp_path, change, message):
    data = model_on("reader").to_json()
    change(data)
    (tmp_path / "model.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        ConfidenceModel.load(tmp_path / "model.json")
    assert "qa.fit_confidence" in str(err.value)
    with pytest.raises(ConfigError, match="cannot be read"):
        ConfidenceModel.load(tmp_path / "missing.json")


def test_the_logistic_fit_finds_the_informative_feature_and_platt_calibrates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3))
    y = (rng.random(2000) < 1 / (1 + np.exp(-3 * x[:, 1]))).astype(float)
    _mean, scale, w, _b = fit_logistic(x, y, l2=0.1)
    assert abs(w[1] / scale[1]) > 5 * max(abs(w[0] / scale[0]), abs(w[2] / scale[2]))
    a, b = fit_platt(3 * x[:, 1], y)
    assert a == pytest.approx(1.0, abs=0.15) and b == pytest.approx(0.0, abs=0.15)


def _held_from_text(index, article_id, stems):
    from qa.lexical import stem_tokens, words

    text = " ".join(index.chunks[r].text for r in index.article_rows[article_id])
    return frozenset(stems) & frozenset(stem_tokens(words(text)))


def _stems_to_try(index):
    from qa.lexical import stem_tokens, words

    every = sorted({s for r in range(len(index.chunks)) for s in stem_tokens(words(index.chunks[r].text))})
    return every + ["zzyzx", "quokka"]  # and two no article holds


def test_the_stems_an_article_holds_come_from_the_postings_as_from_its_text(engine):
    """The "question words the article never uses" feature reads the BM25 postings instead of stemming the article's
    text (per question, per candidate article): the same sets, for every article and every stem of the corpus."""
    from qa.decide import _held_by_articles

    index = engine.index
    stems = _stems_to_try(index)
    held = _held_by_articles(index, stems, list(index.articles))
    assert set(held) == set(index.articles)
    for article_id, got in held.items():
        assert got == _held_from_text(index, article_id, stems), article_id
    assert sum(map(len, held.values())) > len(index.articles)


def test_the_stems_an_article_holds_after_another_is_removed(tmp_path):
    """Rows shift when an article is tombstoned: an article's rows and the postings' rows must still agree."""
    from qa.decide import _held_by_articles

    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow", reader="off")
    eng = Engine.open(settings, embedder=FakeEmbedder(known_words=["how"]), log=lambda _m: None)
    first = sorted(eng.index.articles)[0]
    eng.remove_article(first, log=lambda _m: None, merge="none")
    index = eng.refresh().index
    assert first not in index.articles
    stems = _stems_to_try(index)
    held = _held_by_articles(index, stems, [*index.articles, first])
    assert held[first] == frozenset()
    for article_id in index.articles:
        assert held[article_id] == _held_from_text(index, article_id, stems), article_id
