"""Gold sets and metrics of `qa eval`, checked against values computed by hand on tiny fake results."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from helpers import qa_clean_env  # noqa: F401 - fixture
from qa.chunking import chunk_article
from qa.errors import GoldSetError
from qa.evaluation import (
    GoldQuestion,
    answer_correct,
    check_thresholds,
    compute_metrics,
    first_hit_rank,
    is_hit,
    load_gold,
    normalize,
    per_question,
    percentile,
    sample,
    squad_corpus,
)

pytestmark = pytest.mark.usefixtures("qa_clean_env")


def passage(rank: int, text: str, article: str = "a", dense: float = 0.5) -> dict:
    return {"rank": rank, "text": text, "dense": dense, "citation": {"article": article}}


def result(passages: list[dict], answer: str | None = None, citation: int | None = None, abstained: bool = False) -> dict:
    return {"abstained": abstained, "answer": None if answer is None else {"text": answer, "citation": citation},
            "passages": passages}


# Six questions, four answerable. Hand-computed below:
#   g1: evidence in passage 1, answer sentence contains it          -> rank 1, answer right
#   g2: evidence (curly quotes) in passage 2 only, answer from 1    -> rank 2, answer wrong
#   g3: evidence in passage 4, engine abstained                     -> rank 4, false abstention, answer wrong
#   g4: evidence nowhere                                            -> no rank, answer wrong
#   g5: unanswerable, abstained                                     -> correct abstention
#   g6: unanswerable, answered                                      -> wrong
GOLDS = [
    GoldQuestion("g1", "q1", "A", ("alpha beta",)),
    GoldQuestion("g2", "q2", "B", ("“Quoted” text",)),
    GoldQuestion("g3", "q3", "C", ("delta",)),
    GoldQuestion("g4", "q4", "D", ("omega",)),
    GoldQuestion("g5", "q5", None, ()),
    GoldQuestion("g6", "q6", None, ()),
]
RESULTS = [
    result([passage(1, "Alpha   BETA gamma."), passage(2, "zeta")], "Alpha beta gamma.", 1),
    result([passage(1, "nothing here"), passage(2, 'He said "quoted"\ntext.')], "nothing here", 1),
    result([passage(i, "delta" if i == 4 else f"filler {i}") for i in range(1, 6)], abstained=True),
    result([passage(1, "x"), passage(2, "y")], "x", 1),
    result([passage(1, "closest")], abstained=True),
    result([passage(1, "confident")], "confident", 1),
]
LATENCIES = [0.010, 0.020, 0.030, 0.040, 0.050, 0.060]


def test_metrics_against_hand_computed_values():
    m = compute_metrics(GOLDS, RESULTS, LATENCIES, k=5)
    assert m["questions"] == 6 and m["answerable"] == 4 and m["unanswerable"] == 2 and m["k"] == 5
    # ranks of the answerable questions: 1, 2, 4, none
    assert m["hit@1"] == 0.25  # 1 of 4
    assert m["hit@3"] == 0.5  # ranks 1 and 2
    assert m["hit@5"] == 0.75  # ranks 1, 2 and 4
    assert m["mrr@5"] == 0.4375  # (1 + 1/2 + 1/4) / 4
    assert m["answer_accuracy"] == 0.25  # g1 only
    assert m["correct_abstentions"] == 0.5  # g5 of g5, g6
    assert m["false_abstentions"] == 0.25  # g3 of 4 answerable
    assert m["latency_ms_p50"] == 35.0  # position 2.5 of 6 sorted values: 30 + 0.5 * 10 ms
    assert m["latency_ms_p95"] == 57.5  # position 4.75: 50 + 0.75 * 10 ms


def test_mrr_at_a_smaller_k_ignores_deeper_hits():
    m = compute_metrics(GOLDS, RESULTS, LATENCIES, k=3)
    assert m["mrr@3"] == 0.375  # (1 + 1/2) / 4: rank 4 is beyond k
    assert m["hit@3"] == 0.5


def test_mean_passage_chars():
    golds = [GoldQuestion("a", "q", "A", ("abcd",)), GoldQuestion("b", "q", None, ())]
    results = [result([passage(1, "abcd"), passage(2, "ab")]), result([passage(1, "abcdef")], abstained=True)]
    assert compute_metrics(golds, results, [0.001, 0.002], k=3)["mean_passage_chars"] == 4.0  # (4 + 2 + 6) / 3


def test_metrics_without_unanswerable_or_answerable_questions():
    only_answerable = compute_metrics(GOLDS[:1], RESULTS[:1], [0.1], k=3)
    assert only_answerable["correct_abstentions"] is None
    assert only_answerable["hit@1"] == 1.0
    only_unanswerable = compute_metrics(GOLDS[4:], RESULTS[4:], [0.1, 0.2], k=3)
    assert only_unanswerable["hit@1"] is None and only_unanswerable["mrr@3"] is None
    assert only_unanswerable["correct_abstentions"] == 0.5


def test_per_question_rows():
    rows = per_question(GOLDS, RESULTS)
    assert [r["ok"] for r in rows] == [True, False, False, False, True, False]
    assert [r["hit_rank"] for r in rows] == [1, 2, 4, None, None, None]
    assert [r["answer_correct"] for r in rows] == [True, False, False, False, None, None]
    assert rows[0]["top_passage"] == "Alpha   BETA gamma." and rows[0]["top_similarity"] == 0.5
    assert rows[2]["answer"] is None and rows[2]["abstained"] is True


@pytest.mark.parametrize("values, q, expected", [
    ([1, 2, 3, 4], 0.5, 2.5),
    ([4, 1, 3, 2], 0.5, 2.5),  # order does not matter
    ([1, 2, 3, 4], 0.0, 1),
    ([1, 2, 3, 4], 1.0, 4),
    ([10, 20, 30, 40, 50], 0.95, 48.0),  # position 3.8: 40 + 0.8 * 10
    ([7], 0.95, 7),
])
def test_percentile(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 0.5))


# --- matching -----------------------------------------------------------------------------------------


def test_normalize_folds_quotes_space_and_case():
    assert normalize("  “Hello”\n\tWORLD’s  ‘x’ ") == "\"hello\" world's 'x'"
    assert normalize("a\u00a0b") == "a b"


def test_hits_and_answers_are_matched_after_normalization():
    gold = GoldQuestion("g", "q", "A", ("the mayor’s “plan”",))
    assert is_hit(passage(1, 'THE  Mayor\'s "Plan" passed.'), gold)
    assert not is_hit(passage(1, "The mayor's scheme passed."), gold)
    assert answer_correct(result([passage(1, "x")], 'The MAYOR\'S "plan" passed.', 1), gold)


def test_answer_contained_in_the_evidence_is_correct():
    gold = GoldQuestion("g", "q", "A", ("He said the bridge will close in May. Then he left.",))
    assert answer_correct(result([passage(1, "x")], "The bridge will close in May.", 1), gold)
    assert not answer_correct(result([passage(1, "x")], "The bridge will open in May.", 1), gold)
    assert not answer_correct(result([passage(1, "x")], abstained=True), gold)


def test_article_restriction_for_squad_style_gold():
    gold = GoldQuestion("g", "q", "Paris", ("Paris",), article="France")
    wrong_article = result([passage(1, "Paris is big.", article="Texas"), passage(2, "Paris is old.", article="France")],
                           "Paris is big.", 1)
    assert not is_hit(wrong_article["passages"][0], gold)
    assert first_hit_rank(wrong_article, gold) == 2
    assert not answer_correct(wrong_article, gold)  # the sentence is right, the cited article is not
    right_article = result(wrong_article["passages"], "Paris is old.", 2)
    assert answer_correct(right_article, gold)
    unrestricted = GoldQuestion("g", "q", "Paris", ("Paris",))
    assert first_hit_rank(wrong_article, unrestricted) == 1


# --- thresholds ---------------------------------------------------------------------------------------


def test_check_thresholds():
    metrics = {"hit@1": 0.5, "hit@3": 0.8, "answer_accuracy": None, "correct_abstentions": 1.0, "false_abstentions": 0.3}
    limits = {"min_hit1": 0.6, "min_hit3": 0.8, "min_answer_accuracy": 0.9, "min_correct_abstentions": None,
              "max_false_abstentions": 0.2}
    assert check_thresholds(metrics, limits) == [
        "hit@1 = 0.5 is below the limit 0.6 (--min-hit1).",
        "false_abstentions = 0.3 is above the limit 0.2 (--max-false-abstentions).",
    ]
    # limits that hold, equal values and absent limits give no failure
    assert check_thresholds(metrics, {"min_hit1": 0.5, "max_false_abstentions": 0.3, "min_hit3": None}) == []
    assert check_thresholds(metrics, {}) == []


# --- gold files ---------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_gold(tmp_path):
    path = write_lines(tmp_path / "gold.jsonl", [
        json.dumps({"id": "a", "question": "Who?", "answer": "Kersten", "evidence": ["Andrea Kersten"]}),
        "",
        "   ",
        json.dumps({"id": "b", "question": "Why?", "answer": None}),
        json.dumps({"id": "c", "question": "Where?", "answer": "Paris", "evidence": ["Paris"], "article": "France"}),
    ])
    golds = load_gold(path)
    assert golds == [
        GoldQuestion("a", "Who?", "Kersten", ("Andrea Kersten",)),
        GoldQuestion("b", "Why?", None, ()),
        GoldQuestion("c", "Where?", "Paris", ("Paris",), "France"),
    ]
    assert [g.answerable for g in golds] == [True, False, True]


def test_the_repository_gold_sets_load():
    repo = Path(__file__).resolve().parent.parent
    for name in ("seed.jsonl", "holdout.jsonl"):
        path = repo / "eval" / name
        if path.exists():
            golds = load_gold(path)
            assert golds and len({g.id for g in golds}) == len(golds)


@pytest.mark.parametrize("lines, message", [
    (['{"id": "a", "question": "Q?", "answer": "A", "evidence": ["e"]}', "{oops"], ":2: not JSON"),
    (['["a list"]'], ':1: each line needs "id" and "question" strings'),
    (['{"id": 1, "question": "Q?"}'], ':1: each line needs "id" and "question" strings'),
    (['{"id": "a", "question": "Q?", "answer": 5, "evidence": ["e"]}'], ':1: "answer" must be a string or null, not 5'),
    (['{"id": "a", "question": "Q?", "answer": "A", "evidence": "e"}'], ':1: "evidence" must be a list of non-empty strings'),
    (['{"id": "a", "question": "Q?", "answer": "A", "evidence": ["  "]}'], ':1: "evidence" must be a list of non-empty strings'),
    (['{"id": "a", "question": "Q?", "answer": "A", "evidence": []}'], ":1: an answerable question needs at least one evidence"),
    (['{"id": "a", "question": "Q?", "answer": null}', "", '{"id": "a", "question": "R?", "answer": null}'],
     ":3: duplicate id 'a'"),
    (["", "  "], ": the gold set has no questions"),
])
def test_load_gold_errors_name_the_line(tmp_path, lines, message):
    path = write_lines(tmp_path / "gold.jsonl", lines)
    with pytest.raises(GoldSetError) as err:
        load_gold(path)
    assert f"{path}{message}" in str(err.value)


def test_load_gold_unreadable(tmp_path):
    with pytest.raises(GoldSetError, match="cannot read the gold set"):
        load_gold(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes('{"id": "a", "question": "Café?"}'.encode("latin-1"))
    with pytest.raises(GoldSetError) as err:
        load_gold(bad)
    assert str(bad) in str(err.value)


def test_sample_is_deterministic():
    golds = [GoldQuestion(str(i), "q", None, ()) for i in range(10)]
    assert sample(golds, None, 0) == golds
    assert sample(golds, 10, 0) == golds and sample(golds, 99, 0) == golds
    picked = sample(golds, 3, 7)
    assert len(picked) == 3 and len(set(picked)) == 3 and set(picked) <= set(golds)
    assert sample(golds, 3, 7) == picked


# --- SQuAD --------------------------------------------------------------------------------------------

HARBOUR_1 = "  The storm flooded the harbour on Friday. Boats sank.\n"
HARBOUR_2 = "Crews pumped water for three days."
BAKERY = "A bakery on Elm Street won the sourdough contest."

SQUAD_V11 = {"version": "1.1", "data": [
    {"title": "Harbour_Storm", "paragraphs": [
        {"context": HARBOUR_1, "qas": [
            {"id": "q1", "question": "When did the storm flood the harbour?",
             "answers": [{"text": "Friday", "answer_start": 37}, {"text": "Friday", "answer_start": 37},
                         {"text": "on Friday", "answer_start": 34}]},
        ]},
        {"context": HARBOUR_2, "qas": [
            {"id": "q2", "question": "How long did crews pump?", "answers": [{"text": "three days", "answer_start": 23}]},
        ]},
    ]},
    {"title": "Bakery", "paragraphs": [
        {"context": BAKERY, "qas": [
            {"id": "q3", "question": "Which contest?", "answers": [{"text": "the sourdough contest", "answer_start": 28}]},
        ]},
    ]},
]}
SQUAD_V20 = {"version": "v2.0", "data": [
    {"title": "Bakery", "paragraphs": [
        {"context": BAKERY, "qas": [
            {"id": "p1", "question": "Which contest?", "is_impossible": False,
             "answers": [{"text": "sourdough contest", "answer_start": 32}]},
            {"id": "p2", "question": "Who owns the bakery?", "is_impossible": True, "answers": [],
             "plausible_answers": [{"text": "Elm Street", "answer_start": 15}]},
            {"id": "p3", "question": "What does it sell?", "answers": []},
        ]},
    ]},
]}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_squad_v11_articles_and_offsets(tmp_path):
    path = write_json(tmp_path / "squad.json", SQUAD_V11)
    articles, golds = squad_corpus(path)
    assert [a.id for a in articles] == ["Harbour_Storm", "Bakery"]
    harbour = articles[0]
    assert harbour.title == "Harbour Storm"
    assert harbour.date is None
    assert harbour.path == str(path.resolve())
    # paragraphs are the stripped contexts joined by one blank line; offsets refer to that text
    assert harbour.raw == HARBOUR_1.strip() + "\n\n" + HARBOUR_2
    first, second = harbour.paragraphs
    assert (first.number, first.start, first.end) == (1, 0, len(HARBOUR_1.strip()))
    assert (second.number, second.start, second.end) == (2, len(HARBOUR_1.strip()) + 2, len(harbour.raw))
    assert harbour.text(first) == HARBOUR_1.strip() and harbour.text(second) == HARBOUR_2
    assert harbour.sha256 == hashlib.sha256(harbour.raw.encode()).hexdigest()
    assert articles[1].raw == BAKERY and articles[1].paragraphs[0].end == len(BAKERY)
    # gold questions point at their article; duplicate answers are kept once, in order
    assert golds == [
        GoldQuestion("q1", "When did the storm flood the harbour?", "Friday", ("Friday", "on Friday"), "Harbour_Storm",
                     ("Friday", "on Friday")),  # SQuAD's answers are short answers too: span EM / F1
        GoldQuestion("q2", "How long did crews pump?", "three days", ("three days",), "Harbour_Storm", ("three days",)),
        GoldQuestion("q3", "Which contest?", "the sourdough contest", ("the sourdough contest",), "Bakery",
                     ("the sourdough contest",)),
    ]
    # the articles chunk with exact offsets like files do
    for article in articles:
        for c in chunk_article(article, max_tokens=256, count_tokens=lambda ts: [len(t.split()) for t in ts]):
            assert article.raw[c.start : c.end] == c.text
            para = article.paragraphs[c.paragraph - 1]
            assert para.start <= c.start < c.end <= para.end


def test_squad_v20_impossible_questions_are_unanswerable(tmp_path):
    articles, golds = squad_corpus(write_json(tmp_path / "v2.json", SQUAD_V20))
    assert len(articles) == 1
    assert golds == [
        GoldQuestion("p1", "Which contest?", "sourdough contest", ("sourdough contest",), "Bakery", ("sourdough contest",)),
        GoldQuestion("p2", "Who owns the bakery?", None, (), "Bakery"),
        GoldQuestion("p3", "What does it sell?", None, (), "Bakery"),
    ]


@pytest.mark.parametrize("content", ["{not json", '{"version": "1.1"}', "[]"])
def test_squad_file_that_is_not_squad(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GoldSetError) as err:
        squad_corpus(path)
    assert str(path) in str(err.value) and "not a SQuAD file" in str(err.value)


@pytest.mark.parametrize("data", [
    {"data": [{"paragraphs": []}]},  # an article without a title
    {"data": [{"title": "T"}]},  # without paragraphs
    {"data": [{"title": "T", "paragraphs": [{"qas": []}]}]},  # a paragraph without context
])
def test_squad_file_with_missing_fields_is_a_gold_set_error(tmp_path, data):
    path = write_json(tmp_path / "partial.json", data)
    with pytest.raises(GoldSetError) as err:
        squad_corpus(path)
    assert str(path) in str(err.value)
