"""Reliability benchmark for article-qa: load, memory, faults and build races against the real app, on loopback.

    python benchmarks/reliability.py [--quick] [--json benchmarks/reliability.json] [--md benchmarks/reliability.md]

Every figure is measured in the same run, with fixed counts and times (nothing adapts to the machine):
1. load on both HTTP routes of `python app.py` (2 ask workers): `POST /api/ask` (plain JSON) and Gradio's
   queued route (`POST /gradio_api/call/ask`, then `GET /gradio_api/call/ask/<event_id>`), 16 concurrent
   clients each for a fixed time (30 s; --quick 5 s). Questions rotate over 8 seed questions (eval/seed.jsonl);
   a request fails when its status is not 200 or its answer differs from the one checked at warm-up (the
   answer sentence must contain the gold evidence, or the answer must be an abstention for an unanswerable
   question, and both routes must agree).
2. memory on the Gradio route: the app process's RSS, and separately the private memory (Private_Clean +
   Private_Dirty) of its descendants (the ask-worker spawner and the workers, which share the rest with the
   app), after 2,000 and after 20,000 Gradio-route requests since start (--quick: 500 and 2,500; 16 clients),
   each taken after 3 s without load; the ratio's target is at most 1.10. The build races (4.) run during
   the requests from 2,000 to 20,000, which measure memory only (their failures are still counted): the
   Gradio route keeps about one core busy in the app's process, and the run would otherwise take ~14 min.
3. faults, each with a background load of 4 clients on /api/ask (its failures counted):
   - 20,000 idle TCP connections opened by two child processes (10,000 each; the open-file limit is 20,000
     per process) while 20 normal requests are timed (10 while they are being opened, 10 once all are
     open; each on a new connection): p50 and max latency (target: each within 1 s), the app's open
     descriptors (sampled every 50 ms), how many lines its log grew by, and the machine's TCP counters
     (accept-queue overflows; sockets closed with a request unread, which the client sees as a reset);
   - a slowloris client trickling its headers 1 byte per 100 ms: seconds until the app closes it
     (QA_REQUEST_TIMEOUT is 10 s by default);
   - SIGKILL of ask worker 1, then SIGSTOP of ask worker 2: background failures from the signal until the
     log says "ask worker N replaced: new pid", and how long that took; a stopped worker the pool did not kill
     is sent SIGCONT;
   - 10 wrong passwords for one user on a second app started with QA_AUTH=ann:pw1,bob:pw2 (POST /login form):
     the statuses (the 6th should be 429), and whether bob then logs in (200 with a cookie); the background
     load there is /api/ask with bob's HTTP Basic credentials.
4. build races, 10 rounds each (--quick 1): two `python -m qa.cli build --force ARTICLES` at once into one
   index folder; and `python -m qa.cli build` started at the same moment as the app on a stale index (an
   article edited each round, so the app rebuilds at start). After each round the index is loaded with
   qa.store.load_index (every file's sha256 checked) and its passages counted; an index is valid when it
   loads, holds passages, names the article file as it now is (not a stale copy) and the folder holds no
   file its manifest does not name.

The run snapshots qa/, app.py and models/ into a temporary folder and runs everything from there (others
edit the working tree), each app in a temporary project folder with copies of articles/ and index/ (the
ONNX export hard-linked), on 127.0.0.1 and a free port. QA_* variables of the caller are dropped. Everything it
starts runs in a process group of its own and is stopped on exit (also on Ctrl-C or SIGTERM); the temporary
folder is removed (--keep keeps it). The load average (/proc/loadavg) and the cores other processes kept busy
are recorded for every phase: the machine (2 cores) is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SEED_GOLD = ROOT / "eval" / "seed.jsonl"
K = 3
# seed questions tried at warm-up, in order: the first 7 answerable ones answered right and the first
# unanswerable one refused make the rotation
CANDIDATES = ["s21", "s06", "s07", "s01", "s12", "s16", "s35", "s30", "s18", "s29", "s19", "s25", "s47",
              "s72", "s75", "s73", "s71"]
ANSWERABLE_IN_ROTATION, UNANSWERABLE_IN_ROTATION = 7, 1
AUTH = "ann:pw1,bob:pw2"
LOAD_CLIENTS, BACKGROUND_CLIENTS = 16, 4
IDLE_PER_HOLDER, IDLE_HOLDERS = 10_000, 2
TARGETS = {
    "failures": 0,
    "rss_ratio": 1.10,  # RSS after the larger count <= 1.10 x after the smaller
    "idle_request_s": 1.0,  # every normal request within 1 s while 20,000 idle connections are held
    "idle_log_lines": 20,  # the log grows by fewer lines than this (tests/test_server_faults.py)
    "max_connections": 4096,  # QA_MAX_CONNECTIONS default (qa/connections.py)
    "slowloris_s": 12.0,  # cut off within QA_REQUEST_TIMEOUT (10 s) + 2 s
    "kill_replaced_s": 5.0,  # a killed worker is replaced within 5 s (tests/test_app.py)
    "stop_replaced_s": 20.0,  # a stopped worker within QA_ASK_TIMEOUT (15 s) + 5 s
    "login_statuses": [400] * 5 + [429] * 5,
}

# Nothing reaches for the network, and QA_* variables of the caller do not change what is measured.
for _name in [n for n in os.environ if n.startswith("QA_")]:
    del os.environ[_name]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

T0 = time.perf_counter()
CODE = ROOT  # replaced by the run's snapshot (snapshot_code)


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def pct(values, q: float) -> float | None:
    """Linear-interpolated percentile, or None for no values."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# --- processes ---------------------------------------------------------------------------------------------

STARTED: list[subprocess.Popen] = []  # every process this run started, each the leader of a new process group
ENDING = threading.Event()  # set when the run stops everything: nothing new is started after that
_GRACEFUL: set[int] = set()  # pids to stop with SIGTERM first (apps: they close their ask workers)


def spawn(args: list[str], *, graceful: bool = False, **kwargs) -> subprocess.Popen:
    if ENDING.is_set():
        raise RuntimeError("the run is stopping")
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(args, start_new_session=True, **kwargs)
    STARTED.append(proc)
    if graceful:
        _GRACEFUL.add(proc.pid)
    return proc


def end(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process this run started, and anything left in its process group (an app's spawner, workers)."""
    if proc.poll() is None and proc.pid in _GRACEFUL:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this run created for it, nothing else
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def end_all() -> None:
    ENDING.set()
    for proc in list(reversed(STARTED)):
        end(proc)


def _on_sigterm(_signum, _frame):
    raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- /proc -------------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    out = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024, 1)


def private_mb(pid: int) -> float:
    """Memory only this process maps (Private_Clean + Private_Dirty), in MB."""
    kb = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kb += int(line.split()[1])
    return kb / 1024


def stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def proc_state(pid: int) -> str | None:
    """The state letter of a process (R, S, T, Z, ...), or None when it is gone."""
    try:
        return stat_fields(pid)[0]
    except OSError:
        return None


def ppid(pid: int) -> int | None:
    try:
        return int(stat_fields(pid)[1])
    except OSError:
        return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_limit(pid: int) -> int | None:
    """The process's soft open-file limit (the app raises it to the hard limit at start)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


NETSTAT_KEYS = ("ListenOverflows", "ListenDrops", "TCPAbortOnData", "TCPAbortOnClose", "TCPAbortOnMemory")


def tcp_counters() -> dict[str, int]:
    """Machine-wide TCP counters of /proc/net/netstat that say why connections were dropped or reset:
    ListenOverflows/ListenDrops (the accept queue was full), TCPAbortOnClose (a socket closed with data it had
    not read: the peer gets a reset), TCPAbortOnData (data that came after the socket was closed)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    out = {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            out.update({k: int(v) for k, v in zip(names.split()[1:], values.split()[1:]) if k in NETSTAT_KEYS})
    return out


def _busy_cpu_s() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this run: this process, the children it reaped, and every live descendant (with what
    they reaped)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in descendants(os.getpid()):
        try:
            f = stat_fields(pid)
            total += sum(int(x) for x in f[11:15]) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


class Phase:
    """Wall time, load average at both ends and the cores this run and other processes kept busy in a phase."""

    def __init__(self, res: dict, name: str) -> None:
        self.res, self.name = res, name

    def __enter__(self) -> Phase:
        self.t, self.busy, self.own, self.load = time.perf_counter(), _busy_cpu_s(), _own_cpu_s(), loadavg()
        log(f"--- {self.name} (load average {self.load})")
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.t
        own, busy = _own_cpu_s() - self.own, _busy_cpu_s() - self.busy
        self.res.setdefault("phases", {})[self.name] = {
            "wall_s": round(wall, 1), "loadavg_start": self.load, "loadavg_end": loadavg(),
            "own_cores": round(own / wall, 2), "other_cores": round(max(busy - own, 0.0) / wall, 2)}
        log(f"--- {self.name} done: {self.res['phases'][self.name]}")


# --- code snapshot and projects ------------------------------------------------------------------------------


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _copy_or_link(src: str, dst: str) -> None:
    """Copy small files; hard-link big ones (the exported models: written once, under a content hash)."""
    if os.path.getsize(src) >= 1 << 20:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def snapshot_code(work: Path) -> dict:
    """Copy qa/, app.py and models/ into the work folder; every process of the run imports that copy."""
    global CODE
    CODE = work / "code"
    CODE.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "qa", CODE / "qa", ignore=ignore)
    shutil.copy2(ROOT / "app.py", CODE / "app.py")
    if (ROOT / "models").is_dir():
        shutil.copytree(ROOT / "models", CODE / "models", ignore=ignore, copy_function=_copy_or_link)
    sys.path.insert(0, str(CODE))
    h = hashlib.sha256()
    for f in sorted([*(CODE / "qa").rglob("*.py"), CODE / "app.py"]):
        h.update(f.relative_to(CODE).as_posix().encode() + b"\0" + f.read_bytes())
    return {"code_sha256": h.hexdigest()[:16],
            "modified_vs_commit": git("status", "--porcelain", "--", "qa", "app.py", "articles", "models").splitlines()}


def make_project(work: Path, name: str) -> Path:
    """A folder holding copies of articles/ and index/: an app's (or a build's) working folder."""
    project = work / name
    project.mkdir()
    shutil.copytree(ROOT / "articles", project / "articles")
    shutil.copytree(ROOT / "index", project / "index", ignore=shutil.ignore_patterns(".tmp*", ".write.lock"),
                    copy_function=_copy_or_link)
    return project


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"PYTHONPATH": str(CODE), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
                "GRADIO_ANALYTICS_ENABLED": "False"})
    env.update(extra)
    return env


class App:
    """`python app.py` (the snapshot's) in `project` on 127.0.0.1 and a free port."""

    def __init__(self, project: Path, logfile: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = logfile
        self._out = logfile.open("ab")
        self.started = time.perf_counter()
        self.proc = spawn([PY, str(CODE / "app.py")], cwd=project, stdout=self._out, stderr=subprocess.STDOUT,
                          graceful=True, env=child_env(GRADIO_SERVER_NAME="127.0.0.1",
                                                       GRADIO_SERVER_PORT=str(self.port), **(env or {})))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.logfile.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 180) -> float:
        """Seconds from launch until GET /api/health answers 200."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"app.py did not answer /api/health within {timeout} s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        end(self.proc)
        self._out.close()


# --- HTTP clients -------------------------------------------------------------------------------------------


class RequestFailed(Exception):
    pass


class Client:
    """One kept-alive HTTP/1.1 connection (per thread). A request that fails on a reused connection the app
    has closed meanwhile (idle, or to make room under the connection cap) is sent once more on a new one, as
    HTTP clients do; such retries are counted."""

    def __init__(self, port: int, timeout: float = 60, auth: tuple[str, str] | None = None) -> None:
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = False
        self.reconnects = 0
        self.headers = {"Content-Type": "application/json"}
        if auth:
            import base64

            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, self.used = None, False

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                self.used = False
            reused = self.used
            try:
                self.conn.request(method, path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                self.used = True
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                return resp.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if not reused or attempt == 2:
                    raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
                self.reconnects += 1
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")


REFERENCE: dict[str, dict] = {}  # question -> {"abstained": bool, "text": answer sentence or None}


def check(question: str, result: object) -> str | None:
    """None when `result` is the answer checked at warm-up; else what is wrong."""
    ref = REFERENCE[question]
    if not isinstance(result, dict) or "abstained" not in result:
        return f"not an answer object: {str(result)[:120]}"
    if ref["abstained"]:
        return None if result["abstained"] is True else "answered a question it abstained on at warm-up"
    answer = result.get("answer") or {}
    if result["abstained"] or answer.get("text") != ref["text"]:
        return f"wrong answer to {question[:40]!r}: {str(answer.get('text'))[:80]!r}"
    return None


def ask_api(client: Client, question: str) -> object:
    status, data = client.request("POST", "/api/ask", json.dumps({"question": question, "k": K}).encode())
    if status != 200:
        raise RequestFailed(f"HTTP {status} from /api/ask: {data[:120]!r}")
    return json.loads(data)


def ask_gradio(client: Client, question: str) -> object:
    status, data = client.request("POST", "/gradio_api/call/ask", json.dumps({"data": [question, K]}).encode())
    if status != 200:
        raise RequestFailed(f"HTTP {status} from POST /gradio_api/call/ask: {data[:120]!r}")
    event = json.loads(data)["event_id"]
    status, data = client.request("GET", f"/gradio_api/call/ask/{event}")
    if status != 200:
        raise RequestFailed(f"HTTP {status} from GET /gradio_api/call/ask/<id>: {data[:120]!r}")
    stream = data.decode("utf-8", "replace")
    marker = "event: complete\ndata:"
    if marker not in stream:
        raise RequestFailed(f"no complete event: {stream[:160]!r}")
    return json.loads(stream.split(marker, 1)[1].split("\n", 1)[0])[0]


ROUTES = {"api": ask_api, "gradio": ask_gradio}


class Load:
    """`clients` threads asking back to back through one route until stopped, `seconds` have passed or
    `until()` is true. Every request is timed and checked; failures keep their time and message."""

    def __init__(self, port: int, route: str, questions: list[str], clients: int, *, seconds: float | None = None,
                 until=None, counter: list[int] | None = None, auth: tuple[str, str] | None = None) -> None:
        self.port, self.route, self.questions, self.clients = port, route, questions, clients
        self.seconds, self.until, self.counter, self.auth = seconds, until, counter, auth
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.events: list[tuple[float, float, bool]] = []  # (start, seconds, ok), monotonic clock
        self.errors: Counter[str] = Counter()
        self.reconnects = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _done(self) -> bool:
        if self.stop_event.is_set():
            return True
        if self.seconds is not None and time.monotonic() >= self.t_end:
            return True
        return self.until is not None and self.until()

    def _run(self, n: int) -> None:
        client = Client(self.port, auth=self.auth)
        ask = ROUTES[self.route]
        i = n * 3
        try:
            while not self._done():
                q = self.questions[i % len(self.questions)]
                i += 1
                t = time.monotonic()
                try:
                    error = check(q, ask(client, q))
                except (RequestFailed, ValueError, KeyError, IndexError, TypeError) as exc:
                    error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RequestFailed) else str(exc)
                    client.close()
                took = time.monotonic() - t
                with self.lock:
                    self.events.append((t, took, error is None))
                    if error is not None:
                        self.errors[re.sub(r"\d+", "N", error)[:200]] += 1
                    if self.counter is not None:
                        self.counter[0] += 1
        finally:
            with self.lock:
                self.reconnects += client.reconnects
            client.close()

    def start(self) -> Load:
        self.t_start = time.monotonic()
        self.t_end = self.t_start + (self.seconds or 0)
        for th in self.threads:
            th.start()
        return self

    def stop(self) -> dict:
        self.stop_event.set()
        return self.join()

    def join(self) -> dict:
        for th in self.threads:
            th.join()
        self.wall = time.monotonic() - self.t_start
        return self.summary()

    def summary(self, t0: float | None = None, t1: float | None = None) -> dict:
        """Figures over all requests, or over those in flight at some time in [t0, t1]."""
        with self.lock:
            ev = self.events if t0 is None else [e for e in self.events if e[0] <= t1 and e[0] + e[1] >= t0]
        lat = [e[1] for e in ev if e[2]]
        failures = sum(1 for e in ev if not e[2])
        out = {"route": self.route, "clients": self.clients, "requests": len(ev), "failures": failures,
               "ms_p50": ms(pct(lat, 0.5)), "ms_p95": ms(pct(lat, 0.95)), "ms_max": ms(max((e[1] for e in ev), default=None))}
        if t0 is None:
            out.update(seconds=round(self.wall, 2), requests_per_s=round(len(ev) / self.wall, 1),
                       reconnects=self.reconnects, errors=dict(self.errors.most_common(5)))
        return out


# --- 1 + 2. load and memory ----------------------------------------------------------------------------------


def normalize(text: str) -> str:
    quotes = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})
    return " ".join(text.translate(quotes).lower().split())


def summary(result: dict) -> tuple:
    return (result.get("abstained"), (result.get("answer") or {}).get("text"),
            [p.get("text") for p in result.get("passages") or []])


def pick_questions(app: App) -> dict:
    """Ask each candidate on both routes; keep the ones answered right (gold evidence in the answer sentence,
    or an abstention for an unanswerable question) and alike on both routes."""
    gold = {g["id"]: g for g in map(json.loads, SEED_GOLD.read_text(encoding="utf-8").splitlines()) if g}
    api, gradio = Client(app.port), Client(app.port)
    picked, rejected = [], {}
    n_ans = n_unans = asked = 0
    for gid in CANDIDATES:
        g = gold[gid]
        answerable = g["answer"] is not None
        if (n_ans if answerable else n_unans) >= (ANSWERABLE_IN_ROTATION if answerable else UNANSWERABLE_IN_ROTATION):
            continue
        a, b = ask_api(api, g["question"]), ask_gradio(gradio, g["question"])
        asked += 1
        text = (a.get("answer") or {}).get("text")
        if answerable:
            ok = not a["abstained"] and text and any(normalize(e) in normalize(text) or normalize(text) in normalize(e)
                                                     for e in g["evidence"])
        else:
            ok = a["abstained"] is True
        if summary(a) != summary(b):
            rejected[gid] = "the two routes answered differently"
            continue
        if not ok:
            rejected[gid] = f"answered wrong at warm-up: {'abstained' if a['abstained'] else repr(str(text)[:80])}"
            continue
        REFERENCE[g["question"]] = {"abstained": a["abstained"], "text": text}
        picked.append(gid)
        if answerable:
            n_ans += 1
        else:
            n_unans += 1
    api.close()
    gradio.close()
    if len(picked) < 6:
        raise RuntimeError(f"only {len(picked)} seed questions answered right at warm-up: {rejected}")
    return {"ids": picked, "questions": [gold[i]["question"] for i in picked], "rejected": rejected,
            "gradio_requests": asked}


def memory(app: App, count: int) -> dict:
    desc = descendants(app.pid)
    return {"gradio_requests": count, "app_rss_mb": rss_mb(app.pid), "children": len(desc),
            "children_private_mb": round(sum(private_mb(p) for p in desc), 1)}


def bench_load(app: App, questions: list[str], seconds: float, small: int, counter: list[int]) -> dict:
    """Both routes under load for `seconds` each, and memory once `small` Gradio-route requests are done.
    `counter` holds the Gradio-route requests completed since the app started (the warm-up's included)."""
    out: dict = {}
    time.sleep(1)
    log(f"load: /api/ask, {LOAD_CLIENTS} clients, {seconds:g} s")
    out["api"] = Load(app.port, "api", questions, LOAD_CLIENTS, seconds=seconds).start().join()
    log(f"load: /api/ask: {out['api']}")
    log(f"memory: Gradio route, {LOAD_CLIENTS} clients, up to {small:,} requests")
    fill = Load(app.port, "gradio", questions, LOAD_CLIENTS, until=lambda: counter[0] >= small, counter=counter)
    out["gradio_fill_1"] = fill.start().join()
    time.sleep(3)
    out["memory_1"] = memory(app, counter[0])
    log(f"memory after {counter[0]:,} Gradio requests: {out['memory_1']}")
    log(f"load: Gradio route, {LOAD_CLIENTS} clients, {seconds:g} s")
    out["gradio"] = Load(app.port, "gradio", questions, LOAD_CLIENTS, seconds=seconds, counter=counter).start().join()
    log(f"load: Gradio: {out['gradio']}")
    return out


def bench_fill(app: App, questions: list[str], large: int, counter: list[int], out: dict, meanwhile=None) -> None:
    """Gradio-route requests until `large` are done, then memory again; `meanwhile` (the build races) runs on a
    thread of its own during these requests, which only measure memory, and is waited for."""
    runner = None
    if meanwhile is not None:
        runner = threading.Thread(target=meanwhile, name="build-races", daemon=True)
        runner.start()
    try:
        log(f"memory: Gradio route, {LOAD_CLIENTS} clients, up to {large:,} requests"
            + (" (the build races meanwhile)" if runner else ""))
        fill = Load(app.port, "gradio", questions, LOAD_CLIENTS, until=lambda: counter[0] >= large, counter=counter)
        out["gradio_fill_2"] = fill.start().join()
        out["gradio_fill_2"]["with_build_races"] = runner is not None
        time.sleep(3)
        out["memory_2"] = memory(app, counter[0])
        log(f"memory after {counter[0]:,} Gradio requests: {out['memory_2']}")
        m1, m2 = out["memory_1"], out["memory_2"]
        out["rss_ratio"] = round(m2["app_rss_mb"] / m1["app_rss_mb"], 3)
        out["children_private_ratio"] = (round(m2["children_private_mb"] / m1["children_private_mb"], 3)
                                         if m1["children_private_mb"] else None)
    finally:
        if runner is not None:
            if runner.is_alive():
                log("waiting for the build races to finish")
            runner.join()


# --- 3. faults ---------------------------------------------------------------------------------------------

IDLE_SCRIPT = r"""
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held, failed, t = [], 0, time.monotonic()
for i in range(n):
    try:
        held.append(socket.create_connection((host, port), timeout=5))
    except OSError:
        failed += 1
        time.sleep(0.01)
print(len(held), failed, round(time.monotonic() - t, 2), flush=True)
sys.stdin.read()  # hold them until told (killed)
"""


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """A line of the process's output, or "" when none comes within `timeout` seconds."""
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if readable else ""


def one_request(port: int, question: str, timeout: float = 10) -> tuple[float, str | None]:
    """A normal /api/ask on a new connection: (seconds, None or what went wrong)."""
    t = time.monotonic()
    client = Client(port, timeout=timeout)
    try:
        error = check(question, ask_api(client, question))
    except (RequestFailed, ValueError) as exc:
        error = str(exc)
    finally:
        client.close()
    return time.monotonic() - t, error


def fault_idle_connections(app: App, questions: list[str]) -> dict:
    lines_before = len(app.output().splitlines())
    peak = {"fds": 0}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            n = fd_count(app.pid)
            if n is not None and n > peak["fds"]:
                peak["fds"] = n
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    fds_before = fd_count(app.pid)
    fds_limit = fd_limit(app.pid)
    tcp_before = tcp_counters()
    t0 = time.monotonic()
    holders = [spawn([PY, "-c", IDLE_SCRIPT, "127.0.0.1", str(app.port), str(IDLE_PER_HOLDER)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, text=True) for _ in range(IDLE_HOLDERS)]
    timings: list[tuple[str, float, str | None, float]] = []
    try:
        for i in range(10):  # while the connections are being opened
            started = time.monotonic() - t0
            took, error = one_request(app.port, questions[i % len(questions)])
            timings.append(("opening", took, error, started))
            time.sleep(0.25)
        reports = [read_line(h, 120).split() for h in holders]  # each says when all its connections are open
        opened = [int(r[0]) if r else 0 for r in reports]
        open_s = [float(r[2]) if r else None for r in reports]
        all_open_after = round(time.monotonic() - t0, 2)
        fds_all_open = fd_count(app.pid)
        for i in range(10):  # all open (those the app has not closed yet)
            started = time.monotonic() - t0
            took, error = one_request(app.port, questions[i % len(questions)])
            timings.append(("held", took, error, started))
            time.sleep(0.25)
    finally:
        for h in holders:
            end(h)
        time.sleep(2)
        sampling.set()
        sampler.join()
    tcp = {k: v - tcp_before.get(k, 0) for k, v in tcp_counters().items()}
    new_lines = app.output().splitlines()[lines_before:]
    lat = [t for _, t, *_ in timings]
    return {"connections_opened": sum(opened), "per_holder": opened, "holder_open_s": open_s,
            "all_open_after_s": all_open_after, "requests": len(timings),
            "request_failures": sum(1 for _, _, e, _ in timings if e),
            "request_errors": [f"{e} (sent {s:.1f} s into the flood)" for _, _, e, s in timings if e][:5],
            "ms_p50": ms(pct(lat, 0.5)), "ms_max": ms(max(lat)),
            "ms_max_while_opening": ms(max(t for w, t, *_ in timings if w == "opening")),
            "ms_max_while_held": ms(max(t for w, t, *_ in timings if w == "held")),
            "requests_detail": [{"when": w, "sent_s": round(s, 2), "ms": ms(t), "error": e} for w, t, e, s in timings],
            "tcp_counters_delta": tcp,
            "app_fds_before": fds_before, "app_fds_limit": fds_limit, "app_fds_peak": peak["fds"], "app_fds_when_all_open": fds_all_open,
            "log_lines_added": len(new_lines), "log_lines_sample": new_lines[:10],
            "tracebacks": sum("Traceback" in line for line in new_lines)}


def fault_slowloris(app: App) -> dict:
    """Headers trickled 1 byte per 100 ms (over 50 s in all): seconds from the first byte until the app closes
    the connection."""
    request = (f"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\nContent-Type: application/json\r\n"
               f"X-Slow: {'a' * 400}\r\nContent-Length: 30\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    t0 = time.monotonic()
    sent, closed_after, how, reply = 0, None, None, b""
    try:
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                sent += 1
            except OSError as exc:
                closed_after, how = time.monotonic() - t0, f"send failed: {type(exc).__name__}"
                break
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                try:
                    data = sock.recv(65536)
                except OSError as exc:
                    closed_after, how = time.monotonic() - t0, f"recv failed: {type(exc).__name__}"
                    break
                if not data:
                    closed_after, how = time.monotonic() - t0, "closed (end of file)"
                    break
                reply += data
    finally:
        sock.close()
    return {"closed_after_s": None if closed_after is None else round(closed_after, 2), "how": how,
            "bytes_sent": sent, "bytes_in_request": len(request), "reply": reply[:200].decode("latin-1")}


def worker_pids(app: App) -> tuple[int, dict[int, int]]:
    """(spawner pid, {worker number: current pid}) from the app's log."""
    out = app.output()
    m = re.search(r"answered by (\d+) ask worker process\(es\) \(pids ([\d, ]+)\), spawner pid (\d+)", out)
    if not m:
        raise RuntimeError("the app's log names no ask workers")
    pids = {i + 1: int(p) for i, p in enumerate(m.group(2).split(", "))}
    for number, pid in re.findall(r"ask worker (\d+) replaced: new pid (\d+)", out):
        pids[int(number)] = int(pid)
    return int(m.group(3)), pids


def fault_worker(app: App, number: int, sig: signal.Signals, wait_s: float) -> dict:
    spawner, pids = worker_pids(app)
    pid = pids[number]
    if ppid(pid) != spawner or ppid(spawner) != app.pid:  # only ever signal the app's own worker
        raise RuntimeError(f"pid {pid} is not ask worker {number} of the app (spawner {spawner})")
    marker = f"ask worker {number} replaced: new pid"
    before = app.output().count(marker)
    t0 = time.monotonic()
    os.kill(pid, sig)
    replaced_s = None
    while time.monotonic() - t0 < wait_s:
        if app.output().count(marker) > before:
            replaced_s = time.monotonic() - t0
            break
        time.sleep(0.02)
    t1 = time.monotonic()
    state = proc_state(pid)
    # A killed process can still be seen running for a moment while the kernel tears down its memory (seen:
    # "R" right after the replacement was logged): give it 2 s to exit before calling it left behind.
    while state is not None and state not in ("Z", "X") and time.monotonic() - t1 < 2:
        time.sleep(0.02)
        state = proc_state(pid)
    resumed = False
    if state is not None and state not in ("Z", "X") and ppid(pid) == spawner:
        os.kill(pid, signal.SIGCONT)  # the pool left it stopped: let it go on (or die on its own end of file)
        resumed = True
    time.sleep(1)
    lines = [line for line in app.output().splitlines() if f"ask worker {number} (pid {pid})" in line or marker in line]
    return {"worker": number, "pid": pid, "signal": sig.name, "replaced_after_s": None if replaced_s is None else round(replaced_s, 2),
            "old_process_after": state or "gone", "sent_sigcont": resumed, "log": lines[-3:],
            "_window": (t0, t1 + 1)}


def fault_workers(app: App) -> dict:
    """SIGKILL worker 1; 3 s after its replacement, SIGSTOP worker 2 (the windows do not overlap)."""
    killed = fault_worker(app, 1, signal.SIGKILL, 30)
    time.sleep(3)
    return {"kill": killed, "stop": fault_worker(app, 2, signal.SIGSTOP, 60)}


def login(port: int, user: str, password: str) -> tuple[int, dict]:
    import urllib.parse

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/login", body=urllib.parse.urlencode({"username": user, "password": password}),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def fault_logins(login_app: App) -> dict:
    statuses, retry_after = [], None
    for _ in range(10):
        status, headers = login(login_app.port, "ann", "wrong")
        statuses.append(status)
        if status == 429 and retry_after is None:
            retry_after = headers.get("retry-after")
    bob_status, bob_headers = login(login_app.port, "bob", "pw2")
    return {"ann_wrong_statuses": statuses, "retry_after": retry_after, "bob_status": bob_status,
            "bob_cookie": "set-cookie" in bob_headers}


def with_background(port: int, questions: list[str], fn, auth=None) -> dict:
    bg = Load(port, "api", questions, BACKGROUND_CLIENTS, auth=auth).start()
    time.sleep(1)
    try:
        detail = fn(bg)
    finally:
        everything = bg.stop()
    detail["background"] = everything
    for part in detail.values():  # figures over the requests in flight during a window, now that all are in
        if isinstance(part, dict) and "_window" in part:
            part["background_in_window"] = bg.summary(*part.pop("_window"))
    return detail


def bench_faults(app: App, login_app: App, questions: list[str]) -> dict:
    out: dict = {}
    steps = [
        ("idle_connections", lambda: with_background(app.port, questions, lambda bg: fault_idle_connections(app, questions))),
        ("slowloris", lambda: with_background(app.port, questions, lambda bg: fault_slowloris(app))),
        ("workers", lambda: with_background(app.port, questions, lambda bg: fault_workers(app))),
        ("logins", lambda: with_background(login_app.port, questions, lambda bg: fault_logins(login_app), auth=("bob", "pw2"))),
    ]
    for name, fn in steps:
        log(f"fault: {name}")
        try:
            out[name] = fn()
        except Exception:  # noqa: BLE001 - a failed step is reported and the others still run
            out[name] = {"error": traceback.format_exc()}
        log(f"fault {name}: {json.dumps(out[name])[:1500]}")
        time.sleep(2)
    return out


# --- 4. build races ----------------------------------------------------------------------------------------


def check_index(folder: Path, articles: Path | None = None) -> dict:
    """Load the index (every file's sha256 checked); count passages; stray files; whether it names each
    article file as it is now."""  # noqa: D401
    from qa.store import MANIFEST, load_index, read_manifest

    try:
        index = load_index(folder, verify=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        return {"loads": False, "error": f"{type(exc).__name__}: {exc}"[:300], "valid": False}
    manifest = read_manifest(folder)
    expected = {seg["name"] for seg in manifest["segments"]} | {MANIFEST, ".read.lock", ".write.lock", "onnx"}
    stray = sorted(p.name for p in folder.iterdir() if p.name not in expected)
    fresh = True
    if articles is not None:
        for a in index.articles.values():
            path = Path(a.path)
            fresh &= path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == a.sha256
    passages = len(index.chunks)
    return {"loads": True, "passages": passages, "stray_files": stray, "fresh": fresh,
            "valid": passages > 0 and not stray and fresh}


def build_cmd(*args: str) -> list[str]:
    return [PY, "-m", "qa.cli", "build", *args]


def race_two_builds(work: Path, rounds: int) -> dict:
    project = make_project(work, "race-builds")
    folder, articles = project / "index", project / "articles"
    out = {"rounds": [], "command": "python -m qa.cli build --force --index INDEX ARTICLES (twice at once)"}
    for r in range(rounds):
        t = time.monotonic()
        logs = [project / f"build-{r}-{i}.log" for i in range(2)]
        handles = [p.open("wb") for p in logs]
        procs = [spawn(build_cmd("--force", "--index", str(folder), str(articles)), cwd=project, env=child_env(),
                       stdout=h, stderr=subprocess.STDOUT) for h in handles]
        codes = []
        for p in procs:
            try:
                codes.append(p.wait(300))
            except subprocess.TimeoutExpired:
                end(p)
                codes.append("timeout")
        for h in handles:
            h.close()
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        result = check_index(folder)
        row = {"exit_codes": codes, "waited": "Waiting for another build or change" in text,
               "tracebacks": text.count("Traceback"), "seconds": round(time.monotonic() - t, 1), **result}
        row["valid"] = result["valid"] and codes == [0, 0]
        if not row["valid"] or row["tracebacks"]:
            row["output_tail"] = text[-2000:]
        out["rounds"].append(row)
        log(f"race two builds {r + 1}/{rounds}: {json.dumps({k: v for k, v in row.items() if k != 'output_tail'})}")
    out["valid"] = sum(1 for r in out["rounds"] if r["valid"])
    out["runs"] = rounds
    out["waited"] = sum(1 for r in out["rounds"] if r["waited"])
    return out


RACE_QUESTION = ("Were any victims identified?", "we have not identified any migrants claiming to be the victim")


def race_answer_ok(result: object) -> bool:
    """The app's answer to RACE_QUESTION quotes the sentence that answers it (tests/test_app.py's check)."""
    answer = isinstance(result, dict) and (result.get("answer") or {}).get("text") or ""
    return RACE_QUESTION[1] in normalize(answer)


def race_app_and_build(work: Path, rounds: int) -> dict:
    project = make_project(work, "race-app")
    article = next((project / "articles").glob("*.txt"))
    original = article.read_text(encoding="utf-8")
    out = {"rounds": [], "command": "python app.py (stale index: rebuilds at start) and python -m qa.cli build, "
                                    "started together in one project folder"}
    for r in range(rounds):
        article.write_text(original.rstrip("\n") + f"\n\nUpdate {r + 1}: COPA said on day {r + 1} of the review that "
                           "the investigation remained open.\n", encoding="utf-8")
        t = time.monotonic()
        blog = project / f"build-{r}.log"
        with blog.open("wb") as bh:
            app = App(project, project / f"app-{r}.log", {"QA_WORKERS": "0"})
            build = spawn(build_cmd(), cwd=project, env=child_env(), stdout=bh, stderr=subprocess.STDOUT)
        row: dict = {}
        try:
            row["app_ready_s"] = round(app.wait_ready(240), 1)
            client = Client(app.port)
            try:
                row["app_answer_ok"] = race_answer_ok(ask_api(client, RACE_QUESTION[0]))
            except (RequestFailed, ValueError) as exc:
                row["app_answer_ok"], row["app_error"] = False, str(exc)
            client.close()
        except RuntimeError as exc:
            row["app_answer_ok"], row["app_error"] = False, str(exc)[-1500:]
        try:
            row["build_exit"] = build.wait(300)
        except subprocess.TimeoutExpired:
            row["build_exit"] = "timeout"
        end(build)
        app.stop()
        texts = {"app": app.output(), "build": blog.read_text(errors="replace")}
        row["waited"] = [k for k, v in texts.items() if "Waiting for another build or change" in v]
        row["tracebacks"] = sum(v.count("Traceback") for v in texts.values())
        result = check_index(project / "index", project / "articles")
        row.update(result)
        row["seconds"] = round(time.monotonic() - t, 1)
        row["valid"] = result["valid"] and row["build_exit"] == 0 and row["app_answer_ok"]
        if not row["valid"] or row["tracebacks"]:
            row["output_tail"] = {k: v[-1500:] for k, v in texts.items()}
        out["rounds"].append(row)
        log(f"race app + build {r + 1}/{rounds}: {json.dumps({k: v for k, v in row.items() if k != 'output_tail'})}")
    out["valid"] = sum(1 for r in out["rounds"] if r["valid"])
    out["runs"] = rounds
    return out


# --- report ------------------------------------------------------------------------------------------------


def fmt_ms(x) -> str:
    return "–" if x is None else f"{x:,.1f} ms"


def table(res: dict) -> list[list[str]]:
    rows: list[list[str]] = []

    def row(figure: str, value: str, target: str = "", met: bool | None = None) -> None:
        rows.append([figure, value, target, "" if met is None else ("yes" if met else "**no**")])

    load = res.get("load") or {}
    for key, name in (("api", "`POST /api/ask`"), ("gradio", "Gradio `call/ask` + result stream")):
        x = load.get(key)
        if not x:
            continue
        row(f"{name}, {x['clients']} clients, {x['seconds']:.0f} s: requests/s", f"{x['requests_per_s']} ({x['requests']:,} requests)")
        row(f"{name}: failures (non-200 or a wrong answer)", f"{x['failures']} of {x['requests']:,}", "0", x["failures"] == 0)
        row(f"{name}: latency p50 / p95", f"{fmt_ms(x['ms_p50'])} / {fmt_ms(x['ms_p95'])} (max {fmt_ms(x['ms_max'])})")
    if load.get("memory_1"):
        m1, m2 = load["memory_1"], load["memory_2"]
        fills = [load.get("gradio_fill_1", {}), load.get("gradio", {}), load.get("gradio_fill_2", {})]
        row(f"app RSS after {m1['gradio_requests']:,} → {m2['gradio_requests']:,} Gradio-route requests",
            f"{m1['app_rss_mb']:,.1f} → {m2['app_rss_mb']:,.1f} MB ({load['rss_ratio']:.3f}×)",
            f"≤ {TARGETS['rss_ratio']:.2f}×", load["rss_ratio"] <= TARGETS["rss_ratio"])
        row(f"private memory of the app's {m2['children']} children (spawner + ask workers), same points",
            f"{m1['children_private_mb']:,.1f} → {m2['children_private_mb']:,.1f} MB"
            + (f" ({load['children_private_ratio']:.3f}×)" if load.get("children_private_ratio") else ""))
        fails = sum(f.get("failures", 0) for f in fills)
        raced = load.get("gradio_fill_2", {}).get("with_build_races")
        row("Gradio-route failures over the whole memory run" + (f" (from {m1['gradio_requests']:,} on, the build races "
                                                                 "ran meanwhile)" if raced else ""),
            f"{fails} of {sum(f.get('requests', 0) for f in fills):,}", "0", fails == 0)
    faults = res.get("faults") or {}
    idle = faults.get("idle_connections") or {}
    if "connections_opened" in idle:
        row(f"idle TCP connections opened ({IDLE_HOLDERS} processes × {IDLE_PER_HOLDER:,})",
            f"{idle['connections_opened']:,} (all open after {idle['all_open_after_s']} s)")
        ok = idle["request_failures"] == 0 and idle["ms_max"] <= TARGETS["idle_request_s"] * 1000
        row("…meanwhile 20 normal `/api/ask` requests (new connections): p50 / max",
            f"{fmt_ms(idle['ms_p50'])} / {fmt_ms(idle['ms_max'])} (max while opening {fmt_ms(idle['ms_max_while_opening'])}, "
            f"once open {fmt_ms(idle['ms_max_while_held'])}); {idle['request_failures']} failed",
            "each ≤ 1 s, none failed", ok)
        row("…app log growth", f"{idle['log_lines_added']} lines ({idle['tracebacks']} tracebacks)",
            f"< {TARGETS['idle_log_lines']} lines, no traceback", idle["log_lines_added"] < TARGETS["idle_log_lines"] and not idle["tracebacks"])
        tcp = idle.get("tcp_counters_delta", {})
        row("…machine TCP counters over the flood (/proc/net/netstat): accept-queue overflows (ListenOverflows) / "
            "sockets closed with a request unread, answered with a reset (TCPAbortOnClose)",
            f"{tcp.get('ListenOverflows', '–')} / {tcp.get('TCPAbortOnClose', '–')}")
        limit = idle.get("app_fds_limit")
        row("…app's open file descriptors: before / peak (sampled every 50 ms) / when all were open",
            f"{idle['app_fds_before']} / {idle['app_fds_peak']:,} / {idle['app_fds_when_all_open']:,} (the cap: "
            f"{TARGETS['max_connections']:,} connections, QA_MAX_CONNECTIONS's default, + 512 accepted in one burst; "
            "a flood runs over it for the half second a connection is kept before it may be closed: qa/connections.py)",
            "–" if limit is None else f"≤ {limit - 256:,} (the app's open-file limit, {limit:,}, less 256 reserved)",
            limit is not None and idle["app_fds_peak"] <= limit - 256)
    slow = faults.get("slowloris") or {}
    if "closed_after_s" in slow:
        c = slow["closed_after_s"]
        row("slowloris (headers 1 byte / 100 ms): closed by the app after",
            "not closed" if c is None else f"{c} s ({slow['bytes_sent']} of {slow['bytes_in_request']} bytes sent; {slow['how']})",
            f"≤ {TARGETS['slowloris_s']:g} s", c is not None and c <= TARGETS["slowloris_s"])
    workers = faults.get("workers") or {}
    for key, target in (("kill", TARGETS["kill_replaced_s"]), ("stop", TARGETS["stop_replaced_s"])):
        w = workers.get(key)
        if not w:
            continue
        r = w["replaced_after_s"]
        row(f"{w['signal']} of ask worker {w['worker']}: replaced after",
            "not replaced" if r is None else f"{r} s" + (" (it was left stopped: sent SIGCONT)" if w["sent_sigcont"] else ""),
            f"≤ {target:g} s", r is not None and r <= target and not w["sent_sigcont"])
        b = w["background_in_window"]
        row(f"…background `/api/ask` requests from the {w['signal']} until replaced + 1 s: failures",
            f"{b['failures']} of {b['requests']} (max latency {fmt_ms(b['ms_max'])})", "0", b["failures"] == 0)
    logins = faults.get("logins") or {}
    if "ann_wrong_statuses" in logins:
        s = logins["ann_wrong_statuses"]
        row("10 wrong logins for ann (`POST /login`): statuses", " ".join(map(str, s)) + f" (Retry-After {logins['retry_after']})",
            "400 ×5, then 429 ×5", s == TARGETS["login_statuses"])
        row("…then bob logs in", f"HTTP {logins['bob_status']}, cookie {'set' if logins['bob_cookie'] else 'not set'}",
            "200 with a cookie", logins["bob_status"] == 200 and logins["bob_cookie"])
    for name, f in faults.items():
        if isinstance(f, dict) and "background" in f:
            b = f["background"]
            row(f"background load during `{name}` ({b['clients']} clients on /api/ask"
                + (", bob's login" if name == "logins" else "") + "): failures",
                f"{b['failures']} of {b['requests']:,} (p50 {fmt_ms(b['ms_p50'])}, max {fmt_ms(b['ms_max'])}, "
                f"{b['reconnects']} reconnects)", "0", b["failures"] == 0)
        elif isinstance(f, dict) and "error" in f:
            row(f"fault `{name}`", "the step failed: " + f["error"].strip().splitlines()[-1][:200], "runs", False)
    races = res.get("races") or {}
    if races.get("two_builds"):
        x = races["two_builds"]
        row("two `qa build --force` at once into one index: valid index (loads, sha256 checked, no stray files)",
            f"{x['valid']}/{x['runs']} (passages {sorted({r.get('passages') for r in x['rounds']}, key=str)}; "
            f"one build waited for the other in {x['waited']})", f"{x['runs']}/{x['runs']}", x["valid"] == x["runs"])
    if races.get("app_and_build"):
        x = races["app_and_build"]
        row("app starting on a stale index + `qa build` at once: valid, fresh index and a right answer",
            f"{x['valid']}/{x['runs']} (passages {sorted({r.get('passages') for r in x['rounds']}, key=str)})",
            f"{x['runs']}/{x['runs']}", x["valid"] == x["runs"])
    tb = res.get("tracebacks")
    if tb is not None:
        row("tracebacks in the logs of every app and build of the run", str(sum(tb.values())), "0", not any(tb.values()))
    return rows


def markdown(res: dict) -> str:
    meta = res["meta"]
    rows = table(res)
    head = ["figure", "value", "target", "met"]
    modified = meta.get("modified_vs_commit") or []
    lines = [
        f"Reliability benchmark, {meta['mode']} run, {meta['date']} (commit {meta['commit'][:7]}"
        + (f" + uncommitted changes to {', '.join(sorted({m.split()[-1] for m in modified}))}" if modified else "")
        + f"; code {meta.get('code_sha256')}); {meta['cpus']} CPU cores shared with other jobs; "
        f"{meta.get('total_s', 0):.0f} s in all. `{meta['command']}`",
        "",
        f"Load average (/proc/loadavg, 1/5/15 min): {meta['load_start']} at start, {meta.get('load_end')} at end; by phase: "
        + "; ".join(f"{k} {v['loadavg_start'][0]}→{v['loadavg_end'][0]} (other processes kept {v['other_cores']} cores busy, "
                    f"this run {v['own_cores']})" for k, v in res.get("phases", {}).items()) + ".",
        "",
        f"Questions: {', '.join(res.get('questions', {}).get('ids', []))} of eval/seed.jsonl (answers checked at warm-up "
        "against the gold evidence, then required verbatim).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    missed = [r[0] for r in rows if r[3] == "**no**"]
    if missed:
        lines += ["", "Missed: " + "; ".join(missed) + "."]
    if res.get("errors"):
        lines += ["", "Steps that failed: " + "; ".join(f"{k}: {v.strip().splitlines()[-1]}" for k, v in res["errors"].items())]
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------------------


def count_tracebacks(work: Path) -> dict[str, int]:
    out = {}
    for f in sorted(work.rglob("*.log")):
        n = f.read_text(errors="replace").count("Traceback")
        out[str(f.relative_to(work))] = n
    return {k: v for k, v in out.items() if v} or {"all logs": 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 s loads, 500/2,500 Gradio requests, 1 round of each race")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "reliability.json")
    ap.add_argument("--md", type=Path, default=ROOT / "benchmarks" / "reliability.md")
    ap.add_argument("--seconds", type=float, help="seconds of each load run (default 30, --quick 5)")
    ap.add_argument("--rounds", type=int, help="rounds of each build race (default 10, --quick 1)")
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: load,faults,races")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (projects, logs)")
    args = ap.parse_args()
    quick = args.quick
    seconds = args.seconds or (5.0 if quick else 30.0)
    rounds = args.rounds or (1 if quick else 10)
    marks = (500, 2_500) if quick else (2_000, 20_000)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (nohup, &)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)

    work = Path(tempfile.mkdtemp(prefix="qa-reliability-"))
    res: dict = {"meta": {
        "mode": "quick" if quick else "full", "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": "python benchmarks/reliability.py" + (" --quick" if quick else ""),
        "commit": git("rev-parse", "HEAD"), "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_start": loadavg(), "seconds_per_load": seconds, "gradio_marks": marks, "race_rounds": rounds,
        "targets": TARGETS}, "errors": {}}
    app = login_app = None
    races_done = False

    def races() -> None:
        res["races"] = {}
        for name, fn in (("two_builds", lambda: race_two_builds(work, rounds)),
                         ("app_and_build", lambda: race_app_and_build(work, rounds))):
            t = time.perf_counter()
            try:
                res["races"][name] = fn()
                res["races"][name]["wall_s"] = round(time.perf_counter() - t, 1)
            except Exception:  # noqa: BLE001 - reported; the run goes on
                res["errors"][f"race {name}"] = traceback.format_exc()
                log(res["errors"][f"race {name}"])

    try:
        res["meta"].update(snapshot_code(work))
        log(f"work folder {work}; code {res['meta']['code_sha256']}; load average {res['meta']['load_start']}")
        if not {"load", "faults"} <= skip:
            with Phase(res, "start"):
                project = make_project(work, "project")
                app = App(project, work / "app.log", {"QA_WORKERS": "2"})
                login_app = App(project, work / "app-login.log", {"QA_AUTH": AUTH, "QA_WORKERS": "0"})
                res["startup_s"] = {"app": round(app.wait_ready(), 1), "login_app": round(login_app.wait_ready(), 1)}
                res["questions"] = pick_questions(app)
                log(f"apps up {res['startup_s']}; questions {res['questions']['ids']}; rejected {res['questions']['rejected']}")
            questions = res["questions"]["questions"]
            if "load" not in skip:
                counter = [res["questions"]["gradio_requests"]]
                try:
                    with Phase(res, "load"):
                        res["load"] = bench_load(app, questions, seconds, marks[0], counter)
                    races_done = "races" not in skip  # bench_fill runs them (and waits for them, also when it fails)
                    with Phase(res, "memory" + (" + build races" if races_done else "")):
                        bench_fill(app, questions, marks[1], counter, res["load"], meanwhile=races if races_done else None)
                except Exception:  # noqa: BLE001
                    res["errors"]["load"] = traceback.format_exc()
                    log(res["errors"]["load"])
            if "faults" not in skip:
                with Phase(res, "faults"):
                    res["faults"] = bench_faults(app, login_app, questions)
            res["app_log_tail"] = app.output().splitlines()[-30:]
            app.stop()
            login_app.stop()
        if "races" not in skip and not races_done:
            with Phase(res, "build races"):
                races()
        res["tracebacks"] = count_tracebacks(work)
    except KeyboardInterrupt:
        log("interrupted: stopping everything this run started")
        end_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return 130
    except Exception:  # noqa: BLE001
        res["errors"]["run"] = traceback.format_exc()
        log(res["errors"]["run"])
    finally:
        end_all()
    res["meta"]["load_end"] = loadavg()
    res["meta"]["total_s"] = round(time.perf_counter() - T0, 1)
    md = markdown(res)
    res["table_markdown"] = md
    print(md)
    args.json.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    args.md.write_text(md)
    if args.keep:
        log(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    log(f"done in {res['meta']['total_s']} s")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
