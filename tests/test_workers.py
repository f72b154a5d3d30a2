"""Ask workers (qa.workers): forked processes answering as the server's own process would; frozen or dead
ones killed, replaced and their questions answered in the server's own process; a crash loop stopped. The
real model (the repository's ONNX export) and index, real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import seed_engine  # noqa: F401 - fixture

from qa import AskRequest, ConfigError
from qa.workers import AskPool, answer_json, ask_timeout, usable_cpus, worker_count

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["Were any victims identified?", "Who is the chief administrator of COPA?",
             "How many migrants were living at police stations?", "Who won the World Series?",
             "When did the agency receive the information?", "   ", "x" * 5000]


@pytest.fixture(scope="module")
def onnx_engine():
    """The repository's index (read only: rebuild=never) on the ONNX query encoder with one thread, as the
    app runs it."""
    from qa import Engine, resolve_settings

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("QA_")}
    os.environ["QA_THREADS"] = "1"
    try:
        engine = Engine.open(resolve_settings(index_dir=str(ROOT / "index"), rebuild="never", backend="onnx"),
                             log=lambda _m: None)
        engine.warm_up()  # as app.py does before forking: a worker's first question loads nothing
        yield engine
    finally:
        os.environ.pop("QA_THREADS", None)
        os.environ.update(saved)


def make_pool(engine, count=2, **options) -> AskPool:
    """A pool with short deadlines (1 s for a question, a ping every 0.3 s answered within 1 s), its log
    lines in `.logged`."""
    logged: list[str] = []
    zombies = zombies_of_this_process()
    p = AskPool(engine, count, log=logged.append, **{"timeout": 1, "ping_interval": 0.3, "ping_timeout": 1, **options})
    p.logged, p.zombies_before = logged, zombies
    return p


@pytest.fixture
def pool(onnx_engine):
    p = make_pool(onnx_engine)
    try:
        yield p
    finally:
        p.close()
        assert_gone(p)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def zombies_of_this_process() -> list[int]:
    return [pid for pid in (int(p) for task in Path("/proc/self/task").iterdir()
                            for p in (task / "children").read_text().split())
            if (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z"]


def assert_gone(p: AskPool, *more: int) -> None:
    """The pool's spawner and every worker it had have exited and been reaped (no zombie left here)."""
    pids = {p.spawner_pid, *more, *(w.pid for w in p._workers if w is not None)}
    deadline = time.monotonic() + 3  # workers of a spawner that was killed are reaped by init
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if not gone(pid)] == []  # gone: not even a zombie
    assert set(zombies_of_this_process()) <= set(p.zombies_before)


async def until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.02)


def run(coroutine_function):
    """asyncio.run in a thread of its own: playwright's sync API (the browser tests) may hold a running
    event loop in this one for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


def in_process(engine, questions, k=3):
    return [answer_json(engine, AskRequest(q, k)) for q in questions]


def test_workers_answer_byte_for_byte_as_the_server_would(pool, onnx_engine):
    async def ask_all():
        return [await pool.ask(AskRequest(q, 3)) for q in QUESTIONS]

    got = run(ask_all)
    assert got == in_process(onnx_engine, QUESTIONS)
    statuses = [status for status, _ in got]
    assert statuses == [200, 200, 200, 200, 200, 400, 400]
    assert "The question is empty" in json.loads(got[5][1])["error"]
    assert json.loads(got[0][1])["answer"]["text"].startswith('"This investigation remains open')


def test_concurrent_questions_get_their_own_answers_in_order(pool, onnx_engine):
    questions = QUESTIONS[:5] * 4  # 20 at once: more than two workers with two questions each

    async def ask_all():
        return await asyncio.gather(*(pool.ask(AskRequest(q, 2)) for q in questions))

    assert run(ask_all) == in_process(onnx_engine, questions, k=2)


def test_a_dead_worker_hands_its_questions_back_and_the_other_carries_on(onnx_engine):
    pool = make_pool(onnx_engine, max_replacements=0, timeout=30)  # no replacements, no deadline in the way
    first, second = pool.pids
    expected = in_process(onnx_engine, QUESTIONS[:3])

    async def scenario():
        assert await pool.ask(AskRequest(QUESTIONS[0], 3)) == expected[0]  # streams open; worker 1 takes light load
        os.kill(first, signal.SIGSTOP)  # frozen: a question sent to it stays pending ...
        pending = asyncio.ensure_future(pool.ask(AskRequest(QUESTIONS[1], 3)))
        await asyncio.sleep(0.05)
        assert not pending.done()
        os.kill(first, signal.SIGKILL)  # ... until it dies: then the caller gets None and asks itself
        assert await asyncio.wait_for(pending, 10) is None
        assert pool.alive == 1
        after = [await pool.ask(AskRequest(q, 3)) for q in QUESTIONS[:3]]  # all on the remaining worker
        os.kill(second, signal.SIGKILL)
        last = await pool.ask(AskRequest(QUESTIONS[0], 3))
        await until(lambda: any(f"(pid {second}) stopped" in m for m in pool.logged), 3, "the death logged")
        return after, last

    try:
        after, last = run(scenario)
    finally:
        pool.close()
    assert after == expected
    assert last is None and pool.alive == 0 and pool.pids == []
    assert f"ask worker 1 (pid {first}) stopped (killed by signal SIGKILL); 1 question(s) handed back to the " \
           "server process; 1 left" in pool.logged
    assert any("ask worker 1 not replaced: 0 workers replaced in the last 60 s, the most allowed" in m
               for m in pool.logged)
    assert any(f"ask worker 2 (pid {second}) stopped" in m and "0 left, questions are answered in the server "
               "process" in m for m in pool.logged)
    assert_gone(pool)


def answer_like_the_app(pool: AskPool, engine, question, k=3):
    """What POST /api/ask does: the pool's answer, else one from this process (here: a thread of its own)."""
    async def ask():
        result = await pool.ask(AskRequest(question, k))
        return result if result is not None else await asyncio.to_thread(answer_json, engine, AskRequest(question, k))
    return ask()


def test_a_frozen_worker_misses_its_deadline_is_killed_and_replaced(pool, onnx_engine):
    questions = QUESTIONS[:5] * 2  # 10 at once: two wait in the frozen worker, the rest go to the other
    expected = in_process(onnx_engine, questions)

    async def scenario():
        assert await pool.ask(AskRequest(QUESTIONS[0], 3)) == expected[0]  # streams open; worker 1 takes light load
        first, second = pool.pids
        os.kill(first, signal.SIGSTOP)
        t = time.monotonic()
        got = await asyncio.gather(*(answer_like_the_app(pool, onnx_engine, q) for q in questions))
        took = time.monotonic() - t
        await until(lambda: len(pool.pids) == 2, 5, "a replacement")
        assert pool.pids[1] == second and pool.pids[0] != first
        replacement = pool._workers[0]
        after = [await pool.ask(AskRequest(q, 3)) for q in QUESTIONS[:3]]  # light load: the first worker, the new one
        return first, got, took, replacement, after

    first, got, took, replacement, after = run(scenario)
    assert got == expected
    assert 1 <= took < 1 + 5  # the deadline, and a margin for a busy machine
    assert (f"ask worker 1 (pid {first}) missed its 1 s deadline on a question (frozen or stuck): killed it; "
            "2 question(s) handed back to the server process; 1 left") in pool.logged
    assert f"ask worker 1 replaced: new pid {replacement.pid}; 2 worker(s)" in pool.logged
    assert after == expected[:3] and replacement.answered == 3 and replacement.alive
    assert gone(first)  # killed, and reaped by the spawner


def test_a_killed_worker_is_replaced(pool, onnx_engine):
    expected = in_process(onnx_engine, QUESTIONS[:2])

    async def scenario():
        assert await pool.ask(AskRequest(QUESTIONS[0], 3)) == expected[0]
        first, second = pool.pids
        os.kill(second, signal.SIGKILL)
        await until(lambda: len(pool.pids) == 2 and second not in pool.pids, 5, "a replacement")
        new = pool._workers[1]
        await asyncio.gather(*(pool.ask(AskRequest(q, 3)) for q in QUESTIONS[:2] * 3))  # enough for both workers
        return first, second, new

    first, second, new = run(scenario)
    assert pool.pids == [first, new.pid] and new.answered > 0
    assert (f"ask worker 2 (pid {second}) stopped (killed by signal SIGKILL); 0 question(s) handed back to the "
            "server process; 1 left") in pool.logged
    assert f"ask worker 2 replaced: new pid {new.pid}; 2 worker(s)" in pool.logged


def test_an_idle_frozen_worker_fails_its_health_check_and_is_replaced(pool, onnx_engine):
    async def scenario():
        await pool.ask(AskRequest(QUESTIONS[0], 3))  # the pool's event loop runs its watchdog from the first question
        await until(lambda: all(w.pongs for w in pool._workers), 3, "a ping answered by each worker")
        first, second = pool.pids
        os.kill(second, signal.SIGSTOP)  # no question pending: only the health check can tell
        await until(lambda: len(pool.pids) == 2 and second not in pool.pids, 5, "a replacement")
        return second

    second = run(scenario)
    assert (f"ask worker 2 (pid {second}) did not answer a health-check ping within 1 s (frozen or stuck): killed "
            "it; 0 question(s) handed back to the server process; 1 left") in pool.logged
    assert any(m.startswith("ask worker 2 replaced: new pid") for m in pool.logged)


def test_a_crash_loop_stops_the_replacements_and_questions_are_still_answered(onnx_engine):
    pool = make_pool(onnx_engine, max_replacements=2)
    expected = in_process(onnx_engine, QUESTIONS[:1])[0]

    async def scenario():
        killed = []
        for _ in range(3):  # two replacements, then the guard
            await pool.ask(AskRequest(QUESTIONS[0], 3))
            victim = pool.pids[0]
            killed.append(victim)
            os.kill(victim, signal.SIGKILL)
            await until(lambda: victim not in pool.pids and any(f"(pid {victim}) stopped" in m for m in pool.logged),
                        3, "the death noticed")
            await asyncio.sleep(0.3)  # a replacement, if one is coming
        one_left = pool.alive
        answers = [await answer_like_the_app(pool, onnx_engine, QUESTIONS[0]) for _ in range(3)]
        os.kill(pool.pids[0], signal.SIGKILL)
        await until(lambda: pool.alive == 0, 3, "the last worker gone")
        await asyncio.sleep(0.3)
        last = await pool.ask(AskRequest(QUESTIONS[0], 3))
        answers.append(await answer_like_the_app(pool, onnx_engine, QUESTIONS[0]))
        return killed, one_left, answers, last

    try:
        killed, one_left, answers, last = run(scenario)
    finally:
        pool.close()
    assert one_left == 1 and last is None and pool.alive == 0
    assert answers == [expected] * 4
    assert sum("replaced: new pid" in m for m in pool.logged) == 2
    assert ("ask worker 1 not replaced: 2 workers replaced in the last 60 s, the most allowed (a crash loop?); ask "
            "workers that stop are no longer replaced, 1 left") in pool.logged
    assert_gone(pool, *killed)


def test_a_dead_spawner_is_logged_and_the_workers_carry_on(pool, onnx_engine):
    expected = in_process(onnx_engine, QUESTIONS[:2])

    async def scenario():
        await pool.ask(AskRequest(QUESTIONS[0], 3))
        os.kill(pool.spawner_pid, signal.SIGKILL)
        await until(lambda: any("spawner" in m for m in pool.logged), 3, "the spawner's death noticed")
        victim = pool.pids[0]
        os.kill(victim, signal.SIGKILL)  # not replaced now
        await until(lambda: pool.alive == 1, 3, "the death noticed")
        await asyncio.sleep(0.3)
        return victim, [await pool.ask(AskRequest(q, 3)) for q in QUESTIONS[:2]]

    victim, got = run(scenario)
    assert got == expected and pool.alive == 1
    assert (f"ask worker spawner (pid {pool.spawner_pid}) stopped (killed by signal SIGKILL); ask workers that stop "
            "are no longer replaced, 2 left") in pool.logged
    assert any(f"ask worker 1 (pid {victim}) stopped (exit status unknown)" in m for m in pool.logged)
    assert not any("replaced: new pid" in m for m in pool.logged)


def test_a_frozen_spawner_is_killed_when_it_does_not_start_a_worker_in_time(onnx_engine):
    pool = make_pool(onnx_engine, spawn_timeout=1)

    async def scenario():
        await pool.ask(AskRequest(QUESTIONS[0], 3))
        os.kill(pool.spawner_pid, signal.SIGSTOP)
        victim = pool.pids[0]
        os.kill(victim, signal.SIGKILL)
        await until(lambda: any("spawner" in m for m in pool.logged), 5, "the frozen spawner noticed")
        return victim, await pool.ask(AskRequest(QUESTIONS[0], 3)), pool.alive

    try:
        victim, got, alive = run(scenario)
    finally:
        pool.close()
    assert got == in_process(onnx_engine, QUESTIONS[:1])[0] and alive == 1
    assert any(f"ask worker 1 (pid {victim}) stopped (exit status unknown)" in m for m in pool.logged)
    assert (f"ask worker spawner (pid {pool.spawner_pid}) did not start an ask worker within 1 s (frozen or stuck): "
            "killed it; ask workers that stop are no longer replaced, 1 left") in pool.logged
    assert pool.spawner_exitcode == -signal.SIGKILL
    assert_gone(pool, victim)


def test_closing_the_pool_ends_the_workers_and_the_spawner(onnx_engine):
    p = make_pool(onnx_engine)
    pids = p.pids
    assert len(pids) == 2 and not gone(p.spawner_pid) and not any(gone(pid) for pid in pids)
    run(lambda: p.ask(AskRequest(QUESTIONS[0], 3)))
    t = time.monotonic()
    p.close()
    assert time.monotonic() - t < 3
    assert p.spawner_exitcode == 0  # the workers saw end of file and exited: the spawner killed none
    assert_gone(p)


def test_closing_a_pool_with_a_frozen_worker_kills_it(onnx_engine):
    p = make_pool(onnx_engine)
    frozen = p.pids[0]
    os.kill(frozen, signal.SIGSTOP)  # no event loop ran: nothing noticed
    t = time.monotonic()
    p.close()
    assert time.monotonic() - t < p.CLOSE_GRACE + 2
    assert p.spawner_exitcode == 1  # it killed the one that did not exit
    assert_gone(p)


def exited(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent (this test's processes' orphans are init's to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_spawner_and_the_workers_exit_when_the_server_dies():
    script = f"""if True:
        import os, signal
        from qa import Engine, resolve_settings
        from qa.workers import AskPool
        engine = Engine.open(resolve_settings(index_dir={str(ROOT / "index")!r}, rebuild="never", backend="onnx"),
                             log=lambda _m: None)
        pool = AskPool(engine, 2)
        print(pool.spawner_pid, *pool.pids, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close(), no exit handlers: only end of file tells them
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**env, "QA_THREADS": "1"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pids = [int(pid) for pid in proc.stdout.split()]
    assert len(pids) == 3
    deadline = time.monotonic() + 5
    while not all(exited(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if not exited(pid)] == []
    assert "Traceback" not in proc.stderr


def test_a_timeout_comes_from_qa_ask_timeout(onnx_engine, monkeypatch):
    monkeypatch.setenv("QA_ASK_TIMEOUT", "2.5")
    p = AskPool(onnx_engine, 1, log=lambda _m: None)
    p.zombies_before = zombies_of_this_process()
    try:
        assert p.timeout == 2.5
    finally:
        p.close()
    assert_gone(p)
    monkeypatch.setenv("QA_ASK_TIMEOUT", "soon")
    children = Path(f"/proc/self/task/{threading.get_native_id()}/children")
    before = children.read_text()
    with pytest.raises(ConfigError, match="QA_ASK_TIMEOUT='soon' is not a number of seconds"):
        AskPool(onnx_engine, 1)
    assert children.read_text() == before  # refused before forking anything


def test_no_workers_for_an_engine_that_cannot_be_forked(seed_engine):
    with pytest.raises(ConfigError, match="Ask workers need the ONNX query encoder .* set QA_WORKERS=0"):
        AskPool(seed_engine, 2)  # the PyTorch encoder


@pytest.mark.parametrize(("value", "cpus", "expected"), [
    (None, 2, 2), ("auto", 8, 4), ("", 1, 0), ("0", 8, 0), ("3", 1, 3), (" 16 ", 2, 16),
])
def test_worker_count(monkeypatch, value, cpus, expected):
    monkeypatch.setattr("qa.workers.usable_cpus", lambda: cpus)
    assert worker_count(value) == expected


@pytest.mark.parametrize("value", ["two", "-1", "17", "1.5"])
def test_worker_count_refuses_what_is_not_a_count(value):
    with pytest.raises(ConfigError, match=f"QA_WORKERS={value!r} is not a number of worker processes; set 0-16"):
        worker_count(value)


@pytest.mark.parametrize(("value", "expected"), [(None, 15), ("", 15), (" 2.5 ", 2.5), ("1", 1), ("0.1", 0.1),
                                               ("3600", 3600)])
def test_ask_timeout(value, expected):
    assert ask_timeout(value) == expected


@pytest.mark.parametrize("value", ["soon", "0", "-1", "0.05", "3601", "nan", "inf", "15s"])
def test_ask_timeout_refuses_what_is_not_a_number_of_seconds(value):
    with pytest.raises(ConfigError, match=rf"QA_ASK_TIMEOUT={value!r} is not a number of seconds; set how long an "
                                          r"ask worker may take over one question, 0.1-3600 \(e.g. 15 or 2.5\), "
                                          r"or unset it for 15\."):
        ask_timeout(value)


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", None), ("100000 100000\n", 1),
                                                    ("150000 100000\n", 1), ("200000 100000\n", 2)])
def test_usable_cpus_follows_a_cgroup_quota(tmp_path, cpu_max, expected):
    f = tmp_path / "cpu.max"
    f.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(f) == (affinity if expected is None else min(affinity, expected))
    assert usable_cpus(tmp_path / "absent") == affinity


def test_a_worker_lets_go_of_the_segments_it_inherited_once_they_are_merged_away(tmp_path, monkeypatch):
    """A worker keeps the objects it inherited frozen (no collection copies their pages), the index snapshot of
    the fork among them; once a segment of that snapshot is merged away, the worker frees it: the deleted file is
    neither mapped nor open in the worker any more."""
    import shutil

    from qa import Engine, resolve_settings

    for k in [k for k in os.environ if k.startswith("QA_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("QA_THREADS", "1")
    shutil.copytree(ROOT / "index", tmp_path / "index")
    shutil.copytree(ROOT / "articles", tmp_path / "articles")
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(tmp_path / "articles")],
                                rebuild="never", backend="onnx")
    engine = Engine.open(settings, log=lambda _m: None)
    engine.warm_up()
    inherited = [str((tmp_path / "index" / seg.name).resolve()) for seg in engine.index.segments]  # its folders
    p = make_pool(engine, 1, timeout=30)

    def holds(name: str) -> bool:
        worker = p.pids[0]
        maps = Path(f"/proc/{worker}/maps").read_text()
        fds = [os.readlink(f) for f in Path(f"/proc/{worker}/fd").iterdir() if f.is_symlink()]
        return any(name in line for line in maps.splitlines()) or any(name in f for f in fds)

    async def scenario():
        seen = []
        assert (await p.ask(AskRequest(QUESTIONS[0], 3)))[0] == 200
        seen.append(all(holds(name) for name in inherited))
        await asyncio.to_thread(engine.add_article, "The pier on Alder Street reopened on Monday after repairs.\n\n"
                                "It had been shut since May.\n", title="Pier reopens", log=lambda _m: None, merge="none")
        assert (await p.ask(AskRequest(QUESTIONS[0], 3)))[0] == 200  # after an add the inherited segment is in use
        seen.append(all(holds(name) for name in inherited))
        merged = await asyncio.to_thread(engine.store.merge, engine.index, [seg.name for seg in engine.index.segments])
        assert merged is not None and not {Path(f).name for f in inherited} & {seg.name for seg in merged.segments}
        assert (await p.ask(AskRequest(QUESTIONS[0], 3)))[0] == 200
        for _ in range(100):  # the worker collects after it has replied
            if not any(holds(name) for name in inherited):
                break
            await asyncio.sleep(0.05)
        seen.append(not any(holds(name) for name in inherited))
        return seen

    try:
        assert run(scenario) == [True, True, True]
    finally:
        p.close()
