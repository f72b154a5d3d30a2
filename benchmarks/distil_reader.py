"""Does a 3-layer reader learn more from a 6-layer teacher than from the labels alone? An experiment, not part of
the service. It runs `python -m qa.training` unchanged, except that each training example's 0/1 answer label
becomes (1 - w) * label + w * sigmoid(teacher's answer logit). The teacher is a reader trained by the same command
with `--layers 6`. Spans keep their hard labels. Results: docs/answerability.md, "Six layers".

    python -m qa.training --output /tmp/reader6 --layers 6 --read 1                 # the teacher, ~37 min
    python benchmarks/distil_reader.py --teacher /tmp/reader6 --weight 0.5 -- --output /tmp/student --read 1

Everything after `--` goes to qa.training (same defaults: 3 layers, seed 13, 2 epochs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa.training as training  # noqa: E402
from qa.answerability import AnswerabilityModel  # noqa: E402

BATCH = 64


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", type=Path, required=True, help="a reader folder (qa.training --output)")
    ap.add_argument("--weight", type=float, default=0.5, help="share of the teacher in each answer label")
    args = ap.parse_args(argv[:split])
    teacher = AnswerabilityModel.load(args.teacher)
    encode = training.encode_examples

    def encode_with_teacher(tokenizer, examples, max_length):
        rows = encode(tokenizer, examples, max_length)
        training.log(f"teacher {args.teacher} labels {len(rows)} examples (weight {args.weight})")
        for b in range(0, len(rows), BATCH):
            batch = training.collate(rows[b : b + BATCH])
            answer, _start, _end = teacher.session.run(None, {"input_ids": batch.input_ids,
                                                              "attention_mask": batch.attention_mask,
                                                              "token_type_ids": batch.token_type_ids})
            soft = 1.0 / (1.0 + np.exp(-np.asarray(answer, np.float64)))
            for row, p in zip(rows[b : b + BATCH], soft):
                row["label"] = (1 - args.weight) * row["label"] + args.weight * float(p)
        return rows

    training.encode_examples = encode_with_teacher
    return training.main(argv[split + 1 :])


if __name__ == "__main__":
    raise SystemExit(main())
