"""Fit the confidence model (qa/confidence.py) on data the team may tune on, and choose its thresholds.

    python -m qa.fit_confidence                      # writes models/confidence/model.json (a few minutes)

Tuning data, each question asked through the engine as the service asks it (the reader in models/answerability):
- eval/seed.jsonl: the seed article's tuning questions;
- eval/news-dev.jsonl, its tuning part: news stories nobody tuned the rest of the service on (the held-out part and
  eval/holdout.jsonl are never read here);
- SQuAD v2.0 dev half A, its six calibration articles (qa.training.calibration_articles: the reader never trained
  on them), for the many unanswerable questions written to look answerable.
Every candidate sentence the reader read is a row (label: it states the answer, as `qa eval` judges a quoted
sentence); the candidate scorer is a logistic regression over them, the calibration is fitted on the best candidate's
out-of-fold score (folds by article), and the thresholds are chosen on the news questions' out-of-fold confidences:
`answered` the lowest that keeps at least `--precision` of answered replies right, `uncertain` the lowest under
which at most `--abstain-right` of refused questions had a right sentence to quote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .confidence import DEFAULT_PATH, FEATURES, ConfidenceModel, fit_logistic, fit_platt
from .evaluation import GoldQuestion, normalize

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Asked:
    """One tuning question through the engine."""

    set: str
    group: str  # the fold it belongs to: its article
    answerable: bool
    weight: float
    news: bool  # counts for the thresholds
    rule: str | None = None  # the rule that refused it before any sentence was weighed (qa.decide.Refusal.rule)
    rows: np.ndarray | None = None  # feature rows of the eligible candidates
    labels: np.ndarray | None = None  # 1: the candidate states the answer
    texts: list[str] = field(default_factory=list)
    question: str = ""


def states_answer(sentence: str, gold: GoldQuestion, article: str | None) -> bool:
    """As `qa eval` judges a quoted sentence: it holds an evidence quote, or a quote holds it (in the gold article)."""
    if not gold.answerable or (gold.article is not None and article is not None and article != gold.article):
        return False
    s = normalize(sentence)
    return any(normalize(e) in s or s in normalize(e) for e in gold.evidence)


def ask_all(name: str, engine, golds: Sequence[GoldQuestion], weight: float, news: bool, restrict: bool, k: int = 5
            ) -> list[Asked]:
    """Each question through the engine's pipeline up to the decision: the candidates the model would weigh (none
    when a rule refuses first) with their features and labels."""
    from .decide import eligible_readings, feature_rows, refusal_by_rule
    from .grounding import expected_type

    engine.__dict__["confidence_model"] = None  # the stages before the decision only: no model is needed yet
    out = []
    t0 = time.time()
    for g in golds:
        trace = engine.trace(g.question, k, articles=[g.article] if restrict and g.article else None)
        item = Asked(name, f"{name}:{g.article or 'seed'}", g.answerable, weight, news, question=g.question)
        out.append(item)
        if trace.resolved is None:
            item.rule = "unrecognised"
            continue
        refusal = refusal_by_rule(trace.resolved, trace.retrieved, engine.index, engine.settings.abstain_below)
        if refusal is not None:
            item.rule = refusal.rule
            continue
        asked = trace.resolved.asked
        kind = expected_type(asked)
        eligible = eligible_readings(asked, trace.readings, engine.index, kind)
        if not eligible:
            item.rule = "no-type"
            continue
        item.rows = feature_rows(asked, eligible, trace.readings, trace.retrieved, engine.index, kind is not None)
        item.labels = np.array([states_answer(r.text, g, engine.index.chunks[r.candidate.row].article_id) for r in eligible],
                               np.float64)
        item.texts = [r.text for r in eligible]
    log(f"{name}: {len(golds)} questions in {time.time() - t0:.0f}s")
    return out


def cached(name: str, cache: Path | None, key: dict, make) -> list[Asked]:
    """The set's questions from `cache`/<name>.json when it was made with the same `key` (reader, features), else
    made by `make()` and stored there."""
    path = cache / f"{name}.json" if cache is not None else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") == key:
            return [Asked(d["set"], d["group"], d["answerable"], d["weight"], d["news"], d["rule"],
                          None if d["rows"] is None else np.asarray(d["rows"], np.float64),
                          None if d["labels"] is None else np.asarray(d["labels"], np.float64), d["texts"],
                          d.get("question", ""))
                    for d in data["items"]]
    items = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "items": [
            {"set": it.set, "group": it.group, "answerable": it.answerable, "weight": it.weight, "news": it.news,
             "rule": it.rule, "rows": None if it.rows is None else it.rows.tolist(),
             "labels": None if it.labels is None else it.labels.tolist(), "texts": it.texts,
             "question": it.question} for it in items]}),
            encoding="utf-8")
    return items


def folds(items: Sequence[Asked], n: int = 5) -> list[int]:
    """A fold per question, by article (all questions of an article in one fold), balanced greedily."""
    groups: dict[str, int] = {}
    for it in items:
        groups[it.group] = groups.get(it.group, 0) + 1
    load = [0] * n
    where = {}
    for g, c in sorted(groups.items(), key=lambda x: (-x[1], x[0])):
        f = int(np.argmin(load))
        where[g] = f
        load[f] += c
    return [where[it.group] for it in items]


def fit_scorer(items: Sequence[Asked], l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    x = np.vstack([it.rows for it in items if it.rows is not None])
    y = np.concatenate([it.labels for it in items if it.rows is not None])
    # each question weighs its set's weight in all, shared among its candidates
    w = np.concatenate([np.full(len(it.rows), it.weight / len(it.rows)) for it in items if it.rows is not None])
    return fit_logistic(x, y, w, l2=l2)


def best_of(item: Asked, mean, scale, weights, bias) -> tuple[float, bool]:
    logits = ((item.rows - mean) / scale) @ weights + bias
    i = int(logits.argmax())
    return float(logits[i]), bool(item.labels[i])


def outcome_table(conf: np.ndarray, right: np.ndarray, answerable: np.ndarray, rule: np.ndarray, t: float) -> dict:
    answered = (~rule) & (conf >= t)
    n_ans = int(answered.sum())
    return {"answered": n_ans, "precision": round(float(right[answered].mean()), 4) if n_ans else None,
            "coverage": round(float((answered & right)[answerable].mean()), 4) if answerable.any() else None,
            "unanswerable_answered": round(float(answered[~answerable].mean()), 4) if (~answerable).any() else None}


MIN_ANSWERED = 10


def choose_thresholds(conf, right, answerable, rule, precision: float, abstain_right: float) -> tuple[float, float]:
    """(answered, uncertain) thresholds (see the module doc)."""
    grid = np.unique(np.round(np.concatenate([conf[~rule], [1.0]]), 6))
    answered = 1.0
    # the lowest threshold whose answered replies are right often enough, and every higher one that answers at least
    # MIN_ANSWERED questions too (above that, one miss moves the share by more than the margin being checked)
    for t in grid:
        ok = True
        for u in grid[grid >= t]:
            row = outcome_table(conf, right, answerable, rule, u)
            if row["answered"] >= MIN_ANSWERED and row["precision"] < precision:
                ok = False
                break
        if ok:
            answered = float(t)
            break
    uncertain = 0.0
    for t in grid:
        if t > answered:
            break
        refused = (~rule) & (conf < t)
        if refused.any() and float(right[refused].mean()) > abstain_right:
            break
        uncertain = float(t)
    return answered, min(uncertain, answered)


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    from .training import roc_auc

    v = roc_auc(scores, labels)
    return None if v != v else round(v, 4)


def reliability(conf: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict]:
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        m = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
        if m.any():
            out.append({"bin": [lo, hi], "n": int(m.sum()), "mean_confidence": round(float(conf[m].mean()), 4),
                        "right": round(float(right[m].mean()), 4)})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.fit_confidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(DEFAULT_PATH))
    parser.add_argument("--news-gold", default=str(PROJECT_ROOT / "eval" / "news-dev.jsonl"))
    parser.add_argument("--news-index", default=str(PROJECT_ROOT / ".bench" / "news-dev" / "index"),
                        help="the index of the news-dev stories (scripts/news_dev_corpus.py and `qa build`)")
    parser.add_argument("--squad-v2", default=str(SHARED / "bench-data" / "squad-dev-v2.0-half-a.json"))
    parser.add_argument("--squad-index", default=str(PROJECT_ROOT / ".bench" / "confidence-squad-index"))
    parser.add_argument("--news-weight", type=float, default=10.0, help="a news question weighs this many SQuAD ones")
    parser.add_argument("--precision", type=float, default=0.90, help="answered replies right at least this often")
    parser.add_argument("--abstain-right", type=float, default=0.10,
                        help="refused questions may have had a right sentence at most this often")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--sets", default="seed,news-dev,squad", help="the tuning sets to ask (comma-separated)")
    parser.add_argument("--cache", default=str(PROJECT_ROOT / ".bench" / "confidence-cache"),
                        help="keeps each set's questions as asked (features, labels) for the same reader and features; "
                             "'' for none")
    args = parser.parse_args(argv)
    t_start = time.time()

    from .config import resolve_settings
    from .engine import Engine
    from .evaluation import load_gold, squad_corpus
    from .training import calibration_articles

    from .answerability import DEFAULT_FOLDER

    reader_config = json.loads((DEFAULT_FOLDER / "config.json").read_text(encoding="utf-8"))
    cache = Path(args.cache) if args.cache else None
    key = {"reader_sha256": reader_config["model_sha256"], "features": list(FEATURES)}

    def seed_set():
        engine = Engine.open(resolve_settings(rebuild="never"), log=log)
        return ask_all("seed", engine, load_gold(PROJECT_ROOT / "eval" / "seed.jsonl"), 1.0, True, False)

    def news_set():
        golds = [g for g in load_gold(args.news_gold) if g.part in (None, "tuning")]
        engine = Engine.open(resolve_settings(index_dir=args.news_index, rebuild="never"), log=log)
        return ask_all("news-dev", engine, golds, 1.0, True, True)

    def squad_set():
        v2_titles = [a["title"] for a in json.loads(Path(args.squad_v2).read_text(encoding="utf-8"))["data"]]
        calib = set(calibration_articles(v2_titles))
        articles, golds = squad_corpus(args.squad_v2)
        engine = Engine.open(resolve_settings(index_dir=args.squad_index), articles=[a for a in articles if a.id in calib],
                             sources=["squad"], export_onnx=True, log=log)  # questions on onnxruntime, as the app asks
        return ask_all("squad", engine, [g for g in golds if g.article in calib], 1.0, False, True)

    items: list[Asked] = []
    makers = {"seed": seed_set, "news-dev": news_set, "squad": squad_set}
    for name in args.sets.split(","):
        if name not in makers:
            raise SystemExit(f"--sets: no set {name!r}; choose among {', '.join(makers)}.")
        items += cached(name, cache, key, makers[name])
    for it in items:
        it.weight = args.news_weight if it.news else 1.0

    fold = folds(items)
    n_folds = max(fold) + 1
    oof = np.full(len(items), np.nan)
    right = np.zeros(len(items), bool)
    for f in range(n_folds):
        train = [it for it, ff in zip(items, fold) if ff != f]
        params = fit_scorer(train, args.l2)
        for i, (it, ff) in enumerate(zip(items, fold)):
            if ff == f and it.rows is not None:
                oof[i], right[i] = best_of(it, *params)
    rule = np.array([it.rows is None for it in items])
    answerable = np.array([it.answerable for it in items])
    weight = np.array([it.weight for it in items])
    a, b = fit_platt(oof[~rule], right[~rule].astype(np.float64), weight[~rule])
    conf = np.where(rule, 0.0, 1 / (1 + np.exp(-(a * np.nan_to_num(oof) + b))))
    news = np.array([it.news for it in items])
    t_answered, t_uncertain = choose_thresholds(conf[news], right[news], answerable[news], rule[news], args.precision,
                                                args.abstain_right)
    mean, scale, weights, bias = fit_scorer(items, args.l2)

    sets = {}
    for name in dict.fromkeys(it.set for it in items):
        m = np.array([it.set == name for it in items])
        by_rule: dict[str, list[int]] = {}
        for it in items:
            if it.set == name and it.rule:
                by_rule.setdefault(it.rule, [0, 0])[0 if it.answerable else 1] += 1
        sets[name] = {"questions": int(m.sum()), "answerable": int((m & answerable).sum()),
                      "refused_by_rules": int((m & rule).sum()),
                      "rules_refusing_answerable_unanswerable": by_rule,
                      "auc_best_candidate_right": auc(conf[m & ~rule], right[m & ~rule]),
                      "at_thresholds": outcome_table(conf[m], right[m], answerable[m], rule[m], t_answered),
                      "reliability": reliability(conf[m & ~rule], right[m & ~rule])}
    info = {
        "reader_sha256": reader_config["model_sha256"],
        "fitted_on": {"sets": sets, "news_weight": args.news_weight, "l2": args.l2, "folds": n_folds,
                      "thresholds_chosen_on": "news questions (seed, news-dev tuning part), out-of-fold confidences",
                      "precision_target": args.precision, "abstain_right_target": args.abstain_right},
        "reliability_news": reliability(conf[news & ~rule], right[news & ~rule]),
        "command": "python -m qa.fit_confidence " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seconds": round(time.time() - t_start),
    }
    model = ConfidenceModel(mean, scale, weights, bias, (a, b), t_answered, t_uncertain, info)
    model.save(Path(args.output))
    log(f"thresholds: answered >= {t_answered:.3f}, uncertain >= {t_uncertain:.3f}")
    for name, s in sets.items():
        log(f"{name}: {json.dumps({k: v for k, v in s.items() if k != 'reliability'})}")
    log(f"wrote {args.output} in {time.time() - t_start:.0f}s (features: {', '.join(FEATURES)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
