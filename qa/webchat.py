"""The web chat's callbacks: library calls in, rendered Markdown out. `app.py` lays out the page and wires
these to its components; no retrieval logic here, and every input goes through qa/validation.py."""

from __future__ import annotations

from typing import Any

from .articles import ArticleFiles
from .errors import QAError
from .render import render_answer, render_article, render_article_header, render_error, render_question
from .validation import MAX_K, check_k, parse_ask_request
from .workers import INTERNAL_ERROR, log_internal_error

DEFAULT_K = 3


class ChatHandlers:
    """Callbacks bound to one engine."""

    def __init__(self, engine, gr_module=None) -> None:
        import gradio as gr

        self.engine = engine
        self.gr = gr_module or gr
        self.files = ArticleFiles()

    def _request(self, question: object, k: object, history: object = None, article: object = None):
        payload: dict[str, Any] = {"question": question, "k": k if k is not None else DEFAULT_K}
        if history is not None:
            payload["history"] = history
        if article is not None:
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

    def article_view(self, result: dict | None) -> tuple[str, str]:
        """Header and body of the article in view: the one the answer cites (else the closest passage's), with
        this answer's passages marked; the first article, unmarked, before any answer."""
        passages = (result or {}).get("passages") or []
        answer = (result or {}).get("answer")
        article_id = None
        if passages:
            cited = next((p for p in passages if answer and p["rank"] == answer["citation"]), passages[0])
            article_id = cited["citation"]["article"]
        articles = self.engine.index.articles
        info = articles.get(article_id) if article_id else None
        if info is None and articles:
            info = articles[min(articles)]
        if info is None:
            return render_article_header("No article", None), ""
        header = render_article_header(info.title, info.date, info.id)
        raw = self.files.text(info.path, info.sha256)
        if raw is None:
            return header, render_error(f"The file of article {info.id} is missing or has changed since it was indexed.")
        own = [p for p in passages if p["citation"]["article"] == info.id]
        return header, render_article(raw, own, answer["citation"] if answer else None)

    def respond(self, message: object, history: list | None, k: object):
        """Chat submit: the question (escaped) and the rendered reply join the chat; the article view follows
        the answer. A refused question gets the reason as the reply and leaves the article view as it was."""
        gr = self.gr
        history = list(history or [])
        if isinstance(message, str) and message.strip():
            history.append({"role": "user", "content": render_question(message)})
        try:
            request = self._request(message, check_k(k) or DEFAULT_K)
            result = self.engine.ask(request.question, request.k, history=request.history,
                                     articles=request.articles).to_json()
            reply, (header, body) = render_answer(result), self.article_view(result)
        except QAError as exc:
            history.append({"role": "assistant", "content": render_error(str(exc))})
            return "", history, gr.skip(), gr.skip()
        except Exception:
            log_internal_error(message)
            history.append({"role": "assistant", "content": render_error(INTERNAL_ERROR)})
            return "", history, gr.skip(), gr.skip()
        history.append({"role": "assistant", "content": reply})
        return "", history, header, body

