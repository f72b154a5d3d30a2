"""Can a passage reranker trained here order the engine's top passages better than the retrieval does? An
experiment, not part of the service. Results: docs/conversations.md, "A passage reranker trained here".

    python benchmarks/passage_ranker.py train /tmp/ranker                      # ~33 min on 2 CPUs, seed 13
    python benchmarks/passage_ranker.py eval /tmp/ranker --weight 0.1 -- eval/conversations.jsonl --quiet

`train`: a cross-encoder (all-MiniLM-L6-v2's first `--layers` layers, mean of the piece vectors, one linear
score) reads `[CLS] question [SEP] paragraph [SEP]`. Each answerable SQuAD question is a group of its own
paragraph and `--negatives` others of the same article (all but one among the most similar to the question for
the bi-encoder, one at random); the loss is the cross-entropy of the group's scores (the right paragraph
first). Data rules of the bench-data README, as qa.training: half A's articles except the 6 calibration ones,
and the 13 v1.1 articles outside SQuAD v2.0 dev. 40 % of questions are lower-cased without "?" (half of those
without apostrophes too), like the chat's questions.

`eval`: runs `qa eval` (everything after `--`) with the engine's retrieval wrapped: its best `--top` passages
are rescored as score + weight * softmax(ranker scores) over them, reading the text retrieval searched with.
A large weight (10) lets the ranker alone order them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.training import (  # noqa: E402
    DEFAULT_V2, DEFAULT_V11, V11_TRAIN_ARTICLES, apply_step, base_model_path, calibration_articles, load_squad, log,
    optimizer_for,
)


def build_ranker(layers: int):
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(base_model_path(), add_pooling_layer=False)
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers

    class Ranker(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert
            self.head = torch.nn.Linear(bert.config.hidden_size, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * m).sum(1) / m.sum(1).clamp(min=1.0)).squeeze(-1)

    return Ranker()


def groups_of(seed: int, negatives: int) -> tuple[list[str], list[tuple[str, int, list[int]]], random.Random]:
    from sentence_transformers import SentenceTransformer

    v2_titles = [a["title"] for a in json.loads(Path(DEFAULT_V2).read_text(encoding="utf-8"))["data"]]
    calibration = set(calibration_articles(v2_titles))
    paras = load_squad(DEFAULT_V2, [t for t in v2_titles if t not in calibration]) + load_squad(DEFAULT_V11, V11_TRAIN_ARTICLES)
    contexts = [p.context for p in paras]
    questions = [(i, q.text) for i, p in enumerate(paras) for q in p.questions if q.answerable]
    st = SentenceTransformer(base_model_path(), device="cpu")
    pv = st.encode(contexts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    qv = st.encode([t for _, t in questions], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    by_article: dict[str, list[int]] = {}
    for i, p in enumerate(paras):
        by_article.setdefault(p.article, []).append(i)
    rng = random.Random(seed)

    def casual(q: str) -> str:
        if rng.random() < 0.4:
            q = q.rstrip(" ?").lower()
            if rng.random() < 0.5:
                q = q.replace("'", "")
        return q

    groups = []
    for (pi, text), v in zip(questions, qv):
        same = [j for j in by_article[paras[pi].article] if j != pi]
        if len(same) < negatives:
            continue
        hard = [same[j] for j in np.argsort(-(pv[same] @ v))[: negatives * 2]]
        groups.append((casual(text), pi, rng.sample(hard, negatives - 1) + [rng.choice(same)]))
    log(f"{len(paras)} paragraphs, {len(groups)} question groups")
    return contexts, groups, rng  # the same generator then shuffles the groups


def train(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    contexts, groups, rng = groups_of(args.seed, args.negatives)
    tok = AutoTokenizer.from_pretrained(base_model_path())
    model = build_ranker(args.layers)
    total = int(math.ceil(len(groups) / args.groups) * args.epochs)
    stop = min(total, args.max_steps or total)  # --max-steps stops early on the full schedule
    opt, sched = optimizer_for(model, args.lr, total, 0.06)
    model.train()
    step, losses, t0 = 0, [], time.time()
    while step < stop:
        rng.shuffle(groups)
        for b in range(0, len(groups), args.groups):
            if step >= stop:
                break
            batch = groups[b : b + args.groups]
            pairs = [(q, contexts[j]) for q, pi, negs in batch for j in [pi, *negs]]
            enc = tok([q for q, _ in pairs], [c for _, c in pairs], truncation="only_second", max_length=args.max_length,
                      padding=True, return_tensors="pt")
            scores = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).view(len(batch), -1)
            loss = torch.nn.functional.cross_entropy(scores, torch.zeros(len(batch), dtype=torch.long))
            losses.append(apply_step(model, opt, sched, loss))
            step += 1
            if step % 50 == 0 or step == stop:
                log(f"step {step}/{total}  loss {np.mean(losses[-50:]):.4f}  {time.time() - t0:.0f}s")
    model.eval()
    torch.save(model.state_dict(), out / "ranker.pt")
    (out / "args.json").write_text(json.dumps({"layers": args.layers, "max_length": args.max_length}) + "\n")
    log(f"trained in {time.time() - t0:.0f}s -> {out}")


def evaluate(args: argparse.Namespace, qa_args: list[str]) -> int:
    import torch
    from transformers import AutoTokenizer

    import qa.retrieval as retrieval
    from qa.cli import main as qa_main

    config = json.loads((Path(args.model) / "args.json").read_text())
    tok = AutoTokenizer.from_pretrained(base_model_path())
    model = build_ranker(config["layers"])
    model.load_state_dict(torch.load(Path(args.model) / "ranker.pt"))
    model.eval()
    search = retrieval.Retriever.search

    def reranked(self, query, k, rows=None, boost=None):
        hits = search(self, query, max(k, args.top), rows=rows, boost=boost)
        top = hits[: args.top]
        if len(top) < 2:
            return hits[:k]
        enc = tok([query.text] * len(top), [self.index.chunks[h.row].text for h in top], truncation="only_second",
                  max_length=config["max_length"], padding=True, return_tensors="pt")
        with torch.no_grad():
            r = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).numpy()
        p = np.exp(r - r.max())
        p /= p.sum()
        top = sorted((replace(h, score=h.score + args.weight * float(x)) for h, x in zip(top, p)), key=lambda h: -h.score)
        return (top + hits[args.top :])[:k]

    retrieval.Retriever.search = reranked
    return qa_main(["eval", *qa_args])


def main() -> int:
    argv = sys.argv[1:]
    qa_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("output")
    t.add_argument("--layers", type=int, default=3)
    t.add_argument("--max-length", type=int, default=192)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--negatives", type=int, default=3)
    t.add_argument("--groups", type=int, default=8, help="question groups per step")
    t.add_argument("--lr", type=float, default=5e-5)
    t.add_argument("--seed", type=int, default=13)
    t.add_argument("--max-steps", type=int, default=0, help="stop early (a check that it runs)")
    e = sub.add_parser("eval")
    e.add_argument("model")
    e.add_argument("--weight", type=float, default=0.1)
    e.add_argument("--top", type=int, default=5)
    args = p.parse_args(argv)
    if args.command == "train":
        train(args)
        return 0
    return evaluate(args, qa_args)


if __name__ == "__main__":
    raise SystemExit(main())
