"""Retrieval, grounding and answers.

Unit level: hand-written corpora and the deterministic fake embedder, so ranks and reasons are known in
advance. End to end: the real default model on the real seed article (one index per session).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import (SMALL_CORPUS, FakeEmbedder, answering, qa_clean_env, seed_article_path,  # noqa: F401
                     seed_engine, write_articles)
from qa import Engine, QuestionError, resolve_settings
from qa.articles import read_article
from qa.grounding import expected_type, has_type, unmatched_names
from qa.lexical import LexicalIndex, STOPWORDS, tokenize, words
from qa.retrieval import Retriever

pytestmark = pytest.mark.usefixtures("qa_clean_env")

# Words the fake "model" knows as whole words: typo correction leaves them alone, as the real model's
# vocabulary does for ordinary English.
COMMON = "who what will file filed say said there shifts night staff open how many much old reverse list python".split()


def quiet(_m: str) -> None:
    pass


def build_engine(folder: Path, articles: dict[str, str], **extra) -> Engine:
    corpus = write_articles(folder / "articles", articles)
    settings = resolve_settings(index_dir=str(folder / "index"), articles=[str(corpus)], model="fake-bow", **extra)
    return Engine.open(settings, embedder=FakeEmbedder(known_words=COMMON), log=quiet)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Engine:
    return build_engine(tmp_path_factory.mktemp("small"), SMALL_CORPUS)


def where(engine: Engine, passage) -> tuple[str, int]:
    return passage.citation.article, passage.citation.paragraph


# --- BM25 ---------------------------------------------------------------------------------------------


def test_tokenize_drops_stopwords_stems_and_folds():
    assert words("Gospić’s COPA’s officers' don't") == ["gospic", "copa", "officers", "don't"]
    assert tokenize("The officers' reports were filed") == ["offic", "report", "file"]
    assert tokenize("Storms") == tokenize("storm") == ["storm"]
    assert tokenize("what was the") == []
    assert {"the", "said", "article"} <= STOPWORDS


def test_bm25_ranks_by_term_frequency_and_ignores_non_matches():
    # three documents of three tokens each: equal lengths, so term frequency alone orders them
    texts = ["storm storm harbour", "storm harbour boats", "bread bread bread"]
    lex = LexicalIndex.build(texts)
    scores = lex.scores(tokenize("storm"))
    assert scores[0] > scores[1] > 0.0
    assert scores[2] == 0.0
    assert np.array_equal(lex.scores(tokenize("Storms!")), scores)  # stemmed and case-folded
    assert np.array_equal(lex.scores([]), np.zeros(3, np.float32))
    # a rarer term weighs more: "boats" is in one document, "harbour" in two
    both = lex.scores(tokenize("harbour boats"))
    assert both[1] > both[0] > both[2] == 0.0
    assert lex.vocabulary == {"storm": 2, "harbour": 2, "boats": 1, "bread": 1}


def test_hybrid_ranking_on_a_small_corpus(small):
    cases = {
        "How much will the bridge repairs cost?": ("bridge", 3),
        "Who will staff the library night shifts?": ("library", 3),
        "Which bakery won the sourdough contest?": ("bakery", 1),
        "What did the frost do to the apple blossoms?": ("orchard", 1),
        "Where can commuters take the ferry?": ("bridge", 4),
    }
    for question, expected in cases.items():
        answer = small.ask(question)
        assert where(small, answer.passages[0]) == expected, question
        assert answer.passages[0].rank == 1
        assert [p.rank for p in answer.passages] == [1, 2, 3]
        scores = [p.score for p in answer.passages]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("method", ["hybrid", "convex", "rrf", "dense", "bm25"])
def test_every_fusion_method_finds_the_one_matching_passage(small, method):
    retriever = Retriever(small.index, method=method)
    hits = retriever.search(small.query("Engineers found cracks in steel girders"), 3)
    top = small.index.chunks[hits[0].row]
    assert (top.article_id, top.paragraph) == ("bridge", 2)
    assert len({h.row for h in hits}) == 3


def test_bm25_only_ranking(small):
    retriever = Retriever(small.index, method="bm25")
    hits = retriever.search(small.query("sourdough starter culture"), 3)
    ranked = [(small.index.chunks[h.row].article_id, small.index.chunks[h.row].paragraph) for h in hits]
    # "sourdough" only in bakery 1; "starter culture" only in bakery 2, which has two of the three words
    assert ranked[:2] == [("bakery", 2), ("bakery", 1)]
    assert hits[0].lexical == 1.0


def test_search_with_k_larger_than_the_corpus(small):
    hits = Retriever(small.index).search(small.query("bridge"), 50)
    assert len(hits) == len(small.index.chunks) == 12
    assert len({h.row for h in hits}) == 12


# --- near-duplicates ----------------------------------------------------------------------------------

STORM = "The storm knocked out power to 40,000 homes on Friday."
DUPLICATES = {
    "wire_a.txt": f"date 2024-01-10 {STORM}\n\nCrews from three states worked through the night.\n",
    "wire_b.txt": f"date 2024-01-10 {STORM}\n\nSchools in the county stayed closed on Monday.\n",
    "wire_c.txt": "date 2024-01-11 THE STORM KNOCKED OUT POWER\n\nThe storm  knocked out the power to 40,000 homes on Friday.\n",
    "other.txt": "A new bakery opened downtown.\n\nIt sells rye bread.\n",
}


@pytest.fixture(scope="module")
def duplicates(tmp_path_factory) -> Engine:
    return build_engine(tmp_path_factory.mktemp("dups"), DUPLICATES)


def test_identical_paragraphs_in_two_articles_give_one_passage(duplicates):
    answer = duplicates.ask("How many homes lost power in the storm?", k=5)
    texts = [" ".join(p.text.lower().split()) for p in answer.passages]
    storm = [p for p in answer.passages if "knocked out" in p.text]
    assert len(storm) == 1  # wire_a, wire_b and wire_c's copy collapse into the best one
    assert storm[0].rank == 1
    assert len(set(texts)) == len(texts)
    # the three copies are in the index: collapsing happens at search time
    assert sum("knocked out" in c.text for c in duplicates.index.chunks) == 3


def test_duplicates_collapse_without_losing_k(duplicates):
    hits = Retriever(duplicates.index).search(duplicates.query("storm power homes Friday crews schools"), 4)
    assert len(hits) == 4
    rows = [duplicates.index.chunks[h.row] for h in hits]
    assert sum("knocked out" in c.text for c in rows) == 1
    vectors = duplicates.index.passage_vectors[[h.row for h in hits]]
    sims = vectors @ vectors.T
    assert (sims[~np.eye(4, dtype=bool)] < 0.97).all()


# --- typo correction ----------------------------------------------------------------------------------

TYPO_TEXTS = [
    "Andrea Kersten said police officers filed reports.",
    "The investigation into the police continues.",
    "Officers said the investigation found nothing.",
]


@pytest.fixture(scope="module")
def typo_lexicon() -> LexicalIndex:
    return LexicalIndex.build(TYPO_TEXTS)


def known(word: str) -> bool:
    return word in COMMON


@pytest.mark.parametrize("question, corrected, fixes", [
    ("Who is Kersen?", "Who is Kersten?", {"Kersen": "Kersten"}),  # one letter missing
    ("Did polcie file reports?", "Did police file reports?", {"polcie": "police"}),  # a swap is one edit
    ("Is the invesigaton over?", "Is the investigation over?", {"invesigaton": "investigation"}),  # 2 edits, 11 letters
    ("What did KERSEN say?", "What did KERSTEN say?", {"KERSEN": "KERSTEN"}),  # case kept
    ("What is Kersen's job?", "What is Kersten's job?", {"Kersen's": "Kersten's"}),  # possessive kept
    ("Did Cersten speak?", "Did Kersten speak?", {"Cersten": "Kersten"}),  # 7 letters: any first letter
])
def test_typos_are_corrected_to_article_words(typo_lexicon, question, corrected, fixes):
    assert typo_lexicon.correct(question, known) == (corrected, fixes)


@pytest.mark.parametrize("question", [
    "What did teh officers say?",  # under 4 letters
    "Who is Kersn?",  # 5 letters, 2 edits away: too far
    "Were officers there?",  # in the articles
    "Did the police file?",  # a word the model knows
])
def test_words_that_are_not_typos_are_left_alone(typo_lexicon, question):
    assert typo_lexicon.correct(question, known) == (question, {})


def test_known_model_word_is_not_corrected(typo_lexicon):
    assert typo_lexicon.correct("Who is Kersen?", lambda w: w == "kersen") == ("Who is Kersen?", {})


def test_question_with_typos_finds_the_passage(small):
    assert small.query("Who will staff the libary nigth shifts?").text == "Who will staff the library night shifts?"
    answer = small.ask("Who will staff the libary nigth shifts?")
    assert not answer.abstained
    assert answer.text == "Librarian Otto Brandt said volunteers will staff the night shifts."
    assert answer.question == "Who will staff the libary nigth shifts?"  # the user's words are kept


# --- grounding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("question, kind", [
    ("How many officers were involved?", "number"),
    ("What number of migrants were moved?", "number"),
    ("How much higher did the river rise?", "number"),
    ("How much did the new shelter cost?", "money"),
    ("How much money was spent?", "money"),
    ("How old is the girl?", "age"),
    ("What age was the victim?", "age"),
    ("What was the officer's age?", "age"),
    ("When did COPA receive the tip?", "time"),
    ("What time does the bakery open?", "time"),
    ("On what date was the bridge closed?", "time"),
    ("When does COPA expect to wrap up the investigation?", "time"),  # a plan's date
    ("When do treaties apply?", None),  # a condition, not a time
    ("Who is Andrea Kersten?", None),
    ("Were any victims identified?", None),
])
def test_expected_type(question, kind):
    assert expected_type(question) == kind


@pytest.mark.parametrize("text, kind, expected", [
    ("Four officers were named.", "number", True),
    ("Nearly 5,000 immigrants were living there.", "number", True),
    ("The officers were named.", "number", False),
    ("The agency received information on July 6.", "time", True),
    ("The bakery opens on Sunday.", "time", True),
    ("The bakery opens at 6 am daily.", "time", True),
    ("The tipster was unknown.", "time", False),
    ("A 15-year-old girl was moved.", "age", True),
    ("The mayor, aged 62, spoke.", "age", True),
    ("The allegation involved a minor.", "age", True),
    ("The mayor spoke to reporters.", "age", False),
    ("The repairs will cost $4 million.", "money", True),
    ("It cost 300 dollars.", "money", True),
    ("Four officers were named.", "money", False),
])
def test_has_type(text, kind, expected):
    assert has_type(text, kind) is expected


@pytest.mark.parametrize("text", ["The hearing began at 9 a.m.", "The bakery opens at 6 a.m. every day.",
                                  "Polls close at 8 p.m. across the state."])
def test_clock_times_with_periods_are_times(text):
    # "a.m." and "p.m." are how news style writes clock times
    assert has_type(text, "time") is True


def test_a_clock_time_is_not_an_age():
    # "at 10 a.m." says when, not how old: an age question must not be answered with it
    assert has_type("The council met at 10 a.m. on Monday.", "age") is False


def test_unmatched_names():
    vocabulary = {w: 1 for w in words("Andrea Kersten of COPA said the Chicago police officers moved migrants")}
    assert unmatched_names("Did Lori Lightfoot comment?", vocabulary) == ["Lori Lightfoot"]
    assert unmatched_names("What did Andrea Kersten say?", vocabulary) == []
    assert unmatched_names("Were Chicago officers moved?", vocabulary) == []  # first word aside
    assert unmatched_names("Did the FBI look into COPA?", vocabulary) == []  # short acronym tolerated
    assert unmatched_names("Did Kersten's team meet Mayor Quimby?", vocabulary) == ["Mayor Quimby"]
    assert unmatched_names("“Kersten” said what?", vocabulary) == []


# --- answers and abstention ---------------------------------------------------------------------------


def test_answer_is_a_verbatim_sentence_of_the_top_passage(small):
    assert not small.ask("How much will the bridge repairs cost?").abstained  # answered or uncertain, as fitted
    answer = answering(small).ask("How much will the bridge repairs cost?")  # the sentence the stages choose
    assert answer.status == "answered" and answer.reason is None
    assert answer.text == "The repairs will cost $4 million, paid by the state transport fund."
    assert answer.citation == 1
    top = answer.passages[0]
    assert where(small, top) == ("bridge", 3)
    raw = small.index.articles["bridge"].path
    text = Path(raw).read_text(encoding="utf-8")
    assert text[top.highlight.start : top.highlight.end] == answer.text
    assert text[top.citation.start : top.citation.end] == top.text
    assert top.citation.date == "2024-03-02"
    assert top.citation.path == "articles/bridge.txt"  # relative to the project root, the index folder's parent
    assert top.citation.title == "The Harlow river bridge will close for repairs next month."
    assert not any(p.closest for p in answer.passages)


def test_off_topic_question_abstains_with_the_closest_passages(small):
    answer = small.ask("How do I reverse a list in Python?")
    assert answer.abstained
    assert answer.text is None and answer.citation is None
    assert answer.reason == "Nothing in the articles is close to this question."
    assert answer.details == f"best similarity 0.00, under the threshold {small.settings.abstain_below:.2f}"
    assert len(answer.passages) == 3
    assert all(p.closest for p in answer.passages)


def test_a_question_of_no_real_words_abstains_without_passages(small):
    """Typo correction would map nonsense onto article words (a confident answer for "asdfghjkl qwertyuiop")."""
    answer = small.ask("asdfghjkl qwertyuiop zxcvbnm?")
    assert answer.abstained and answer.passages == ()
    assert answer.reason == "The question has no word I recognise ('asdfghjkl', 'qwertyuiop', 'zxcvbnm'); ask it in plain words."
    assert not small.ask("How much will the brigde repairs cost?").abstained  # a typo among real words is fine


def test_unknown_name_abstains_and_names_it(small):
    answer = small.ask("What did Mayor Quimby say about the bridge repairs?")
    assert answer.abstained
    assert answer.reason == "The articles never mention 'Mayor Quimby'."
    assert where(small, answer.passages[0])[0] == "bridge"  # still the closest text, marked as such
    assert all(p.closest for p in answer.passages)


NO_NUMBERS = {
    "library.txt": SMALL_CORPUS["library.txt"],
    "garden.txt": "Gardeners planted roses along the river path.\n\nVolunteers water the roses every evening.\n",
}


@pytest.fixture(scope="module")
def no_numbers(tmp_path_factory) -> Engine:
    engine = build_engine(tmp_path_factory.mktemp("nonum"), NO_NUMBERS)
    assert not any(has_type(c.text, "number") for c in engine.index.chunks)
    return engine


def test_missing_kind_of_fact_abstains(no_numbers):
    answer = no_numbers.ask("How many volunteers will staff the library night shifts?")
    assert answer.abstained
    assert answer.reason == "The articles do not say." and answer.details == "the closest passages give no number"
    assert where(no_numbers, answer.passages[0]) == ("library", 3)
    # the same question without "how many" is answered from that passage
    answer = no_numbers.ask("Who will staff the library night shifts?")
    assert not answer.abstained
    assert answer.text == "Librarian Otto Brandt said volunteers will staff the night shifts."


def test_time_question_is_answered_with_a_clock_time(tmp_path):
    engine = build_engine(tmp_path, {
        "council.txt": "The council hearing began at 9 a.m. in the town hall.\n\nResidents asked for brighter street lights.\n",
    })
    answer = engine.ask("When did the council hearing begin?")
    assert not answer.abstained, answer.reason
    assert answer.text == "The council hearing began at 9 a.m. in the town hall."


def test_typed_question_is_answered_with_a_typed_sentence(small):
    answer = small.ask("When does the bakery open?")
    assert not answer.abstained
    assert answer.text == "The bakery opens at 6 a.m. every day except Sunday."


def test_age_question_is_not_answered_from_an_unrelated_passage(small):
    # The corpus never says how old the bridge is. The only age in it is of a bakery's starter culture,
    # which shares nothing with the question but the word "old": the engine must abstain, not answer with it.
    answer = small.ask("How old is the Harlow river bridge?")
    assert answer.abstained, answer.text


def test_k_sets_the_number_of_passages(small):
    assert len(small.ask("bridge repairs", k=1).passages) == 1
    assert len(small.ask("bridge repairs", k=5).passages) == 5


@pytest.mark.parametrize("question", ["", "   \n\t", None, 42, "x" * 1001])
def test_invalid_questions_raise_question_error(small, question):
    with pytest.raises(QuestionError):
        small.ask(question)


@pytest.mark.parametrize("k", [0, -1, 51])
def test_invalid_k_raises_question_error(small, k):
    with pytest.raises(QuestionError) as err:
        small.ask("bridge repairs", k=k)
    assert "50" in str(err.value) and str(k) in str(err.value)  # the allowed range and the offending value


# --- the real model on the seed article ---------------------------------------------------------------


def _file_text(citation_path: str, engine: Engine) -> str:
    """The cited file's text. Citation paths are relative to the project root (the index folder's parent)
    when the article is under it, else absolute."""
    p = Path(citation_path)
    if not p.is_absolute():
        p = engine.settings.index_path.resolve().parent / p
    with open(p, encoding="utf-8", newline="") as fh:  # newline="": keep \r\n, so offsets stay exact
        return fh.read()


@pytest.mark.slow
def test_seed_engine_uses_the_real_model(seed_engine):
    from qa.embedding import SentenceTransformerEmbedder

    assert isinstance(seed_engine.embedder, SentenceTransformerEmbedder)
    assert seed_engine.index.model == "all-MiniLM-L6-v2"
    assert Path(seed_engine.settings.index_dir).resolve() != (Path(__file__).parent.parent / "index").resolve()


@pytest.mark.slow
def test_seed_victims_question(seed_engine):
    answer = seed_engine.ask("Were any victims identified?")
    assert not answer.abstained
    assert "we have not identified any migrants claiming to be the victim" in answer.text
    assert answer.citation == 1
    top = answer.passages[0]
    assert top.rank == 1
    assert top.citation.paragraph == 8
    assert top.citation.article == "000_1377f01862d9140a"
    assert top.citation.date == "2023-07-18"
    raw = _file_text(top.citation.path, seed_engine)
    assert raw[top.highlight.start : top.highlight.end] == answer.text


@pytest.mark.slow
@pytest.mark.parametrize("question", [
    "Were any victims identified?",
    "How many immigrants were living at city-run shelters?",
    "Who is the chief administrator of COPA?",
    "How do I reverse a list in Python?",
])
def test_seed_citations_match_the_file_exactly(seed_engine, question):
    answer = seed_engine.ask(question)
    article = read_article(seed_article_path())
    paragraphs = {p.number: p for p in article.paragraphs}
    for p in answer.passages:
        raw = _file_text(p.citation.path, seed_engine)
        assert raw == article.raw
        assert raw[p.citation.start : p.citation.end] == p.text
        assert p.citation.start <= p.highlight.start < p.highlight.end <= p.citation.end
        para = paragraphs[p.citation.paragraph]
        assert para.start <= p.citation.start and p.citation.end <= para.end
    if not answer.abstained:
        top = answer.passages[answer.citation - 1]
        assert _file_text(top.citation.path, seed_engine)[top.highlight.start : top.highlight.end] == answer.text


@pytest.mark.slow
def test_seed_numeric_question(seed_engine):
    answer = seed_engine.ask("How many immigrants were living at city-run shelters?")
    assert not answer.abstained
    assert "nearly 5,000 immigrants were living at 12 city-run makeshift shelters" in answer.text
    assert answer.passages[0].citation.paragraph == 12


@pytest.mark.slow
@pytest.mark.parametrize("question", ["How do I reverse a list in Python?", "What is the capital of France?"])
def test_seed_off_topic_question_abstains(seed_engine, question):
    answer = seed_engine.ask(question)
    assert answer.abstained
    assert answer.text is None and answer.citation is None
    assert answer.reason in ("Nothing in the article is close to this question.",  # in plain words, scores aside
                             "The article does not say what the capital of France is.")
    assert "best similarity" in answer.details
    assert answer.passages and all(p.closest for p in answer.passages)


@pytest.mark.slow
@pytest.mark.parametrize("question, name", [
    ("Did Jane Doe file a complaint with COPA?", "Jane Doe"),
    ("What did Senator Tammy Duckworth say about the COPA investigation?", "Tammy Duckworth"),
])
def test_seed_question_about_someone_never_mentioned_abstains(seed_engine, question, name):
    assert name.split()[-1] not in read_article(seed_article_path()).raw
    answer = seed_engine.ask(question)
    assert answer.abstained
    assert answer.reason.startswith("The article never mentions")
    assert name in answer.reason
    assert all(p.closest for p in answer.passages)


@pytest.mark.slow
def test_seed_passages_never_exceed_a_paragraph(seed_engine):
    article = read_article(seed_article_path())
    index = seed_engine.index
    assert len(index.chunks) == 12
    for chunk in index.chunks:
        para = article.paragraphs[chunk.paragraph - 1]
        assert para.start <= chunk.start < chunk.end <= para.end
        assert article.raw[chunk.start : chunk.end] == chunk.text
        assert seed_engine.embedder.count_tokens([chunk.text])[0] <= seed_engine.embedder.max_tokens
    for skipped in article.skipped:  # headlines and promos are not searchable
        assert all(article.text(skipped) not in c.text for c in index.chunks)
