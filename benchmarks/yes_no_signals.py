"""Can a cue we already compute tell an answerable yes/no question from one about an event the article never
reports ("Was the officer fired?")? An experiment, not part of the service. Per yes/no question of the seed
gold sets and the conversation gold sets (each conversation turn as its gold self-contained `interpreted_as`),
plus the unanswerable ones written for this check (EXTRA), through the seed index:

- missing: content words of the question found nowhere in the article (qa.training's content words, plural "s"
  stripped);
- weakest: min over the question's content word pieces of their best MiniLM token cosine in the answer sentence;
- reader: the trained reader's answer probability for the answer sentence.

Results: docs/answerability.md, "Yes/no questions about events the article never reports".

    python benchmarks/yes_no_signals.py          # a few seconds; needs the seed index (index/)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer import _read  # noqa: E402
from qa.answerability import is_yes_no  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.retrieval import LateInteraction  # noqa: E402
from qa.training import content_words  # noqa: E402  (qa.training imports torch only to train)

GOLD = ["eval/seed.jsonl", "eval/holdout.jsonl", "eval/conversations.jsonl", "eval/conversations-holdout.jsonl"]
EXTRA = ["Was the officer fired?", "Was the officer arrested?", "Did the officer resign?",
         "Was the officer charged with a crime?", "Has the victim sued the city?", "Did the migrant file a lawsuit?",
         "Was the officer put on leave?", "Did COPA close the case?", "Was the tipster paid?"]


def questions() -> list[tuple[str, str, bool]]:
    """(source, question, answerable) for every yes/no question of the gold sets, then EXTRA."""
    out = []
    for name in GOLD:
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            turns = record["turns"] if "turns" in record else [record]
            for turn in turns:
                q = turn.get("interpreted_as") or turn["question"]
                if is_yes_no(q):
                    out.append((Path(name).stem, q, bool(turn.get("answer"))))
    return out + [("extra", q, False) for q in EXTRA]


def main() -> int:
    engine = Engine.open()
    index = engine.index
    story = {w for a in index.articles.values() for w in content_words(Path(a.path).read_text(encoding="utf-8"))}
    print("| group | question | missing words | weakest piece | reader |\n|---|---|---|---|---|")
    for source, q, answerable in sorted(questions(), key=lambda x: (not x[2], x[0])):
        query = engine.query(q, index)
        top = engine.refresh().retriever.search(query, 3)[0]
        best = int(np.argmax(top.sentence_scores))
        sims = LateInteraction(index, query, np.array([top.row])).sims[0]
        owner = index.tokens_of([top.row])[0][1]
        weakest = float(sims[:, owner == best].max(axis=1).min()) if sims is not None and (owner == best).any() else float("nan")
        missing = [w for w in content_words(q) if w not in story]
        reader = _read(engine.reader, q, index, top, best).answer_prob
        group = f"{'answerable' if answerable else 'unanswerable'} ({source})"
        print(f"| {group} | {q} | {', '.join(missing) or '–'} | {weakest:.2f} | {reader:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
