"""The web app end to end: `python app.py` started as a Space starts it, the real model, the seed article.

The app runs in a copy of articles/ and index/ (a temporary project folder), so a stale index is rebuilt
there and never in the repository. One app per module (plus one with login), shared by all tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
SEED_ARTICLE = "000_1377f01862d9140a"
VICTIMS = "Were any victims identified?"
VICTIMS_ANSWER = "we have not identified any migrants claiming to be the victim"
AUTH_USERS = (("ann", "first-pass"), ("bob", "p:w2"))  # a password may hold ':'
AUTH_VALUE = ",".join(f"{u}:{p}" for u, p in AUTH_USERS)


# --- running the app ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess with GRADIO_SERVER_NAME=0.0.0.0 and a free GRADIO_SERVER_PORT."""

    def __init__(self, project: Path, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project / f"app-{self.port}.log"
        full_env = {**os.environ, "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": str(self.port),
                    "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        full_env.pop("QA_AUTH", None)
        # both confidence thresholds at 0: a question the rules let through is answered whatever the fitted thresholds,
        # so the tests of the chat's mechanics do not move with them (the statuses: test_confidence_chat.py)
        full_env.update({"QA_ANSWERED_ABOVE": "0", "QA_UNCERTAIN_ABOVE": "0"})
        full_env.update(env or {})
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(APP)], cwd=project, env=full_env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float = 90) -> AppServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.output()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).close()
                return self
            except urllib.error.HTTPError:
                return self  # answering, even if only to refuse
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"app.py did not answer HTTP within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _copy_or_link(src: str, dst: str) -> None:
    """Copy small files; hard-link big ones (the exported model: written once, under a content hash)."""
    if os.path.getsize(src) >= 1 << 20:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def make_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding copies of articles/ and index/, the app's working folder."""
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "articles", project / "articles")
    shutil.copytree(ROOT / "index", project / "index", ignore=shutil.ignore_patterns(".tmp*"),
                    copy_function=_copy_or_link)
    return project


@contextmanager
def running(*started: AppServer) -> Iterator[tuple[AppServer, ...]]:
    """App servers started together (they load in parallel), ready; all stopped at the end."""
    try:
        yield tuple(s.wait() for s in started)
    finally:
        for s in started:
            s.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The app without login (/api/ask on two ask workers), with login (no workers: /api/ask answered in the
    app's process), and one whose workers a test kills; started together (they load in parallel)."""
    project = make_project(tmp_path_factory)
    with running(AppServer(project, {"QA_WORKERS": "2"}), AppServer(project, {"QA_AUTH": AUTH_VALUE, "QA_WORKERS": "0"}),
                 AppServer(project, {"QA_WORKERS": "2"})) as started:
        yield started


@pytest.fixture(scope="module")
def app(servers) -> AppServer:
    return servers[0]


@pytest.fixture(scope="module")
def auth_app(servers) -> AppServer:
    return servers[1]


@pytest.fixture(scope="module")
def doomed_app(servers) -> AppServer:
    return servers[2]


# --- raw HTTP ---------------------------------------------------------------------------------------------

def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")


def call_ask(base: str, data: list) -> tuple[str, object]:
    """POST /gradio_api/call/ask, then read the event stream: (event name, decoded data)."""
    status, text = http("POST", f"{base}/gradio_api/call/ask", {"data": data})
    assert status == 200, text
    event_id = json.loads(text)["event_id"]
    status, stream = http("GET", f"{base}/gradio_api/call/ask/{event_id}")
    assert status == 200, stream
    event = None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[len("event:"):].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            return event, json.loads(line[len("data:"):].strip())
    raise AssertionError(f"no complete/error event in {stream!r}")


def check_spans(result: dict, project: Path) -> None:
    """Every citation is the exact text of its article file; every highlight lies inside its passage."""
    assert result["passages"]
    texts = {}
    for p in result["passages"]:
        c = p["citation"]
        path = Path(c["path"]) if Path(c["path"]).is_absolute() else project / c["path"]
        with open(path, encoding="utf-8", newline="") as f:
            raw = texts[p["rank"]] = f.read()
        assert raw[c["start"]:c["end"]] == p["text"]
        assert c["start"] <= p["highlight"]["start"] < p["highlight"]["end"] <= c["end"]
    if result["answer"]:  # the answer is the highlighted sentence of the passage it cites
        rank = result["answer"]["citation"]
        h = result["passages"][rank - 1]["highlight"]
        assert texts[rank][h["start"]:h["end"]] == result["answer"]["text"]


def test_ask_endpoint_over_raw_http(app):
    event, data = call_ask(app.url, [VICTIMS, 3])
    assert event == "complete"
    (result,) = data
    assert set(result) == {"question", "interpreted_as", "status", "abstained", "confidence", "reason", "details", "answer",
                           "passages", "warnings"}
    assert result["question"] == VICTIMS and not result["abstained"] and result["reason"] is None
    assert VICTIMS_ANSWER in result["answer"]["text"]
    assert len(result["passages"]) == 3
    cited = result["passages"][result["answer"]["citation"] - 1]
    assert cited["citation"]["article"] == SEED_ARTICLE and cited["citation"]["paragraph"] == 8
    assert set(cited["citation"]) == {"article", "title", "date", "paragraph", "start", "end", "path", "url", "source", "stale"}
    check_spans(result, app.project)


def test_ask_endpoint_k_and_abstention(app):
    event, (result,) = call_ask(app.url, ["What is a good recipe for deep dish pizza?", 5])
    assert event == "complete"
    assert result["abstained"] and result["answer"] is None and result["reason"]
    assert len(result["passages"]) == 5 and all(p["closest"] for p in result["passages"])
    check_spans(result, app.project)


@pytest.mark.parametrize(("data", "message"), [
    (["", 3], "The question is empty"),
    (["  \n\t ", 3], "The question is empty"),
    ([None, 3], "The question must be text, not NoneType"),
    ([42, 3], "The question must be text, not int"),
    ([["a list"], 3], "The question must be text, not list"),
    (["x" * 1001, 3], "the limit is 1,000"),
    ([VICTIMS, 0], "number of passages must be a whole number from 1 to 10"),
    ([VICTIMS, 11], "number of passages must be a whole number from 1 to 10"),
    ([VICTIMS, "3"], "number of passages must be a whole number from 1 to 10"),
    ([VICTIMS, True], "number of passages must be a whole number from 1 to 10"),
])
def test_ask_endpoint_bad_input_is_a_clean_error(app, data, message):
    event, payload = call_ask(app.url, data)
    assert event == "error"
    assert message in payload["error"]
    assert "Traceback" not in json.dumps(payload) and 'File "' not in json.dumps(payload)


def test_missing_arguments_are_named(app):
    # Gradio itself rejects a call with too few values with an error event of no message ({"error": null});
    # the app fills omitted trailing arguments with their defaults and names a missing required one
    status, text = http("POST", f"{app.url}/gradio_api/call/ask", {"data": []})
    assert status == 400 and json.loads(text) == {"error": "The argument 'question' is missing; send it in \"data\"."}
    event, payload = call_ask(app.url, [VICTIMS])
    assert event == "complete" and len(payload[0]["passages"]) == 3


def test_parallel_calls_give_the_sequential_answers(app):
    questions = [VICTIMS, "Who is the chief administrator of COPA?", "When did the agency receive the information?",
                 "How many migrants were living at police stations?", "What is a good recipe for deep dish pizza?",
                 "How many officers allegedly engaged in sexual relations with migrants?"] * 2
    sequential = [call_ask(app.url, [q, 3]) for q in questions]
    with ThreadPoolExecutor(len(questions)) as pool:  # more than the 4 that run at once: some wait in the queue
        parallel = list(pool.map(lambda q: call_ask(app.url, [q, 3]), questions))
    assert parallel == sequential
    assert all(event == "complete" for event, _ in parallel)


def test_queue_bypass_route_is_closed(app):
    status, text = http("POST", f"{app.url}/gradio_api/run/ask", {"data": [VICTIMS, 3]})
    assert status in (403, 404, 405), (status, text)
    assert VICTIMS_ANSWER not in text


def test_only_ask_is_a_documented_endpoint(app):
    status, text = http("GET", f"{app.url}/gradio_api/info")
    assert status == 200
    assert list(json.loads(text)["named_endpoints"]) == ["/ask"]


@pytest.mark.parametrize("path", ["/monitoring", "/monitoring/summary", "/gradio_api/runs"])
def test_monitoring_and_run_history_are_off(app, path):
    status, _ = http("GET", app.url + path)
    assert status in (403, 404)


def test_uploads_are_capped(app):
    """Uploads (article files) are capped at 8 MB: a bigger one is refused before it is read."""
    boundary = "qa-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n{'x' * 9_000_000}\r\n--{boundary}--\r\n").encode()
    status, result = headers_only(app.url, "/gradio_api/upload", len(body), f"multipart/form-data; boundary={boundary}")
    assert status == 413 and "The file is over 8.4 MB; pages of up to 5.0 MB" in result["error"]


def test_gradio_client_call(app):
    from gradio_client import Client

    # download_files=False: gradio_client takes any dict with a string "path" (our citations) for a file
    # to download; the answer JSON must come back as it is.
    client = Client(app.url, verbose=False, download_files=False)
    result = client.predict(VICTIMS, 3, api_name="/ask")
    assert VICTIMS_ANSWER in result["answer"]["text"]
    check_spans(result, app.project)


# --- /api/ask: plain JSON in one round trip ---------------------------------------------------------------

def api_ask(base: str, body: object, headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict, dict]:
    """POST /api/ask: (status, decoded JSON body, response headers)."""
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}/api/ask", data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def basic(user: str, password: str) -> dict:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_api_ask_answers_as_the_gradio_route_does(app):
    status, result, headers = api_ask(app.url, {"question": VICTIMS, "k": 3})
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert VICTIMS_ANSWER in result["answer"]["text"] and len(result["passages"]) == 3
    check_spans(result, app.project)
    assert call_ask(app.url, [VICTIMS, 3]) == ("complete", [result])


def test_api_ask_k_defaults_to_three(app):
    status, result, _ = api_ask(app.url, {"question": VICTIMS})
    assert status == 200 and len(result["passages"]) == 3


@pytest.mark.parametrize(("body", "message"), [
    ({"question": "   "}, "The question is empty"),
    ({"question": None}, "must be text, not NoneType"),
    ({"question": "x" * 1001}, "1,001 characters long; the limit is 1,000"),
    ({"question": 42}, "must be text, not int"),
    ({"question": VICTIMS, "k": 0}, "from 1 to 10, not 0"),
    ({"question": VICTIMS, "k": "3"}, "from 1 to 10, not '3'"),
    ({"question": VICTIMS, "top": 3}, "Unknown field(s) ['top']"),
    ([VICTIMS, 3], "must be a JSON object"),
])
def test_api_ask_refuses_bad_input_with_the_reason(app, body, message):
    status, result, _ = api_ask(app.url, body)
    assert status == 400 and message in result["error"], result
    assert "Traceback" not in result["error"]


def test_api_ask_refuses_a_body_that_is_not_json(app):
    status, result, _ = api_ask(app.url, None, raw=b"question=hello")
    assert status == 400 and "The body is not JSON" in result["error"]


def headers_only(url: str, path: str, length: int, content_type: str = "application/json") -> tuple[int, dict]:
    """Announce a body of `length` bytes, send none of it, and read the reply: a cap refuses before reading."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        data = b""
        while part := sock.recv(65536):  # the server closes the connection: it will not read the body
            data += part
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_api_ask_refuses_a_huge_body_without_reading_it_all(app):
    status, result, _ = api_ask(app.url, {"question": "x" * 200_000})
    assert status == 400 and "200,000 characters long; the limit is 1,000" in result["error"]
    status, result = headers_only(app.url, "/api/ask", 3_000_000)
    assert status == 413 and "over 2,097,152 bytes" in result["error"]


def test_api_ask_parallel_answers_equal_sequential(app):
    questions = [VICTIMS, "Who is the chief administrator of COPA?", "How many migrants lived at police stations?",
                 "Who won the World Series?"] * 3
    sequential = [api_ask(app.url, {"question": q})[:2] for q in questions]
    with ThreadPoolExecutor(len(questions)) as pool:  # more than the 4 worker threads: some wait their turn
        parallel = list(pool.map(lambda q: api_ask(app.url, {"question": q})[:2], questions))
    assert parallel == sequential and all(status == 200 for status, _ in parallel)


def test_ask_remote_keeps_its_connection_alive(app):
    from qa.client import ask_remote

    first = ask_remote(app.url, VICTIMS)
    again = ask_remote(app.url + "/", VICTIMS)  # the same kept-alive connection; a trailing slash is fine
    assert first == again and VICTIMS_ANSWER in first["answer"]["text"]


def test_ask_remote_reports_an_app_that_is_not_running():
    from qa.client import RemoteError, ask_remote

    with pytest.raises(RemoteError, match="Cannot reach the app at .*Start it with `python app.py`"):
        ask_remote(f"http://127.0.0.1:{free_port()}", VICTIMS, timeout=5)
    with pytest.raises(RemoteError, match="not an http"):
        ask_remote("127.0.0.1:7860", VICTIMS)


def test_startup_log_reports_the_engine(app):
    out = app.output()
    assert "article-qa: loading the engine" in out and "article-qa: ready, 1 article(s)" in out


def worker_pids(server: AppServer) -> list[int]:
    m = re.search(r"answered by (\d+) ask worker process\(es\) \(pids ([\d, ]+)\)", server.output())
    assert m, server.output()
    pids = [int(p) for p in m.group(2).split(", ")]
    assert len(pids) == int(m.group(1))
    return pids


def children(pid: int) -> set[int]:
    return {int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()}


def test_api_ask_runs_on_forked_ask_workers(app, auth_app):
    pids = worker_pids(app)
    (spawner,) = children(app.proc.pid)  # the app forks one spawner, before its threads; the spawner the workers
    assert len(pids) == 2 and children(spawner) == set(pids)
    for pid in [spawner, *pids]:  # forked from the app: the same program, sharing its loaded engine
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == Path(f"/proc/{app.proc.pid}/cmdline").read_bytes()
    assert "ask worker" not in auth_app.output() and not children(auth_app.proc.pid)  # QA_WORKERS=0


def test_api_ask_carries_on_when_its_workers_die_and_replaces_them(doomed_app):
    expected = api_ask(doomed_app.url, {"question": VICTIMS})[:2]
    assert expected[0] == 200
    pids = worker_pids(doomed_app)
    for number, pid in enumerate(pids, 1):
        os.kill(pid, signal.SIGKILL)
        assert [api_ask(doomed_app.url, {"question": VICTIMS})[:2] for _ in range(3)] == [expected] * 3
        deadline = time.monotonic() + 5
        while f"ask worker {number} replaced: new pid" not in doomed_app.output() and time.monotonic() < deadline:
            time.sleep(0.05)
    out = doomed_app.output()
    for number, pid in enumerate(pids, 1):
        assert f"ask worker {number} (pid {pid}) stopped (killed by signal SIGKILL)" in out
        new = int(re.search(rf"ask worker {number} replaced: new pid (\d+)", out).group(1))
        assert new not in pids and Path(f"/proc/{new}").exists()
    assert "Traceback" not in out


def test_a_bad_worker_count_stops_the_app_with_a_clear_message(tmp_path):
    env = {**os.environ, "GRADIO_SERVER_PORT": str(free_port()), "HF_HUB_OFFLINE": "1", "QA_WORKERS": "lots"}
    env.pop("QA_AUTH", None)
    proc = subprocess.run([sys.executable, str(APP)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "article-qa: QA_WORKERS='lots' is not a number of worker processes; set 0-16" in proc.stderr
    assert "Traceback" not in proc.stderr and "loading the engine" not in proc.stderr


# --- login ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/config", "/gradio_api/info", "/gradio_api/queue/data",
                                  f"/gradio_api/file=articles/{SEED_ARTICLE}.txt"])
def test_login_required_for_config_api_and_files(auth_app, path):
    status, _ = http("GET", auth_app.url + path)
    assert status in (401, 403)


def test_login_required_for_ask(auth_app):
    status, text = http("POST", f"{auth_app.url}/gradio_api/call/ask", {"data": [VICTIMS, 3]})
    assert status in (401, 403) and VICTIMS_ANSWER not in text


def test_api_ask_needs_basic_credentials(auth_app):
    status, result, headers = api_ask(auth_app.url, {"question": VICTIMS})
    assert status == 401 and "QA_AUTH" in result["error"] and headers["www-authenticate"].startswith("Basic")
    for creds in (basic(AUTH_USERS[0][0], "wrong"), basic("nobody", AUTH_USERS[0][1]),
                  basic(AUTH_USERS[0][0], AUTH_USERS[1][1]), {"Authorization": "Basic !!notbase64"},
                  {"Authorization": "Bearer " + AUTH_USERS[0][1]}):
        status, result, _ = api_ask(auth_app.url, {"question": VICTIMS}, creds)
        assert status == 401 and "answer" not in result


@pytest.mark.parametrize("user", AUTH_USERS)
def test_api_ask_with_basic_credentials(auth_app, user):
    status, result, _ = api_ask(auth_app.url, {"question": VICTIMS}, basic(*user))
    assert status == 200 and VICTIMS_ANSWER in result["answer"]["text"]


def test_login_page_holds_no_content(auth_app):
    status, html = http("GET", auth_app.url + "/")
    assert status == 200  # the page shell, which shows the login form
    assert '"auth_required":true' in html.replace(" ", "")
    for secret in ("Kersten", "victims", "Chicago"):
        assert secret not in html


def test_wrong_password_is_refused(auth_app):
    from gradio_client import Client

    with pytest.raises(Exception, match="(?i)(401|login|auth|credentials)"):
        Client(auth_app.url, auth=(AUTH_USERS[0][0], "wrong"), verbose=False, download_files=False)


@pytest.mark.parametrize("user", AUTH_USERS)
def test_login_with_credentials(auth_app, user):
    from gradio_client import Client

    client = Client(auth_app.url, auth=user, verbose=False, download_files=False)
    result = client.predict(VICTIMS, 3, api_name="/ask")
    assert VICTIMS_ANSWER in result["answer"]["text"]


MALFORMED_AUTH = {"ann": "entry 1 of 1 is not user:password", "ann:pw,": "entry 2 of 2 is not user:password",
                  ":pw": "entry 1 of 1", "ann:pw,ann:pw2": "names user 'ann' twice"}


def test_malformed_auth_stops_the_app_with_a_clear_message(tmp_path):
    env = {**os.environ, "GRADIO_SERVER_PORT": str(free_port()), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    runs = {value: subprocess.Popen([sys.executable, str(APP)], cwd=tmp_path, env={**env, "QA_AUTH": value},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for value in MALFORMED_AUTH}  # in parallel: each pays for importing gradio
    for value, proc in runs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (value, out, err)
        assert f"article-qa: QA_AUTH {MALFORMED_AUTH[value]}" in err, (value, err)
        assert "Traceback" not in err and "loading the engine" not in err
        assert "pw2" not in err  # passwords are never echoed


# --- scripted evaluation against the running app ------------------------------------------------------------

def _qa_eval(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", "eval", "eval/seed.jsonl", "--json", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_eval_over_http_matches_in_process(app):
    remote = _qa_eval("--url", app.url)
    local = _qa_eval()
    assert remote.returncode == 0 and local.returncode == 0, remote.stderr + local.stderr
    r, loc = json.loads(remote.stdout)["metrics"], json.loads(local.stdout)["metrics"]
    for key in ("hit@1", "hit@3", "mrr@5", "answer_accuracy", "correct_abstentions", "false_abstentions"):
        assert r[key] == loc[key], key


def test_eval_over_http_logs_in(auth_app):
    user, password = AUTH_USERS[0]
    ok = _qa_eval("--url", auth_app.url, "--user", user, env={"QA_PASSWORD": password})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["metrics"]["questions"] >= 50
    other, other_password = AUTH_USERS[1]  # other tests spent some of ann's failed logins: the throttle counts per user
    refused = _qa_eval("--url", auth_app.url, "--user", other, env={"QA_PASSWORD": "wrong"})
    assert refused.returncode == 2
    assert f"refused the login of user '{other}'" in refused.stderr and "Traceback" not in refused.stderr
    # the wrong password cost one failed login, not one per question: bob is not locked out (5 a minute)
    again = _qa_eval("--url", auth_app.url, "--user", other, env={"QA_PASSWORD": other_password})
    assert again.returncode == 0, again.stderr
