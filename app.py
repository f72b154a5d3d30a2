"""article-qa web chat and Hugging Face Space entry point (`python app.py`).

A thin layout: the engine is loaded once, the page is laid out here, its callbacks come from qa/webchat.py and
the HTTP side (the JSON API, login, limits, ask workers) from qa/server.py. Host and port come from
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (a Space sets 0.0.0.0:7860). Optional login: QA_AUTH="user1:pass1,...".
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

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

    from qa.collection import on_persistent_storage
    from qa.validation import MAX_K
    from qa.webchat import ALL_ARTICLES, DEFAULT_K, ChatHandlers

    ENGINE = open_engine()
except QAError as exc:
    if __name__ != "__main__":
        raise
    sys.exit(f"article-qa: {exc}")

SERVICE = Service(ENGINE, AUTH)
PERSISTENT = on_persistent_storage(ENGINE)
chat = ChatHandlers(ENGINE, persistent=PERSISTENT)

with gr.Blocks(title="article-qa", analytics_enabled=False) as demo:
    gr.Markdown("# article-qa\nAsk about the article. Answers are quoted from it with a citation you can click; "
                "when the article does not say, the chat says so and shows the closest passages instead.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            gr.Markdown("## Ask", elem_classes=["qa-heading"])
            chatbot = gr.Chatbot(label="Conversation", elem_id="chat", height=560, latex_delimiters=[], buttons=[],
                                 placeholder="Ask a question about the article below, e.g. “Were any victims identified?”")
            question = gr.Textbox(label="Your question", elem_id="question", show_label=False, lines=1, max_lines=4,
                                  autofocus=True, placeholder="Ask a question about the article and press Enter",
                                  submit_btn="Ask")
            with gr.Row():
                new_conversation = gr.Button("New conversation", elem_id="clear", size="sm", variant="secondary")
                k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages to show", elem_id="k")
            examples = gr.Examples(EXAMPLES, inputs=[question], label="Examples", cache_examples=False)
            with gr.Row():
                picker = gr.Dropdown(chat.picker_choices(), value=ALL_ARTICLES, label="Articles to ask about",
                                     elem_id="picker", interactive=True)
                remove = gr.Button("Remove the chosen article", elem_id="remove", size="sm", variant="stop")
            with gr.Accordion("Add an article", open=False, elem_id="add-article"):
                gr.Markdown("Paste the story (plain text, Markdown or a page's HTML) or upload a .txt, .md or .html file. "
                            "It is indexed in a few seconds and questions then go to it."
                            + ("" if PERSISTENT else " **On this Space, added articles are lost when it restarts** "
                               "(no persistent storage attached)."))
                paste = gr.Textbox(label="Article text or HTML", lines=6, max_lines=20, elem_id="paste")
                upload = gr.File(label="…or upload a file", file_types=[".txt", ".md", ".html", ".htm"], elem_id="upload",
                                 type="filepath")
                with gr.Row():
                    title = gr.Textbox(label="Headline (optional)", elem_id="add-title")
                    date = gr.Textbox(label="Date (optional, YYYY-MM-DD)", elem_id="add-date")
                    url = gr.Textbox(label="URL (optional)", elem_id="add-url")
                add = gr.Button("Add the article", elem_id="add", variant="primary")
                status = gr.HTML("", elem_id="add-status")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("## Article in view", elem_classes=["qa-heading"])
            gr.HTML('<p id="qa-panel-note" class="qa-meta" aria-live="polite"></p>')
            panel = gr.Markdown(chat.panel_for_scope(None), elem_id="article-panel", latex_delimiters=[])
    state = gr.State({})

    ask_steps = dict(api_visibility="private")
    after_answer = dict(fn=None, js="() => { if (window.qaShowAnswer) window.qaShowAnswer(); }")
    for trigger in (question.submit, examples.load_input_event.then):
        trigger(chat.submit, [question, chatbot, state], [question, chatbot, state], queue=False, **ask_steps).then(
            chat.answer, [chatbot, state, k, picker], [chatbot, state, panel], show_progress="hidden", **ask_steps
        ).then(**after_answer)
    for trigger in (new_conversation.click, chatbot.clear):  # the button, and the chat's own clear icon
        trigger(chat.clear, [picker], [chatbot, state, question, panel], queue=False, **ask_steps)
    picker.change(chat.pick, [picker], [panel], **ask_steps)
    add.click(chat.add_article, [paste, upload, title, date, url], [status, picker, panel, paste],
              show_progress="full", **ask_steps)
    remove.click(chat.remove_article, [picker], [status, picker, panel], **ask_steps,
                 js="(scope) => { if (!scope || scope === '*' || confirm('Remove this article and its file?')) return [scope]; "
                    "return [null]; }")
    gr.api(chat.ask, api_name="ask")

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)
ASSETS = Path(__file__).parent / "qa" / "assets"
server = create_server(SERVICE, demo, bind=HOST, css=(ASSETS / "chat.css").read_text(encoding="utf-8"),
                       head=f"<script>{(ASSETS / 'chat.js').read_text(encoding='utf-8')}</script>")

if __name__ == "__main__":
    serve(server, SERVICE, HOST, PORT, workers=WORKERS, ask_timeout=ASK_TIMEOUT, connections=CONNECTIONS, timeout=TIMEOUT)
