"""Feedback, the chat's transcript and its exports, and the chat's callbacks, at the library level: gold lines for
each verdict, durable appends from several processes, `qa eval` scoring them, a transcript from a hostile browser,
and every chat callback given bad input. The engine is the fake-embedder one of the unit tests (instant);
tests/test_newsroom.py drives the same through the real app in Chromium."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from helpers import SMALL_CORPUS, FakeEmbedder, qa_clean_env, write_articles  # noqa: F401 - fixture
from qa import Engine, resolve_settings
from qa.chatlog import MAX_TURNS, ChatTurn, Transcript, export_json, export_markdown
from qa.errors import ConfigError
from qa.evaluation import compute_metrics, load_gold, per_question
from qa.feedback import FeedbackError, append_line, gold_line, read_lines

pytestmark = pytest.mark.usefixtures("qa_clean_env")
SENTENCE = "Engineers found cracks in three steel girders during an inspection in February."


def reply(answer: str | None = SENTENCE, article: str = "bridge", abstained: bool = False) -> dict:
    p = {"rank": 1, "score": 0.9, "dense": 0.6, "closest": abstained, "text": SENTENCE,
         "highlight": {"start": 80, "end": 80 + len(SENTENCE)},
         "citation": {"article": article, "title": "Bridge to close", "date": "2024-03-02", "paragraph": 2,
                      "start": 80, "end": 80 + len(SENTENCE), "path": "articles/bridge.txt",
                      "url": "https://news.example/bridge", "source": "Harlow Gazette", "stale": False}}
    return {"question": "What did engineers find?", "interpreted_as": "What did engineers find?", "abstained": abstained,
            "reason": "The article does not say." if abstained else None, "details": None,
            "answer": None if abstained else {"text": answer, "citation": 1, "span": None}, "passages": [p],
            "warnings": []}


# --- gold lines -----------------------------------------------------------------------------------------------

def line_for(verdict: str, r: dict | None = None, **kw) -> dict:
    return gold_line(item="0123abcd", question="What did engineers find?", history=kw.pop("history", []),
                     scope=kw.pop("scope", None), reply=r or reply(), verdict=verdict, **kw)


def test_a_right_answer_is_a_gold_answer_from_its_article():
    line = line_for("right", user="ann")
    assert (line["answer"], line["evidence"], line["article"]) == (SENTENCE, [SENTENCE], "bridge")
    assert line["verdict"] == "right" and line["user"] == "ann" and line["id"] == "feedback-0123abcd"
    assert line["reply"]["answer"]["text"] == SENTENCE and line["feedback"] == 1


def test_a_right_refusal_is_a_question_to_refuse():
    line = line_for("right", reply(abstained=True))
    assert line["answer"] is None and line["evidence"] == [] and "wrong" not in line


def test_not_said_is_a_question_to_refuse_and_the_answer_given_is_wrong():
    line = line_for("not_said", note="Nothing about girders.")
    assert line["answer"] is None and line["wrong"] == [SENTENCE] and line["note"] == "Nothing about girders."


def test_wrong_passage_and_is_said_are_answerable_somewhere():
    wrong = line_for("wrong_passage")
    assert wrong["answer"] == "" and wrong["evidence"] == [] and wrong["wrong"] == [SENTENCE]
    said = line_for("is_said", reply(abstained=True), history=[{"role": "user", "content": "Which bridge?"},
                                                              {"role": "assistant", "content": "The Harlow bridge."}],
                    scope=["bridge"])
    assert said["answer"] == "" and "wrong" not in said and said["scope"] == ["bridge"] and len(said["history"]) == 2


def test_a_note_quoting_the_article_becomes_the_evidence():
    line = line_for("is_said", reply(abstained=True), note='It says: "cracks in three steel girders"',
                    in_article=lambda text: text in SMALL_CORPUS["bridge.txt"])
    assert line["answer"] == "cracks in three steel girders" and line["evidence"] == ["cracks in three steel girders"]
    other = line_for("is_said", reply(abstained=True), note="somewhere near the end", in_article=lambda text: False)
    assert other["evidence"] == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"verdict": "great"}, "verdict must be one of"),
    ({"verdict": None}, "verdict must be one of"),
    ({"verdict": "is_said", "note": 5}, "note must be text"),
    ({"verdict": "is_said", "note": "x" * 2001}, "the limit is 2,000"),
    ({"verdict": "is_said", "note": "bad \x00 byte"}, "control character"),
    ({"verdict": "is_said", "note": "lone \ud800"}, "not valid Unicode"),
])
def test_bad_feedback_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(FeedbackError, match=message):
        gold_line(item="0123abcd", question="Q?", history=[], scope=None, reply=reply(), **kwargs)


# --- the file: durable, one line per item, several writers ---------------------------------------------------------

def _writer(path: str, n: int, who: int) -> None:
    for i in range(n):
        append_line(path, {"id": f"w{who}-{i}", "question": "Q?", "answer": None, "evidence": [], "verdict": "not_said",
                           "pad": "x" * (1000 + 37 * who)})


def test_several_processes_append_whole_lines(tmp_path):
    path = str(tmp_path / "deep" / "feedback.jsonl")  # the folder is made
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(path, 50, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200 and len({json.loads(line)["id"] for line in lines}) == 200


def test_a_line_cut_short_by_a_crash_is_removed_by_the_next_writer(tmp_path):
    path = tmp_path / "feedback.jsonl"
    append_line(path, {"id": "a"})
    with open(path, "ab") as f:
        f.write(b'{"id": "half, then the power went')
    assert read_lines(path) == b'{"id":"a"}\n'  # readers see whole lines only
    append_line(path, {"id": "b"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_a_file_that_cannot_be_written_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(FeedbackError, match="Cannot write the feedback file .* set QA_FEEDBACK"):
        append_line(tmp_path / "a-file" / "feedback.jsonl", {"id": "a"})
    assert read_lines(tmp_path / "none.jsonl") == b""


def test_the_feedback_file_is_configured_like_every_setting(tmp_path, monkeypatch):
    assert resolve_settings().feedback_path == Path("feedback.jsonl")
    monkeypatch.setenv("QA_FEEDBACK", str(tmp_path / "f.jsonl"))
    assert resolve_settings().feedback_path == tmp_path / "f.jsonl"
    monkeypatch.setenv("QA_FEEDBACK", str(tmp_path))
    with pytest.raises(ConfigError, match="QA_FEEDBACK=.* is not a file name"):
        resolve_settings()
    monkeypatch.delenv("QA_FEEDBACK")
    monkeypatch.setenv("SPACE_ID", "team/article-qa")
    monkeypatch.setattr("qa.config.PERSISTENT_STORAGE", tmp_path)
    assert resolve_settings().feedback_path == tmp_path / "feedback.jsonl"  # a Space's persistent storage


# --- qa eval reads the file ---------------------------------------------------------------------------------------

def test_qa_eval_reads_feedback_lines_and_the_last_judgement_counts(tmp_path):
    path = tmp_path / "feedback.jsonl"
    for line in (line_for("right"), line_for("not_said"),  # judged again: the second counts
                 {**line_for("wrong_passage"), "id": "feedback-2"}, {**line_for("right"), "id": "feedback-3"}):
        append_line(path, line)
    golds = load_gold(path)
    assert [g.id for g in golds] == ["feedback-0123abcd", "feedback-2", "feedback-3"]
    refuse, somewhere, right = golds
    assert refuse.answer is None and refuse.wrong == (SENTENCE,)
    assert somewhere.answerable and not somewhere.located and somewhere.wrong == (SENTENCE,)
    assert right.located and right.article == "bridge"
    # the service answers all three with the sentence staff marked wrong twice
    results = [reply(), reply(), reply()]
    m = compute_metrics(golds, results, [0.01] * 3, k=3)
    assert m["correct_abstentions"] == 0.0 and m["wrong_repeated"] == 1.0
    assert m["answerable"] == 2 and m["hit@1"] == 1.0 and m["answer_accuracy"] == 1.0  # only the located one
    assert [row["ok"] for row in per_question(golds, results)] == [False, False, True]


def test_history_and_scope_of_a_feedback_line_are_loaded(tmp_path):
    path = tmp_path / "feedback.jsonl"
    history = [{"role": "user", "content": "Which bridge?"}, {"role": "assistant", "content": "Harlow."}]
    append_line(path, line_for("not_said", history=history, scope=["bridge"]))
    (gold,) = load_gold(path)
    assert gold.history == tuple(history) and gold.scope == ("bridge",)


@pytest.mark.parametrize(("extra", "message"), [
    ({"history": "earlier"}, '"history" must be a list'),
    ({"history": [{"role": "bot", "content": "x"}]}, '"history" must be a list'),
    ({"scope": []}, '"scope" must be a non-empty list'),
    ({"wrong": [3]}, '"wrong" must be a list of sentences'),
])
def test_malformed_feedback_lines_name_the_line(tmp_path, extra, message):
    from qa.errors import GoldSetError

    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps({**line_for("not_said"), **extra}) + "\n", encoding="utf-8")
    with pytest.raises(GoldSetError, match=f"{path.name}:1: {message}"):
        load_gold(path)


# --- the transcript a browser keeps ----------------------------------------------------------------------------------

def turn(i: int, **kw) -> ChatTurn:
    return ChatTurn(f"{i:08x}", kw.pop("question", f"Question {i}?"), kw.pop("scope", None), kw.pop("result", reply()), **kw)


def test_a_transcript_round_trips_and_builds_the_history():
    t = Transcript(user="ann")
    for i in range(3):
        t = t.add(turn(i))
    t = t.add(turn(3, result=None, error="The question is empty."))
    again = Transcript.load(json.loads(json.dumps(t.dump())), "ann")
    assert again == t and not again.dropped
    assert [m["role"] for m in again.history()] == ["user", "assistant"] * 3  # errors are not history
    assert len(again.history(before="00000001")) == 2
    assert Transcript.load(t.dump(), "bob").turns == ()  # another user's conversation is not shown


@pytest.mark.parametrize("value", [
    "a string", 42, [1, 2], {"v": 99, "turns": []}, {"v": 1, "user": None, "turns": "many"},
    {"v": 1, "user": None, "turns": [{"id": "../etc", "question": "q", "result": None, "error": "e"}]},
    {"v": 1, "user": None, "turns": [{"id": "0000000a", "question": "q", "result": {"question": "q"}}]},
    {"v": 1, "user": None, "turns": [{"id": "0000000a", "question": "q", "result": {**reply(), "passages": [{"rank": "1"}]}}]},
    {"v": 1, "user": None, "turns": [{"id": "0000000a", "question": "q", "scope": "bridge", "result": reply()}]},
    {"v": 1, "user": None, "turns": [{"id": "0000000a", "question": "q" * 20_000, "result": reply()}]},
])
def test_anything_else_from_a_browser_starts_afresh(value):
    t = Transcript.load(value, None)
    assert t.turns == ()


def test_a_transcript_keeps_the_last_turns_only():
    t = Transcript()
    for i in range(MAX_TURNS + 5):
        t = t.add(turn(i))
    assert len(t.turns) == MAX_TURNS and t.turns[0].id == f"{5:08x}"


def test_exports_hold_questions_replies_and_citations():
    t = Transcript().add(turn(1, question="What did **engineers** find?")).add(
        turn(2, question="Who pays?", result=reply(abstained=True), scope=("bridge",))).add(
        turn(3, question="", result=None, error="The question is empty."))
    data = export_json(t.with_votes({"00000001": "right"}))
    first, second, third = data["turns"]
    assert first["answer"] == SENTENCE and first["cites"] == 1 and first["feedback"] == "right"
    assert first["citations"][0] | {} == {**first["citations"][0], "title": "Bridge to close", "date": "2024-03-02",
                                          "paragraph": 2, "url": "https://news.example/bridge"}
    assert second["status"] == "abstained" and second["answer"] is None and second["articles"] == ["bridge"]
    assert third["status"] == "error"
    md = export_markdown(t, titles={"bridge": "Bridge to close"})
    assert "## 1. What did \\*\\*engineers\\*\\* find?" in md  # Markdown in a question is shown, not applied
    assert f"“{SENTENCE}” [1]" in md
    assert "1. Bridge to close, 2024-03-02, Harlow Gazette, ¶2 — <https://news.example/bridge>" in md
    assert "*Asked about:* Bridge to close" in md and "**The article does not say.**" in md


# --- the chat's callbacks, given what a hostile client may send -------------------------------------------------------

@pytest.fixture
def chat(tmp_path):
    from qa.webchat import ChatHandlers

    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    settings = resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow",
                                feedback=str(tmp_path / "feedback.jsonl"))
    engine = Engine.open(settings, embedder=FakeEmbedder(), log=lambda m: None)
    logged: list[str] = []
    handlers = ChatHandlers(engine, log=logged.append)
    handlers.logged = logged
    return handlers


def ask(chat, question: object, conv=None, picker="*"):
    ticket = json.dumps({"q": question, "c": "conversation-1"})  # what the page sends: the question, its conversation
    chatbot, conv, panel, _picker, _notice, _listed = chat.answer(ticket, conv, {}, 3, picker, None, "conversation-1")
    return chatbot, conv


@pytest.mark.parametrize("ticket", [None, "", "a question", "[1]", '{"q": "x"}', '{"q": "x", "c": 5}'])
def test_a_ticket_that_is_not_one_changes_nothing(chat, ticket):
    assert all(out == chat.gr.skip() for out in chat.answer(ticket, None, {}, 3, "*", None, None))


def test_an_answer_to_a_restarted_conversation_changes_nothing(chat):
    ticket = json.dumps({"q": "Who owns the bakery?", "c": "old"})
    assert all(out == chat.gr.skip() for out in chat.answer(ticket, None, {}, 3, "*", None, "new"))
    chatbot, conv, *_ = chat.answer(ticket, None, {}, 3, "*", None, None)  # no restart in this session: answered
    assert len(chatbot) == 2


def test_a_question_and_a_follow_up_through_the_chat(chat):
    chatbot, conv = ask(chat, "What did engineers find in the steel girders?")
    chatbot, conv = ask(chat, "When was the inspection?", conv)
    t = Transcript.load(conv)
    assert len(t.turns) == 2 and all(x.answered for x in t.turns) and len(chatbot) == 4
    assert "qa-turn-" + t.turns[1].id in chatbot[3]["content"]
    assert "From <em>" in chatbot[1]["content"]  # several articles, every article asked: the reply names its own


@pytest.mark.parametrize("question", [None, 42, "", "x" * 1001, "a\x00b"])
def test_a_refused_question_is_a_reply_that_keeps_the_question(chat, question):
    chatbot, conv = ask(chat, question)
    assert "qa-error" in chatbot[-1]["content"]
    assert ("qa-keep" in chatbot[-1]["content"]) == bool(isinstance(question, str) and question.strip())


@pytest.mark.parametrize("action", [None, 5, "", "not json", "[1, 2]", '{"kind": "explode"}', "x" * 3000,
                                    '{"kind": "cite", "turn": "nope"}', '{"kind": "up", "turn": ["a"]}'])
def test_bad_actions_change_nothing_and_say_so(chat, action):
    _chatbot, conv = ask(chat, "What did engineers find in the steel girders?")
    out = chat.act(action, conv, {})
    assert "qa-notice" in out[2] and not Path(chat.feedback_path).exists()


def test_a_cite_action_opens_the_replys_own_article(chat):
    _chatbot, conv = ask(chat, "What did engineers find in the steel girders?")
    _chatbot, conv = ask(chat, "Who owns the bakery?", conv)
    first = Transcript.load(conv).turns[0]
    panel = chat.act(json.dumps({"kind": "cite", "turn": first.id, "rank": 1}), conv, {})[0]
    assert f"qa-shows-{first.id}" in panel and "Harlow river bridge" in panel and "<mark>" in panel


@pytest.mark.parametrize(("verdict", "note", "message"), [
    (None, "", "Choose what is wrong"), ("right", "", "Choose what is wrong"), ("bogus", "", "verdict must be one of"),
    ("not_said", 7, "note must be text"), ("not_said", "x" * 2001, "the limit is 2,000"),
])
def test_bad_reports_are_refused_and_nothing_is_stored(chat, verdict, note, message):
    _chatbot, conv = ask(chat, "What did engineers find in the steel girders?")
    turn_id = Transcript.load(conv).turns[0].id
    _votes, notice, _form = chat.send_feedback(turn_id, verdict, note, conv, {})
    assert message in notice and not Path(chat.feedback_path).exists()


def test_a_report_is_one_gold_line_logged_with_its_reply(chat):
    _chatbot, conv = ask(chat, "What did engineers find in the steel girders?")
    turn_id = Transcript.load(conv).turns[0].id
    votes, notice, _form = chat.send_feedback(turn_id, "not_said", "  no  ", conv, {"junk": "x"})
    assert "Thank you" in notice and votes[turn_id] == "not_said"
    (line,) = [json.loads(x) for x in Path(chat.feedback_path).read_text().splitlines()]
    assert line["answer"] is None and line["note"] == "no" and line["question"].startswith("What did engineers")
    assert any("feedback on reply" in m and "not_said" in m for m in chat.logged)


@pytest.mark.parametrize("conv", [None, "garbage", {"v": 1, "turns": [{"id": "zz"}]}])
def test_restore_and_export_take_any_stored_value(chat, conv):
    chatbot, conv_out, *_ = chat.restore(conv, "not a dict", 12345)
    assert chatbot == [] and Transcript.load(conv_out).turns == ()
    assert "no conversation to export" in chat.export("md", conv, None)


def test_restore_says_when_the_chosen_article_is_gone(chat):
    _chatbot, _conv, picker, _panel, _examples, notice, _listed = chat.restore(None, {}, "removed-article")
    assert picker["value"] == "*" and "no longer in the index" in notice


def test_examples_are_questions_marked_right_about_the_chosen_article(chat):
    _chatbot, conv = ask(chat, "What did engineers find in the steel girders?", picker="bridge")
    turn_id = Transcript.load(conv).turns[0].id
    chat.act(json.dumps({"kind": "up", "turn": turn_id}), conv, {})
    assert chat.examples_for("bridge")[0] == "What did engineers find in the steel girders?"
    assert "What did engineers find in the steel girders?" not in chat.examples_for("bakery")
    assert chat.examples_for("bakery")[0] == "Who is …?"  # phrases to complete, for any story


def test_qa_eval_asks_feedback_lines_as_they_were_asked_and_skips_removed_articles(tmp_path, monkeypatch, capsys):
    import qa.engine
    from qa.cli import main

    monkeypatch.setattr(qa.engine, "make_embedder", lambda *a, **k: FakeEmbedder())
    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    Engine.open(resolve_settings(index_dir=str(tmp_path / "index"), articles=[str(corpus)], model="fake-bow"),
                embedder=FakeEmbedder(), log=lambda m: None)
    path = tmp_path / "feedback.jsonl"
    history = [{"role": "user", "content": "Which bridge will close?"},
               {"role": "assistant", "content": "The Harlow river bridge will close for repairs next month."}]
    append_line(path, gold_line(item="00000001", question="What did engineers find in the steel girders?",
                                history=history, scope=["bridge"], reply=reply(), verdict="right"))
    append_line(path, gold_line(item="00000002", question="Who owns the bakery?", history=[], scope=["gone-article"],
                                reply=reply(article="gone-article"), verdict="not_said"))
    code = main(["eval", str(path), "--index", str(tmp_path / "index"), "--backend", "torch", "--model", "fake-bow",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["questions"] == 1 and result["metrics"]["hit@1"] == 1.0
    assert result["skipped"] == ["feedback-00000002"]
    assert "1 question(s) skipped, their article is no longer in the index: feedback-00000002" in err
