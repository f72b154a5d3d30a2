"""Ask workers: processes that answer questions beside a server's event loop, so asks use every core.

In one Python process, the event loop (HTTP parsing, JSON) and the asks' Python glue take turns on one
GIL: measured on 2 cores, 4 concurrent /api/ask clients got 1.4-1.7x one client's throughput with only
1.6 of the 2 cores busy. A worker is a process forked from the server once its engine is loaded, before
the server starts any thread of its own: it shares the loaded model and index with the server (copy on
write) instead of loading its own copies. That matters: separately loaded processes each ask 30 % slower
when both are busy (5.0 vs 3.8 ms of CPU per seed question, measured), as the two models crowd each other
out of the CPU caches; forked ones ask as fast as threads do.

Processes. Forking a process once it runs threads is unsafe (a lock another thread held stays locked in
the child), and the server runs threads as soon as it serves. So at pool creation, before any thread, the
server forks one *spawner*: a single-threaded copy of itself holding the loaded engine (copy on write, and
its objects frozen out of the garbage collector so it never touches them), which only waits on a Unix
socket for "spawn" requests. For each it forks a worker and passes the server's end of the worker's socket
pair, and a pidfd of the worker, back over that socket (SCM_RIGHTS). The first workers and their
replacements come the same way. The server forks and reaps only the spawner; the spawner reaps its workers
(SIGCHLD wakes its loop) and reports how each ended. Everyone exits on end of file: a worker when the
server's end of its socket closes, the spawner when the server's end of its own does (pool closed, or
server dead; it then gives its workers CLOSE_GRACE seconds to see their own end of file and kills the
rest). So that end of file comes, a spawner closes every socket a pool of this process holds.

The server talks to each worker over a socket pair. Frames, both ways, are a 4-byte big-endian length and
a payload: a request is JSON {"question": ..., "k": ...}, a reply a 3-digit HTTP status and the JSON body,
byte for byte what `answer_json` gives in the server's own process. An empty request is a ping, answered at
once with status 000 and the worker's pid.

Deadlines. A worker has `timeout` seconds (QA_ASK_TIMEOUT, default 15) for the oldest question it holds,
counted from when it could start on it; an idle worker is pinged every PING_INTERVAL seconds and has
PING_TIMEOUT seconds to answer. One watchdog task per pool checks this a few times a second. A worker that
misses a deadline (frozen, stuck) is killed; one that dies is noticed by end of file. Either way its
questions are handed back (`ask` returns None: answer them in the server's process), it is logged and
replaced, at most `max_replacements` times a minute: past that (a crash loop) the pool stops replacing and
carries on with the workers left, and with none the server answers in its own process. So it does if the
spawner dies.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .errors import ConfigError, QAError, http_status
from .validation import AskRequest, parse_ask_request

INTERNAL_ERROR = "Something went wrong while answering; the error is in the server log. Try again or rephrase."
MAX_AUTO_WORKERS = 4
DEFAULT_ASK_TIMEOUT = 15.0
_LENGTH = struct.Struct(">I")
_PING = _LENGTH.pack(0)  # an empty frame
_SPAWN = b"spawn"

# Sockets and pidfds the server holds for the pools of this process. A spawner forked later closes its
# copies first: one kept open there (and in its workers) would hide the server's hanging up from a worker,
# or from another pool's spawner.
_HELD_SOCKETS: set[socket.socket] = set()
_HELD_FDS: set[int] = set()


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


def ask_timeout(value: str | None) -> float:
    """QA_ASK_TIMEOUT: seconds an ask worker may take over one question before it is taken for frozen (killed
    and replaced, its questions answered in the server's process); unset -> 15."""
    if value is None or not value.strip():
        return DEFAULT_ASK_TIMEOUT
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = math.nan
    if not 0.1 <= seconds <= 3600:  # also refuses nan and inf
        raise ConfigError(f"QA_ASK_TIMEOUT={value!r} is not a number of seconds; set how long an ask worker may "
                          f"take over one question, 0.1-3600 (e.g. 15 or 2.5), or unset it for "
                          f"{DEFAULT_ASK_TIMEOUT:g}.")
    return seconds


def _stderr(message: str) -> None:
    print(f"article-qa: {message}", file=sys.stderr, flush=True)


def log_internal_error(question: object) -> None:
    """The traceback of the exception being handled, to the server log (never to the user)."""
    _stderr(f"internal error for question {str(question)[:200]!r}:\n{traceback.format_exc()}")


def answer_json(engine, request: AskRequest) -> tuple[int, bytes]:
    """(HTTP status, JSON body) for one checked request: 200 and the `qa ask --json` answer, 4xx and {"error"}
    for one the engine refuses (404: an unknown article), 500 and a generic message (the traceback goes to
    the log) for a bug."""
    try:
        body: dict = engine.ask(request.question, request.k, history=request.history, articles=request.articles).to_json()
        status = 200
    except QAError as exc:
        body, status = {"error": str(exc)}, http_status(exc)
    except Exception:  # a bug, not the caller's fault: the message, never the traceback
        log_internal_error(request.question)
        body, status = {"error": INTERNAL_ERROR}, 500
    return status, json.dumps(body, ensure_ascii=False).encode("utf-8")


def _answer_frame(engine, frame: bytes) -> tuple[int, bytes]:
    """A worker's answer to a request frame (checked by the server already, and again here: same rules)."""
    try:
        request = parse_ask_request(json.loads(frame), max_question_chars=engine.settings.max_question_chars, max_k=50)
    except QAError as exc:
        return http_status(exc), json.dumps({"error": str(exc)}, ensure_ascii=False).encode("utf-8")
    return answer_json(engine, request)


def forkable(engine) -> bool:
    """Whether workers may be forked from a process holding `engine`: its questions run on onnxruntime with
    one thread (QA_THREADS=1, as the app sets it). PyTorch's OpenMP thread pool does not survive a fork, and
    neither does a Qdrant client (its connections; in local mode, its database file): with QA_STORE=qdrant the
    server answers in its own process, and more app servers share the archive instead."""
    return (engine.embedder.backend == "onnx" and os.environ.get("QA_THREADS") == "1"
            and getattr(engine.settings, "store", "files") == "files")


def _how(status: int) -> str:
    """How a process ended, from its wait status."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _child(what: str, work: Callable[[], int | None]) -> NoReturn:
    """Run `work` in a process just forked, and end it: never return into the forking code (the server's, or
    a test runner's)."""
    code = 70
    try:
        code = work() or 0
    except BaseException:
        _stderr(f"{what} (pid {os.getpid()}) crashed:\n{traceback.format_exc()}")
    finally:
        os._exit(code)


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


def _inherited_segments(engine) -> set[str]:
    return {seg.name for seg in getattr(engine.index, "segments", ())}


def _serve(sock: socket.socket, engine) -> None:
    """The worker's loop: answer until the server hangs up; a ping (empty frame) at once.

    The objects inherited from the server stay frozen (gc.freeze in the spawner): a collection that visited them
    would write to every page holding one and so copy it (measured: +50 MB a worker after 220 questions). Those
    objects include the index snapshot of the fork, whose objects refer to each other: frozen, it is not freed when
    an add replaces it. Its segments are still in use after an add; once one of them is merged away or rebuilt, the
    worker unfreezes and collects, once, so that the retired segment's file is let go."""
    import faiss

    faiss.omp_set_num_threads(1)  # one question at a time; and no OpenMP pool, which a fork would break
    pong = b"000" + str(os.getpid()).encode()
    pong = _LENGTH.pack(len(pong)) + pong
    inherited = _inherited_segments(engine)
    try:
        while (frame := _recv_frame(sock)) is not None:
            if not frame:
                sock.sendall(pong)
                continue
            status, body = _answer_frame(engine, frame)
            reply = str(status).encode() + body
            sock.sendall(_LENGTH.pack(len(reply)) + reply)
            if inherited and not inherited <= _inherited_segments(engine):  # after the reply: no one waits for it
                gc.unfreeze()
                gc.collect()
                inherited = set()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()


# --- the spawner's side ----------------------------------------------------------------------------------

def _fork_worker(ctrl: socket.socket, engine, wake: tuple[int, int]) -> tuple[dict, socket.socket | None, int | None]:
    """Fork a worker: ({"spawned": pid}, the server's end of its socket, its pidfd or None), or ({"error"}, None,
    None)."""
    try:
        mine, theirs = socket.socketpair()
    except OSError as exc:
        return {"error": f"no socket pair: {exc}"}, None, None
    try:
        pid = os.fork()
    except OSError as exc:
        mine.close()
        theirs.close()
        return {"error": f"cannot fork: {exc}"}, None, None
    if pid == 0:
        def work() -> None:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in wake:
                os.close(fd)
            ctrl.close()  # the spawner's: its requests are none of a worker's business
            mine.close()  # the server's end: kept open here, the worker would never see the server hang up
            _serve(theirs, engine)

        _child("ask worker", work)
    theirs.close()
    try:  # opened before this loop can reap the worker, so it names this very process (no pid reuse)
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    return {"spawned": pid}, mine, pidfd


def _spawner(ctrl: socket.socket, engine, grace: float) -> int:
    """The spawner's loop: a worker per request on `ctrl`; reap workers and report how they ended. When the
    server hangs up: wait up to `grace` seconds for the workers (they see end of file too), kill the rest.
    Returns how many it had to kill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the server closes the pool; its workers inherit this
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not whatever the server had set
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the point is the wakeup fd: reaping happens in the loop
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    gc.freeze()  # the engine's objects, shared with the server: no collection here writes to their pages
    workers: set[int] = set()
    poll = select.poll()  # not select(): no limit on descriptor numbers
    poll.register(ctrl, select.POLLIN)
    poll.register(wake_r, select.POLLIN)

    def reap(report: bool) -> None:
        while workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                workers.clear()
                return
            if pid == 0:
                return
            workers.discard(pid)
            if report:
                try:
                    ctrl.send(json.dumps({"exited": pid, "how": _how(status)}).encode(), socket.MSG_NOSIGNAL)
                except OSError:
                    pass

    while True:
        ready = {fd for fd, _event in poll.poll()}
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            reap(report=True)
        if ctrl.fileno() in ready:
            try:
                request = ctrl.recv(64)
            except OSError:
                request = b""
            if request != _SPAWN:
                break  # end of file: the pool closed, or the server died
            answer, sock, pidfd = _fork_worker(ctrl, engine, (wake_r, wake_w))
            if "spawned" in answer:
                workers.add(answer["spawned"])
            fds = ([] if sock is None else [sock.fileno()]) + ([] if pidfd is None else [pidfd])
            try:
                socket.send_fds(ctrl, [json.dumps(answer).encode()], fds, socket.MSG_NOSIGNAL)
            except OSError:
                break
            finally:
                if sock is not None:
                    sock.close()
                if pidfd is not None:
                    os.close(pidfd)
    deadline = time.monotonic() + grace
    while workers and time.monotonic() < deadline:
        reap(report=False)
        if workers:
            time.sleep(0.02)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in workers:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return min(len(workers), 100)


# --- the server's side -----------------------------------------------------------------------------------

class _Worker:
    def __init__(self, number: int, pid: int, sock: socket.socket, pidfd: int | None) -> None:
        self.number, self.pid, self.sock, self.pidfd = number, pid, sock, pidfd
        self.writer: asyncio.StreamWriter | None = None
        # (a question's future, or None for a ping; when it was sent), in the order the replies will come
        self.pending: deque[tuple[asyncio.Future | None, float]] = deque()
        self.alive = True
        self.last_reply = time.monotonic()
        self.answered = 0  # questions answered (a test hook, like pongs)
        self.pongs = 0

    def kill(self) -> None:
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def release(self) -> None:
        """In the event loop: close its stream (dropping anything unsent) and socket, and its pidfd."""
        _HELD_SOCKETS.discard(self.sock)
        if self.writer is not None:
            self.writer.transport.abort()  # closes the socket once the loop has forgotten it
        else:
            self.sock.close()
        if self.pidfd is not None:
            _HELD_FDS.discard(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def hand_back(self) -> int:
        """Resolve its pending questions to None (the server answers them itself): how many there were."""
        handed = 0
        for fut, _sent in self.pending:
            if fut is not None and not fut.done():  # done: cancelled, its client went away
                fut.set_result(None)
                handed += 1
        self.pending.clear()
        return handed


class AskPool:
    """`count` worker processes sharing `engine` with this one; `await ask(question, k)` hands a question to
    the least busy one. Create it before starting threads; use `ask` from one event loop; `close` when that
    loop has stopped.

    Each worker holds up to DEPTH questions: the next one waits in its socket while it answers the current
    one, so a worker never idles while the server's busy event loop gets round to it (measured: 1.75-1.8 of
    2 cores busy with one question per worker).

    `timeout`: seconds a worker may take over a question (None: QA_ASK_TIMEOUT, default 15); an idle worker
    is pinged every `ping_interval` seconds and has `ping_timeout` to answer; at most `max_replacements`
    workers are replaced in REPLACEMENT_WINDOW seconds (0: none); the spawner has `spawn_timeout` seconds to
    start a worker.
    """

    DEPTH = 2
    REPLACEMENT_WINDOW = 60.0
    CLOSE_GRACE = 2.0  # seconds workers get to see end of file and exit on close, before they are killed

    def __init__(self, engine, count: int, log: Callable[[str], None] = _stderr, *, timeout: float | None = None,
                 ping_interval: float = 5.0, ping_timeout: float = 2.0, max_replacements: int = 5,
                 spawn_timeout: float = 10.0) -> None:
        if getattr(engine.settings, "store", "files") != "files":
            raise ConfigError("ask workers are not forked with QA_STORE=qdrant (a Qdrant client does not survive a "
                              "fork); run more app servers over the same Qdrant instead")
        if not forkable(engine):
            raise ConfigError(f"Ask workers need the ONNX query encoder with QA_THREADS=1 (this engine: "
                              f"{engine.embedder.backend}, QA_THREADS={os.environ.get('QA_THREADS')!r}); "
                              "run `qa build` to export the model, or set QA_WORKERS=0.")
        self.timeout = ask_timeout(os.environ.get("QA_ASK_TIMEOUT")) if timeout is None else float(timeout)
        self.ping_interval, self.ping_timeout = float(ping_interval), float(ping_timeout)
        if not min(self.timeout, self.ping_interval, self.ping_timeout, spawn_timeout) > 0 or max_replacements < 0:
            raise ValueError("timeouts and the ping interval must be over 0 seconds, max_replacements at least 0")
        self.max_replacements, self.spawn_timeout = max_replacements, float(spawn_timeout)
        self.log = log
        self._workers: list[_Worker | None] = [None] * count  # slot i holds worker i + 1, or its replacement
        self._spawning: deque[tuple[int, float]] = deque()  # (worker number, when asked) the spawner owes
        self._replaced: deque[float] = deque()  # when replacements were asked for, in the last window
        self._replacing = True  # False once the crash-loop guard tripped
        self._exits: dict[int, str] = {}  # pid -> how a current worker ended, reported before its end of file
        self._exit_waiters: dict[int, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._room: asyncio.Condition | None = None  # these two are made in the event loop, on first use
        self._started: asyncio.Future | None = None
        self._closed = False
        self.spawner_exitcode: int | None = None  # once reaped: how many workers it had to kill on close, or -signal
        self._spawner_how: str | None = None
        self._ctrl: socket.socket | None
        self._ctrl, self.spawner_pid = self._fork_spawner(engine)
        for number in range(1, count + 1):
            self._request_spawn(number)
        self._receive_spawned(time.monotonic() + self.spawn_timeout)

    @property
    def pids(self) -> list[int]:
        """The current workers' pids."""
        return [w.pid for w in self._workers if w is not None and w.alive]

    @property
    def alive(self) -> int:
        """Workers that take questions (not known to have died)."""
        return sum(1 for w in self._workers if w is not None and w.alive)

    def _left(self) -> str:
        alive = self.alive
        return f"{alive} left{'' if alive else ', questions are answered in the server process'}"

    # --- the spawner, from the server

    def _fork_spawner(self, engine) -> tuple[socket.socket, int]:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        _HELD_SOCKETS.add(mine)
        try:
            pid = os.fork()
        except OSError:
            _HELD_SOCKETS.discard(mine)
            mine.close()
            theirs.close()
            raise
        if pid == 0:
            def work() -> int:
                for s in list(_HELD_SOCKETS):
                    s.close()
                for fd in list(_HELD_FDS):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                return _spawner(theirs, engine, self.CLOSE_GRACE)

            _child("ask worker spawner", work)
        theirs.close()
        return mine, pid

    def _receive_spawned(self, deadline: float) -> None:
        """Before the event loop: wait for the workers asked for."""
        try:
            while self._spawning and self._ctrl is not None:
                self._ctrl.settimeout(max(0.01, deadline - time.monotonic()))
                data, fds, _flags, _addr = socket.recv_fds(self._ctrl, 4096, 2, socket.MSG_CMSG_CLOEXEC)
                if not data:
                    raise ConnectionResetError("end of file")
                self._on_message(data, fds)
        except OSError as exc:
            self._spawner_lost(f"did not start the ask workers ({exc or 'timed out'})", kill=True)
        else:
            if self._ctrl is not None:
                self._ctrl.settimeout(None)

    def _request_spawn(self, number: int) -> None:
        if self._ctrl is None:
            return
        try:
            self._ctrl.send(_SPAWN, socket.MSG_NOSIGNAL)
        except OSError as exc:
            self._spawner_lost(f"stopped ({exc})")
            return
        self._spawning.append((number, time.monotonic()))

    def _on_ctrl(self) -> None:
        """The event loop's reader of the spawner's socket."""
        while self._ctrl is not None:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._ctrl, 4096, 2, socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._spawner_lost(f"stopped ({exc})")
                return
            if not data:
                self._spawner_lost("stopped")
                return
            self._on_message(data, fds)

    def _on_message(self, data: bytes, fds: list[int]) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            msg = {}
        if "exited" in msg or not self._spawning:  # a report (or nothing owed): no descriptors come with it
            for fd in fds:
                os.close(fd)
            waiter = self._exit_waiters.pop(msg.get("exited"), None)
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(msg["how"])
            elif msg.get("exited") in self.pids:  # a current worker: its end of file is yet to be read
                self._exits[msg["exited"]] = msg["how"]
            return
        number, _asked = self._spawning.popleft()
        if "spawned" not in msg or not fds or self._closed:
            for fd in fds:
                os.close(fd)
            if not self._closed:
                self.log(f"ask worker {number} could not be started: {msg.get('error', 'no socket came back')}; "
                         f"{self._left()}")
            return
        sock = socket.socket(fileno=fds[0])
        pidfd = fds[1] if len(fds) > 1 else None
        _HELD_SOCKETS.add(sock)
        if pidfd is not None:
            _HELD_FDS.add(pidfd)
        w = _Worker(number, msg["spawned"], sock, pidfd)
        if self._loop is None:  # a first worker: streams are opened on the first question
            self._workers[number - 1] = w
        else:
            self._loop.create_task(self._attach(w, replaced=True), name=f"qa-ask-worker-{number}-attach")

    def _spawner_lost(self, what: str, kill: bool = False) -> None:
        """The spawner died or is stuck: no more replacements; the workers left carry on."""
        if self._ctrl is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._ctrl.fileno())
        _HELD_SOCKETS.discard(self._ctrl)
        self._ctrl.close()
        self._ctrl = None
        if kill and self._spawner_how is None:  # this process's child, not reaped yet: the pid is still its own
            os.kill(self.spawner_pid, signal.SIGKILL)
        self._spawning.clear()
        for fut in self._exit_waiters.values():
            if not fut.done():
                fut.set_result(None)
        self._exit_waiters.clear()
        if self._loop is None:
            self._wait_spawner(2.0)
            self._log_spawner_lost(what)
        else:
            self._loop.create_task(self._reap_spawner(what))

    def _log_spawner_lost(self, what: str) -> None:
        how = f" ({self._spawner_how})" if self._spawner_how and what == "stopped" else ""
        self.log(f"ask worker spawner (pid {self.spawner_pid}) {what}{how}; ask workers that stop are no longer "
                 f"replaced, {self._left()}")

    def _try_reap_spawner(self) -> bool:
        if self._spawner_how is not None:
            return True
        try:
            pid, status = os.waitpid(self.spawner_pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else
            self._spawner_how = "exit status unknown"
            return True
        if pid == 0:
            return False
        self.spawner_exitcode = os.waitstatus_to_exitcode(status)
        self._spawner_how = _how(status)
        return True

    def _wait_spawner(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self._try_reap_spawner():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    async def _reap_spawner(self, what: str) -> None:
        for _ in range(200):  # end of file came as it exited: reaped within milliseconds
            if self._try_reap_spawner():
                break
            await asyncio.sleep(0.01)
        else:
            os.kill(self.spawner_pid, signal.SIGKILL)
            await asyncio.sleep(0.1)
            self._try_reap_spawner()
        self._log_spawner_lost(what)

    # --- workers, in the event loop

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for w in self._workers:
            if w is not None:
                await self._attach(w)
        if self._ctrl is not None:
            self._ctrl.setblocking(False)
            self._loop.add_reader(self._ctrl.fileno(), self._on_ctrl)
            self._on_ctrl()  # reports that came before the loop did
        self._loop.create_task(self._watch(), name="qa-ask-watchdog")

    async def _attach(self, w: _Worker, replaced: bool = False) -> None:
        assert self._loop is not None and self._room is not None
        try:
            reader, w.writer = await asyncio.open_connection(sock=w.sock)
        except OSError as exc:
            w.alive = False
            w.kill()
            w.release()
            self.log(f"ask worker {w.number} (pid {w.pid}) could not be reached ({exc}): killed it; {self._left()}")
            return
        if self._closed:
            w.release()
            return
        w.last_reply = time.monotonic()
        self._workers[w.number - 1] = w
        self._loop.create_task(self._read_replies(w, reader), name=f"qa-ask-worker-{w.number}")
        if replaced:
            self.log(f"ask worker {w.number} replaced: new pid {w.pid}; {self.alive} worker(s)")
            async with self._room:
                self._room.notify_all()

    async def _read_replies(self, w: _Worker, reader: asyncio.StreamReader) -> None:
        assert self._room is not None
        try:
            while True:
                head = await reader.readexactly(_LENGTH.size)
                reply = await reader.readexactly(_LENGTH.unpack(head)[0])
                fut, _sent = w.pending.popleft()
                w.last_reply = time.monotonic()
                if fut is None:
                    w.pongs += 1
                else:
                    w.answered += 1
                    if not fut.done():  # done: cancelled, its client went away
                        fut.set_result((int(reply[:3]), reply[3:]))
                async with self._room:
                    self._room.notify()
        except (OSError, asyncio.IncompleteReadError, IndexError):
            pass
        if w.alive and not self._closed:
            await self._stopped(w)

    async def _stopped(self, w: _Worker) -> None:
        """End of file from a worker: it died (or closed its socket)."""
        assert self._loop is not None and self._room is not None
        w.alive = False
        how = self._exits.pop(w.pid, None)
        waiter = None
        if how is None and self._ctrl is not None:  # the spawner's report is on its way
            self._exit_waiters[w.pid] = waiter = self._loop.create_future()
        handed = w.hand_back()
        async with self._room:
            self._room.notify_all()
        if waiter is not None:
            try:
                how = await asyncio.wait_for(waiter, 1.0)
            except asyncio.TimeoutError:
                pass
            finally:
                self._exit_waiters.pop(w.pid, None)
        if how is None:
            w.kill()
        w.release()
        self.log(f"ask worker {w.number} (pid {w.pid}) stopped ({how or 'exit status unknown'}); {handed} "
                 f"question(s) handed back to the server process; {self._left()}")
        self._replace(w.number)

    async def _frozen(self, w: _Worker, what: str) -> None:
        """A worker that missed a deadline: kill it, hand its questions back, replace it."""
        assert self._room is not None
        w.alive = False
        w.kill()
        handed = w.hand_back()
        w.release()
        self.log(f"ask worker {w.number} (pid {w.pid}) {what} (frozen or stuck): killed it; {handed} question(s) "
                 f"handed back to the server process; {self._left()}")
        async with self._room:
            self._room.notify_all()
        self._replace(w.number)

    def _replace(self, number: int) -> None:
        if self._closed or self._ctrl is None or not self._replacing:
            return
        now = time.monotonic()
        while self._replaced and now - self._replaced[0] > self.REPLACEMENT_WINDOW:
            self._replaced.popleft()
        if len(self._replaced) >= self.max_replacements:
            self._replacing = False
            self.log(f"ask worker {number} not replaced: {len(self._replaced)} workers replaced in the last "
                     f"{self.REPLACEMENT_WINDOW:g} s, the most allowed (a crash loop?); ask workers that stop are "
                     f"no longer replaced, {self._left()}")
            return
        self._replaced.append(now)
        self._request_spawn(number)

    async def _watch(self) -> None:
        """The watchdog: deadlines of questions and pings, pings, the spawner's answers."""
        tick = min(0.5, self.timeout / 4, self.ping_timeout / 4, self.ping_interval / 2)
        while not self._closed:
            await asyncio.sleep(tick)
            try:
                now = time.monotonic()
                for w in list(self._workers):
                    if w is None or not w.alive or w.writer is None:
                        continue
                    if w.pending:  # the oldest: its clock starts when the worker could start on it
                        fut, sent = w.pending[0]
                        limit = self.ping_timeout if fut is None else self.timeout
                        if now - max(sent, w.last_reply) > limit:
                            await self._frozen(w, f"did not answer a health-check ping within {limit:g} s"
                                               if fut is None else f"missed its {limit:g} s deadline on a question")
                    elif now - w.last_reply >= self.ping_interval:
                        w.pending.append((None, now))
                        w.writer.write(_PING)
                if self._spawning and now - self._spawning[0][1] > self.spawn_timeout:
                    self._spawner_lost(f"did not start an ask worker within {self.spawn_timeout:g} s (frozen or "
                                       "stuck): killed it", kill=True)
            except Exception:  # never let a bug here end the deadlines
                _stderr(f"ask worker watchdog:\n{traceback.format_exc()}")

    async def ask(self, request: AskRequest) -> tuple[int, bytes] | None:
        """(status, body) from a worker, or None when no worker is left or the one asked died or froze meanwhile:
        then answer in this process."""
        if self._room is None or self._started is None:
            self._room = asyncio.Condition()
            self._started = asyncio.ensure_future(self._start())
        await self._started  # every caller waits for the streams; done, it returns at once
        payload = json.dumps(request.to_json(), ensure_ascii=False).encode("utf-8")
        async with self._room:
            while True:
                live = [w for w in self._workers if w is not None and w.alive]
                if not live or self._closed:
                    return None
                # the least busy; ties to the first, so under light load one worker takes every question and
                # keeps what it touches in its core's caches (measured: taking turns cost 0.5-2 ms per ask)
                w = min(live, key=lambda w: len(w.pending))
                if len(w.pending) < self.DEPTH:
                    break
                await self._room.wait()
            reply: asyncio.Future = asyncio.get_running_loop().create_future()
            w.pending.append((reply, time.monotonic()))
            assert w.writer is not None
            w.writer.write(_LENGTH.pack(len(payload)) + payload)
        return await reply

    def close(self) -> None:
        """Hang up on every worker and on the spawner, and wait for them: workers exit on end of file, the
        spawner reaps them (killing any still there after CLOSE_GRACE seconds) and exits."""
        if self._closed:
            return
        self._closed = True
        workers = [w for w in self._workers if w is not None]
        for w in workers:
            w.alive = False
            _HELD_SOCKETS.discard(w.sock)
            w.sock.close()  # under its stream, if any: the event loop has stopped
        if self._ctrl is not None:
            if self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.remove_reader(self._ctrl.fileno())
                except Exception:
                    pass
            _HELD_SOCKETS.discard(self._ctrl)
            self._ctrl.close()
            self._ctrl = None
            if not self._wait_spawner(self.CLOSE_GRACE + 3):
                os.kill(self.spawner_pid, signal.SIGKILL)
                self._wait_spawner(5)
        else:  # the spawner was lost: nobody kills a frozen worker but this
            pidfds = [w.pidfd for w in workers if w.pidfd is not None]
            poll = select.poll()
            for fd in pidfds:
                poll.register(fd, select.POLLIN)  # ready once its process has exited
            deadline = time.monotonic() + self.CLOSE_GRACE
            while pidfds and time.monotonic() < deadline:
                for fd, _event in poll.poll(max(0.0, deadline - time.monotonic()) * 1000):
                    poll.unregister(fd)
                    pidfds.remove(fd)
            for w in workers:
                if w.pidfd in pidfds:
                    w.kill()
            self._wait_spawner(1)
        for w in workers:
            if w.pidfd is not None:
                _HELD_FDS.discard(w.pidfd)
                os.close(w.pidfd)
                w.pidfd = None
