"""Which codec keeps the late-interaction (MaxSim) ranking: the retriever's hit@1 / hit@3 with the token vectors
stored as float16 and the sentence vectors as float32 (the old format), and with the token vectors as int8, 4-bit
or 5-bit codes with one scale a row (rotated or not) and the sentence vectors as int8 (qa/quantize.py), on the seed
sets and a SQuAD v1.1 dev sample.

    python benchmarks/archive_codecs.py [--sample 2000] [--seed 1] [--json benchmarks/archive_codecs.json]

Passages are embedded once (an embedder that remembers what it encoded); for each codec the index is written
again with `qa.quantize` replaced by that codec, and every question's top 3 passages (`Retriever.search`, the
article scope of the seed sets as `qa eval` uses it) are checked against the gold evidence. Retrieval only: the
reader and the answer checks do not take part (`qa eval` gives those).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QA_THREADS", "2")

from qa import quantize  # noqa: E402

REAL = {name: getattr(quantize, name) for name in ("CODEC", "encode", "decode", "rotate", "row_bytes", "encode8", "decode8",
                                                   "sentence_bytes")}


def _rows(bits: int, rotate: bool, clip: float | None) -> tuple:
    """A codec of `bits` bits a value and one scale a row (max |x| when clip is None, else clip x RMS)."""
    levels = 2 ** bits - 1
    rot = (lambda v: REAL["rotate"](v)) if rotate else (lambda v: np.asarray(v, dtype=np.float32))

    def encode(v):
        y = rot(v)
        m = np.abs(y).max(axis=1, keepdims=True) if clip is None else clip * np.sqrt((y ** 2).mean(axis=1, keepdims=True))
        m = np.maximum(m, 1e-12).astype(np.float32)
        q = np.clip(np.rint(y / m * levels / 2 + levels / 2), 0, levels).astype(np.uint16 if bits > 8 else np.uint8)
        return np.concatenate([q.view(np.uint8).reshape(len(v), -1), m.view(np.uint8).reshape(len(v), 4)], axis=1)

    def decode(rows, d):
        rows = np.asarray(rows)
        width = d * (2 if bits > 8 else 1)
        q = np.ascontiguousarray(rows[:, :width]).view(np.uint16 if bits > 8 else np.uint8).astype(np.float32)
        m = np.ascontiguousarray(rows[:, width:]).view(np.float32).reshape(len(rows), 1)
        return (q - levels / 2) / (levels / 2) * m

    return encode, decode, (lambda d: d * (2 if bits > 8 else 1) + 4), rot


def _float32_sentences():
    def encode8(v):
        return np.ascontiguousarray(v, dtype=np.float32).view(np.uint8).reshape(len(v), -1)

    def decode8(rows, d):
        return np.ascontiguousarray(np.asarray(rows)).view(np.float32).reshape(len(rows), d)

    return encode8, decode8, (lambda d: 4 * d)


def _float16():
    def encode(v):
        return np.asarray(v, dtype=np.float16).view(np.uint8).reshape(len(v), -1)

    def decode(rows, d):
        return np.ascontiguousarray(np.asarray(rows)).view(np.float16).astype(np.float32).reshape(len(rows), d)

    return encode, decode, (lambda d: 2 * d), (lambda v: np.asarray(v, dtype=np.float32))


CHOSEN = "5-bit, rotated, 3 RMS, unit (qa/quantize.py)"
STORED_BYTES = {"float16; sentences float32 (before)": 768, "int8, a scale a row": 386, "4-bit, a scale a row (max)": 194,
                "4-bit, rotated, 2.7 RMS": 194, CHOSEN: 242}  # a 384-dimension piece as stored (scale: float16)
CODECS = {
    "float16; sentences float32 (before)": _float16,
    "int8, a scale a row": lambda: _rows(8, False, None),
    "4-bit, a scale a row (max)": lambda: _rows(4, False, None),
    "4-bit, rotated, 2.7 RMS": lambda: _rows(4, True, 2.7),
    CHOSEN: None,
}


def use(name: str) -> None:
    for k, v in REAL.items():
        setattr(quantize, k, v)
    if CODECS[name] is None:
        return
    encode, decode, row_bytes, rotate = CODECS[name]()
    quantize.CODEC, quantize.encode, quantize.decode = name, encode, decode
    quantize.row_bytes, quantize.rotate = row_bytes, rotate
    if name.startswith("float16"):
        quantize.encode8, quantize.decode8, quantize.sentence_bytes = _float32_sentences()


class Remembering:
    """The query encoder, remembering what it encoded: each codec's build embeds nothing again."""

    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, {}
        self.name, self.backend = inner.name, "remembering"

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, **kw):
        from qa.embedding import Encoded

        todo = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if todo:
            enc = self.inner.encode(todo)
            for t, v, tok, off in zip(todo, enc.vectors, enc.tokens, enc.offsets):
                self.seen[t] = (v, tok, off)
        got = [self.seen[t] for t in texts]
        return Encoded(np.array([g[0] for g in got], np.float32).reshape(len(texts), -1), [g[1] for g in got],
                       [g[2] for g in got])


def hits(engine, golds) -> tuple[float, float]:
    from qa.evaluation import normalize

    h1 = h3 = 0
    for g in golds:
        article = getattr(g, "article", None)
        rows = engine.rows_of([article] if article else None)
        found = engine.retriever.search(engine.query(g.question), 3, rows=rows)
        texts = [normalize(engine.index.chunks[h.row].text) for h in found]
        ranks = [i for i, t in enumerate(texts) if any(normalize(e) in t for e in g.evidence)]
        h1 += bool(ranks) and ranks[0] == 0
        h3 += bool(ranks)
    return round(h1 / len(golds), 4), round(h3 / len(golds), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--squad", default=str(ROOT.parent / "shared" / "bench-data" / "squad-dev-v1.1.json"))
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not Path(args.squad).is_file():
        args.squad = "/work/shared/bench-data/squad-dev-v1.1.json"
    from qa import Engine, resolve_settings
    from qa.evaluation import load_gold, sample, squad_corpus
    from qa.onnx_backend import OnnxEmbedder, find_export

    embedder = Remembering(OnnxEmbedder("all-MiniLM-L6-v2", find_export(ROOT / "index", "all-MiniLM-L6-v2")))
    squad_articles, squad_golds = squad_corpus(args.squad)
    sets = {
        "eval/seed.jsonl": (None, [g for g in load_gold(ROOT / "eval" / "seed.jsonl") if g.answer]),
        "eval/holdout.jsonl": (None, [g for g in load_gold(ROOT / "eval" / "holdout.jsonl") if g.answer]),
        f"SQuAD v1.1 dev, {args.sample} q": (squad_articles, sample(squad_golds, args.sample, args.seed)),
    }
    out: dict = {"codecs": {}}
    work = Path(tempfile.mkdtemp(prefix="codecs-"))
    try:
        for name in CODECS:
            use(name)
            row = {"bytes_per_piece": STORED_BYTES[name]}
            for set_name, (articles, golds) in sets.items():
                folder = work / ("squad" if articles else "seed")
                shutil.rmtree(folder / "index", ignore_errors=True)
                if not articles:
                    shutil.copytree(ROOT / "articles", folder / "articles", dirs_exist_ok=True)
                settings = resolve_settings(index_dir=str(folder / "index"), articles=None if articles else
                                            [str(folder / "articles")], rebuild="auto")
                engine = Engine.open(settings, articles=articles, embedder=embedder, log=lambda _m: None)
                row[set_name] = hits(engine, golds)
                print(name, set_name, row[set_name], file=sys.stderr, flush=True)
            out["codecs"][name] = row
    finally:
        use(CHOSEN)
        shutil.rmtree(work, ignore_errors=True)
    lines = ["| token vectors | bytes a piece | " + " | ".join(sets) + " |", "|---|---|" + "---|" * len(sets)]
    for name, row in out["codecs"].items():
        cells = " | ".join(f"{row[s][0]:.3f} / {row[s][1]:.3f}" for s in sets)
        lines.append(f"| {name} | {row['bytes_per_piece']} | {cells} |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
