"""Ask workers: processes that answer questions beside a server's event loop, so asks use every core.

In one Python process, the event loop (HTTP parsing, JSON) and the asks' Python glue take turns on one
GIL: measured on 2 cores, 4 concurrent /api/ask clients got 1.4-1.7x one client's throughput with only
1.6 of the 2 cores busy. A worker is a process forked from the server once its engine is loaded, before
the server starts any thread of its own: it shares the loaded model and index with the server (copy on
write) instead of loading its own copies. That matters: separately loaded processes each ask 30 % slower
when both are busy (5.0 vs 3.8 ms of CPU per seed question, measured), as the two models crowd each other
out of the CPU caches; forked ones ask as fast as threads do.

The server talks to each worker over a socket pair. Frames, both ways, are a 4-byte big-endian length and
a payload: a request is JSON {"question": ..., "k": ...}, a reply a 3-digit HTTP status and the JSON body,
byte for byte what `answer_json` gives in the server's own process. The server answers in its own process
whenever no worker is left (a worker that dies is not replaced: forking a server with threads running is
unsafe). A worker exits when the server's end of its socket closes, also when the server dies.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import struct
import sys
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, QAError

INTERNAL_ERROR = "Something went wrong while answering; the error is in the server log. Try again or rephrase."
MAX_AUTO_WORKERS = 4
_LENGTH = struct.Struct(">I")


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may run on: its affinity, capped by a cgroup v2 CPU quota (containers, Spaces)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def worker_count(value: str | None) -> int:
    """QA_WORKERS: unset or "auto" -> one per usable CPU when there are at least two (at most 4), else 0;
    "0" -> none, every question answered in the server's process; N -> N (at most 16)."""
    if value is None or value.strip().lower() in ("", "auto"):
        cpus = usable_cpus()
        return min(cpus, MAX_AUTO_WORKERS) if cpus >= 2 else 0
    text = value.strip()
    if not text.isdigit() or int(text) > 16:
        raise ConfigError(f"QA_WORKERS={value!r} is not a number of worker processes; set 0-16, or auto "
                          "(one per CPU), or unset it.")
    return int(text)


def _stderr(message: str) -> None:
    print(f"article-qa: {message}", file=sys.stderr, flush=True)


def log_internal_error(question: object) -> None:
    """The traceback of the exception being handled, to the server log (never to the user)."""
    _stderr(f"internal error for question {str(question)[:200]!r}:\n{traceback.format_exc()}")


def answer_json(engine, question: object, k: int) -> tuple[int, bytes]:
    """(HTTP status, JSON body) for one question: 200 and the `qa ask --json` answer, 400 and {"error"} for
    a question the engine refuses, 500 and a generic message (the traceback goes to the log) for a bug."""
    try:
        body: dict = engine.ask(question, k).to_json()
        status = 200
    except QAError as exc:
        body, status = {"error": str(exc)}, 400
    except Exception:  # a bug, not the caller's fault: the message, never the traceback
        log_internal_error(question)
        body, status = {"error": INTERNAL_ERROR}, 500
    return status, json.dumps(body, ensure_ascii=False).encode("utf-8")


def forkable(engine) -> bool:
    """Whether workers may be forked from a process holding `engine`: its questions run on onnxruntime with
    one thread (QA_THREADS=1, as the app sets it). PyTorch's OpenMP thread pool does not survive a fork."""
    return engine.embedder.backend == "onnx" and os.environ.get("QA_THREADS") == "1"


# --- the worker's side -----------------------------------------------------------------------------------

def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        part = sock.recv(n - got)
        if not part:
            return None
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _recv_frame(sock: socket.socket) -> bytes | None:
    head = _recv_exactly(sock, _LENGTH.size)
    return None if head is None else _recv_exactly(sock, _LENGTH.unpack(head)[0])


def _serve(sock: socket.socket, engine, inherited: list[socket.socket]) -> None:
    """The worker's loop: answer until the server hangs up."""
    import faiss

    faiss.omp_set_num_threads(1)  # one question at a time; and no OpenMP pool, which a fork would break
    for other in inherited:  # the server's ends of this and earlier workers' sockets: a copy kept open here
        other.close()        # would hide the server's hanging up
    try:
        while (frame := _recv_frame(sock)) is not None:
            request = json.loads(frame)
            status, body = answer_json(engine, request["question"], request["k"])
            reply = str(status).encode() + body
            sock.sendall(_LENGTH.pack(len(reply)) + reply)
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass
    finally:
        sock.close()


# --- the server's side -----------------------------------------------------------------------------------

class _Worker:
    def __init__(self, number: int, sock: socket.socket, proc: multiprocessing.process.BaseProcess) -> None:
        self.number, self.sock, self.proc = number, sock, proc
        self.writer: asyncio.StreamWriter | None = None
        self.pending: deque[asyncio.Future] = deque()  # questions sent, in the order the replies will come
        self.alive = True


class AskPool:
    """`count` worker processes forked from this one, each sharing `engine`; `await ask(question, k)`
    hands a question to the least busy one. Create it before starting threads; use `ask` from one event loop.

    Each worker holds up to DEPTH questions: the next one waits in its socket while it answers the current
    one, so a worker never idles while the server's busy event loop gets round to it (measured: 1.75-1.8 of
    2 cores busy with one question per worker).
    """

    DEPTH = 2

    def __init__(self, engine, count: int, log: Callable[[str], None] = _stderr) -> None:
        if not forkable(engine):
            raise ConfigError(f"Ask workers need the ONNX query encoder with QA_THREADS=1 (this engine: "
                              f"{engine.embedder.backend}, QA_THREADS={os.environ.get('QA_THREADS')!r}); "
                              "run `qa build` to export the model, or set QA_WORKERS=0.")
        self.log = log
        self._workers: list[_Worker] = []
        fork = multiprocessing.get_context("fork")
        for number in range(1, count + 1):
            mine, theirs = socket.socketpair()
            proc = fork.Process(target=_serve, args=(theirs, engine, [mine] + [w.sock for w in self._workers]),
                                name=f"qa-ask-worker-{number}", daemon=True)  # daemon: ended when the server exits
            proc.start()
            theirs.close()
            self._workers.append(_Worker(number, mine, proc))
        self._room: asyncio.Condition | None = None  # these two are made in the event loop, on first use
        self._started: asyncio.Future | None = None

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    @property
    def alive(self) -> int:
        """Workers that take questions (not known to have died)."""
        return sum(w.alive for w in self._workers)

    async def _start(self) -> None:
        for w in self._workers:
            reader, w.writer = await asyncio.open_connection(sock=w.sock)
            asyncio.get_running_loop().create_task(self._read_replies(w, reader), name=f"qa-ask-worker-{w.number}")

    async def _read_replies(self, w: _Worker, reader: asyncio.StreamReader) -> None:
        assert self._room is not None
        try:
            while True:
                head = await reader.readexactly(_LENGTH.size)
                reply = await reader.readexactly(_LENGTH.unpack(head)[0])
                fut = w.pending.popleft()
                if not fut.done():  # done: cancelled, its client went away
                    fut.set_result((int(reply[:3]), reply[3:]))
                async with self._room:
                    self._room.notify()
        except (OSError, asyncio.IncompleteReadError):
            pass
        w.alive = False
        for fut in w.pending:  # asked in the server's process instead
            if not fut.done():
                fut.set_result(None)
        w.pending.clear()
        assert w.writer is not None
        w.writer.close()
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)
        self.log(f"ask worker {w.number} (pid {w.proc.pid}) stopped (exit code {w.proc.exitcode}); {self.alive} "
                 f"left{'' if self.alive else ', questions are answered in the server process'}")
        async with self._room:
            self._room.notify_all()

    async def ask(self, question: object, k: int) -> tuple[int, bytes] | None:
        """(status, body) from a worker, or None when no worker is left or the one asked died meanwhile."""
        if self._room is None or self._started is None:
            self._room = asyncio.Condition()
            self._started = asyncio.ensure_future(self._start())
        await self._started  # every caller waits for the streams; done, it returns at once
        payload = json.dumps({"question": question, "k": k}, ensure_ascii=False).encode("utf-8")
        async with self._room:
            while True:
                live = [w for w in self._workers if w.alive]
                if not live:
                    return None
                # the least busy; ties to the first, so under light load one worker takes every question and
                # keeps what it touches in its core's caches (measured: taking turns cost 0.5-2 ms per ask)
                w = min(live, key=lambda w: len(w.pending))
                if len(w.pending) < self.DEPTH:
                    break
                await self._room.wait()
            reply: asyncio.Future = asyncio.get_running_loop().create_future()
            w.pending.append(reply)
            assert w.writer is not None
            w.writer.write(_LENGTH.pack(len(payload)) + payload)
        return await reply

    def close(self) -> None:
        """Hang up on every worker (each exits on end of file) and wait for them."""
        for w in self._workers:
            w.sock.close()
        for w in self._workers:
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(5)
