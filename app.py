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

WARM_UP = "Were any victims identified?"  # the first question loads what queries need; a user should not wait for it
# Requests run 4 at a time (Gradio's default is 1: users would wait in line), at most 32 wait, and the
# /gradio_api/run/* routes, which would bypass the queue and its limits, are closed (api_open=False).
CONCURRENCY = 4
QUEUE_SIZE = 32


def open_engine() -> Engine:
    print("article-qa: loading the engine (builds or refreshes index/ when needed) ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    engine = Engine.open(resolve_settings())
    engine.ask(WARM_UP, 1)
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
    from qa.feedback import VERDICTS
    from qa.webchat import ALL_ARTICLES, DEFAULT_K, STARTERS, ChatHandlers

    ENGINE = open_engine()
except QAError as exc:
    if __name__ != "__main__":
        raise
    sys.exit(f"article-qa: {exc}")

SERVICE = Service(ENGINE, AUTH)
PERSISTENT = on_persistent_storage(ENGINE)
chat = ChatHandlers(ENGINE, persistent=PERSISTENT, log=SERVICE.log)
SYNC_SECONDS = 20  # an open page checks this often whether articles were added or removed elsewhere
# BrowserState encrypts what it keeps with a key the page itself holds: a fixed one, so a conversation outlives a
# restart of the app (a random one would make every stored conversation unreadable after each restart)
KEPT = dict(secret="article-qa-browser-state")
PLACEHOLDER = ('Ask a question about the article <span class="qa-where-wide">on the right</span>'
               '<span class="qa-where-narrow">below</span>; the answer is quoted from it, with a citation you can click.')

with gr.Blocks(title="article-qa", analytics_enabled=False) as demo:
    gr.Markdown("# article-qa\nAsk about the article. Answers are quoted from it with a citation you can click; "
                "when the article does not say, the chat says so and shows the closest passages instead.")
    conversation = gr.BrowserState(None, storage_key="article-qa-conversation", **KEPT)
    votes = gr.BrowserState({}, storage_key="article-qa-feedback", **KEPT)
    chosen = gr.BrowserState(ALL_ARTICLES, storage_key="article-qa-article", **KEPT)
    listed = gr.State(None)  # the index generation the picker's choices were made from
    current = gr.State(None)  # the conversation the page is in (set by "New conversation"), kept on the server
    with gr.Row(equal_height=False, elem_id="qa-columns"):
        with gr.Column(scale=3, min_width=300, elem_id="qa-chat-column"):
            gr.Markdown("## Ask", elem_classes=["qa-heading"])
            chatbot = gr.Chatbot(label="Conversation", show_label=False, elem_id="chat", height=560, latex_delimiters=[],
                                 buttons=[], placeholder=PLACEHOLDER)
            notice = gr.HTML("", elem_id="qa-notice")
            question = gr.Textbox(label="Your question", elem_id="question", show_label=False, lines=1, max_lines=4,
                                  autofocus=True, placeholder="Ask a question about the article and press Enter",
                                  submit_btn="Ask")
            gr.HTML('<div id="qa-queue" aria-live="polite"></div>', elem_id="qa-queue-box")
            with gr.Column(visible=False, elem_id="feedback-form") as form:
                form_heading = gr.HTML("")
                verdict = gr.Radio([(label, key) for key, label in VERDICTS.items() if key != "right"],
                                   label="What is wrong?", elem_id="verdict")
                note = gr.Textbox(label="Note (optional): the right answer, or the article's own words for it", lines=2,
                                  max_lines=6, elem_id="note")
                with gr.Row():
                    send = gr.Button("Send the report", elem_id="send-feedback", size="sm", variant="primary")
                    cancel = gr.Button("Cancel", elem_id="cancel-feedback", size="sm")
                feedback_turn = gr.Textbox(visible=False)
            with gr.Row(elem_id="qa-conversation-tools"):
                new_conversation = gr.Button("New conversation", elem_id="clear", size="sm", variant="secondary")
                export_md = gr.Button("Export as Markdown", elem_id="export-md", size="sm", variant="secondary")
                export_json = gr.Button("Export as JSON", elem_id="export-json", size="sm", variant="secondary")
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages to show", elem_id="k")
            examples = gr.Dataset(components=[question], samples=[[q] for q in STARTERS], label="Examples",
                                  elem_id="examples", samples_per_page=8)
            with gr.Row():
                picker = gr.Dropdown([("All articles", ALL_ARTICLES)], value=ALL_ARTICLES, label="Articles to ask about",
                                     elem_id="picker", interactive=True)
                remove = gr.Button("Remove the chosen article", elem_id="remove", size="sm", variant="stop")
            with gr.Accordion("Add an article", open=False, elem_id="add-article") as add_box:
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
                status = gr.HTML("", elem_id="add-status")
                add = gr.Button("Add the article", elem_id="add", variant="primary")
        with gr.Column(scale=2, min_width=300, elem_id="qa-panel-column"):
            gr.Markdown("## Article in view", elem_classes=["qa-heading"])
            panel = gr.Markdown('<p class="qa-meta">Loading the article…</p>', elem_id="article-panel", latex_delimiters=[])
    # the page's script drives these: a question starts from its queue, a button in a reply becomes an action
    ticket, action, action_result, export_data, started = (gr.Textbox(visible=False) for _ in range(5))
    start = gr.Button("start", elem_id="qa-start", elem_classes=["qa-offscreen"])
    act = gr.Button("act", elem_id="qa-act", elem_classes=["qa-offscreen"])
    timer = gr.Timer(SYNC_SECONDS)

    private = dict(api_visibility="private")
    # light callbacks skip the queue, where questions wait: a page loads, and a citation opens, at once
    demo.load(chat.restore, [conversation, votes, chosen], [chatbot, conversation, picker, panel, examples, notice, listed],
              queue=False, **private).then(None, js="() => window.qaAfterLoad && window.qaAfterLoad()")
    asked = start.click(None, [chatbot], [chatbot, ticket], js="(c) => window.qaStart(c)", **private).then(
        chat.answer, [ticket, conversation, votes, k, picker, listed, current],
        [chatbot, conversation, panel, picker, notice, listed],
        show_progress="hidden", **private)
    asked.then(None, js="() => window.qaAfterAnswer()")
    for trigger in (new_conversation.click, chatbot.clear):  # the button, and the chat's own clear icon
        trigger(chat.clear, [picker, ticket, question, started], [chatbot, conversation, question, panel, notice, votes, current],
                js="(p, t, q, s) => [p, window.qaTakeBack(), q, window.qaConversation(true)]", cancels=[asked], queue=False,
                **private)
    examples.click(None, [examples, question], [question], js="(s, q) => window.qaExample(s, q)", **private)
    picker.input(chat.pick, [picker], [panel, chosen, examples], queue=False, **private)
    timer.tick(chat.sync, [listed, picker], [picker, panel, notice, listed, chosen], show_progress="hidden", queue=False,
               **private)
    act.click(chat.act, [action, conversation, votes],
              [panel, votes, notice, form, form_heading, verdict, note, feedback_turn, action_result],
              js="(a, c, v) => [window.qaTakeAction(), c, v]", trigger_mode="always_last", show_progress="hidden",
              queue=False, **private).then(None, [action_result], None, js="(r) => window.qaAfterAction(r)")
    send.click(chat.send_feedback, [feedback_turn, verdict, note, conversation, votes], [votes, notice, form],
               **private).then(None, [feedback_turn, votes], None, js="(t, v) => window.qaMarkVoted(t, v)")
    cancel.click(lambda: gr.update(visible=False), None, [form], queue=False, **private)
    for button, fmt in ((export_md, "md"), (export_json, "json")):
        button.click(chat.export, [export_data, conversation, votes], [export_data], js=f"(x, c, v) => ['{fmt}', c, v]",
                     **private).then(None, [export_data], None, js="(d) => window.qaDownload(d)")
    add.click(chat.add_article, [paste, upload, title, date, url],
              [status, picker, panel, paste, upload, notice, add_box, chosen, listed, examples], show_progress="full",
              **private).then(None, js="() => window.qaAfterAdd && window.qaAfterAdd()")
    remove.click(chat.remove_article, [picker], [status, picker, panel, notice, chosen, listed, examples], **private,
                 js="(scope) => { if (!scope || scope === '*' || confirm('Remove this article and its file?')) return [scope]; "
                    "return [null]; }")
    gr.api(chat.ask, api_name="ask")

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)
ASSETS = Path(__file__).parent / "qa" / "assets"
server = create_server(SERVICE, demo, bind=HOST, css=(ASSETS / "chat.css").read_text(encoding="utf-8"),
                       head=f"<script>{(ASSETS / 'chat.js').read_text(encoding='utf-8')}</script>")

if __name__ == "__main__":
    serve(server, SERVICE, HOST, PORT, workers=WORKERS, ask_timeout=ASK_TIMEOUT, connections=CONNECTIONS, timeout=TIMEOUT)
