"""The app's HTTP side: a JSON API beside the Gradio chat on one port, its login, and the server's limits.

`create_server(service, demo)` returns the ASGI app: FastAPI routes under /api (see the README for the JSON),
the Gradio Blocks mounted at / with safe settings, and three guards around both:
- the Host header must be a host name this app answers to (QA_ALLOWED_HOSTS; loopback names when it listens on
  loopback, the Space's host on a Space), so a forged Host is never echoed into the page or /config;
- every request body has a cap by route (413 beyond it, before anything is parsed);
- failed logins are throttled per user and client address (429 with Retry-After), on Gradio's /login form and
  on the API's HTTP Basic credentials alike.
`serve(...)` forks the ask workers, then runs uvicorn with the connection limits of qa/connections.py and
logs that it serves once the port is bound.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .auth import LoginThrottle, basic_credentials, check_password
from .collection import MAX_PAGE_BYTES, on_persistent_storage
from .errors import ConfigError, DuplicateArticleError, QAError, http_status
from .feedback import read_lines
from .validation import MAX_K, AskRequest, check_article_id, parse_ask_request
from .workers import INTERNAL_ERROR, AskPool, answer_json

KIB, MIB = 1024, 1024 * 1024
# request body caps by path prefix (the first that matches); the default covers every other route
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/ask", 2 * MIB),  # a question with up to 50 earlier messages of 8,000 characters
    ("/api/articles", 12 * MIB),  # an HTML page of up to 5 MB, JSON-escaped
    ("/login", 16 * KIB),
    ("/gradio_api/upload", 8 * MIB),  # an article file (text or an HTML page)
    ("/gradio_api/queue/join", 12 * MIB),  # the chat's events: a pasted page of up to 5 MB, JSON-escaped
    ("/gradio_api/", 4 * MIB),  # the chat's other routes
)
DEFAULT_BODY_LIMIT = 256 * KIB
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
                   r"|\[[0-9A-Fa-f:.]+\]")
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"article-qa: {message}", file=sys.stderr, flush=True)


# --- what the routes serve ---------------------------------------------------------------------------------

@dataclass
class Service:
    """What the HTTP routes need: the engine, the optional ask workers, the login users and their throttle."""

    engine: Any
    auth: list[tuple[str, str]] | None = None
    pool: AskPool | None = None
    log: Log = _stderr
    _throttle: LoginThrottle | None = field(default=None, repr=False)
    _threads: asyncio.Semaphore | None = field(default=None, repr=False)

    @property
    def throttle(self) -> LoginThrottle:
        if self._throttle is None:  # made on first use, in the serving process, after workers are forked
            self._throttle = LoginThrottle()
        return self._throttle

    async def answer(self, request: AskRequest) -> tuple[int, bytes]:
        """(status, JSON body) for a checked request: from an ask worker, else on a thread of this process."""
        result = await self.pool.ask(request) if self.pool is not None else None
        if result is None:  # no worker (yet, or any more): answer here, at most 4 at once
            if self._threads is None:
                self._threads = asyncio.Semaphore(4)
            async with self._threads:
                result = await asyncio.to_thread(answer_json, self.engine, request)
        return result


def too_large(path: str, limit: int) -> str:
    """The 413 message for a body over `limit`: where an article or page is sent, what fits and what to do."""
    from .articles import size_text

    taken = f"pages of up to {size_text(MAX_PAGE_BYTES)} and articles of up to 1 MB of text are taken"
    if path.startswith("/gradio_api/upload"):
        return f"The file is over {size_text(limit)}; {taken}."
    if path.startswith(("/api/articles", "/gradio_api/queue/join")):
        return (f"The request is over {size_text(limit)}; {taken}: send the page's story alone, or save the page and "
                "upload the file.")
    return f"The request body is over {limit:,} bytes; send less."


def user_named(service: Service, request: Request) -> str:
    """Who sent an API request, for the log: the HTTP Basic user when logins are on (checked already)."""
    if service.auth is None:
        return "(no login)"
    credentials = basic_credentials(request.headers.get("authorization"))
    return f"by user {credentials[0]!r}" if credentials else "(no login)"


def json_response(status: int, body: dict | bytes, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(data, status_code=status, media_type="application/json", headers=headers)


def client_address(scope: dict) -> str:
    """The client's address: on a Space, the first X-Forwarded-For entry its proxy sets; else the peer's."""
    if os.environ.get("SYSTEM") == "spaces":
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                first = value.decode("latin-1").split(",")[0].strip()
                if first:
                    return first
    client = scope.get("client")
    return client[0] if client else "unknown"


def check_login(service: Service, request: Request) -> Response | None:
    """None when the API request may proceed (no login configured, or good Basic credentials); else the 401
    or 429 response. Wrong passwords count against the throttle."""
    if service.auth is None:
        return None
    credentials = basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        return json_response(401, {"error": "This app asks for a login: send the HTTP Basic credentials of a QA_AUTH "
                                            "user (curl -u user:password, or `qa eval --url URL --user NAME` with "
                                            "QA_PASSWORD set)."},
                             {"WWW-Authenticate": 'Basic realm="article-qa"'})
    user, password = credentials
    address = client_address(request.scope)
    refusal = service.throttle.check(user, address)
    if refusal is not None:
        return json_response(429, {"error": refusal.message}, {"Retry-After": str(refusal.retry_after)})
    if not check_password(user, password, service.auth):
        service.throttle.failed(user, address)
        return json_response(401, {"error": "Wrong user name or password."}, {"WWW-Authenticate": 'Basic realm="article-qa"'})
    return None


async def read_json(request: Request, limit: int) -> tuple[Any, Response | None]:
    """(the parsed body, None) or (None, an error response): 413 over `limit` bytes, 400 for anything that is
    not JSON (also JSON nested too deeply to parse)."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            return None, json_response(413, {"error": too_large(request.url.path, limit)})
    try:
        return json.loads(body), None
    except (ValueError, RecursionError):
        return None, json_response(400, {"error": 'The body is not JSON; send a JSON object like {"question": "..."}.'})


def api_routes(service: Service):
    """The FastAPI app holding /api/*."""
    api = FastAPI(title="article-qa", docs_url=None, redoc_url=None, openapi_url=None)

    @api.post("/api/ask")
    async def api_ask(request: Request):
        """{"question": str, "k"?: int, "history"?: [...], "article"?: id | [ids]} -> the answer JSON."""
        refused = check_login(service, request)
        if refused is not None:
            return refused
        payload, error = await read_json(request, body_limit("/api/ask"))
        if error is not None:
            return error
        try:
            ask = parse_ask_request(payload, max_question_chars=service.engine.settings.max_question_chars, max_k=MAX_K)
        except QAError as exc:
            return json_response(http_status(exc), {"error": str(exc)})
        status, body = await service.answer(ask)
        return json_response(status, body)

    @api.get("/api/articles")
    async def api_articles(request: Request):
        """The articles of the index, with their passage counts and the limits for adding."""
        refused = check_login(service, request)
        if refused is not None:
            return refused
        articles = await asyncio.to_thread(service.engine.list_articles)
        settings = service.engine.settings
        return json_response(200, {"articles": articles, "count": len(articles),
                                   "limits": {"article_bytes": settings.max_article_bytes, "page_bytes": MAX_PAGE_BYTES,
                                              "articles": settings.max_articles},
                                   "persistent": on_persistent_storage(service.engine)})

    @api.post("/api/articles")
    async def api_add_article(request: Request):
        """{"text": str, "title"?, "date"?: "YYYY-MM-DD", "url"?, "source"?, "format"?: auto|text|markdown|html}
        -> 201 and the article's entry; 409 for a duplicate (with the existing id)."""
        refused = check_login(service, request)
        if refused is not None:
            return refused
        payload, error = await read_json(request, body_limit("/api/articles"))
        if error is not None:
            return error
        fields = ("text", "title", "date", "url", "source", "format")
        if not isinstance(payload, dict) or "text" not in payload or set(payload) - set(fields):
            return json_response(400, {"error": f'Send a JSON object with "text" and optionally {list(fields[1:])}, '
                                                'e.g. {"text": "The story...", "title": "Headline", "date": "2024-05-01"}.'})
        who = user_named(service, request)
        try:
            entry = await asyncio.to_thread(
                service.engine.add_article, payload["text"], title=payload.get("title"), date=payload.get("date"),
                url=payload.get("url"), source=payload.get("source"), fmt=payload.get("format") or "auto",
                log=lambda m: service.log(f"{m} {who}"))
        except QAError as exc:
            body = {"error": str(exc)}
            if isinstance(exc, DuplicateArticleError):
                body["article"] = exc.article_id
            return json_response(http_status(exc), body)
        return json_response(201, entry)

    @api.delete("/api/articles/{article_id:path}")
    async def api_remove_article(request: Request, article_id: str):
        refused = check_login(service, request)
        if refused is not None:
            return refused
        who = user_named(service, request)
        try:
            entry = await asyncio.to_thread(service.engine.remove_article, check_article_id(article_id, slash=True),
                                            log=lambda m: service.log(f"{m} {who}"))
        except QAError as exc:
            return json_response(http_status(exc), {"error": str(exc)})
        return json_response(200, {"removed": entry["article"], **entry})

    @api.get("/api/feedback")
    async def api_feedback(request: Request):
        """The chat's feedback, one gold line per judged reply (`qa eval` scores the file as it is). Asks for a
        login when logins are on (QA_AUTH); without them it is open, like every route of such an app."""
        refused = check_login(service, request)
        if refused is not None:
            return refused
        try:
            data = await asyncio.to_thread(read_lines, service.engine.settings.feedback_path)
        except QAError as exc:
            return json_response(500, {"error": str(exc)})
        return Response(data, status_code=200, media_type="application/x-ndjson",
                        headers={"Content-Disposition": 'attachment; filename="feedback.jsonl"',
                                 "X-Feedback-Lines": str(data.count(b"\n"))})

    @api.get("/api/health")
    async def api_health():
        """Liveness for load balancers and Spaces: no login needed, no article text."""
        index = service.engine.index
        return json_response(200, {"status": "ok", "articles": len(index.articles), "passages": len(index.chunks),
                                   "workers": service.pool.alive if service.pool is not None else 0})

    routes = {"/api/ask": "POST", "/api/articles": "GET, POST", "/api/feedback": "GET", "/api/health": "GET"}

    @api.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def api_unknown(request: Request, rest: str):
        """Any other path or method under /api: an {"error"} like every API reply, not the framework's {"detail"}."""
        path = request.url.path.rstrip("/")
        if path in routes:
            return json_response(405, {"error": f"{request.method} is not allowed on {path}; use {routes[path]}."},
                                 {"Allow": routes[path]})
        if path.startswith("/api/articles/"):
            return json_response(405, {"error": f"{request.method} is not allowed on an article; use DELETE."},
                                 {"Allow": "DELETE"})
        return json_response(404, {"error": f"No API route {path[:60]!r}; the routes are {sorted(routes)} and "
                                            "DELETE /api/articles/{id} (see the README)."})

    @api.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):  # a bug: the message, never the traceback
        import traceback

        service.log(f"internal error on {request.url.path}:\n{''.join(traceback.format_exception(exc))}")
        return json_response(500, {"error": INTERNAL_ERROR})

    return api


# --- guards around everything ------------------------------------------------------------------------------

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def body_limit(path: str) -> int:
    for prefix, limit in BODY_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_BODY_LIMIT


def allowed_hosts(bind: str, setting: str | None = None) -> tuple[str, ...] | None:
    """Host names the app answers to (None: any well-formed one). QA_ALLOWED_HOSTS (comma-separated, `*` for
    any) wins; else a Space's own host and loopback; else loopback when listening on loopback; else any."""
    if setting:
        names = tuple(h.strip().lower() for h in setting.split(",") if h.strip())
        return None if "*" in names else names + LOOPBACK_HOSTS
    if os.environ.get("SPACE_HOST"):
        return (os.environ["SPACE_HOST"].lower(),) + LOOPBACK_HOSTS
    if bind in LOOPBACK_HOSTS or bind.startswith("127."):
        return LOOPBACK_HOSTS + ((bind,) if bind not in LOOPBACK_HOSTS else ())
    return None


def _host_name(header: str) -> str | None:
    """The host part of a Host header, lower-cased, or None when it is not a well-formed host[:port]."""
    host, port = header, ""
    if header.startswith("["):
        end = header.find("]")
        host, port = header[: end + 1], header[end + 1 :].removeprefix(":") if end > 0 else ""
    elif header.count(":") == 1:
        host, port = header.split(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536) or not _HOST.fullmatch(host):
        return None
    return host.lower()


def gradio_apis(demo) -> dict[str, list[tuple[str, Any]]]:
    """The Blocks' public API endpoints: name -> [(parameter, default or _REQUIRED), ...]."""
    import inspect

    apis = {}
    for fn in demo.fns.values():
        if fn.api_name and getattr(fn, "api_visibility", "public") == "public" and fn.fn is not None:
            params = inspect.signature(fn.fn).parameters.values()
            apis[fn.api_name] = [(p.name, _REQUIRED if p.default is inspect.Parameter.empty else p.default) for p in params]
    return apis


_REQUIRED = object()
_CALL = re.compile(r"/gradio_api/call/([^/]+)(/.*)?")


class Guards:
    """ASGI middleware: the Host check, the body caps, the login throttle on Gradio's /login form, and Gradio's
    raw call route made safe (an unknown endpoint is a 404, not a 500; omitted trailing arguments take their
    defaults, as gradio_client fills them, instead of failing with `{"error": null}`)."""

    def __init__(self, app, service: Service, hosts: tuple[str, ...] | None,
                 apis: dict[str, list[tuple[str, Any]]] | None = None, events: set[int] | None = None) -> None:
        self.app, self.service, self.hosts, self.apis = app, service, hosts, apis or {}
        self.events = events  # the page's event numbers (fn_index): another one is refused, not a 500

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = next((v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"host"), "")
        name = _host_name(host)
        if name is None or self.hosts is not None and name not in self.hosts:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _send_json(send, 400, {"error": "The Host header names a host this app does not answer to; "
                                                         "use its address, or add the name to QA_ALLOWED_HOSTS."})
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        if scope["path"].startswith("/api/") and any(c < " " or c == "\x7f" for c in scope["path"]):
            return await _send_json(send, 400, {"error": "The path holds a control character (a line break, a tab...); "
                                                         "article ids never do: see GET /api/articles for them."})
        limit = body_limit(scope["path"])
        length = next((v for k, v in scope.get("headers") or () if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _send_json(send, 413, {"error": too_large(scope["path"], limit)})
        if scope["path"].rstrip("/") == "/login" and scope["method"] == "POST" and self.service.auth is not None:
            return await self._login(scope, receive, send, limit)
        call = _CALL.fullmatch(scope["path"])
        if call is not None:
            if call.group(1) not in self.apis:
                return await _send_json(send, 404, {"error": f"No API endpoint named {call.group(1)[:40]!r}; the endpoints "
                                                             f"are {sorted(self.apis)} (see /gradio_api/info)."})
            if scope["method"] == "POST" and not call.group(2):
                return await self._call(scope, receive, send, limit, self.apis[call.group(1)])
        if scope["path"] == "/gradio_api/queue/join" and scope["method"] == "POST" and self.events is not None:
            return await self._join(scope, receive, send, limit)
        return await self.app(scope, _capped(receive, limit), send)

    async def _join(self, scope: dict, receive: Receive, send: Send, limit: int) -> None:
        """The page's events: one naming an event the page does not have is refused here (Gradio answered it with
        a 500 and a traceback in the log)."""
        body, payload = await _json_body(receive, limit)
        if body is None:
            return await _send_json(send, 413, {"error": too_large(scope["path"], limit)})
        event = payload.get("fn_index") if isinstance(payload, dict) else None
        if not isinstance(event, int) or isinstance(event, bool) or event not in self.events:
            return await _send_json(send, 400, {"error": "Not an event of this page; reload the page."})
        return await self.app(scope, _replay(body, receive), send)

    async def _call(self, scope: dict, receive: Receive, send: Send, limit: int, params: list[tuple[str, Any]]) -> None:
        """POST /gradio_api/call/<name> {"data": [...]}: omitted trailing arguments get their defaults."""
        body, payload = await _json_body(receive, limit)
        if body is None:
            return await _send_json(send, 413, {"error": too_large(scope["path"], limit)})
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) > len(params):
            names = [name for name, _ in params]
            return await _send_json(send, 400, {"error": f'Send {{"data": [...]}} with the arguments {names} in order; '
                                                         "trailing ones may be left out."})
        for name, default in params[len(data):]:
            if default is _REQUIRED:
                return await _send_json(send, 400, {"error": f"The argument {name!r} is missing; send it in \"data\"."})
            data.append(default)
        body = json.dumps(payload).encode("utf-8")
        return await self.app(scope, _replay(body, receive), send)

    async def _login(self, scope: dict, receive: Receive, send: Send, limit: int) -> None:
        """Gradio's login form, throttled: 429 before the password is checked when this user and address failed
        too often; a failure (Gradio answers 400) is counted."""
        body = await _read_body(receive, limit)
        if body is None:
            return await _send_json(send, 413, {"error": f"The request body is over {limit:,} bytes; send less."})
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        user = (form.get("username") or [""])[0].strip()
        address = client_address(scope)
        refusal = self.service.throttle.check(user, address)
        if refusal is not None:
            return await _send_json(send, 429, {"detail": refusal.message, "error": refusal.message},
                                    {"Retry-After": str(refusal.retry_after)})

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] in (400, 401, 403):
                self.service.throttle.failed(user, address)
            await send(message)

        await self.app(scope, _replay(body, receive), watch)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it passes `limit` bytes (or the client left)."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            return None
    return body


async def _json_body(receive: Receive, limit: int) -> tuple[bytes | None, Any]:
    """(the body, its JSON or None when it is not JSON), or (None, None) when it passes `limit` bytes."""
    body = await _read_body(receive, limit)
    if body is None:
        return None, None
    try:
        return body, json.loads(body)
    except (ValueError, RecursionError):
        return body, None


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands the app a body already read, then passes on what comes next (a disconnect)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive` that ends the request (as a client disconnect) once a body without Content-Length passes
    `limit` bytes; the route then reads no more."""
    seen = 0

    async def wrapped() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return wrapped


# --- putting it together -----------------------------------------------------------------------------------

def create_server(service: Service, demo, *, bind: str = "127.0.0.1", max_file_size: str = "8mb",
                  css: str | None = None, js: str | None = None, head: str | None = None):
    """The ASGI app: /api routes, the Gradio Blocks `demo` at /, and the guards around both."""
    import gradio as gr

    api = api_routes(service)
    demo.state_session_capacity = 256  # Gradio keeps per-session state for 10,000 sessions by default: RSS grew
    # 458 -> 627 MB over 19,000 API calls (each a session); the chat keeps its state in the page instead
    app = gr.mount_gradio_app(
        api, demo, path="",
        auth=service.auth,
        ssr_mode=False,  # with run_history=False: CVE-2026-134825 (forged Host + SSR + run-history routes)
        run_history=False,
        show_error=False,  # no tracebacks to users; gr.Error messages still reach them
        enable_monitoring=False,
        max_file_size=max_file_size,
        footer_links=["api"],
        css=css, js=js, head=head,
    )
    return Guards(app, service, allowed_hosts(bind, os.environ.get("QA_ALLOWED_HOSTS")), gradio_apis(demo), set(demo.fns))


def host_and_port() -> tuple[str, int]:
    """GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, as Gradio reads them (a Space sets 0.0.0.0:7860)."""
    host = os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    value = os.environ.get("GRADIO_SERVER_PORT") or "7860"
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"GRADIO_SERVER_PORT={value!r} is not a port number; set it to 1-65535 or unset it for 7860.")
    return host, int(value)


def max_connections(value: str | None) -> int | None:
    """QA_MAX_CONNECTIONS: open connections kept at most (default 4096, and always below the open-file limit)."""
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit() or not 16 <= int(value) <= 1_000_000:
        raise ConfigError(f"QA_MAX_CONNECTIONS={value!r} is not a number of connections; set 16-1000000 or unset it for 4096.")
    return int(value)


def request_timeout(value: str | None) -> float:
    """QA_REQUEST_TIMEOUT: seconds a client has to send a whole request (headers and body) once it starts; a
    connection that sends nothing is closed after min(5, this) seconds. Default 10."""
    if value is None or not value.strip():
        return 10.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0.5 <= seconds <= 600:
        raise ConfigError(f"QA_REQUEST_TIMEOUT={value!r} is not a number of seconds; set 0.5-600 or unset it for 10.")
    return seconds


def serve(app, service: Service, host: str, port: int, *, workers: int, ask_timeout: float | None = None,
          connections: int | None = None, timeout: float = 10.0) -> None:
    """Fork the ask workers (before any thread starts), then run uvicorn until it is stopped."""
    import logging

    import uvicorn

    from .connections import (ACCEPT_BACKLOG, GuardedH11Protocol, connection_cap, quiet_accept_errors, throttle_logs,
                              widen_listen_queue)

    if workers:
        try:
            service.pool = AskPool(service.engine, workers, timeout=ask_timeout)
        except ConfigError as exc:
            service.log(f"no ask workers, /api/ask is answered in this process: {exc}")
    protocol = GuardedH11Protocol.configured(idle_timeout=min(5.0, timeout), request_timeout=timeout,
                                             max_connections=connection_cap(connections))
    throttle_logs("uvicorn", "uvicorn.error", "asyncio")
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", http=protocol, timeout_keep_alive=5,
                            h11_max_incomplete_event_size=64 * KIB, backlog=ACCEPT_BACKLOG)
    pool = service.pool

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            quiet_accept_errors(asyncio.get_running_loop(), logging.getLogger("uvicorn.error"))
            await super().startup(sockets)
            if self.started:  # the port is bound: only now is it true that we serve
                widen_listen_queue(sock for server in self.servers for sock in server.sockets)
                service.log(f"serving on http://{host}:{port}" + (
                    f", /api/ask questions answered by {workers} ask worker process(es) (pids "
                    f"{', '.join(map(str, pool.pids))}), spawner pid {pool.spawner_pid}" if pool is not None else ""))

    try:
        Server(config).run()
    finally:
        if pool is not None:
            pool.close()
