"""Adding an article while serving: how long an add takes against embedding its passages alone, and how long a
question asked meanwhile waits, all measured in the same run on a copy of the repository's index.

    python benchmarks/add_article.py [--json benchmarks/add_article.json] [--md benchmarks/add_article.md] [--reps 5]

The story is a real ~1,000-word news text (the expected text of tests/fixtures/html/wapo-1.html, cut at the
first paragraph end after 1,000 words). The engine runs as the app runs it: the ONNX query encoder with QA_THREADS=1, which is also what
embeds an added article.
- add: `Engine.add_article(story)` (checks, file written, passages embedded, BM25 rebuilt, index saved and
  swapped), then the article is removed again for the next repetition; median of --reps, with no questions
  asked meanwhile (they would share the CPU with it);
- floor: `embedder.encode(passages)` of the same passages alone, median of --reps, interleaved with the adds;
- a question during an add: seed questions asked in a loop (1) on a thread of the adding process (the chat's
  route) and (2) in another process holding the same index (an ask worker), while adds run; the longest wait of
  a question that overlapped an add against the longest and median of the same questions with no add running.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QA_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ["Were any victims identified?", "Who is the chief administrator of COPA?",
             "When did the agency receive the information?", "How many migrants were living at police stations?"]


def story(words: int = 1000) -> str:
    paragraphs = (ROOT / "tests" / "fixtures" / "html" / "wapo-1.expected.txt").read_text(encoding="utf-8").split("\n\n")
    out, n = [], 0
    for p in paragraphs:
        out.append(p)
        n += len(p.split())
        if n >= words:
            break
    return "\n\n".join(out)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def asker(index_dir: str, stop, out, ready) -> None:
    """Another process (an ask worker's situation): asks in a loop, recording (start, end) of each question."""
    from qa import Engine, resolve_settings

    engine = Engine.open(resolve_settings(index_dir=index_dir, rebuild="never"), log=lambda _m: None)
    engine.ask(QUESTIONS[0])
    ready.set()
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        engine.ask(QUESTIONS[i % len(QUESTIONS)])
        out.put((t, time.perf_counter()))
        i += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()

    from qa import Engine, resolve_settings
    from qa.articles import parse_article
    from qa.chunking import chunk_article
    from qa.collection import prepare_article

    work = Path(tempfile.mkdtemp(prefix="qa-add-bench-"))
    try:
        shutil.copytree(ROOT / "articles", work / "articles")
        shutil.copytree(ROOT / "index", work / "index")
        settings = resolve_settings(index_dir=str(work / "index"), articles=[str(work / "articles")])
        engine = Engine.open(settings, log=lambda _m: None)
        assert engine.embedder.backend == "onnx", "the repository's index has no sound ONNX export"
        text = story()
        new = prepare_article(text)
        article = parse_article(new.raw, article_id=new.id, path="x", sha256="")
        passages = [c.text for c in chunk_article(article, max_tokens=engine.embedder.max_tokens,
                                                  count_tokens=engine.embedder.count_tokens)]
        engine.ask(QUESTIONS[0])
        engine.embedder.encode(passages)  # warm

        # no add running: the same questions, on a thread of this process
        alone = []
        for i in range(40):
            t = time.perf_counter()
            engine.ask(QUESTIONS[i % len(QUESTIONS)])
            alone.append(time.perf_counter() - t)

        ctx = multiprocessing.get_context("spawn")
        stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
        other = ctx.Process(target=asker, args=(str(work / "index"), stop, out, ready))
        other.start()
        ready.wait(120)
        time.sleep(1.0)
        other_alone = []
        while not out.empty():
            a, b = out.get()
            other_alone.append(b - a)

        floors, adds, windows, thread_waits = [], [], [], []
        for _ in range(args.reps):  # the add against its floor, nothing else running in this process
            t = time.perf_counter()
            engine.embedder.encode(passages)
            floors.append(time.perf_counter() - t)
            t = time.perf_counter()
            entry = engine.add_article(text, log=lambda _m: None)
            adds.append(time.perf_counter() - t)
            engine.remove_article(entry["article"], log=lambda _m: None)
        for _ in range(args.reps):  # adds again, with questions asked meanwhile
            asking, waits = threading.Event(), []

            def ask_loop() -> None:
                i = 0
                while not asking.is_set():
                    t0 = time.perf_counter()
                    engine.ask(QUESTIONS[i % len(QUESTIONS)])
                    waits.append((t0, time.perf_counter()))
                    i += 1

            thread = threading.Thread(target=ask_loop)
            thread.start()
            time.sleep(0.05)
            t = time.perf_counter()
            entry = engine.add_article(text, log=lambda _m: None)
            end = time.perf_counter()
            windows.append((t, end))
            asking.set()
            thread.join()
            thread_waits += [b - a for a, b in waits if a < end and b > t]
            engine.remove_article(entry["article"], log=lambda _m: None)
        time.sleep(0.5)
        stop.set()
        other_during = []
        while True:
            try:
                a, b = out.get(timeout=2)
            except Exception:
                break
            if any(a < w1 and b > w0 for w0, w1 in windows):
                other_during.append(b - a)
        other.join(30)

        floor, add = statistics.median(floors), statistics.median(adds)
        res = {
            "passages": len(passages), "words": len(text.split()), "reps": args.reps,
            "embed_alone_ms": ms(floor), "add_ms": ms(add), "add_ratio": round(add / floor, 2),
            "ask_alone_ms": {"p50": ms(statistics.median(alone)), "max": ms(max(alone))},
            "ask_during_add_same_process_ms": {"n": len(thread_waits), "max": ms(max(thread_waits)) if thread_waits else None},
            "ask_alone_other_process_ms": {"p50": ms(statistics.median(other_alone)), "max": ms(max(other_alone))} if other_alone else None,
            "ask_during_add_other_process_ms": {"n": len(other_during), "max": ms(max(other_during)) if other_during else None},
            "loadavg": [float(x) for x in open("/proc/loadavg").read().split()[:3]],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    other_max = res["ask_during_add_other_process_ms"]["max"]
    one_ask = res["ask_alone_other_process_ms"]["max"] if res["ask_alone_other_process_ms"] else None
    rows = [
        ("add a story of %d words (%d passages), median of %d" % (res["words"], res["passages"], res["reps"]),
         f"{res['add_ms']} ms", f"{res['embed_alone_ms']} ms (embedding its passages alone)", f"{res['add_ratio']}×",
         "≤ 1.5×", res["add_ratio"] <= 1.5),
        ("longest wait of a question asked during an add, in another process (an ask worker)",
         f"{other_max} ms (n={res['ask_during_add_other_process_ms']['n']})", f"{one_ask} ms (longest ask with no add)",
         "", "≤ one ask", other_max is not None and one_ask is not None and other_max <= one_ask),
        ("longest wait of a question asked during an add, on a thread of the adding process (the chat)",
         f"{res['ask_during_add_same_process_ms']['max']} ms (n={res['ask_during_add_same_process_ms']['n']})",
         f"{res['ask_alone_ms']['max']} ms (longest ask with no add; p50 {res['ask_alone_ms']['p50']} ms)", "", "(comparison)", None),
    ]
    md = ["| figure | value | against | ratio | target | met |", "|---|---|---|---|---|---|"]
    md += [f"| {a} | {b} | {c} | {d} | {e} | {'' if f is None else 'yes' if f else 'no'} |" for a, b, c, d, e, f in rows]
    md.append(f"\nLoad average during the run: {res['loadavg']}.")
    print("\n".join(md))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    if args.md:
        args.md.write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
