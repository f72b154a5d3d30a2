"""The web chat's callbacks: library calls in, rendered HTML out. `app.py` lays out the page and wires these to
its components; no retrieval logic here, and every question goes through qa/validation.py.

What the page keeps, it keeps in the browser (Gradio's BrowserState, localStorage): the conversation (a
qa.chatlog.Transcript), the feedback given on its replies and the article chosen, so a reload or a restart of the
app loses nothing. The article list, the picker and the panel are filled on every page load and kept current
while the page is open (after each question, add and remove, and on a timer), so articles added or removed by a
colleague, the API or the `qa` command show up without a reload. The page's script (qa/assets/chat.js) shows a
question at once, queues one asked while another is pending, and sends the chat's own buttons (citations, 👍 / 👎)
here as small JSON actions.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradio import Request

from .articles import parse_article
from .chatlog import ChatTurn, Transcript, export_json, export_markdown, new_turn_id, scope_of, titles_of
from .errors import DuplicateArticleError, QAError
from .feedback import VERDICTS, FeedbackError, append_line, check_note, check_verdict, gold_line, read_lines
from .render import (
    esc,
    render_article_panel,
    render_chat,
    render_panel_message,
)
from .validation import MAX_K, check_article_id, parse_ask_request
from .workers import INTERNAL_ERROR, log_internal_error

DEFAULT_K = 3
ALL_ARTICLES = "*"  # the picker's value for "every article"
MAX_EXAMPLES = 4
STARTERS = ["Who is …?", "When did …?", "How many …?", "What did … say?"]  # phrases to complete, for any story
MAX_ACTION_CHARS = 2_000


def _stderr(message: str) -> None:
    print(f"article-qa: {message}", file=sys.stderr, flush=True)


def _ticket(value: object) -> tuple[object, str | None]:
    """(the question, the conversation it was asked in) from a ticket the page made; (None, None) for a ticket that
    was withdrawn ("") or is not one."""
    try:
        data = json.loads(value) if isinstance(value, str) and value else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str) or len(data["c"]) > 64:
        return None, None
    return data.get("q"), data["c"]


def user_of(request: Request | None) -> str | None:
    """The logged-in user's name (None when the app asks for no login)."""
    name = getattr(request, "username", None) if request is not None else None
    return name if isinstance(name, str) and name else None


def by_whom(request: Request | None) -> str:
    user = user_of(request)
    return f"by user {user!r}" if user else "(no login)"


class ChatHandlers:
    """Callbacks bound to one engine."""

    def __init__(self, engine, persistent: bool = True, gr_module=None, log: Callable[[str], None] = _stderr,
                 feedback_path: str | Path | None = None) -> None:
        import gradio as gr

        self.engine = engine
        self.gr = gr_module or gr
        self.persistent = persistent
        self.log = log
        self.feedback_path = Path(feedback_path) if feedback_path else engine.settings.feedback_path
        self._examples: tuple[tuple[int, int], dict[str, list[str]]] | None = None
        self._examples_lock = threading.Lock()

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

    # --- the page: load, keep current ---------------------------------------------------------------------

    def generation(self) -> str:
        """What changes when an article is added or removed, by any door (a stat of the index, no more)."""
        index = self.engine.refresh().index
        return str(index.manifest.get("generation") or len(index.articles))

    def _scope(self, value: object) -> str:
        """The picker's value if it names an article of the index now, else every article."""
        return value if isinstance(value, str) and value in self.engine.index.articles else ALL_ARTICLES

    def restore(self, conv: object, votes: object, chosen: object, request: Request = None):
        """Page load: the conversation, the chosen article and the article list from the browser and the index as
        they are now. -> chatbot, conv, picker, panel, examples, notice, listed."""
        listed = self.generation()
        transcript = Transcript.load(conv, user_of(request))
        scope = self._scope(chosen)
        notes = []
        if transcript.dropped:
            notes.append("The conversation kept in this browser could not be read; a new one starts.")
        if isinstance(chosen, str) and chosen not in (ALL_ARTICLES, scope):
            notes.append("The article you had chosen is no longer in the index (removed since); questions now go to "
                         "every article.")
        panel = self.panel_for_turn(transcript, transcript.turns[-1].id) if transcript.turns else self.panel_for_scope(scope)
        return (self._chat(transcript.with_votes(votes)), transcript.dump(), self._picker(scope), panel,
                self._example_samples(scope), self._notice(" ".join(notes)), listed)

    def sync(self, listed: object, picker: object):
        """On a timer while the page is open: when articles were added or removed since the page's list was made
        (by any door), the picker's choices anew, and the panel when its article was removed. -> picker, panel,
        notice, listed, chosen."""
        gr = self.gr
        now = self.generation()
        if listed == now:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        scope = self._scope(picker)
        if scope == picker:
            return self._picker(scope), gr.skip(), gr.skip(), now, gr.skip()
        return (self._picker(scope), self.panel_for_scope(scope),
                self._notice("The article you had chosen was removed from the index (by a colleague, the API or "
                             "another tab); questions now go to every article."), now, scope)

    # --- a question ------------------------------------------------------------------------------------------

    def answer(self, ticket: object, conv: object, votes: object, k: object, picker: object, listed: object,
               current: object = None, request: Request = None):
        """A question the page shows as pending already: answered with the conversation so far as history; the chat
        drawn again from the transcript. `ticket`: {"q": the question, "c": the page's conversation} as JSON;
        `current`: the conversation this session is in now (kept on the server). A question of a conversation
        restarted since it was sent changes nothing: its answer would bring the old conversation back.
        -> chatbot, conv, panel, picker, notice, listed."""
        gr = self.gr
        question, started_in = _ticket(ticket)
        if started_in is None or current is not None and started_in != current:
            return (gr.skip(),) * 6
        transcript = Transcript.load(conv, user_of(request))
        text = question if isinstance(question, str) else ""
        now = self.generation()
        scope = self._scope(picker)
        picker_update, listed_update = (gr.skip(), gr.skip()) if listed == now else (self._picker(scope), now)
        turn = ChatTurn(new_turn_id(), text, scope_of(scope))
        if isinstance(picker, str) and picker != ALL_ARTICLES and scope != picker:  # removed meanwhile, by any door
            turn = ChatTurn(turn.id, text, None, error="The article you had chosen was removed from the index (by a "
                            "colleague, the API or another tab); choose another, or ask about every article.")
            picker_update, listed_update = self._picker(ALL_ARTICLES), now
        else:
            try:
                request_ = self._request(text, k, transcript.history(), scope if scope != ALL_ARTICLES else None)
                result = self.engine.ask(request_.question, request_.k, history=request_.history,
                                         articles=request_.articles).to_json()
                turn = ChatTurn(turn.id, request_.question, turn.scope, result)
            except QAError as exc:
                turn = ChatTurn(turn.id, text, turn.scope, error=str(exc))
            except Exception:
                log_internal_error(text)
                turn = ChatTurn(turn.id, text, turn.scope, error=INTERNAL_ERROR)
        transcript = transcript.add(turn)
        panel = self.panel_for_turn(transcript, turn.id) if turn.answered else gr.skip()
        return (self._chat(transcript.with_votes(votes)), transcript.dump(), panel, picker_update,
                self._notice(""), listed_update)

    def clear(self, picker: object, back: object = "", box: object = "", conversation: object = None):
        """A new conversation: the chat and its transcript start over, the panel shows the chosen article. `back`:
        the questions that were pending or waiting (the page hands them back), put into the box before what it
        holds; `conversation`: the new conversation's id (a pending answer of the old one is then ignored).
        -> chatbot, conv, question, panel, notice, votes, current."""
        back = back.strip() if isinstance(back, str) else ""
        box = box if isinstance(box, str) else ""
        text = "\n".join(x for x in (back, box) if x.strip())
        note = "Your unanswered question is back in the box." if back else ""
        started = conversation if isinstance(conversation, str) and 0 < len(conversation) <= 64 else None
        return ([], Transcript(user=None).dump(), text, self.panel_for_scope(self._scope(picker)), self._notice(note), {},
                started)

    def _chat(self, transcript: Transcript) -> list[dict]:
        return render_chat(transcript, name_articles=len(self.engine.index.articles) > 1)

    # --- the article panel -----------------------------------------------------------------------------------

    def _article(self, article_id: str | None):
        articles = self.engine.index.articles
        info = articles.get(article_id) if article_id else None
        if info is None and article_id is None and articles:
            info = articles[min(articles)]
        if info is None:
            return None, "No article in the index yet: add one." if not articles else "That article is not in the index."
        raw = self.engine.article_text(info)
        if raw is None:
            return None, f"The file of article “{info.title}” is missing or has changed since it was indexed."
        article = parse_article(raw, article_id=info.id, path=info.path, sha256=info.sha256)
        return article, None

    def panel_for_answer(self, result: dict | None, turn: str | None = None) -> str:
        """The article the answer cites (else its closest passage's), with this answer's passages marked."""
        passages = (result or {}).get("passages") or []
        answer = (result or {}).get("answer")
        rank = answer["citation"] if answer and passages else (passages[0]["rank"] if passages else None)
        return self._panel_at(result or {}, rank, turn)

    def _panel_at(self, result: dict, rank: object, turn: str | None, n: int | None = None) -> str:
        passages = result.get("passages") or []
        passage = next((p for p in passages if p["rank"] == rank), passages[0] if passages else None)
        if passage is None:
            return self.panel_for_scope(None)
        article_id = passage["citation"]["article"]
        if article_id not in self.engine.index.articles:
            title = passage["citation"].get("title") or article_id
            return render_panel_message(f"“{title}” has been removed from the index since; "
                                        f"{f'reply {n}' if n else 'the reply'} quoted this passage from it:",
                                        passage=passage, turn=turn)
        article, problem = self._article(article_id)
        if article is None:
            return render_panel_message(problem or "", passage=passage, turn=turn)
        note = f"The passages of reply {n}." if n else ""
        return render_article_panel(article, passages, result.get("answer"), turn=turn, note=note)

    def panel_for_turn(self, transcript: Transcript, turn_id: str, rank: object = None) -> str:
        """The article of a reply's passage `rank` (its cited one by default), with that reply's passages marked;
        a removed article says so and shows the passage the reply quoted."""
        turns = transcript.turns
        n = next((i for i, t in enumerate(turns, 1) if t.id == turn_id), None)
        turn = turns[n - 1] if n else None
        if turn is None or turn.result is None:
            return self.panel_for_scope(None)
        if rank is None:
            return self.panel_for_answer(turn.result, turn.id)
        return self._panel_at(turn.result, rank, turn.id, n if n != len(turns) else None)

    def panel_for_scope(self, scope: object) -> str:
        """The article chosen in the picker (the first article for "All articles"), unmarked."""
        article, problem = self._article(scope if isinstance(scope, str) and scope != ALL_ARTICLES else None)
        return render_panel_message(problem or "") if article is None else render_article_panel(article)

    # --- choosing, adding and removing articles ---------------------------------------------------------------

    def picker_choices(self) -> list[tuple[str, str]]:
        entries = self.engine.list_articles()
        label = lambda a: f"{a['title']}" + (f" ({a['date']})" if a["date"] else "")  # noqa: E731
        return [("All articles", ALL_ARTICLES)] + [(label(a), a["article"]) for a in sorted(entries, key=lambda a: a["title"].lower())]

    def _picker(self, value: str):
        return self.gr.update(choices=self.picker_choices(), value=value)

    def pick(self, scope: object):
        """-> panel, chosen, examples."""
        scope = self._scope(scope)
        return self.panel_for_scope(scope), scope, self._example_samples(scope)

    def add_article(self, text: object, upload: object, title: object, date: object, url: object,
                    request: Request = None, progress=None):
        """Index an article pasted or uploaded; the picker then points at it and the panel shows it.
        -> status, picker, panel, paste, upload, notice, accordion, chosen, listed, examples."""
        gr = self.gr
        skip = gr.skip()

        def refused(message: str):
            return (self._status(message), skip, skip, skip, skip, skip, skip, skip, skip, skip)

        data: object = text
        fmt = "auto"
        pasted = isinstance(text, str) and text.strip()
        if upload:
            if pasted:
                return refused("There is both pasted text and a file: clear one of them, then add the other.")
            path = Path(upload if isinstance(upload, str) else getattr(upload, "name", ""))
            suffix = path.suffix.lower()
            if suffix not in (".txt", ".md", ".html", ".htm"):
                return refused(f"Upload a .txt, .md or .html file, not {suffix or 'a file without a suffix'}.")
            try:
                data = path.read_bytes()
            except OSError:
                return refused("The uploaded file cannot be read any more; choose it again.")
            fmt = "html" if suffix in (".html", ".htm") else "text"
        elif not pasted:
            return refused("Paste the story's text, or choose a file to upload.")
        if progress is not None:
            progress(0.4, desc="Indexing the article")
        who = by_whom(request)
        try:
            entry = self.engine.add_article(data, title=title or None, date=date or None, url=url or None, fmt=fmt,
                                            log=lambda m: self.log(f"{m} {who}"))
        except DuplicateArticleError as exc:
            existing = self._scope(exc.article_id)
            return (self._status(str(exc)), self._picker(existing), self.panel_for_scope(existing), skip, skip,
                    self._notice(f"{exc} It is now the article chosen.", ok=True), skip, existing, self.generation(),
                    self._example_samples(existing))
        except QAError as exc:
            return refused(str(exc))
        except Exception:
            log_internal_error("adding an article")
            return refused(INTERNAL_ERROR)
        note = "" if self.persistent else " It will be lost when this Space restarts (no persistent storage)."
        notes = " ".join(entry.get("notes") or ())
        message = (f"Added “{entry['title']}” ({entry['passages']} passages). Questions now go to it; choose “All "
                   f"articles” to ask about every article.{note}" + (f" Note: {notes}" if notes else ""))
        scope = entry["article"]
        return (self._status(message, ok=True), self._picker(scope), self.panel_for_scope(scope), "", None,
                self._notice(message, ok=True), gr.update(open=False), scope, self.generation(),
                self._example_samples(scope))

    def remove_article(self, scope: object, request: Request = None):
        """-> status, picker, panel, notice, chosen, listed, examples."""
        gr = self.gr
        skip = gr.skip()
        if not isinstance(scope, str) or scope == ALL_ARTICLES:
            return self._status("Choose an article in the list first, then remove it."), skip, skip, skip, skip, skip, skip
        who = by_whom(request)
        try:
            entry = self.engine.remove_article(check_article_id(scope, slash=True), log=lambda m: self.log(f"{m} {who}"))
        except QAError as exc:
            return self._status(str(exc)), self._picker(self._scope(scope)), skip, skip, skip, self.generation(), skip
        message = f"Removed “{entry['title']}”; questions now go to every article."
        return (self._status(message, ok=True), self._picker(ALL_ARTICLES), self.panel_for_scope(None),
                self._notice(message, ok=True), ALL_ARTICLES, self.generation(), self._example_samples(ALL_ARTICLES))

    # --- the chat's own buttons: citations and feedback ------------------------------------------------------

    def act(self, action: object, conv: object, votes: object, request: Request = None):
        """An action from a button inside a reply, as JSON: {"kind": "cite", "turn", "rank"} (show that reply's
        passage in its article), {"kind": "up" | "down", "turn"} (👍: stored at once; 👎: the report form opens).
        -> panel, votes, notice, form, form_heading, verdict, note, feedback_turn, result."""
        gr = self.gr
        skip = (gr.skip(),) * 9
        try:
            payload = json.loads(action) if isinstance(action, str) and len(action) <= MAX_ACTION_CHARS else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("kind") not in ("cite", "up", "down"):
            return skip[:2] + (self._notice("That button did nothing: reload the page and try again."),) + skip[3:]
        transcript = Transcript.load(conv, user_of(request))
        turn = transcript.turn(payload.get("turn"))
        n = next((i for i, t in enumerate(transcript.turns, 1) if turn is not None and t.id == turn.id), 0)
        if turn is None or turn.result is None:
            return skip[:2] + (self._notice("That reply is no longer in this conversation."),) + skip[3:]
        if payload["kind"] == "cite":
            rank = payload.get("rank")
            rank = rank if isinstance(rank, int) and not isinstance(rank, bool) else None
            return (self.panel_for_turn(transcript, turn.id, rank),) + skip[1:8] + (json.dumps({"kind": "cite", "ok": True}),)
        if payload["kind"] == "down":
            heading = (f'<p class="qa-form-heading"><strong>Report a problem with reply {n}</strong> (to “'
                       f'{esc(turn.question[:120])}”). What is wrong? Your report and the conversation before it are '
                       "stored as a test case.</p>")
            return (gr.skip(), gr.skip(), self._notice(""), gr.update(visible=True), heading, gr.update(value=None),
                    "", turn.id, json.dumps({"kind": "down", "ok": True}))
        stored, votes_update, notice = self._store(transcript, turn, "right", "", votes, request)
        return (gr.skip(), votes_update, notice) + skip[3:8] + (json.dumps({"kind": "up", "ok": stored}),)

    def send_feedback(self, turn_id: object, verdict: object, note: object, conv: object, votes: object,
                      request: Request = None):
        """The 👎 form's verdict and note for a reply. -> votes, notice, form."""
        gr = self.gr
        transcript = Transcript.load(conv, user_of(request))
        turn = transcript.turn(turn_id)
        try:
            verdict = check_verdict(verdict) if verdict else None
            note = check_note(note)
        except FeedbackError as exc:
            return gr.skip(), self._notice(str(exc)), gr.skip()
        if verdict is None or verdict == "right":
            return gr.skip(), self._notice("Choose what is wrong with the reply, then send."), gr.skip()
        if turn is None or turn.result is None:
            return gr.skip(), self._notice("That reply is no longer in this conversation."), gr.update(visible=False)
        stored, votes_update, notice = self._store(transcript, turn, verdict, note, votes, request)
        return votes_update, notice, gr.update(visible=False) if stored else gr.skip()

    def _store(self, transcript: Transcript, turn: ChatTurn, verdict: str, note: str, votes: object,
               request: Request | None):
        """Append the gold line for a judged reply; -> (stored, votes to keep in the browser, notice)."""
        gr = self.gr
        user = user_of(request)
        files = self.engine.files

        def in_article(text: str) -> bool:  # a note quoting the articles asked about is the line's evidence
            from .evaluation import normalize

            ids = turn.scope or [p["citation"]["article"] for p in turn.result.get("passages") or ()]
            for article_id in ids:
                info = self.engine.index.articles.get(article_id)
                raw = files.text(info.path, info.sha256) if info else None
                if raw and normalize(text) in normalize(raw):
                    return True
            return False

        try:
            line = gold_line(item=turn.id, question=turn.question, history=transcript.history(before=turn.id),
                             scope=turn.scope, reply=turn.result, verdict=verdict, note=note, user=user,
                             in_article=in_article)
            append_line(self.feedback_path, line)
        except FeedbackError as exc:
            self.log(f"feedback not stored: {exc}")
            return False, gr.skip(), self._notice(f"Your feedback could not be stored: {exc}")
        except Exception:
            log_internal_error("storing feedback")
            return False, gr.skip(), self._notice(INTERNAL_ERROR)
        self.log(f"feedback on reply {turn.id}: {verdict} {by_whom(request)}")
        kept = dict(votes) if isinstance(votes, dict) else {}
        kept[turn.id] = verdict
        kept = dict(list(kept.items())[-200:])
        label = "right" if verdict == "right" else VERDICTS[verdict]
        return True, kept, self._notice(f"Thank you: reply marked “{label}”; it is stored as a test case for `qa eval`.",
                                        ok=True)

    # --- exports -------------------------------------------------------------------------------------------------

    def export(self, fmt: object, conv: object, votes: object, request: Request = None) -> str:
        """The conversation as a file to download: {"name", "type", "text"} as JSON (the page saves it)."""
        transcript = Transcript.load(conv, user_of(request)).with_votes(votes)
        if not transcript.turns:
            return json.dumps({"error": "There is no conversation to export yet: ask a question first."})
        if fmt == "json":
            text, name, kind = json.dumps(export_json(transcript), ensure_ascii=False, indent=2), "conversation.json", \
                "application/json"
        else:
            text = export_markdown(transcript, titles=titles_of(self.engine.list_articles()))
            name, kind = "conversation.md", "text/markdown"
        return json.dumps({"name": name, "type": kind, "text": text}, ensure_ascii=False)

    # --- examples ------------------------------------------------------------------------------------------------

    def examples_for(self, scope: object) -> list[str]:
        """Questions staff marked right (👍) about the chosen article (any article for "All articles"), newest
        first; then phrases to complete, which fit any story."""
        answered = self._answered_questions()
        key = scope if isinstance(scope, str) and scope != ALL_ARTICLES else ALL_ARTICLES
        known = answered.get(key, [])[:MAX_EXAMPLES]
        return known + STARTERS[: max(0, MAX_EXAMPLES - len(known))]

    def _example_samples(self, scope: object):
        return self.gr.Dataset(samples=[[q] for q in self.examples_for(scope)])

    def _answered_questions(self) -> dict[str, list[str]]:
        """{article id (and "*"): questions marked right, newest first} from the feedback file, read again only
        when it changed."""
        try:
            st = os.stat(self.feedback_path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            return {}
        with self._examples_lock:
            if self._examples is not None and self._examples[0] == stamp:
                return self._examples[1]
            found: dict[str, list[str]] = {}
            try:
                lines = read_lines(self.feedback_path).decode("utf-8", "replace").splitlines()
            except FeedbackError:
                lines = []
            for line in reversed(lines[-5_000:]):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(row, dict) or row.get("verdict") != "right" or not row.get("answer") \
                        or row.get("history") or not isinstance(row.get("question"), str):
                    continue  # a follow-up makes no example: it leans on what came before it
                for key in (row.get("article"), ALL_ARTICLES):
                    if isinstance(key, str) and row["question"] not in found.setdefault(key, []):
                        found[key].append(row["question"])
            self._examples = (stamp, found)
            return found

    # --- messages --------------------------------------------------------------------------------------------

    @staticmethod
    def _status(message: str, ok: bool = False) -> str:
        role = "status" if ok else "alert"
        return f'<p class="qa-status {"qa-ok" if ok else "qa-problem"}" role="{role}">{esc(message)}</p>'

    @staticmethod
    def _notice(message: str, ok: bool = False) -> str:
        """The line above the question box: where the eye is when something happened elsewhere on the page."""
        if not message:
            return '<div class="qa-notice-empty"></div>'
        return f'<p class="qa-notice {"qa-ok" if ok else "qa-problem"}" role="status">{esc(message)}</p>'
