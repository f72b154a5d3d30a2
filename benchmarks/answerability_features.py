"""Does a learned combination of cues decide answerability better than the reader or the engine's own sentence
score? An experiment, not part of the service: per question, the engine's retrieval scores, the trained
reader's verdict on the answer sentence, and lexical cues (question words, names and numbers missing from the
sentence and the passage, weighted by rarity; negation; question type), scored by a logistic regression and a
gradient-boosted model trained leave-one-article-out on the reader's six calibration articles of SQuAD v2.0
half A (articles it was never trained on). Then: what a threshold on the best single cue would cost on the
news gold sets. Results: docs/answerability.md, "A stacker over richer features".

    python benchmarks/answerability_features.py [--work .bench/answerability-features]

Needs scikit-learn (installed with sentence-transformers). About two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answerability import is_yes_no  # noqa: E402
from qa.config import resolve_settings  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluation import normalize, squad_corpus  # noqa: E402
from qa.grounding import expected_type, has_type, wants_short_answer  # noqa: E402
from qa.training import DEFAULT_V2  # noqa: E402  (qa.training imports torch only to train)
from qa.training import content_words as stems  # noqa: E402

NEGATIONS = frozenset({"not", "never", "no", "nobody", "none", "nothing", "without"})
WH = ("who", "when", "where", "why", "which", "what", "how", "other")


def negated(text: str) -> bool:
    return any(w in NEGATIONS or w.endswith("n't") for w in text.lower().split())


def dump(engine: Engine, items: list[tuple[str, bool, list[str], str | None]]) -> list[dict]:
    """One feature row per question: (question, answerable, evidence, article id or None)."""
    index = engine.index
    df: Counter[str] = Counter()
    article_words: dict[str, set[str]] = {}
    for c in index.chunks:
        words = set(stems(c.text))
        df.update(words)
        article_words.setdefault(c.article_id, set()).update(words)
    n = len(index.chunks)

    def idf(w: str) -> float:
        return math.log((n + 1) / (df.get(w, 0) + 0.5))

    rows = []
    for question, answerable, evidence, article in items:
        answer = engine.ask(question, 3)
        hits = engine.retriever.search(engine.query(question), 3)
        if not hits:
            continue
        top = hits[0]
        chunk = index.chunks[top.row]
        kind = expected_type(question)
        order = sorted(range(len(chunk.sentences)), key=lambda i: -top.sentence_scores[i])
        texts = [chunk.text[s.start - chunk.start : s.end - chunk.start] for s in chunk.sentences]
        eligible = [i for i in order if kind is None or has_type(texts[i], kind, question)]
        best = eligible[0] if eligible else order[0]
        s = chunk.sentences[best]
        reading = engine.reader.read(question, chunk.text, [(s.start - chunk.start, s.end - chunk.start)])[0] \
            if engine.reader is not None else None
        q = stems(question)
        in_sentence, in_passage = set(stems(texts[best])), set(stems(chunk.text))
        total = sum(idf(w) for w in q) or 1.0
        miss_s = [w for w in q if w not in in_sentence]
        miss_p = [w for w in q if w not in in_passage]
        caps = re.findall(r"\b[A-Z][a-zA-Z]+\b", question)[1:]
        numbers = re.findall(r"\d+", question)
        first = next((w for w in question.lower().split() if w in WH), "other")
        rows.append({
            "answerable": answerable, "article": article, "engine_abstained": answer.abstained,
            "gold_in_top": bool(answerable and (article is None or chunk.article_id == article)
                                and any(normalize(e) in normalize(chunk.text) for e in evidence)),
            "score1": top.score, "gap": top.score - (hits[1].score if len(hits) > 1 else 0.0), "dense": top.dense,
            "sentence": top.sentence, "best_sent_score": top.sentence_scores[best],
            "max_sent_score": max(top.sentence_scores),
            "reader_logit": reading.logit if reading else 0.0, "span_prob": reading.span_prob if reading else 0.0,
            "frac_miss_s": len(miss_s) / max(1, len(q)), "frac_miss_p": len(miss_p) / max(1, len(q)),
            "idf_miss_s": sum(idf(w) for w in miss_s) / total, "idf_miss_p": sum(idf(w) for w in miss_p) / total,
            "max_idf_miss_s": max((idf(w) for w in miss_s), default=0.0),
            "max_idf_miss_p": max((idf(w) for w in miss_p), default=0.0),
            "n_miss_article": sum(w not in article_words.get(chunk.article_id, set()) for w in q), "q_len": len(q),
            "caps": len(caps), "caps_missing": sum(stems(t)[0] not in in_passage for t in caps if stems(t)),
            "numbers": len(numbers), "numbers_missing": sum(x not in chunk.text for x in numbers),
            "neg_mismatch": float(negated(question) != negated(texts[best])),
            "type_ok": 0.0 if kind is None else (1.0 if eligible else -1.0), "yes_no": float(is_yes_no(question)),
            "factual": wants_short_answer(question), **{f"wh_{w}": float(first == w) for w in WH},
        })
    return rows


RETRIEVAL = ["score1", "gap", "dense", "sentence", "best_sent_score", "max_sent_score"]
READER = ["reader_logit", "span_prob"]
LEXICAL = ["frac_miss_s", "frac_miss_p", "idf_miss_s", "idf_miss_p", "max_idf_miss_s", "max_idf_miss_p",
           "n_miss_article", "q_len", "caps", "caps_missing", "numbers", "numbers_missing", "neg_mismatch", "type_ok",
           "yes_no", *[f"wh_{w}" for w in WH]]


def refused_at(p: np.ndarray, y: np.ndarray, false_abstention: float) -> float:
    """Share of unanswerable questions refused by the threshold that refuses `false_abstention` of answerable ones."""
    return float((p[y == 0] < np.quantile(p[y == 1], false_abstention)).mean())


def line(name: str, p: np.ndarray, y: np.ndarray) -> str:
    from sklearn.metrics import roc_auc_score

    return (f"| {name} | {roc_auc_score(y, p):.3f} | {refused_at(p, y, 0.05):.1%} | {refused_at(p, y, 0.075):.1%} | "
            f"{refused_at(p, y, 0.10):.1%} |")


def leave_one_article_out(rows: list[dict], names: list[str], boosted: bool) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    X = np.array([[float(r[n]) for n in names] for r in rows])
    y = np.array([int(r["answerable"]) for r in rows])
    articles = np.array([r["article"] for r in rows])
    p = np.zeros(len(rows))
    for a in sorted(set(articles)):
        train, test = articles != a, articles == a
        if boosted:
            model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0)
            p[test] = model.fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        else:
            mu, sd = X[train].mean(0), X[train].std(0) + 1e-9
            model = LogisticRegression(C=1.0, max_iter=2000)
            p[test] = model.fit((X[train] - mu) / sd, y[train]).predict_proba((X[test] - mu) / sd)[:, 1]
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / ".bench" / "answerability-features")
    ap.add_argument("--squad-v2", type=Path, default=DEFAULT_V2)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    config = json.loads((ROOT / "models" / "answerability" / "config.json").read_text(encoding="utf-8"))
    calibration = set(config["calibration_articles"])

    articles, golds = squad_corpus(args.squad_v2)
    engine = Engine.open(resolve_settings(index_dir=str(args.work / "calibration-index")),
                         articles=[a for a in articles if a.id in calibration], sources=["squad"])
    calib = dump(engine, [(g.question, g.answerable, list(g.evidence), g.article) for g in golds if g.article in calibration])
    news = {}
    for name in ("seed", "holdout"):
        gold = [json.loads(line) for line in (ROOT / "eval" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        news[name] = dump(Engine.open(resolve_settings(index_dir=str(ROOT / "index"), rebuild="never")),
                          [(g["question"], g["answer"] is not None, g.get("evidence", []), None) for g in gold])

    y = np.array([int(r["answerable"]) for r in calib])
    unanswerable = len(y) - int(y.sum())
    print(f"Calibration articles ({', '.join(sorted(calibration))}): {len(y)} questions, {unanswerable} unanswerable.\n")
    print("| signal (higher = answer) | AUC | refused @ 5 % FA | @ 7.5 % FA | @ 10 % FA |\n|---|---|---|---|---|")
    print(line("reader logit alone", np.array([r["reader_logit"] for r in calib]), y))
    print(line("engine's best sentence score alone", np.array([r["best_sent_score"] for r in calib]), y))
    print(line("rarity-weighted question words found in the sentence", -np.array([r["idf_miss_s"] for r in calib]), y))
    for label, names, boosted in [
        ("logistic: retrieval scores", RETRIEVAL, False),
        ("logistic: retrieval + reader", RETRIEVAL + READER, False),
        ("logistic: retrieval + lexical", RETRIEVAL + LEXICAL, False),
        ("logistic: all", RETRIEVAL + READER + LEXICAL, False),
        ("gradient boosting: all", RETRIEVAL + READER + LEXICAL, True),
    ]:
        print(line(f"{label} (leave one article out)", leave_one_article_out(calib, names, boosted), y))

    print("\nThe engine's rules plus a threshold on its best sentence score (refuse under t):\n")
    print("| t | " + " | ".join(f"{n}: answerable refused / unanswerable refused" for n in ("calibration", "seed", "holdout"))
          + " |\n|---|---|---|---|")
    for t in (0.3, 0.35, 0.4, 0.45, 0.5):
        cells = []
        for rows in (calib, news["seed"], news["holdout"]):
            refuse = [r["engine_abstained"] or r["best_sent_score"] < t for r in rows]
            fa = np.mean([x for x, r in zip(refuse, rows) if r["answerable"]])
            ca = np.mean([x for x, r in zip(refuse, rows) if not r["answerable"]])
            cells.append(f"{fa:.1%} / {ca:.1%}")
        print(f"| {t} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
