"""The web chat's callbacks: library calls in, rendered HTML out. `app.py` lays out the page and wires these to
its components; no retrieval logic here, and every question goes through qa/validation.py.

The conversation lives in the page: the chat shows rendered replies, and a per-session state keeps the same
conversation as plain chat messages (question, then the answer sentence or the refusal), which is what the
engine resolves follow-up questions against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .articles import parse_article
from .conversation import reply_text
from .errors import QAError
from .render import PENDING, render_article_panel, render_error, render_panel_message, render_question, render_reply
from .validation import MAX_K, parse_ask_request
from .workers import INTERNAL_ERROR, log_internal_error

DEFAULT_K = 3
ALL_ARTICLES = "*"  # the picker's value for "every article"
HISTORY_MESSAGES = 12  # plain messages sent along with a question: the last six exchanges are plenty


def _text(content: object) -> str:
    """A chat message's content as text: Gradio hands messages back as a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    return ""


class ChatHandlers:
    """Callbacks bound to one engine."""

    def __init__(self, engine, persistent: bool = True, gr_module=None) -> None:
        import gradio as gr

        self.engine = engine
        self.gr = gr_module or gr
        self.persistent = persistent

    # --- the JSON endpoint (gradio_client, raw HTTP) ---------------------------------------------------------

    def _request(self, question: object, k: object, history: object = None, article: object = None):
        payload: dict[str, Any] = {"question": question, "k": k if k is not None else DEFAULT_K}
        if history is not None:
            payload["history"] = history
        if article is not None and article != ALL_ARTICLES:
            payload["article"] = article
        return parse_ask_request(payload, max_question_chars=self.engine.settings.max_question_chars, max_k=MAX_K)

    def ask(self, question: str, k: int = DEFAULT_K, history: list | None = None, article: str | list | None = None) -> dict:
        """Answer a question about the articles: the answer sentence with its citation and the k best passages
        (exact character spans into the article files), or an abstention with its reason. The same JSON as
        `qa ask --json`. `history`: earlier chat messages, oldest first ([{"role": "user" | "assistant",
        "content": str}]), for follow-up questions; `article`: an article id (or a list) to answer from. With
        gradio_client, pass `download_files=False` to Client: it takes any dict with a "path" key (the
        citations) for a file to download."""
        gr = self.gr
        try:
            request = self._request(question, k, history, article)
            return self.engine.ask(request.question, request.k, history=request.history,
                                   articles=request.articles).to_json()
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:  # a bug, not the caller's fault: the message, never the traceback
            log_internal_error(question)
            raise gr.Error(INTERNAL_ERROR, print_exception=False) from None

    # --- the chat -------------------------------------------------------------------------------------------------

    def submit(self, message: object, chat: list | None, state: dict | None):
        """First half of a chat submit, answered at once: the question joins the chat with a pending reply."""
        chat = list(chat or [])
        state = dict(state or {})
        text = message if isinstance(message, str) else ""
        chat.append({"role": "user", "content": render_question(text) if text.strip() else "(empty question)"})
        chat.append({"role": "assistant", "content": PENDING})
        state["pending"] = message
        return "", chat, state

    def answer(self, chat: list | None, state: dict | None, k: object, scope: object):
        """Second half: the reply replaces the pending one; the article panel follows the answer."""
        gr = self.gr
        chat = list(chat or [])
        state = dict(state or {})
        question = state.pop("pending", None)
        history = list(state.get("history") or [])
        if chat and "qa-pending" in _text(chat[-1].get("content")):
            chat.pop()
        if question is None or not isinstance(question, str) or not question.strip():
            if chat and chat[-1].get("role") == "user" and _text(chat[-1].get("content")) == "(empty question)":
                chat.pop()
            chat.append({"role": "assistant", "content": render_error(
                "The question is empty; type a question about the article, e.g. \"Were any victims identified?\".")})
            return chat, state, gr.skip()
        try:
            request = self._request(question, k, history[-HISTORY_MESSAGES:], scope if scope else None)
            result = self.engine.ask(request.question, request.k, history=request.history,
                                     articles=request.articles).to_json()
            reply, panel = render_reply(result), self.panel_for_answer(result)
        except QAError as exc:
            chat.append({"role": "assistant", "content": render_error(str(exc))})
            return chat, state, gr.skip()
        except Exception:
            log_internal_error(question)
            chat.append({"role": "assistant", "content": render_error(INTERNAL_ERROR)})
            return chat, state, gr.skip()
        chat.append({"role": "assistant", "content": reply})
        state["history"] = history + [{"role": "user", "content": request.question},
                                      {"role": "assistant", "content": reply_text(result)}]
        return chat, state, panel

    def clear(self, scope: object = None):
        """A new conversation: the chat, its state and the article panel start over."""
        return [], {}, "", self.panel_for_scope(scope)

    # --- the article panel -----------------------------------------------------------------------------------

    def _article(self, article_id: str | None):
        articles = self.engine.index.articles
        info = articles.get(article_id) if article_id else None
        if info is None and articles:
            info = articles[min(articles)]
        if info is None:
            return None, "No article in the index yet: add one."
        raw = self.engine.files.text(info.path, info.sha256)
        if raw is None:
            return None, f"The file of article {info.title!r} is missing or has changed since it was indexed."
        article = parse_article(raw, article_id=info.id, path=info.path, sha256=info.sha256)
        return article, None

    def panel_for_answer(self, result: dict | None) -> str:
        """The article the answer cites (else its closest passage's), with this answer's passages marked."""
        passages = (result or {}).get("passages") or []
        answer = (result or {}).get("answer")
        article_id = None
        if passages:
            cited = next((p for p in passages if answer and p["rank"] == answer["citation"]), passages[0])
            article_id = cited["citation"]["article"]
        article, problem = self._article(article_id)
        if article is None:
            return render_panel_message(problem or "")
        return render_article_panel(article, passages, answer)

    def panel_for_scope(self, scope: object) -> str:
        """The article chosen in the picker (the first article for "All articles"), unmarked."""
        article, problem = self._article(scope if isinstance(scope, str) and scope != ALL_ARTICLES else None)
        return render_panel_message(problem or "") if article is None else render_article_panel(article)

    # --- choosing, adding and removing articles ---------------------------------------------------------------

    def picker_choices(self) -> list[tuple[str, str]]:
        entries = self.engine.list_articles()
        label = lambda a: f"{a['title']}" + (f" ({a['date']})" if a["date"] else "")  # noqa: E731
        return [("All articles", ALL_ARTICLES)] + [(label(a), a["article"]) for a in sorted(entries, key=lambda a: a["title"].lower())]

    def pick(self, scope: object):
        return self.panel_for_scope(scope)

    def add_article(self, text: object, upload: object, title: object, date: object, url: object, progress=None):
        """Index an article pasted or uploaded; the picker then points at it and the panel shows it."""
        gr = self.gr
        if progress is not None:
            progress(0.1, desc="Reading the article")
        data: object = text
        fmt = "auto"
        if upload:
            path = Path(upload if isinstance(upload, str) else getattr(upload, "name", ""))
            suffix = path.suffix.lower()
            if suffix not in (".txt", ".md", ".html", ".htm"):
                return (self._status(f"Upload a .txt, .md or .html file, not {suffix or 'a file without a suffix'}."),
                        gr.skip(), gr.skip(), gr.skip())
            data = path.read_bytes()
            fmt = "html" if suffix in (".html", ".htm") else "text"
        elif not isinstance(text, str) or not text.strip():
            return self._status("Paste the story's text, or choose a file to upload."), gr.skip(), gr.skip(), gr.skip()
        try:
            if progress is not None:
                progress(0.4, desc="Indexing the article")
            entry = self.engine.add_article(data, title=title or None, date=date or None, url=url or None, fmt=fmt)
        except QAError as exc:
            return self._status(str(exc)), gr.skip(), gr.skip(), gr.skip()
        except Exception:
            log_internal_error("adding an article")
            return self._status(INTERNAL_ERROR), gr.skip(), gr.skip(), gr.skip()
        note = "" if self.persistent else " It will be lost when this Space restarts (no persistent storage)."
        status = self._status(f"Added “{entry['title']}” ({entry['passages']} passages). Questions now go to it; "
                              f"choose “All articles” to ask about every article.{note}", ok=True)
        picker = gr.update(choices=self.picker_choices(), value=entry["article"])
        return status, picker, self.panel_for_scope(entry["article"]), ""

    def remove_article(self, scope: object):
        gr = self.gr
        if not isinstance(scope, str) or scope == ALL_ARTICLES:
            return self._status("Choose an article in the list first, then remove it."), gr.skip(), gr.skip()
        try:
            entry = self.engine.remove_article(scope)
        except QAError as exc:
            return self._status(str(exc)), gr.skip(), gr.skip()
        picker = gr.update(choices=self.picker_choices(), value=ALL_ARTICLES)
        return self._status(f"Removed “{entry['title']}”.", ok=True), picker, self.panel_for_scope(None)

    @staticmethod
    def _status(message: str, ok: bool = False) -> str:
        from .render import esc

        role = "status" if ok else "alert"
        return f'<p class="qa-status {"qa-ok" if ok else "qa-problem"}" role="{role}">{esc(message)}</p>'

