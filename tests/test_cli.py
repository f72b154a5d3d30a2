"""The `qa` command: exact output shapes and exit codes, in-process (qa.cli.main) and as a subprocess.

Every test uses its own index folder (a copy of the session's seed index, or a tmp folder): none touches
/work/main/index. In-process tests reuse the session's loaded model instead of loading it again.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qa.engine
from helpers import qa_clean_env, seed_article_path, seed_engine  # noqa: F401 - fixtures
from qa.cli import main

pytestmark = pytest.mark.usefixtures("qa_clean_env")

REPO = Path(__file__).resolve().parent.parent
VICTIMS = "Were any victims identified?"
VICTIMS_QUOTE = "we have not identified any migrants claiming to be the victim"


def cited_file(path: str, index_dir: Path) -> Path:
    """A citation's file: paths are shown relative to the project root (the index folder's parent) when
    the article is under it, else absolute."""
    p = Path(path)
    return (p if p.is_absolute() else index_dir.resolve().parent / p).resolve()


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_qa(*args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=subprocess_env(), timeout=timeout)


@pytest.fixture
def seed_index(seed_engine, tmp_path) -> Path:
    """A private copy of the session's seed index (sources are stored as absolute paths, so it still finds
    the seed article)."""
    target = tmp_path / "index"
    shutil.copytree(seed_engine.settings.index_path, target)
    return target


@pytest.fixture
def same_model(seed_engine, monkeypatch):
    """`qa` in-process gets the already loaded model instead of loading it again."""
    monkeypatch.setattr(qa.engine, "make_embedder", lambda *a, **k: seed_engine.embedder)
    return seed_engine.embedder


# --- ask ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ask_prints_the_answer_and_numbered_passages(seed_index, same_model, capsys, monkeypatch):
    monkeypatch.setenv("QA_ANSWERED_ABOVE", "0")  # the answered form, whatever the fitted thresholds
    code = main(["ask", VICTIMS, "--index", str(seed_index)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Answer: ")
    assert VICTIMS_QUOTE in lines[0]
    assert re.search(r" \[1\]( \(confidence 0\.\d\d\))?$", lines[0])  # the citation, then how sure
    headers = [line for line in lines if re.match(r"\[\d\] ", line)]
    assert [h[:3] for h in headers] == ["[1]", "[2]", "[3]"]
    assert ", 2023-07-18, paragraph 8, characters " in headers[0]
    assert "000_1377f01862d9140a.txt (score " in headers[0]
    # the cited characters are the passage shown below the header
    start, end = map(int, re.search(r"characters (\d+)-(\d+)", headers[0]).groups())
    raw = seed_article_path().read_text(encoding="utf-8")
    shown = " ".join(out.split(headers[0], 1)[1].split("\n\n")[0].split())
    assert shown.replace("»", "").replace("«", "") == " ".join(raw[start:end].split())
    assert "»" in shown and "«" in shown  # the answer sentence is marked


@pytest.mark.slow
def test_an_uncertain_reply_says_so_before_the_closest_sentence(seed_index, same_model, capsys, monkeypatch):
    monkeypatch.setenv("QA_ANSWERED_ABOVE", "1")  # nothing is sure enough to be an answer ...
    monkeypatch.setenv("QA_UNCERTAIN_ABOVE", "0")  # ... and nothing the rules let through is refused
    assert main(["ask", VICTIMS, "--index", str(seed_index)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("The article may not say whether any victims were identified. The closest it comes")
    assert VICTIMS_QUOTE in first and first.endswith(" [1]") and not first.startswith("Answer: ")
    assert main(["ask", VICTIMS, "--json", "--index", str(seed_index)]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["status"] == "uncertain" and not reply["abstained"] and reply["answer"]["span"] is None
    assert 0 < reply["confidence"] < 1


@pytest.mark.slow
def test_ask_json_has_the_documented_shape(seed_index, same_model, capsys):
    code = main(["ask", VICTIMS, "--json", "--index", str(seed_index), "-k", "2"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"question", "abstained", "answer", "passages"} <= set(result)
    assert result["question"] == VICTIMS
    assert result["abstained"] is False
    assert set(result["answer"]) == {"text", "citation", "span"}
    assert VICTIMS_QUOTE in result["answer"]["text"] and result["answer"]["citation"] == 1
    assert len(result["passages"]) == 2
    raw = seed_article_path().read_bytes().decode("utf-8")
    for i, p in enumerate(result["passages"], start=1):
        assert {"rank", "score", "text", "highlight", "citation"} <= set(p)
        assert p["rank"] == i
        assert isinstance(p["score"], float)
        assert set(p["highlight"]) == {"start", "end"}
        c = p["citation"]
        assert set(c) >= {"article", "title", "date", "paragraph", "start", "end", "path"}
        assert c["article"] == "000_1377f01862d9140a" and c["date"] == "2023-07-18"
        assert cited_file(c["path"], seed_index) == seed_article_path()
        assert raw[c["start"] : c["end"]] == p["text"]
        assert c["start"] <= p["highlight"]["start"] < p["highlight"]["end"] <= c["end"]
    top = result["passages"][0]
    assert top["citation"]["paragraph"] == 8
    assert raw[top["highlight"]["start"] : top["highlight"]["end"]] == result["answer"]["text"]


@pytest.mark.slow
def test_ask_json_when_abstaining(seed_index, same_model, capsys):
    assert main(["ask", "How do I reverse a list in Python?", "--json", "--index", str(seed_index)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["abstained"] is True
    assert result["answer"] is None
    assert result["passages"] and all(p["closest"] for p in result["passages"])
    assert result["reason"] == "Nothing in the article is close to this question." and "under the threshold" in result["details"]


@pytest.mark.slow
def test_ask_text_when_abstaining(seed_index, same_model, capsys):
    assert main(["ask", "Did Jane Doe file a complaint with COPA?", "--index", str(seed_index)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The article never mentions 'Jane Doe'. ('Jane Doe': in no passage, even allowing for typos)")
    assert "Closest passages (not answers):" in out
    assert "Answer:" not in out


@pytest.mark.slow
def test_ask_questions_from_stdin(seed_index, same_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{VICTIMS}\n\nWho is the chief administrator of COPA?\n"))
    code = main(["ask", "-", "--index", str(seed_index)])
    lines = capsys.readouterr().out.splitlines()
    assert code != 0  # one question failed
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert "error" not in rows[0] and VICTIMS_QUOTE in rows[0]["answer"]["text"]
    assert rows[1] == {"question": "", "error": rows[1]["error"]}
    assert "empty" in rows[1]["error"]
    assert "error" not in rows[2] and "Kersten" in rows[2]["answer"]["text"]


@pytest.mark.slow
def test_ask_as_a_subprocess(seed_index):
    proc = run_qa("ask", VICTIMS, "--json", "--index", str(seed_index))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert VICTIMS_QUOTE in result["answer"]["text"]
    assert result["passages"][0]["citation"]["paragraph"] == 8
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("question, message", [
    ("", "The question is empty"),
    ("   \t ", "The question is empty"),
    ("x" * 1001, "The question is 1,001 characters long; the limit is 1,000"),
])
def test_bad_question_exits_2_before_loading_anything(tmp_path, question, message):
    # the index folder does not exist: the question is refused before the index or the model is opened
    proc = run_qa("ask", question, "--index", str(tmp_path / "index"), timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("qa: error: ")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "index").exists()


def test_question_of_exactly_1000_chars_is_accepted():
    from qa import check_question

    assert check_question("x" * 1000, 1000) == "x" * 1000


def test_ask_with_missing_index_and_no_rebuild(tmp_path, capsys):
    code = main(["ask", VICTIMS, "--index", str(tmp_path / "index"), "--no-rebuild"])
    err = capsys.readouterr().err
    assert code == 2
    assert "No index at" in err and "qa build" in err


# --- build --------------------------------------------------------------------------------------------


def test_build_on_a_folder_without_articles_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.csv").write_text("a,b\n")
    # --backend torch: no ONNX export first (see the next test), so this stays fast
    proc = run_qa("build", str(empty), "--index", str(tmp_path / "index"), "--backend", "torch", timeout=60)
    assert proc.returncode == 2
    assert f"qa: error: {empty}: the folder has no articles (no .txt or .md files)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_build_refuses_bad_articles_before_any_model_work(tmp_path, capsys, monkeypatch):
    # `qa build EMPTY_FOLDER` must say so at once: no model loading or ONNX export (tens of seconds, ~90 MB
    # written into the index folder) before the articles are checked.
    import qa.onnx_backend

    exports: list[tuple] = []
    monkeypatch.setattr(qa.onnx_backend, "export_model", lambda *a, **k: exports.append(a))
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["build", str(empty), "--index", str(tmp_path / "index")])
    assert code == 2
    assert "the folder has no articles" in capsys.readouterr().err
    assert exports == []


def test_build_with_the_fake_model_prints_a_summary(tmp_path, capsys, monkeypatch):
    from helpers import SMALL_CORPUS, FakeEmbedder, write_articles

    fake = FakeEmbedder()
    monkeypatch.setattr(qa.engine, "make_embedder", lambda *a, **k: fake)
    corpus = write_articles(tmp_path / "articles", SMALL_CORPUS)
    code = main(["build", str(corpus), "--index", str(tmp_path / "index"), "--backend", "torch", "--model", "fake-bow"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("4 article(s), 12 passages, model fake-bow")
    assert (tmp_path / "index" / "manifest.json").is_file()
    assert fake.encoded_count == 12


# --- eval ---------------------------------------------------------------------------------------------


def write_gold(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


GOLD = [
    {"id": "g1", "question": VICTIMS, "answer": "No", "evidence": [VICTIMS_QUOTE]},
    {"id": "g2", "question": "How do I reverse a list in Python?", "answer": None, "evidence": []},
]


@pytest.mark.slow
def test_eval_prints_metrics(seed_index, same_model, tmp_path, capsys):
    gold = write_gold(tmp_path / "gold.jsonl", GOLD)
    code = main(["eval", str(gold), "--index", str(seed_index), "-k", "3"])
    out = capsys.readouterr().out
    assert code == 0
    metrics = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert metrics["questions"] == "2"
    assert metrics["answerable"] == "1" and metrics["unanswerable"] == "1"
    assert metrics["hit@1"] == "1.0" and metrics["hit@3"] == "1.0" and metrics["mrr@3"] == "1.0"
    assert metrics["answer_accuracy"] == "1.0"
    assert metrics["correct_abstentions"] == "1.0" and metrics["false_abstentions"] == "0.0"
    assert "latency_ms_p50" in metrics


@pytest.mark.slow
def test_eval_json_and_thresholds(seed_index, same_model, tmp_path, capsys):
    gold = write_gold(tmp_path / "gold.jsonl", GOLD)
    code = main(["eval", str(gold), "--index", str(seed_index), "--json", "--max-false-abstentions", "0",
                 "--min-hit1", "1.0"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["failures"] == [] and report["misses"] == []
    assert report["metrics"]["hit@1"] == 1.0 and report["metrics"]["k"] == 5


@pytest.mark.parametrize("lines, where, what", [
    ([json.dumps(GOLD[0]), "{not json"], ":2:", "not JSON"),
    (["", json.dumps({"id": "a", "question": "Q?", "answer": "A", "evidence": []})], ":2:", "at least one evidence quote"),
    ([json.dumps({"question": "Q?"})], ":1:", '"id" and "question"'),
    ([json.dumps(GOLD[0]), json.dumps(GOLD[0])], ":2:", "duplicate id 'g1'"),
])
def test_malformed_gold_file_exits_2_naming_the_line(tmp_path, lines, where, what):
    gold = write_gold(tmp_path / "gold.jsonl", lines)
    proc = run_qa("eval", str(gold), "--index", str(tmp_path / "index"), timeout=60)
    assert proc.returncode == 2
    assert f"{gold}{where}" in proc.stderr
    assert what in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "index").exists()


def test_eval_without_a_gold_file(capsys):
    assert main(["eval"]) == 2
    assert "Give a gold file" in capsys.readouterr().err


# --- eval: one article per conversation, and CANARD files ---------------------------------------------------

SEED_TURNS = [{"question": VICTIMS, "answer": "No", "evidence": [VICTIMS_QUOTE], "kind": "first"},
              {"question": "who said that", "answer": None, "evidence": [], "kind": "unanswerable"}]


def test_eval_per_article_needs_an_article_on_every_line_and_loads_nothing_without(tmp_path, capsys):
    gold = write_gold(tmp_path / "conv.jsonl", [{"id": "c1", "turns": SEED_TURNS}])
    assert main(["eval", str(gold), "--per-article", "--index", str(tmp_path / "index")]) == 2
    err = capsys.readouterr().err
    assert "--per-article" in err and "'c1'" in err and "drop --per-article" in err
    single = write_gold(tmp_path / "gold.jsonl", GOLD)
    assert main(["eval", str(single), "--per-article", "--index", str(tmp_path / "index")]) == 2
    assert "'g1'" in capsys.readouterr().err
    assert not (tmp_path / "index").exists()


@pytest.mark.slow
def test_eval_per_article_asks_within_the_conversations_article(seed_index, same_model, tmp_path, capsys):
    seed_id = seed_article_path().stem  # the id `qa build` gives the seed file (segments keep no article list)
    gold = write_gold(tmp_path / "conv.jsonl", [{"id": "c1", "article": seed_id, "turns": SEED_TURNS}])
    assert main(["eval", str(gold), "--per-article", "--json", "--index", str(seed_index)]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["first_turn"]["hit@1"] == 1.0 and metrics["conversations"] == 1
    elsewhere = write_gold(tmp_path / "other.jsonl", [{"id": "c1", "article": "no-such-story", "turns": SEED_TURNS}])
    assert main(["eval", str(elsewhere), "--per-article", "--index", str(seed_index)]) == 2
    assert "No article 'no-such-story'" in capsys.readouterr().err


CANARD_ROWS = [
    {"History": ["Frank Zappa", "1970s"], "Question": "what did he do in 1970", "Rewrite": "what did Frank Zappa do in 1970",
     "QuAC_dialog_id": "C_zappa_1", "Question_no": 1},
    {"History": ["Frank Zappa", "1970s", "what did he do in 1970", "He re-formed the Mothers of Invention."],
     "Question": "when did they disband", "Rewrite": "when did Zappa and the Mothers of Invention disband",
     "QuAC_dialog_id": "C_zappa_1", "Question_no": 2},
    {"History": ["Frank Zappa", "1970s", "what did he do in 1970", "He re-formed the Mothers of Invention.",
                 "when did they disband", "They broke up in 1975 after a tour of Europe."],
     "Question": "where was the tour", "Rewrite": "where was the tour", "QuAC_dialog_id": "C_zappa_1", "Question_no": 3},
]


@pytest.mark.slow
def test_eval_of_a_canard_file_scores_the_words_interpreted_as_adds(same_model, tmp_path, capsys):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(CANARD_ROWS), encoding="utf-8")
    rows_file = tmp_path / "rows.jsonl"
    code = main(["eval", str(dev), "--part", "all", "--json", "--index", str(tmp_path / "index"), "--output", str(rows_file)])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["part"] == "all" and metrics["dialogues"] == 1
    assert metrics["added_words"]["turns"] == 2  # the follow-ups; the first question has nothing to lean on
    # "Frank Zappa" added to both: of 4 words added, 1 is the person's (zappa); of the person's 3, 1 is added
    assert metrics["headline_words_added"] == {"turns": 2, "precision": 0.25, "recall": 0.3333, "f1": 0.2857,
                                               "words_added": 4, "words_gold": 3, "untouched": 0.0}
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert [r["gold_added"] for r in rows] == [["invention", "mothers", "zappa"], []]
    from qa.canard import article_id

    cited = {p["citation"]["article"] for r in rows for p in r["result"]["passages"]}
    assert cited == {article_id("C_zappa_1")}  # each follow-up asked within its dialogue's article
    assert main(["eval", "eval/seed.jsonl", "--part", "tune"]) == 2
    assert "No question of eval/seed.jsonl is in part 'tune'" in capsys.readouterr().err  # a CANARD part, not a set's


def test_eval_of_a_canard_part_without_follow_ups_says_so(tmp_path, capsys):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(CANARD_ROWS[:1]), encoding="utf-8")
    assert main(["eval", str(dev), "--part", "all", "--index", str(tmp_path / "index")]) == 2
    assert "part all has no follow-up" in capsys.readouterr().err
    assert not (tmp_path / "index").exists()
