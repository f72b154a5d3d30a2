"""The fault suite, HTTP and command-line doors: each failure the hostile test found injected again against a
running `python app.py` (real model, seed article) or the real `qa` command, with the bounded outcome asserted.
Index and build faults are in tests/test_faults.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
import urllib.request

import pytest
from test_app import AUTH_USERS, AUTH_VALUE, ROOT, VICTIMS, VICTIMS_ANSWER, AppServer, api_ask, basic, headers_only, make_project, running

LOGIN_USERS = AUTH_VALUE


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """One app on loopback (its Host check in force) with short request deadlines, one with a login."""
    project = make_project(tmp_path_factory)
    with running(AppServer(project, {"GRADIO_SERVER_NAME": "127.0.0.1", "QA_WORKERS": "2", "QA_REQUEST_TIMEOUT": "2"}),
                 AppServer(project, {"QA_AUTH": LOGIN_USERS, "QA_WORKERS": "0"})) as started:
        yield started


@pytest.fixture(scope="module")
def app(apps) -> AppServer:
    return apps[0]


@pytest.fixture(scope="module")
def login_app(apps) -> AppServer:
    return apps[1]


def raw(url: str, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send raw bytes; (status, headers, body) of the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while part := sock.recv(65536):
            data += part
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: (\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def post(url: str, path: str, body: bytes, content_type: str = "application/json", host: str | None = None) -> tuple[int, dict, bytes]:
    hostport = url.removeprefix("http://")
    return raw(url, f"POST {path} HTTP/1.1\r\nHost: {host or hostport}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


# --- 5. idle connections and slow clients ------------------------------------------------------------------

IDLE_SCRIPT = """
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for i in range(n):
    try:
        held.append(socket.create_connection((host, port), timeout=5))
    except OSError:
        time.sleep(0.01)
print(len(held), flush=True)
sys.stdin.read()  # hold them until told
"""


def test_twenty_thousand_idle_connections_leave_real_requests_answered(app):
    """Before: 20,000 idle TCP connections exhausted the app's descriptors; real requests timed out and the log
    filled with 557,055 'Too many open files' lines in 35 s. Two processes hold 10,000 each (one process may
    not open 20,000 here)."""
    log_before = len(app.output().splitlines())
    holders = [subprocess.Popen([sys.executable, "-c", IDLE_SCRIPT, "127.0.0.1", str(app.port), "10000"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        opened = [int(h.stdout.readline()) for h in holders]
        assert sum(opened) >= 19_000, opened
        times = []
        for _ in range(5):
            t = time.perf_counter()
            status, result, _ = api_ask(app.url, {"question": VICTIMS})
            times.append(time.perf_counter() - t)
            assert status == 200 and VICTIMS_ANSWER in result["answer"]["text"]
        assert sorted(times)[2] < 1.0, times  # the median well under a second (it is milliseconds)
    finally:
        for h in holders:
            h.kill()
            h.wait()
    new_lines = app.output().splitlines()[log_before:]
    assert len(new_lines) < 20, new_lines[:20]  # no flood in the log
    assert "Traceback" not in "\n".join(new_lines)


def test_the_kernel_queues_a_burst_of_connections_the_loop_has_not_accepted_yet():
    """A flood filled the 512-long accept queue and one real handshake was dropped, retried a second later.
    widen_listen_queue lets the kernel queue more without changing how many the loop accepts at once."""
    from qa.connections import widen_listen_queue

    def completed_handshakes(widen: bool) -> int:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)  # nobody accepts: only the kernel's queue holds the connections
            if widen:
                widen_listen_queue([server], 256)
            clients = []
            try:
                for _ in range(64):
                    c = socket.socket()
                    c.setblocking(False)
                    c.connect_ex(server.getsockname())
                    clients.append(c)
                time.sleep(0.5)
                return sum(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and _connected(c) for c in clients)
            finally:
                for c in clients:
                    c.close()

    assert completed_handshakes(widen=False) < 8  # a queue of one: the rest wait for a retry
    assert completed_handshakes(widen=True) == 64


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


def test_a_connection_that_sends_nothing_is_closed(app):
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        t = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server, after its idle timeout (min(5, 2) s here)
        assert time.monotonic() - t < 8


def test_a_request_trickled_byte_by_byte_is_cut_off(app):
    request = f"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\nContent-Length: 100\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", app.port), timeout=15) as sock:
        t = time.monotonic()
        with pytest.raises(OSError):
            for byte in request + b"x" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)  # 4 s for the whole request: over QA_REQUEST_TIMEOUT=2
            sock.recv(1) or (_ for _ in ()).throw(ConnectionResetError("closed"))
        assert time.monotonic() - t < 8


# --- 6. login throttling ------------------------------------------------------------------------------------


def login(url: str, user: str, password: str) -> tuple[int, dict, bytes]:
    form = f"username={user}&password={password}".encode()
    return post(url, "/login", form, "application/x-www-form-urlencoded")


def test_sixth_wrong_login_in_a_minute_is_refused_while_another_user_logs_in(login_app):
    """Before: 500 wrong passwords in 0.33 s, then the right one worked."""
    (ann, ann_pw), (bob, bob_pw) = AUTH_USERS
    statuses = [login(login_app.url, ann, "wrong")[0] for _ in range(5)]
    assert statuses == [400] * 5
    status, headers, body = login(login_app.url, ann, "wrong")
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60
    assert "Too many failed logins" in json.loads(body)["error"]
    assert login(login_app.url, ann, ann_pw)[0] == 429  # even the right password waits: no brute force
    status, headers, _ = login(login_app.url, bob, bob_pw)
    assert status == 200 and "set-cookie" in headers  # another user still logs in


def test_basic_auth_on_the_api_is_throttled_too(login_app):
    _, (bob, bob_pw) = AUTH_USERS
    user = "carol"  # a name that does not exist fails like a wrong password, and is throttled alike
    statuses = [api_ask(login_app.url, {"question": VICTIMS}, basic(user, "guess"))[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    status, result, headers = api_ask(login_app.url, {"question": VICTIMS}, basic(user, "guess"))
    assert status == 429 and int({k.lower(): v for k, v in headers.items()}["retry-after"]) >= 1
    assert api_ask(login_app.url, {"question": VICTIMS}, basic(bob, bob_pw))[0] == 200


# --- 9 and 16. forged Host headers, bad bodies -------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "<script>", "a b", "127.0.0.1:99999", ""])
def test_a_forged_host_is_refused_not_echoed(app, host):
    status, _, body = raw(app.url, f"GET /config HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert status == 400 and host.encode() not in body if host else status == 400
    assert "QA_ALLOWED_HOSTS" in json.loads(body)["error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_names_are_served(app, host):
    status, _, body = raw(app.url, f"GET /config HTTP/1.1\r\nHost: {host}:{app.port}\r\nConnection: close\r\n\r\n".encode())
    assert status == 200 and b"evil" not in body


def test_the_gradio_route_refuses_a_huge_body_unread(app):
    """Before: 100 MB bodies were parsed (4 at once: app memory 654 -> 1,351 MB, kept)."""
    status, result = headers_only(app.url, "/gradio_api/call/ask", 100_000_000)
    assert status == 413 and "over 4,194,304 bytes" in result["error"]
    status, result = headers_only(app.url, "/gradio_api/queue/join", 100_000_000)
    assert status == 413


def test_the_gradio_route_answers_an_unknown_endpoint_with_404(app):
    status, headers, body = post(app.url, "/gradio_api/call/nosuch", b'{"data": ["x"]}')
    assert status == 404 and headers["content-type"] == "application/json"
    assert "No API endpoint named 'nosuch'" in json.loads(body)["error"] and "ask" in json.loads(body)["error"]


def test_the_gradio_route_fills_omitted_arguments_with_defaults(app):
    """Before: `ask` without k answered {"error": null}."""
    status, _, body = post(app.url, "/gradio_api/call/ask", json.dumps({"data": [VICTIMS]}).encode())
    assert status == 200
    event = json.loads(body)["event_id"]
    with urllib.request.urlopen(f"{app.url}/gradio_api/call/ask/{event}", timeout=30) as resp:
        stream = resp.read().decode()
    assert "event: complete" in stream and VICTIMS_ANSWER in stream
    result = json.loads(stream.split("data: ", 1)[1])[0]
    assert len(result["passages"]) == 3  # the default k


# --- at least 40 bad inputs across the doors: a 4xx with a JSON message, no traceback, no path -------------


API_BAD_BODIES: list[bytes] = [
    b"", b"null", b"[]", b"42", b'"a question"', b"{", b"{]", b"\xff\xfe", b'{"question": "a \\ud800"}',
    b'{"question": "\\udfff"}', b"[" * 100_000 + b"]" * 100_000, b'{"question": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"question": "ok", "k": 1e999}', b'{"question": "ok", "k": -1}', b'{"question": "ok", "k": true}',
    b'{"question": "ok", "k": 11}', b'{"question": "ok", "k": 2.5}', b'{"question": "\\u0000 hi"}',
    b'{"question": "\\u200b\\u200b"}', b'{"question": "' + b"x" * 5000 + b'"}', b'{"question": {"$gt": ""}}',
    b'{"question": "ok", "history": "no"}', b'{"question": "ok", "history": [{"role": "system", "content": "x"}]}',
    b'{"question": "ok", "history": [{"role": "user"}]}', b'{"question": "ok", "history": [1, 2]}',
    b'{"question": "ok", "history": [{"role": "user", "content": 5}]}',
    b'{"question": "ok", "article": 5}', b'{"question": "ok", "article": []}', b'{"question": "ok", "article": ["../x"]}',
    b'{"question": "ok", "article": "no-such-article"}', b'{"question": "ok", "extra": 1}', b'{"k": 3}',
]


def clean_error(status: int, headers: dict, body: bytes) -> str:
    assert 400 <= status < 500, (status, body[:200])
    assert headers.get("content-type", "").startswith("application/json"), headers
    message = json.loads(body)["error"]
    assert isinstance(message, str) and message
    for leak in ("Traceback", "File \"", "site-packages", str(ROOT), "/tmp/", "Internal Server Error"):
        assert leak not in message, message
    return message


@pytest.mark.parametrize("body", API_BAD_BODIES, ids=range(len(API_BAD_BODIES)))
def test_bad_api_bodies_get_a_clean_4xx(app, body):
    clean_error(*post(app.url, "/api/ask", body))


def test_history_of_ten_thousand_turns_or_a_megabyte_turn_is_refused_and_the_app_carries_on(app):
    many = [{"role": "user", "content": "hi"}] * 10_000
    status, result, _ = api_ask(app.url, {"question": VICTIMS, "history": many})
    assert status == 400 and "10,000 messages; the limit is 50" in result["error"]
    huge = [{"role": "user", "content": "x" * 1_000_000}]
    status, result, _ = api_ask(app.url, {"question": VICTIMS, "history": huge})
    assert status == 400 and "1,000,000 characters long; the limit is 8,000" in result["error"]
    assert api_ask(app.url, {"question": VICTIMS})[0] == 200


GRADIO_BAD_CALLS: list[bytes] = [
    b"", b"{", b"[]", b'{"data": "x"}', b'{"data": []}', b'{"data": [null]}', b'{"data": [42]}',
    b'{"data": ["   "]}', b'{"data": ["ok", 0]}', b'{"data": ["ok", "3"]}', b'{"data": ["ok", 3, 4, 5, 6]}',
    b'{"data": ["a \\ud800"]}',
]


@pytest.mark.parametrize("body", GRADIO_BAD_CALLS, ids=range(len(GRADIO_BAD_CALLS)))
def test_bad_gradio_calls_get_a_message_not_a_500(app, body):
    status, headers, reply = post(app.url, "/gradio_api/call/ask", body)
    if status != 200:
        clean_error(status, headers, reply)
        return
    event = json.loads(reply)["event_id"]
    with urllib.request.urlopen(f"{app.url}/gradio_api/call/ask/{event}", timeout=30) as resp:
        stream = resp.read().decode()
    assert "event: error" in stream
    message = json.loads(stream.split("data: ", 1)[1])
    assert isinstance(message, dict) and isinstance(message.get("error"), str) and message["error"]  # never null
    assert "Traceback" not in stream and str(ROOT) not in stream


CLI_BAD: list[list[str]] = [
    ["ask", ""], ["ask", "   "], ["ask", "\u200b\u200b"], ["ask", "x" * 1001], ["ask", "ok", "-k", "0"],
    ["ask", "-", "-k", "0"], ["ask", "ok", "--index", "/nonexistent/index", "--no-rebuild"],
    ["build", "/nonexistent/articles"], ["eval", "/nonexistent.jsonl"], ["ask", "ok", "--model", "bogus-model-name", "--no-rebuild"],
]


@pytest.mark.parametrize("args", CLI_BAD, ids=range(len(CLI_BAD)))
def test_bad_cli_input_is_a_usage_error_with_a_message(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    index = tmp_path / "index" if args[0] == "build" else ROOT / "index"  # nothing here writes the repository's index
    t = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**env, "QA_INDEX_DIR": str(index)}, input="")
    assert done.returncode == 2, done
    assert done.stderr.startswith("qa: error: ") and "Traceback" not in done.stderr
    assert time.monotonic() - t < 60  # `--model bogus --no-rebuild` spent 80 s on network retries before


def test_invalid_utf8_on_the_command_line_and_stdin(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    arg = subprocess.run([sys.executable, "-m", "qa.cli", "ask", b"caf\xe9 victims".decode("utf-8", "surrogateescape")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert arg.returncode == 2 and "not valid UTF-8 (byte 0xe9 at character 4)" in arg.stderr
    lines = b"Were any victims identified?\n\xff\xfe bad\nWho is the chief administrator of COPA?\n"
    piped = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "-"], input=lines, capture_output=True, cwd=ROOT,
                           env=env, timeout=120)
    out = [json.loads(line) for line in piped.stdout.decode("utf-8").splitlines()]
    assert piped.returncode == 1 and len(out) == 3  # the bad line is reported, and later lines still answered
    assert "Line 2 is not valid UTF-8" in out[1]["error"] and "Andrea Kersten" in out[2]["answer"]["text"]
    assert b"Traceback" not in piped.stderr


def test_a_broken_pipe_on_stdout_ends_quietly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    done = subprocess.run(f"{sys.executable} -m qa.cli ask 'Were any victims identified?' --json | head -c 10",
                          shell=True, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.stdout == '{\n  "quest' and done.stderr == ""


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("GRADIO_SERVER_PORT", "abc", "GRADIO_SERVER_PORT='abc' is not a port number"),
    ("QA_WORKERS", "lots", "QA_WORKERS='lots' is not a number of worker processes"),
    ("QA_ASK_TIMEOUT", "soon", "QA_ASK_TIMEOUT='soon' is not a number of seconds"),
    ("QA_REQUEST_TIMEOUT", "0", "QA_REQUEST_TIMEOUT='0' is not a number of seconds"),
    ("QA_MAX_CONNECTIONS", "many", "QA_MAX_CONNECTIONS='many' is not a number of connections"),
])
def test_bad_app_settings_stop_it_with_a_message(tmp_path, variable, value, message):
    server = AppServer(tmp_path, {variable: value})  # fails on the setting, before any article is read
    server.proc.wait(60)
    out = server.output()
    assert server.proc.returncode == 1 and message in out and "Traceback" not in out, out


def test_serving_is_logged_only_once_the_port_is_bound(tmp_path_factory):
    """Before: "serving on ..." was printed before the port was bound, also when binding then failed."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = AppServer(make_project(tmp_path_factory), {"GRADIO_SERVER_NAME": "127.0.0.1", "QA_WORKERS": "0",
                                                            "GRADIO_SERVER_PORT": str(taken.getsockname()[1])})
        server.proc.wait(90)
    out = server.output()
    assert server.proc.returncode != 0 and "address already in use" in out.lower() and "serving on" not in out, out


# --- 14. memory on the Gradio route -------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def gradio_ask(url: str, question: str) -> None:
    status, _, body = post(url, "/gradio_api/call/ask", json.dumps({"data": [question, 1]}).encode())
    assert status == 200
    with urllib.request.urlopen(f"{url}/gradio_api/call/ask/{json.loads(body)['event_id']}", timeout=30) as resp:
        assert b"event: complete" in resp.read()


def test_memory_on_the_gradio_route_levels_off(app):
    """Before: 458 -> 627 MB over ~19,000 requests (every API call is a session, and Gradio kept 10,000). Here
    300 requests fill the (now 256-session) store, and 1,200 more must not grow the app by 10 %. The full
    20,000-request figure is in benchmarks/reliability.py."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [VICTIMS, "Who is the chief administrator of COPA?", "When did the agency receive the information?"]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: gradio_ask(app.url, questions[i % 3]), range(300)))
        warm = rss_mb(app.proc.pid)
        list(pool.map(lambda i: gradio_ask(app.url, questions[i % 3]), range(1200)))
    after = rss_mb(app.proc.pid)
    assert after < warm * 1.10, (warm, after)
