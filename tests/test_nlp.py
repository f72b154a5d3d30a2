"""spaCy's pipeline as the project loads it: the same lemmas as spaCy's own tables give, and parses kept without
what the project never reads."""

from __future__ import annotations

from helpers import seed_article_path
from qa import nlp


def test_the_lemmatizer_word_lists_are_sets_and_give_spacys_own_lemmas():
    loaded = nlp.pipeline()
    table = loaded.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    assert table and all(isinstance(words, frozenset) for words in table.values())
    plain = nlp._spacy().load(nlp._pipeline_folder())  # spaCy's lists, as shipped
    assert all(isinstance(words, list) for words in plain.get_pipe("lemmatizer").lookups.get_table("lemma_index").values())
    text = seed_article_path().read_text(encoding="utf-8")
    ours = [(t.text, t.pos_, t.lemma_) for t in loaded(text)]
    theirs = [(t.text, t.pos_, t.lemma_) for t in plain(text)]
    assert len(ours) > 400
    assert ours == theirs


def test_a_kept_parse_holds_no_tensor_but_its_entities_parse_and_lemmas():
    doc = nlp.parse("The officer, John Smith, was fired on Monday by the Chicago police department.")
    assert doc.tensor.size == 0
    assert [(e.text, e.label_) for e in doc.ents] == [("John Smith", "PERSON"), ("Monday", "DATE"), ("Chicago", "GPE")]
    assert doc[1].dep_ == "nsubjpass" and doc[7].lemma_ == "fire"
    assert nlp.parse_many(["Who fired him?", doc.text])[1] is doc  # kept: the same Doc again
