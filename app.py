"""article-qa web chat and Hugging Face Space entry point (`python app.py`).

Thin on purpose: the engine is loaded once, here, and every callback hands its input to `Engine.ask` and its
output to `qa.render`. Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (a Space sets
0.0.0.0:7860). Optional login: QA_AUTH="user1:pass1,user2:pass2".

Besides the chat, two HTTP routes return the same JSON as `qa ask --json`:
    POST /api/ask {"question": "Were any victims identified?", "k": 3}       -> 200 {...} | 4xx/5xx {"error": ...}
    POST /gradio_api/call/ask {"data": ["Were any victims identified?", 3]}  -> {"event_id": ...}, then
    GET  /gradio_api/call/ask/<event_id>                                   -> event: complete / error
/api/ask is plain JSON in one round trip (scripts, `qa eval --url`); with QA_AUTH it takes HTTP Basic
credentials. Its questions go to ask worker processes forked from this one (QA_WORKERS, default one per
CPU; `qa.workers`) so that concurrent questions use every core. The Gradio route goes through Gradio's
queue (gradio_client, the chat page) and is answered in this process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time

# Gradio recomputes a pandas summary of up to 10,000 past requests after every request, to estimate queue
# wait times; measured at ~10% of the app's CPU and growing with traffic. Every 100 requests over the last
# 1,000 is plenty for an estimate (the variables stay overridable).
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
# One onnxruntime thread per question: concurrent questions then use the cores side by side instead of
# contending for them (measured on 2 cores, asks on threads of this process: 4 clients 1.5-1.8x one client,
# 1.1x with a thread per core); ask workers are only forked with it (qa.workers.forkable).
os.environ.setdefault("QA_THREADS", "1")

import anyio  # noqa: E402 - after the settings above
import gradio as gr  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402

from qa import ConfigError, Engine, QAError, QuestionError, resolve_settings
from qa.render import render_answer, render_article, render_article_header, render_error, render_question
from qa.workers import INTERNAL_ERROR, AskPool, answer_json, ask_timeout, log_internal_error, worker_count

EXAMPLES = [
    "Were any victims identified?",
    "Who is the chief administrator of COPA?",
    "When did the agency receive the information?",
    "How many migrants were living at police stations?",
]
MIN_K, MAX_K, DEFAULT_K = 1, 10, 3
# Requests run 4 at a time (Gradio's default is 1: users would wait in line), at most 32 wait, and the
# /gradio_api/run/* routes, which would bypass the queue and its limits, are closed (api_open=False).
CONCURRENCY = 4
QUEUE_SIZE = 32
MAX_FILE_SIZE = "1kb"  # the app takes no files, but Gradio's upload route is open; keep it tiny
MAX_API_BODY = 64 * 1024  # bytes of a /api/ask request; far above any question the engine accepts


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """QA_AUTH="user1:pass1,user2:pass2" -> [("user1", "pass1"), ("user2", "pass2")]; unset or "" -> None.

    Users may not contain ':' and passwords may not contain ','. Passwords never appear in messages.
    """
    if value is None or value == "":
        return None
    pairs = []
    for i, entry in enumerate(value.split(","), start=1):
        user, sep, password = entry.partition(":")
        user = user.strip()
        if not sep or not user or not password:
            raise ConfigError(
                f"QA_AUTH entry {i} of {value.count(',') + 1} is not user:password (user {user!r}); "
                'set QA_AUTH="user1:pass1,user2:pass2" or unset it to run without login.'
            )
        if any(u == user for u, _ in pairs):
            raise ConfigError(f"QA_AUTH names user {user!r} twice; give each user once.")
        pairs.append((user, password))
    return pairs


def check_k(k: object) -> int:
    """The number of passages as an int from MIN_K to MAX_K; QuestionError otherwise. None means the default."""
    if k is None:
        return DEFAULT_K
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not MIN_K <= k <= MAX_K:
        raise QuestionError(f"The number of passages must be a whole number from {MIN_K} to {MAX_K}, not {k!r}.")
    return k


def read_article(path: str, sha256: str) -> str | None:
    """The article file's text with offsets intact, or None when it is gone or no longer the indexed text."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        return None
    with open(path, encoding="utf-8", newline="") as f:  # as the indexer read it
        return f.read()


def open_engine() -> Engine:
    print("article-qa: loading the engine (builds or refreshes index/ when needed) ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    engine = Engine.open(resolve_settings())
    engine.ask(EXAMPLES[0], 1)  # the first question loads what queries need; a user should not wait for it
    print(f"article-qa: ready, {len(engine.index.articles)} article(s), {len(engine.index.chunks)} passages "
          f"({time.perf_counter() - t:.1f} s)", file=sys.stderr, flush=True)
    return engine


try:
    AUTH = parse_auth(os.environ.get("QA_AUTH"))  # before the model loads: a bad value fails fast
    WORKERS = worker_count(os.environ.get("QA_WORKERS"))
    ASK_TIMEOUT = ask_timeout(os.environ.get("QA_ASK_TIMEOUT"))
    ENGINE = open_engine()
except QAError as exc:
    if __name__ != "__main__":
        raise
    sys.exit(f"article-qa: {exc}")


# --- callbacks: library calls in, rendered Markdown out -----------------------------------------------------

def ask(question: str, k: int = DEFAULT_K) -> dict:
    """Answer a question about the articles: the answer sentence with its citation and the k best passages
    (exact character spans into the article files), or an abstention with its reason. The same JSON as
    `qa ask --json`. With gradio_client, pass `download_files=False` to Client: it takes any dict with a
    "path" key (the citations) for a file to download."""
    try:
        return ENGINE.ask(question, check_k(k)).to_json()
    except QAError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except Exception:  # a bug, not the caller's fault: the message, never the traceback
        log_internal_error(question)
        raise gr.Error(INTERNAL_ERROR, print_exception=False) from None


def article_view(result: dict | None) -> tuple[str, str]:
    """Header and body of the article in view: the one the answer cites (else the closest passage's), with
    this answer's passages marked; the first article, unmarked, before any answer."""
    passages = (result or {}).get("passages") or []
    answer = (result or {}).get("answer")
    article_id = None
    if passages:
        cited = next((p for p in passages if answer and p["rank"] == answer["citation"]), passages[0])
        article_id = cited["citation"]["article"]
    articles = ENGINE.index.articles
    info = articles.get(article_id) if article_id else None
    if info is None and articles:
        info = articles[min(articles)]
    if info is None:
        return render_article_header("No article", None), ""
    header = render_article_header(info.title, info.date, info.id)
    raw = read_article(info.path, info.sha256)
    if raw is None:
        return header, render_error(f"The file of article {info.id} is missing or has changed since it was indexed.")
    own = [p for p in passages if p["citation"]["article"] == info.id]
    return header, render_article(raw, own, answer["citation"] if answer else None)


def respond(message: object, history: list | None, k: object):
    """Chat submit: the question (escaped) and the rendered reply join the chat; the article view follows the
    answer. A refused question gets the reason as the reply and leaves the article view as it was."""
    history = list(history or [])
    if isinstance(message, str) and message.strip():
        history.append({"role": "user", "content": render_question(message)})
    try:
        result = ENGINE.ask(message, check_k(k)).to_json()
        reply, (header, body) = render_answer(result), article_view(result)
    except QAError as exc:
        history.append({"role": "assistant", "content": render_error(str(exc))})
        return "", history, gr.skip(), gr.skip()
    except Exception:
        log_internal_error(message)
        history.append({"role": "assistant", "content": render_error(INTERNAL_ERROR)})
        return "", history, gr.skip(), gr.skip()
    history.append({"role": "assistant", "content": reply})
    return "", history, header, body


# --- /api/ask: plain JSON in one round trip --------------------------------------------------------------

def authorized(header: str | None, users: list[tuple[str, str]] | None) -> bool:
    """HTTP Basic credentials of one of `users` (always true without a login)."""
    if users is None:
        return True
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    ok = False
    for u, p in users:  # compare with every entry, in constant time per entry
        ok |= hmac.compare_digest(user.encode(), u.encode()) & hmac.compare_digest(password.encode(), p.encode())
    return bool(sep) and ok


def api_error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_ask_threads: list[anyio.CapacityLimiter] = []  # created in the server's event loop, on first use
POOL: AskPool | None = None  # ask workers, forked when the server starts (below), not on import


def ask_threads() -> anyio.CapacityLimiter:
    """At most CONCURRENCY questions at once on threads of this process (when there are no ask workers)."""
    if not _ask_threads:
        _ask_threads.append(anyio.CapacityLimiter(CONCURRENCY))
    return _ask_threads[0]


server = FastAPI(title="article-qa", docs_url=None, redoc_url=None, openapi_url=None)


@server.post("/api/ask")
async def api_ask(request: Request) -> Response:
    """{"question": str, "k": int = 3} -> the JSON of `qa ask --json`; errors as {"error": message}."""
    if not authorized(request.headers.get("authorization"), AUTH):
        return api_error(401, "This app asks for a login: send the HTTP Basic credentials of a QA_AUTH user "
                              "(curl -u user:password, or `qa eval --url URL --user NAME` with QA_PASSWORD set).",
                         {"WWW-Authenticate": 'Basic realm="article-qa"'})
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_API_BODY:
            return api_error(413, f"The request body is over {MAX_API_BODY} bytes; send one question of at most "
                                  f"{ENGINE.settings.max_question_chars} characters.")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return api_error(400, 'The body is not a JSON object; send {"question": "...", "k": 3}.')
    unknown = sorted(set(payload) - {"question", "k"})
    if unknown:
        return api_error(400, f"Unknown field(s) {unknown}; send {{\"question\": \"...\", \"k\": 3}}.")
    try:
        k = check_k(payload.get("k"))
    except QuestionError as exc:
        return api_error(400, str(exc))
    question = payload.get("question")
    result = await POOL.ask(question, k) if POOL is not None else None
    if result is None:  # no worker (yet, or any more): answer here
        result = await anyio.to_thread.run_sync(answer_json, ENGINE, question, k, limiter=ask_threads())
    status, out = result
    return Response(out, status_code=status, media_type="application/json")


# --- layout ----------------------------------------------------------------------------------------------

with gr.Blocks(title="article-qa", analytics_enabled=False) as demo:
    gr.Markdown(
        "# article-qa\n"
        "Ask about the article. Answers are quoted from it, with the cited passages; when the article does "
        "not say, the chat says so and shows the closest passages instead."
    )
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", elem_id="chat", height=520, latex_delimiters=[], buttons=["copy"])
            question = gr.Textbox(elem_id="question", show_label=False, lines=1, max_lines=4, autofocus=True,
                                  placeholder="Ask a question about the article and press Enter", submit_btn=True)
            k = gr.Slider(MIN_K, MAX_K, value=DEFAULT_K, step=1, label="Passages to show", elem_id="k")
            examples = gr.Examples(EXAMPLES, inputs=[question], label="Examples", cache_examples=False)
        with gr.Column(scale=2):
            gr.Markdown("**Article in view**")
            first_header, first_body = article_view(None)
            header = gr.Markdown(first_header, elem_id="article-header", latex_delimiters=[])
            body = gr.Markdown(first_body, elem_id="article-text", latex_delimiters=[], max_height=600)
    chat_io = dict(fn=respond, inputs=[question, chatbot, k], outputs=[question, chatbot, header, body],
                   api_visibility="private", show_progress="minimal")
    question.submit(**chat_io)
    examples.load_input_event.then(**chat_io)
    gr.api(ask, api_name="ask")

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)
# Gradio serves everything but /api/ask, on the same server (one process, one port, as a Space wants).
server = gr.mount_gradio_app(
    server, demo, path="",
    auth=AUTH,
    ssr_mode=False,  # with run_history=False: CVE-2026-134825 (forged Host + SSR + run-history routes)
    run_history=False,
    show_error=False,  # no tracebacks to users; gr.Error messages still reach them
    enable_monitoring=False,
    max_file_size=MAX_FILE_SIZE,
    footer_links=["api"],
)


def host_and_port() -> tuple[str, int]:
    """GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, as Gradio reads them (a Space sets 0.0.0.0:7860)."""
    host = os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    value = os.environ.get("GRADIO_SERVER_PORT") or "7860"
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"GRADIO_SERVER_PORT={value!r} is not a port number; set it to 1-65535 or unset it for 7860.")
    return host, int(value)


if __name__ == "__main__":
    import uvicorn

    try:
        HOST, PORT = host_and_port()
    except ConfigError as exc:
        sys.exit(f"article-qa: {exc}")
    if WORKERS:  # forked here, before uvicorn starts any thread: they share the loaded engine
        try:
            POOL = AskPool(ENGINE, WORKERS, timeout=ASK_TIMEOUT)
        except ConfigError as exc:
            print(f"article-qa: no ask workers, /api/ask is answered in this process: {exc}", file=sys.stderr, flush=True)
    print(f"article-qa: serving on http://{HOST}:{PORT}"
          + (f", /api/ask questions answered by {WORKERS} ask worker process(es) (pids {', '.join(map(str, POOL.pids))})"
             if POOL is not None else ""), file=sys.stderr, flush=True)
    try:
        uvicorn.run(server, host=HOST, port=PORT, log_level="warning")
    finally:
        if POOL is not None:
            POOL.close()
