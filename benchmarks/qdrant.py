"""Both stores on the same archives (issue 26): the files index, and the same index copied into Qdrant (no
re-embedding). For each set: hit@1 / hit@3 and answer accuracy on each store, the share of questions whose whole
reply (sentence, status, confidence, passages and scores) is the same, warm ask p50 / p95 on each (measured in
the same run, so the ratio is what to read), and on the archive an add and a remove through the engine.

    python benchmarks/qdrant.py --json benchmarks/qdrant.json --md benchmarks/qdrant.md
    QA_QDRANT_URL=http://host:6333 python benchmarks/qdrant.py ...   # a Qdrant server instead of local mode
    python benchmarks/qdrant.py --skip-sets --archive .bench/archive/this-1000-fill ...   # a synthetic archive

Sets: the seed and holdout gold sets on the seed article (articles/), and --squad-sample questions of SQuAD v1.1
dev (its 48 articles, 2,249 passages, in one index; the files index is kept in .bench/qdrant-squad-index).
Qdrant runs in qdrant-client's embedded local mode unless QA_QDRANT_URL is set; local mode is a brute-force
scan in Python (docs/qdrant.md), so its speed is not a server's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa import Engine, resolve_settings  # noqa: E402
from qa.evaluation import compute_metrics, load_gold, sample, squad_corpus  # noqa: E402
from qa.qdrant_store import QdrantStore, copy_index  # noqa: E402

SQUAD = ROOT.parent / "shared" / "bench-data" / "squad-dev-v1.1.json"
STORY = ("Harbor bridge to close for repairs\n\nThe Harbor Bridge will close for six weeks from June 3 for repairs "
         "costing $12 million, the state transport agency said on Monday.\n\nDrivers will be sent over the Elm Street "
         "bridge, which will get two extra lanes while the work lasts, agency spokeswoman Rita Moreno said.\n")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _key(result: dict) -> tuple:
    return (result["answer"] and result["answer"]["text"], result["status"], result.get("confidence"),
            [(p["citation"]["article"], p["citation"]["start"], p["citation"]["end"], round(p["score"], 5))
             for p in result["passages"]])


def qdrant_store(tmp: Path, name: str) -> QdrantStore:
    url = os.environ.get("QA_QDRANT_URL")
    if url:
        return QdrantStore.connect(url=url, api_key=os.environ.get("QA_QDRANT_API_KEY"), collection=f"bench_{name}")
    return QdrantStore.connect(path=tmp / name)


def run_set(name: str, files: Engine, golds, tmp: Path, k: int) -> dict:
    before = rss_mb()
    t = time.perf_counter()
    store = qdrant_store(tmp, name)
    snapshot = copy_index(files.index, store)
    copy_seconds = time.perf_counter() - t
    qd = Engine(snapshot, files.embedder, replace(files.settings, store="qdrant", qdrant_path=str(tmp / name)), store=store)
    grown = rss_mb() - before
    for e in (files, qd):  # warm both
        e.ask(golds[0].question, k)
    out: dict = {"set": name, "questions": len(golds), "passages": len(files.index.chunks),
                 "articles": len(files.index.articles), "copy_seconds": round(copy_seconds, 1), "qdrant_rss_growth_mb": round(grown)}
    results: dict[str, list] = {"files": [], "qdrant": []}
    latencies: dict[str, list] = {"files": [], "qdrant": []}
    for g in golds:
        for label, e in (("files", files), ("qdrant", qd)):
            article = [g.article] if g.article and name in ("seed", "holdout") else None  # SQuAD: the whole archive
            t = time.perf_counter()
            r = e.ask(g.question, k, articles=article).to_json()
            latencies[label].append(time.perf_counter() - t)
            results[label].append(r)
    for label in ("files", "qdrant"):
        m = compute_metrics(golds, results[label], latencies[label], k)
        out[label] = {key: m[key] for key in ("hit@1", "hit@3", "answer_accuracy", "latency_ms_p50", "latency_ms_p95")}
    out["same_reply"] = round(sum(_key(a) == _key(b) for a, b in zip(results["files"], results["qdrant"])) / len(golds), 4)
    out["p50_ratio"] = round(out["qdrant"]["latency_ms_p50"] / out["files"]["latency_ms_p50"], 2)
    # an add and a remove of one short story, through the engine, on each store
    for label, e in (("files", files), ("qdrant", qd)):
        t = time.perf_counter()
        entry = e.add_article(STORY, log=lambda _m: None, merge="none")
        added = time.perf_counter() - t
        t = time.perf_counter()
        e.remove_article(entry["article"], log=lambda _m: None, merge="none")
        out[label].update({"add_seconds": round(added, 3), "remove_seconds": round(time.perf_counter() - t, 3)})
    store.close()
    return out


def markdown(report: dict) -> str:
    where = report["qdrant"]
    lines = [(f"Qdrant: {where}; k = {report['k']}; `python benchmarks/qdrant.py` (a synthetic archive's questions are "
              "not about its articles: only whether the replies match and the speed are read there)\n"),
             ("| set | questions | passages | hit@1 files / qdrant | hit@3 files / qdrant | same reply | ask p50 ms files / "
              "qdrant | p95 ms files / qdrant | add s files / qdrant | remove s files / qdrant | copy s | peak RSS +MB (qdrant copy) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        f, q = r["files"], r["qdrant"]
        gold = r["set"] in ("seed", "holdout", "squad")
        hits = (f"{f['hit@1']} / {q['hit@1']} | {f['hit@3']} / {q['hit@3']}") if gold else "– | –"
        lines.append(f"| {r['set']} | {r['questions']} | {r['passages']} | {hits} | {r['same_reply']:.1%} | "
                     f"{f['latency_ms_p50']} / {q['latency_ms_p50']} | {f['latency_ms_p95']} / {q['latency_ms_p95']} | "
                     f"{f['add_seconds']} / {q['add_seconds']} | {f['remove_seconds']} / {q['remove_seconds']} | "
                     f"{r['copy_seconds']} | {r['qdrant_rss_growth_mb']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad-sample", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--archive", action="append", default=[],
                    help="also a synthetic archive of benchmarks/archive.py (its folder: index/ and articles/), asked "
                         "--archive-questions SQuAD questions; only whether replies match and the speed mean anything there")
    ap.add_argument("--archive-questions", type=int, default=100)
    ap.add_argument("--skip-sets", action="store_true", help="only the --archive runs")
    ap.add_argument("--render", metavar="JSON", help="only write --md from an earlier run's --json")
    ap.add_argument("--json")
    ap.add_argument("--md")
    args = ap.parse_args()
    out_json, out_md = (Path(p).resolve() if p else None for p in (args.json, args.md))
    if args.render:
        Path(args.md).write_text(markdown(json.loads(Path(args.render).read_text(encoding="utf-8"))), encoding="utf-8")
        return 0
    archives = [Path(a).resolve() for a in args.archive]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        work = tmp / "project"
        (work / "articles").mkdir(parents=True)
        for f in (ROOT / "articles").iterdir():
            (work / "articles" / f.name).write_bytes(f.read_bytes())
        os.chdir(work)  # the engine's added articles go to this copy, never the repository's articles/
        quiet = lambda _m: None  # noqa: E731
        seed = Engine.open(resolve_settings(index_dir=str(work / "index"), articles=[str(work / "articles")]), log=quiet)
        articles, golds = squad_corpus(SQUAD)
        if not args.skip_sets:
            for name in ("seed", "holdout"):
                rows.append(run_set(name, seed, load_gold(ROOT / "eval" / f"{name}.jsonl"), tmp, args.k))
                print(json.dumps(rows[-1]), flush=True)
            kept = ROOT / ".bench" / "qdrant-squad-index"  # built once (~5 min), then copied: the run adds and removes
            if not kept.is_dir():
                Engine.open(resolve_settings(index_dir=str(kept)), articles=articles, sources=[str(SQUAD)], log=print)
            shutil.copytree(kept, tmp / "squad-index")
            squad = Engine.open(resolve_settings(index_dir=str(tmp / "squad-index")), articles=articles,
                                sources=[str(SQUAD)], log=quiet)
            squad.index.sources.append(str(work / "articles"))  # the added story's folder (an add and a remove need one)
            rows.append(run_set("squad", squad, sample(golds, args.squad_sample, args.seed), tmp, args.k))
            print(json.dumps(rows[-1]), flush=True)
        for folder in archives:
            shutil.copytree(folder / "index", tmp / folder.name / "index")
            shutil.copytree(folder / "articles", tmp / folder.name / "articles")
            archive = Engine.open(resolve_settings(index_dir=str(tmp / folder.name / "index"),
                                                   articles=[str(tmp / folder.name / "articles")]), log=quiet, trust_index=True)
            rows.append(run_set(folder.name, archive, sample(golds, args.archive_questions, args.seed), tmp, args.k))
            print(json.dumps(rows[-1]), flush=True)
    where = "server " + os.environ["QA_QDRANT_URL"] if os.environ.get("QA_QDRANT_URL") else "embedded local mode"
    report = {"qdrant": where, "k": args.k, "rows": rows}
    if out_json:
        out_json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if out_md:
        out_md.write_text(markdown(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
