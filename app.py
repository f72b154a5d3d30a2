"""article-qa web chat and Hugging Face Space entry point (`python app.py`).

A thin layout: the engine is loaded once, the page is laid out here, its callbacks come from qa/webchat.py and
the HTTP side (the JSON API, login, limits, ask workers) from qa/server.py. Host and port come from
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (a Space sets 0.0.0.0:7860). Optional login: QA_AUTH="user1:pass1,...".
"""

from __future__ import annotations

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

from qa import Engine, QAError, resolve_settings  # noqa: E402 - after the settings above
from qa.auth import parse_auth  # noqa: E402
from qa.server import Service, create_server, host_and_port, max_connections, request_timeout, serve  # noqa: E402
from qa.workers import ask_timeout, worker_count  # noqa: E402

EXAMPLES = [
    "Were any victims identified?",
    "Who is the chief administrator of COPA?",
    "When did the agency receive the information?",
    "How many migrants were living at police stations?",
]
# Requests run 4 at a time (Gradio's default is 1: users would wait in line), at most 32 wait, and the
# /gradio_api/run/* routes, which would bypass the queue and its limits, are closed (api_open=False).
CONCURRENCY = 4
QUEUE_SIZE = 32


def open_engine() -> Engine:
    print("article-qa: loading the engine (builds or refreshes index/ when needed) ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    engine = Engine.open(resolve_settings())
    engine.ask(EXAMPLES[0], 1)  # the first question loads what queries need; a user should not wait for it
    print(f"article-qa: ready, {len(engine.index.articles)} article(s), {len(engine.index.chunks)} passages "
          f"({time.perf_counter() - t:.1f} s)", file=sys.stderr, flush=True)
    return engine


try:  # settings first: a bad value fails fast, before gradio (which reads GRADIO_SERVER_PORT on import) and the model
    AUTH = parse_auth(os.environ.get("QA_AUTH"))
    WORKERS = worker_count(os.environ.get("QA_WORKERS"))
    ASK_TIMEOUT = ask_timeout(os.environ.get("QA_ASK_TIMEOUT"))
    CONNECTIONS = max_connections(os.environ.get("QA_MAX_CONNECTIONS"))
    TIMEOUT = request_timeout(os.environ.get("QA_REQUEST_TIMEOUT"))
    HOST, PORT = host_and_port()
    import gradio as gr

    from qa.validation import MAX_K
    from qa.webchat import DEFAULT_K, ChatHandlers

    ENGINE = open_engine()
except QAError as exc:
    if __name__ != "__main__":
        raise
    sys.exit(f"article-qa: {exc}")

SERVICE = Service(ENGINE, AUTH)
chat = ChatHandlers(ENGINE)

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
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages to show", elem_id="k")
            examples = gr.Examples(EXAMPLES, inputs=[question], label="Examples", cache_examples=False)
        with gr.Column(scale=2):
            gr.Markdown("**Article in view**")
            first_header, first_body = chat.article_view(None)
            header = gr.Markdown(first_header, elem_id="article-header", latex_delimiters=[])
            body = gr.Markdown(first_body, elem_id="article-text", latex_delimiters=[], max_height=600)
    chat_io = dict(fn=chat.respond, inputs=[question, chatbot, k], outputs=[question, chatbot, header, body],
                   api_visibility="private", show_progress="minimal")
    question.submit(**chat_io)
    examples.load_input_event.then(**chat_io)
    gr.api(chat.ask, api_name="ask")

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)
server = create_server(SERVICE, demo, bind=HOST)

if __name__ == "__main__":
    serve(server, SERVICE, HOST, PORT, workers=WORKERS, ask_timeout=ASK_TIMEOUT, connections=CONNECTIONS, timeout=TIMEOUT)
