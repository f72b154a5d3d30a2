"""Ask workers (qa.workers): forked processes answering as the server's own process would, and the server
carrying on in its own process when they die. The real model (the repository's ONNX export) and index."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import seed_engine  # noqa: F401 - fixture

from qa import ConfigError
from qa.workers import AskPool, answer_json, usable_cpus, worker_count

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
        yield engine
    finally:
        os.environ.pop("QA_THREADS", None)
        os.environ.update(saved)


@pytest.fixture
def pool(onnx_engine):
    logged: list[str] = []
    p = AskPool(onnx_engine, 2, log=logged.append)
    p.logged = logged
    try:
        yield p
    finally:
        p.close()


def run(coroutine_function):
    """asyncio.run in a thread of its own: playwright's sync API (the browser tests) may hold a running
    event loop in this one for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


def in_process(engine, questions, k=3):
    return [answer_json(engine, q, k) for q in questions]


def test_workers_answer_byte_for_byte_as_the_server_would(pool, onnx_engine):
    async def ask_all():
        return [await pool.ask(q, 3) for q in QUESTIONS]

    got = run(ask_all)
    assert got == in_process(onnx_engine, QUESTIONS)
    statuses = [status for status, _ in got]
    assert statuses == [200, 200, 200, 200, 200, 400, 400]
    assert "The question is empty" in json.loads(got[5][1])["error"]
    assert json.loads(got[0][1])["answer"]["text"].startswith('"This investigation remains open')


def test_concurrent_questions_get_their_own_answers_in_order(pool, onnx_engine):
    questions = QUESTIONS[:5] * 4  # 20 at once: more than two workers with two questions each

    async def ask_all():
        return await asyncio.gather(*(pool.ask(q, 2) for q in questions))

    assert run(ask_all) == in_process(onnx_engine, questions, k=2)


def test_a_dead_worker_hands_its_questions_back_and_the_other_carries_on(pool, onnx_engine):
    first, second = pool.pids
    expected = in_process(onnx_engine, QUESTIONS[:3])

    async def scenario():
        assert await pool.ask(QUESTIONS[0], 3) == expected[0]  # streams open; worker 1 takes light load
        os.kill(first, signal.SIGSTOP)  # frozen: a question sent to it stays pending ...
        pending = asyncio.ensure_future(pool.ask(QUESTIONS[1], 3))
        await asyncio.sleep(0.05)
        assert not pending.done()
        os.kill(first, signal.SIGKILL)  # ... until it dies: then the caller gets None and asks itself
        assert await asyncio.wait_for(pending, 10) is None
        assert pool.alive == 1
        after = [await pool.ask(q, 3) for q in QUESTIONS[:3]]  # all on the remaining worker
        os.kill(second, signal.SIGKILL)
        last = await pool.ask(QUESTIONS[0], 3)
        return after, last

    after, last = run(scenario)
    assert after == expected
    assert last is None and pool.alive == 0
    assert any(f"ask worker 1 (pid {first}) stopped" in m for m in pool.logged)
    assert any("0 left, questions are answered in the server process" in m for m in pool.logged)


def test_closing_the_pool_ends_the_workers(onnx_engine):
    p = AskPool(onnx_engine, 2, log=lambda _m: None)
    procs = [w.proc for w in p._workers]
    assert all(proc.is_alive() for proc in procs)
    t = time.monotonic()
    p.close()
    assert not any(proc.is_alive() for proc in procs) and time.monotonic() - t < 5
    assert [proc.exitcode for proc in procs] == [0, 0]  # they saw end of file and returned, not killed


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


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", None), ("100000 100000\n", 1),
                                                    ("150000 100000\n", 1), ("200000 100000\n", 2)])
def test_usable_cpus_follows_a_cgroup_quota(tmp_path, cpu_max, expected):
    f = tmp_path / "cpu.max"
    f.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(f) == (affinity if expected is None else min(affinity, expected))
    assert usable_cpus(tmp_path / "absent") == affinity
