"""Archive scale: what building, adding, removing, opening and asking cost as the archive grows, and how much
memory every process of the running app holds. Synthetic archives of ~880-word articles made of SQuAD v1.1 dev
sentences (fixed seed), the real app and the real `qa` command, each step in its own process.

    python benchmarks/archive.py --articles 10 100 1000 --json benchmarks/archive.json --md benchmarks/archive.md
    python benchmarks/archive.py --articles 10000 --fill --json ... --md ...   # vectors filled, not embedded

Per size N:
- build: `qa build` of the N articles with the real encoder (PyTorch, as `qa build` embeds), or with --fill an
  in-process build whose "encoder" fills the vectors without the model: each passage vector is the mean of real
  vectors of its SQuAD sentences (embedded once, cached in the work folder), each word piece vector that of its
  sentence plus noise, so the first stage searches vectors with the structure of real ones; the real tokenizer
  gives the word pieces (the index holds as many token vectors as with the model).
- disk: the index's files (the ONNX export aside) per passage.
- `qa add` / `qa remove` of one more synthetic article (~880 words), --reps times (median), each a fresh process
  (start-up, model load, open, embed, write); its peak RSS.
- the app (`python app.py`, its default ask workers): time from start to a 200 on /api/health, RSS and PSS of
  every process (server, spawner, workers) at ready; warm `POST /api/ask` p50 / p95 over --questions SQuAD
  questions asked one at a time after 20 unmeasured ones; an article added through `POST /api/articles` (its
  time), 40 questions from 4 clients at once (so every worker has answered from the new index), PSS again; the
  article removed (`DELETE`, its time).

--repo runs another checkout's code with this harness (the baseline: `git worktree add --detach ../base main`,
then --repo ../base); its interpreter is this one's. Everything runs at the priority given by --nice.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SQUAD = Path(os.environ.get("QA_BENCH_DATA", HERE.parent / "shared" / "bench-data")) / "squad-dev-v1.1.json"
if not SQUAD.is_file():
    SQUAD = Path("/work/shared/bench-data/squad-dev-v1.1.json")
# ~880 words and 11.3 passages of ~77 words an article, as in the issue's measurements (a paragraph takes sentences
# until it has 62 words, an article paragraphs until it has 840)
WORDS_PER_ARTICLE = 840
WORDS_PER_PARAGRAPH = 62
GENERATOR = 2  # names the corpora made with these numbers


# --- the synthetic archive ---------------------------------------------------------------------------------


def squad_sentences(repo: Path) -> list[str]:
    """Every sentence of the SQuAD v1.1 dev contexts, split as the service splits them, first seen first."""
    sys.path.insert(0, str(repo))
    from qa.sentences import split_sentences

    seen: dict[str, None] = {}
    for art in json.loads(SQUAD.read_text(encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            ctx = " ".join(p["context"].split())
            for s in split_sentences(ctx, 0):
                text = ctx[s.start : s.end]
                if len(text.split()) >= 4:
                    seen.setdefault(text, None)
    return list(seen)


def article_text(rng: random.Random, sentences: list[str], number: int) -> str:
    paragraphs, words = [], 0
    while words < WORDS_PER_ARTICLE:
        para, n = [], 0
        while n < WORDS_PER_PARAGRAPH:
            s = rng.choice(sentences)
            para.append(s)
            n += len(s.split())
        paragraphs.append(" ".join(para))
        words += n
    return f"title: Synthetic story {number}\ndate: 2024-01-01\n\n" + "\n\n".join(paragraphs) + "\n"


def make_corpus(folder: Path, n: int, sentences: list[str], seed: int) -> Path:
    """N articles 000000.txt ... (the same for a seed whatever else runs); reused when already there."""
    done = folder / ".complete"
    if done.is_file() and done.read_text() == f"{n} {seed} {GENERATOR}":
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    for i in range(n):
        (folder / f"{i:06d}.txt").write_text(article_text(rng, sentences, i), encoding="utf-8")
    done.write_text(f"{n} {seed} {GENERATOR}")
    return folder


def added_story(sentences: list[str], seed: int) -> str:
    """The article added and removed again: synthetic too, from another seed, never in a corpus."""
    return article_text(random.Random(seed + 10_000), sentences, 999_999).split("\n\n", 1)[1]


# --- processes -----------------------------------------------------------------------------------------------


def at_priority(nice: int) -> None:
    """In a child: run at niceness `nice`, or lower still if this process already runs lower (`nice -n 10 python
    benchmarks/archive.py` keeps its children at 10, not 10 + --nice)."""
    os.nice(max(0, nice - os.nice(0)))


def run(cmd: list[str], *, env: dict, cwd: Path, nice: int, timeout: float = 7200) -> dict:
    """Run a command to its end: wall seconds, CPU seconds, peak RSS (MB), return code, output."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: at_priority(nice))
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda s=s, k=k: out.__setitem__(k, s.read()))
               for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.get('stderr', '')[-3000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "stdout": out.get("stdout", ""), "stderr": out.get("stderr", "")}


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS (MB) of one process, and PSS split into anonymous memory (the heap) and mapped files (the
    index's pages, the libraries), from /proc/PID/smaps_rollup."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Pss_Anon", "Pss_File"):
                out[key.lower() + "_mb"] = round(int(rest.split()[0]) / 1024, 1)
    return out


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def tree_memory(pid: int) -> dict:
    procs = []
    for p in process_tree(pid):
        try:
            procs.append({"pid": p, **memory(p)})
        except OSError:
            pass
    return {"processes": procs, **{key: round(sum(p.get(key, 0) for p in procs), 1)
                                   for key in ("rss_mb", "pss_mb", "pss_anon_mb", "pss_file_mb")}}


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of the tree."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 120) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))]


# --- the measurements ------------------------------------------------------------------------------------


FILL_SCRIPT = r"""
import hashlib, json, sys, time
import numpy as np
repo, index_dir, articles, cache = sys.argv[1:5]
sys.path.insert(0, repo)
from qa import Engine, resolve_settings
from qa.embedding import Encoded
from qa.onnx_backend import OnnxEmbedder, find_export
from qa.sentences import split_sentences

table = json.loads(open(cache + ".json").read())
vectors = np.load(cache + ".npy")
row_of = {s: i for i, s in enumerate(table)}

def hashed(text, dim):
    seed = int.from_bytes(hashlib.md5(text.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)

class Fill(OnnxEmbedder):
    backend = "fill"
    def encode(self, texts, **kw):
        texts = list(texts)
        dim = self.dimension
        encs = self.tokenizer.encode_batch(texts) if texts else []
        out_v, out_t, out_o = [], [], []
        for text, e in zip(texts, encs):
            spans = split_sentences(text, 0) or []
            parts = [text[s.start:s.end] for s in spans]
            sv = np.stack([vectors[row_of[t]] if t in row_of else hashed(t, dim) for t in parts]) if spans \
                else hashed(text, dim)[None, :]
            v = sv.mean(axis=0)
            out_v.append(v / np.linalg.norm(v))
            offs = np.asarray(e.offsets[1:len(e.ids) - 1], dtype=np.int64).reshape(-1, 2)
            starts = np.array([s.start for s in spans] or [0])
            owner = np.clip(np.searchsorted(starts, offs[:, 0], side="right") - 1, 0, len(sv) - 1)
            rng = np.random.default_rng(len(text))
            tok = sv[owner] + rng.standard_normal((len(offs), dim)).astype(np.float32) * (0.8 / np.sqrt(dim))
            out_t.append((tok / np.linalg.norm(tok, axis=1, keepdims=True)).astype(np.float32))
            out_o.append(offs)
        return Encoded(np.array(out_v, np.float32).reshape(-1, dim), out_t, out_o)

model = "all-MiniLM-L6-v2"
folder = find_export(__import__("pathlib").Path(index_dir), model)
t = time.perf_counter()
settings = resolve_settings(index_dir=index_dir, articles=[articles], model=model)
import inspect
extra = {"compact": True} if "compact" in inspect.signature(Engine.open).parameters else {}  # as `qa build` leaves it
engine = Engine.open(settings, embedder=Fill(model, folder), log=lambda m: None, **extra)
print(json.dumps({"build_s": time.perf_counter() - t, "passages": len(engine.index.chunks)}))
"""

CACHE_SCRIPT = r"""
import json, sys
import numpy as np
repo, index_dir, cache = sys.argv[1:4]
sys.path.insert(0, repo)
from qa.onnx_backend import OnnxEmbedder, find_export
import pathlib
sentences = json.loads(open(cache + ".json").read())
emb = OnnxEmbedder("all-MiniLM-L6-v2", find_export(pathlib.Path(index_dir), "all-MiniLM-L6-v2"))
out = np.concatenate([emb.encode(sentences[i:i + 256]).vectors for i in range(0, len(sentences), 256)])
np.save(cache + ".npy", out.astype(np.float32))
"""


RECALL_SCRIPT = r"""
import json, sys, time
import numpy as np
repo, index_dir, questions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, repo)
from threadpoolctl import threadpool_limits
threadpool_limits(1, "blas")
from qa.store import load_index
from qa.onnx_backend import OnnxEmbedder, find_export
import pathlib
index = load_index(pathlib.Path(index_dir))
if not any(getattr(s, "graph", None) is not None for s in index.segments):
    print(json.dumps({"graph": False})); sys.exit()
import qa.segments
emb = OnnxEmbedder("all-MiniLM-L6-v2", find_export(pathlib.Path(index_dir), "all-MiniLM-L6-v2"))
q = np.concatenate([emb.encode(questions[i:i + 64]).vectors for i in range(0, len(questions), 64)])
allv = np.asarray(index.passage_vectors)
out = {"graph": True, "queries": len(q), "passages": len(allv), "ef_search": qa.segments.GRAPH_EF_SEARCH}
exact = []
times = {"exact": []}
for v in q:
    t = time.perf_counter(); s = allv @ v; exact.append(np.argsort(-s)[:20]); times["exact"].append(time.perf_counter() - t)
out["exact_ms_p50"] = round(float(np.median(times["exact"])) * 1000, 2)
# the first stage as questions use it (index.dense_search: every segment, the graph's efSearch), at several efSearch
out["ef"] = {}
default = qa.segments.GRAPH_EF_SEARCH
for ef in sorted({64, 128, default, 512}):
    qa.segments.GRAPH_EF_SEARCH = ef
    hits = {10: 0, 20: 0}
    ts = []
    for v, ex in zip(q, exact):
        t = time.perf_counter(); rows, _ = index.dense_search(v, 20); ts.append(time.perf_counter() - t)
        for k in hits:
            hits[k] += len(set(ex[:k].tolist()) & set(rows[:k].tolist()))
    out["ef"][ef] = {**{f"recall@{k}": round(h / (k * len(q)), 4) for k, h in hits.items()},
                     "ms_p50": round(float(np.median(ts)) * 1000, 2), "ms_p95": round(float(np.percentile(ts, 95)) * 1000, 2)}
qa.segments.GRAPH_EF_SEARCH = default
out.update({k: v for k, v in out["ef"][default].items()})
# the synthetic archive repeats passages (the same SQuAD sentences): a row whose vector is identical to one of the
# exact top 10 has the same score, and which of the copies exact search lists is an accident of row order
same = 0
for v, ex in zip(q, exact):
    rows, _ = index.dense_search(v, 10)
    top = allv[ex[:10]]
    same += sum(bool(np.any(np.all(np.abs(top - allv[r]) < 1e-6, axis=1))) for r in rows)
out["recall@10_copies_count"] = round(same / (10 * len(q)), 4)
print(json.dumps(out))
"""


def index_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and "onnx" not in f.relative_to(folder).parts
               and not f.name.startswith(".") )


def measure_app(repo: Path, env: dict, questions: list[str], story: str, nice: int, log) -> dict:
    port = free_port()
    env = {**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    logfile = open(env["BENCH_APP_LOG"], "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=repo, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: at_priority(nice))
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited ({proc.returncode}); see {env['BENCH_APP_LOG']}")
            try:
                status, health = http("GET", base + "/api/health", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - t0 > 1800:
                raise RuntimeError("the app did not start in 30 minutes")
            time.sleep(0.1)
        ready = time.perf_counter() - t0
        cpu_ready = tree_cpu(proc.pid)
        time.sleep(1.0)  # the workers' start-up settles
        at_ready = tree_memory(proc.pid)
        log(f"  app ready in {ready:.1f} s, {health}, PSS {at_ready['pss_mb']} MB")
        for q in questions[:20]:
            http("POST", base + "/api/ask", {"question": q})
        times = []
        cpu0 = tree_cpu(proc.pid)
        for q in questions[20:]:
            t = time.perf_counter()
            status, _ = http("POST", base + "/api/ask", {"question": q})
            times.append((time.perf_counter() - t) * 1000)
            assert status == 200, status
        cpu_asks = (tree_cpu(proc.pid) - cpu0) / max(len(times), 1)
        after_asks = tree_memory(proc.pid)
        t, cpu0 = time.perf_counter(), tree_cpu(proc.pid)
        status, entry = http("POST", base + "/api/articles", {"text": story, "title": "Added archive story"}, timeout=600)
        api_add = time.perf_counter() - t
        cpu_add = tree_cpu(proc.pid) - cpu0
        assert status == 201, (status, entry)

        def client(qs):
            for q in qs:
                http("POST", base + "/api/ask", {"question": q})

        threads = [threading.Thread(target=client, args=(questions[i::4][:10],)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        after_add = tree_memory(proc.pid)
        t, cpu0 = time.perf_counter(), tree_cpu(proc.pid)
        status, _ = http("DELETE", base + f"/api/articles/{entry['article']}", timeout=600)
        api_remove = time.perf_counter() - t
        cpu_remove = tree_cpu(proc.pid) - cpu0
        assert status == 200, status
        return {"ready_s": round(ready, 2), "ready_cpu_s": round(cpu_ready, 2), "ask_cpu_ms": round(cpu_asks * 1000, 1),
                "api_add_cpu_s": round(cpu_add, 2), "api_remove_cpu_s": round(cpu_remove, 2),
                "workers": health.get("workers"), "passages": health.get("passages"),
                "memory_at_ready": at_ready, "memory_after_asks": after_asks, "memory_after_add": after_add,
                "ask_ms": {"p50": round(percentile(times, 50), 1), "p95": round(percentile(times, 95), 1),
                           "mean": round(statistics.mean(times), 1), "n": len(times)},
                "api_add_s": round(api_add, 2), "api_remove_s": round(api_remove, 2)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()


def measure(n: int, args, sentences: list[str], questions: list[str], log) -> dict:
    repo = Path(args.repo).resolve()
    work = Path(args.work).resolve()
    corpus = make_corpus(work / f"corpus-{n}-{args.seed}", n, sentences, args.seed)
    run_dir = work / f"{args.label}-{n}{'-fill' if args.fill else ''}"
    articles, index, built = run_dir / "articles", run_dir / "index", run_dir / "build.json"
    reuse = args.reuse and built.is_file() and (index / "manifest.json").is_file()
    if not reuse:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        shutil.copytree(corpus, articles, ignore=shutil.ignore_patterns(".*"))
        (index / "onnx").mkdir(parents=True)
        shutil.copytree(HERE / "index" / "onnx", index / "onnx", dirs_exist_ok=True)
    # PYTHONDONTWRITEBYTECODE: a user's `qa` writes its bytecode once; with it set, every process compiled ~40 modules
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "GRADIO_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1", "QA_INDEX_DIR": str(index), "QA_ARTICLES": str(articles),
                "QA_MAX_ARTICLES": str(max(1000, 10 * n)), "BENCH_APP_LOG": str(run_dir / "app.log")})
    qa = [sys.executable, "-m", "qa.cli"]
    result: dict = {"articles": n, "filled": args.fill, "repo": str(repo), "commit": _commit(repo)}
    log(f"{args.label} N={n}: {'reusing the index built before' if reuse else 'building'}")
    if reuse:
        kept = json.loads(built.read_text())
        build, passages = kept["build"], kept["passages"]
    elif args.fill:
        cache = work / f"sentence-vectors-{args.seed}"
        if not Path(str(cache) + ".npy").is_file():
            Path(str(cache) + ".json").write_text(json.dumps(sentences))
            run([sys.executable, "-c", CACHE_SCRIPT, str(repo), str(index), str(cache)], env={**env, "QA_THREADS": "2"},
                cwd=repo, nice=args.nice)
        build = run([sys.executable, "-c", FILL_SCRIPT, str(repo), str(index), str(articles), str(cache)], env=env, cwd=repo,
                    nice=args.nice)
        passages = json.loads(build["stdout"].strip().splitlines()[-1])["passages"]
    else:
        build = run([*qa, "build", str(articles)], env=env, cwd=repo, nice=args.nice)
        passages = int(re.search(r"(\d+) passages", build["stdout"]).group(1))
    result["build"] = {k: build[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    result["passages"] = passages
    if not reuse:
        built.write_text(json.dumps({"build": result["build"], "passages": passages}))
    size = index_bytes(index)
    result["disk"] = {"bytes": size, "per_passage_kb": round(size / passages / 1000, 2)}
    log(f"  {passages} passages, built in {build['wall_s']} s, {size / 1e6:.0f} MB on disk "
        f"({result['disk']['per_passage_kb']} KB a passage)")
    try:
        recall = run([sys.executable, "-c", RECALL_SCRIPT, str(repo), str(index), json.dumps(questions[:300])], env=env,
                     cwd=repo, nice=args.nice)
        result["first_stage"] = json.loads(recall["stdout"].strip().splitlines()[-1])
        if result["first_stage"].get("graph"):
            log(f"  first stage: {result['first_stage']}")
    except RuntimeError as exc:  # another version of the code (no segments): nothing to compare
        result["first_stage"] = {"graph": False, "error": str(exc).splitlines()[-1][:200]}
    story = run_dir / "story.txt"
    story.write_text(added_story(sentences, args.seed), encoding="utf-8")
    adds, removes = [], []
    for rep in range(args.reps):
        added = run([*qa, "add", str(story), "--title", "Added archive story"], env=env, cwd=repo, nice=args.nice)
        article = re.search(r"Added (\S+):", added["stdout"]).group(1)
        removed = run([*qa, "remove", article], env=env, cwd=repo, nice=args.nice)
        adds.append(added)
        removes.append(removed)
        log(f"  qa add {added['wall_s']} s ({added['peak_rss_mb']} MB peak), qa remove {removed['wall_s']} s")
    result["cli_add"] = _summary(adds)
    result["cli_remove"] = _summary(removes)
    listed = run([*qa, "list", "--json"], env=env, cwd=repo, nice=args.nice)
    result["cli_list"] = {k: listed[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    if not args.no_app:
        log("  starting the app")
        result["app"] = measure_app(repo, env, questions, story.read_text(encoding="utf-8"), args.nice, log)
        log(f"  ask p50 {result['app']['ask_ms']['p50']} ms, p95 {result['app']['ask_ms']['p95']} ms; PSS after an add "
            f"{result['app']['memory_after_add']['pss_mb']} MB")
    result["disk_after"] = {"bytes": index_bytes(index)}
    if not args.keep:
        shutil.rmtree(index, ignore_errors=True)
    return result


def _summary(runs: list[dict]) -> dict:
    return {"wall_s": round(statistics.median(r["wall_s"] for r in runs), 3), "all_wall_s": [r["wall_s"] for r in runs],
            "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def markdown(results: list[dict]) -> str:
    lines = ["| articles | passages | build | disk / passage | `qa add` (CPU) | `qa remove` (CPU) | add peak RSS | app ready | "
             "PSS at ready | after 200 asks | after an add | ask p50 / p95 | API add / remove |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        app = r.get("app") or {}
        mem = lambda key: f"{app[key]['pss_mb'] / 1000:.2f} GB" if key in app else "–"  # noqa: E731
        lines.append(
            f"| {r['articles']:,}{' (filled)' if r['filled'] else ''} | {r['passages']:,} | {r['build']['wall_s']:.0f} s | "
            f"{r['disk']['per_passage_kb']:.1f} KB | {r['cli_add']['wall_s']:.2f} s ({r['cli_add']['cpu_s']:.2f} s) | "
            f"{r['cli_remove']['wall_s']:.2f} s ({r['cli_remove']['cpu_s']:.2f} s) | "
            f"{r['cli_add']['peak_rss_mb'] / 1000:.2f} GB | {app.get('ready_s', '–')} s | {mem('memory_at_ready')} | "
            f"{mem('memory_after_asks')} | {mem('memory_after_add')} | "
            + (f"{app['ask_ms']['p50']} / {app['ask_ms']['p95']} ms | {app['api_add_s']} / {app['api_remove_s']} s |"
               if app else "– | – |"))
    return "\n".join(lines) + "\n"


def write_markdown(json_path: str, md_path: str) -> None:
    by_label: dict[str, list] = {}
    for r in json.loads(Path(json_path).read_text())["runs"]:
        by_label.setdefault(r.get("label", "?"), []).append(r)
    text = "".join(f"### {label}\n\n" + markdown(sorted(rs, key=lambda r: (r["articles"], r["filled"]))) + "\n"
                   for label, rs in by_label.items())
    Path(md_path).write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--articles", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--fill", action="store_true", help="fill the vectors without the encoder (10k articles and beyond)")
    ap.add_argument("--repo", default=str(HERE), help="the checkout whose code is measured (default: this one)")
    ap.add_argument("--label", default="this", help="names the run's folders and rows")
    ap.add_argument("--work", default=str(HERE / ".bench" / "archive"), help="corpora, indexes and logs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--questions", type=int, default=200, help="timed warm asks (after 20 unmeasured)")
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--no-app", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the indexes")
    ap.add_argument("--reuse", action="store_true", help="measure again on an index kept (--keep) by an earlier run")
    ap.add_argument("--json")
    ap.add_argument("--md")
    args = ap.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    sentences = squad_sentences(HERE)
    rng = random.Random(args.seed)
    questions = [qa["question"] for art in json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
                 for p in art["paragraphs"] for qa in p["qas"]]
    questions = rng.sample(questions, args.questions + 20)

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    results = []
    previous = json.loads(Path(args.json).read_text()) if args.json and Path(args.json).is_file() else {"runs": []}
    for n in args.articles:
        r = measure(n, args, sentences, questions, log)
        r["label"] = args.label
        results.append(r)
        done = {(r["label"], r["articles"], r["filled"]) for r in results}  # this run's rows replace earlier ones
        runs = [x for x in previous["runs"] if (x.get("label"), x["articles"], x["filled"]) not in done] + results
        if args.json:
            Path(args.json).write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    if args.md:
        if args.json:
            write_markdown(args.json, args.md)
        else:
            Path(args.md).write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
