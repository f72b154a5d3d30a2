"""Gold question sets and the metrics of `qa eval`.

Gold format (JSONL): {"id": str, "question": str, "answer": str | null, "evidence": [str, ...]}
and, optionally, "article": str (a hit must then come from that article; SQuAD uses it).
A passage is a hit when it contains an evidence quote after normalization (lower case, white space
folded, curly quotes and apostrophes made straight). `answer: null` marks a question the corpus cannot
answer: the right response is to abstain.

Lines of staff feedback (qa/feedback.py; they have a "verdict") may also hold "history" (the chat messages the
question was asked after: it is asked with them), "scope" (the article ids it was restricted to: it is asked
restricted to them) and "wrong" (sentences staff marked as a wrong answer). Such a line may be answerable
without evidence (where the answer is, nobody said): it then counts in the false refusals and `wrong_repeated`,
not in hit@k. Feedback lines that share an id are one item judged again: the last line counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import GoldSetError

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"', "′": "'", "″": '"'})


def normalize(text: str) -> str:
    return " ".join(text.translate(_QUOTES).lower().split())


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answer: str | None
    evidence: tuple[str, ...]
    article: str | None = None
    short: tuple[str, ...] = ()  # short answers (SQuAD's gold spans, or "short" in a gold line): span EM / F1
    history: tuple[dict, ...] = ()  # chat messages asked before it ({"role", "content"}), oldest first
    scope: tuple[str, ...] | None = None  # the article ids it is asked about (None: every article)
    wrong: tuple[str, ...] = ()  # sentences that are a wrong answer to it (staff feedback)
    kind: str | None = None  # "fact", "yes_no", "unanswerable", ... (news gold sets)
    part: str | None = None  # "tuning" or "held-out" (news gold sets)

    @property
    def answerable(self) -> bool:
        return self.answer is not None

    @property
    def located(self) -> bool:
        """Whether the gold says where the answer is (evidence quotes): only then are hits and answers scored."""
        return self.answerable and bool(self.evidence)


def load_gold(path: str | Path) -> list[GoldQuestion]:
    """Read a gold JSONL file; errors name the line and the problem."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldSetError(f"{p}: cannot read the gold set ({exc}).") from None
    out: list[GoldQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise GoldSetError(f"{p}:{n}: not JSON ({exc}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("question"), str):
            raise GoldSetError(f'{p}:{n}: each line needs "id" and "question" strings.')
        answer, evidence = row.get("answer"), row.get("evidence", [])
        feedback = "verdict" in row
        if answer is not None and not isinstance(answer, str):
            raise GoldSetError(f'{p}:{n}: "answer" must be a string or null, not {answer!r}.')
        if not isinstance(evidence, list) or not all(isinstance(e, str) and e.strip() for e in evidence):
            raise GoldSetError(f'{p}:{n}: "evidence" must be a list of non-empty strings.')
        if answer is not None and not evidence and not feedback:
            raise GoldSetError(f'{p}:{n}: an answerable question needs at least one evidence quote.')
        if row["id"] in seen and not feedback:
            raise GoldSetError(f"{p}:{n}: duplicate id {row['id']!r}.")
        seen.add(row["id"])
        short = row.get("short", [])
        if not isinstance(short, list) or not all(isinstance(x, str) and x.strip() for x in short):
            raise GoldSetError(f'{p}:{n}: "short" must be a list of short answers (strings).')
        history, scope, wrong = row.get("history", []), row.get("scope"), row.get("wrong", [])
        if not isinstance(history, list) or not all(isinstance(m, dict) and m.get("role") in ("user", "assistant")
                                                    and isinstance(m.get("content"), str) for m in history):
            raise GoldSetError(f'{p}:{n}: "history" must be a list of {{"role": "user" | "assistant", "content": str}}.')
        if scope is not None and (not isinstance(scope, list) or not scope or not all(isinstance(a, str) for a in scope)):
            raise GoldSetError(f'{p}:{n}: "scope" must be a non-empty list of article ids.')
        if not isinstance(wrong, list) or not all(isinstance(w, str) and w.strip() for w in wrong):
            raise GoldSetError(f'{p}:{n}: "wrong" must be a list of sentences (strings).')
        kind, part = row.get("kind"), row.get("part")
        if not all(v is None or isinstance(v, str) for v in (kind, part, row.get("article"))):
            raise GoldSetError(f'{p}:{n}: "article", "kind" and "part" must be strings.')
        out.append(GoldQuestion(row["id"], row["question"], answer, tuple(evidence), row.get("article"), tuple(short),
                                tuple({"role": m["role"], "content": m["content"]} for m in history),
                                tuple(scope) if scope else None, tuple(wrong), kind, part))
    if not out:
        raise GoldSetError(f"{p}: the gold set has no questions.")
    latest = {g.id: g for g in out}  # feedback judged again: the last line of an id counts
    return [g for g in out if latest[g.id] is g]


def is_hit(passage: dict, gold: GoldQuestion) -> bool:
    if gold.article is not None and passage["citation"]["article"] != gold.article:
        return False
    text = normalize(passage["text"])
    return any(normalize(e) in text for e in gold.evidence)


def first_hit_rank(result: dict, gold: GoldQuestion) -> int | None:
    for p in result["passages"]:
        if is_hit(p, gold):
            return int(p["rank"])
    return None


def repeats_wrong(result: dict, gold: GoldQuestion) -> bool:
    """The reply gives a sentence staff marked as a wrong answer to this question."""
    if not gold.wrong or not result.get("answer") or result.get("abstained"):
        return False
    sentence = normalize(result["answer"]["text"])
    return any(normalize(w) in sentence or sentence in normalize(w) for w in gold.wrong)


def answer_correct(result: dict, gold: GoldQuestion) -> bool:
    """The answer sentence contains an evidence quote, or an evidence quote contains the whole sentence."""
    if result["answer"] is None:
        return False
    sentence = normalize(result["answer"]["text"])
    cited = next((p for p in result["passages"] if p["rank"] == result["answer"]["citation"]), None)
    if gold.article is not None and (cited is None or cited["citation"]["article"] != gold.article):
        return False
    return any(normalize(e) in sentence or sentence in normalize(e) for e in gold.evidence)


def _squad_normalize(text: str) -> list[str]:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, white space folded."""
    import string

    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return [w for w in text.split() if w not in ("a", "an", "the")]


def span_scores(result: dict, gold: GoldQuestion) -> tuple[float, float]:
    """(exact match, F1) of the answer's short span against the gold short answers, SQuAD-style (best over the
    gold answers); no span (an abstention, a sentence without one) scores 0."""
    span = ((result.get("answer") or {}).get("span") or {}).get("text")
    if not span:
        return 0.0, 0.0
    pred = _squad_normalize(span)
    best_em = best_f1 = 0.0
    for g in gold.short:
        truth = _squad_normalize(g)
        best_em = max(best_em, float(pred == truth))
        common = sum(min(pred.count(w), truth.count(w)) for w in set(pred))
        if common:
            precision, recall = common / len(pred), common / len(truth)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return best_em, best_f1


def status_of(result: dict) -> str:
    """answered / uncertain / abstained (results of older servers carry only `abstained`)."""
    return result.get("status") or ("abstained" if result["abstained"] else "answered")


def wrong_bold(result: dict, gold: GoldQuestion) -> bool:
    """A bold short answer shown that is not one of the gold short answers (nor holds one, nor is held by one)."""
    span = ((result.get("answer") or {}).get("span") or {}).get("text")
    if not span or status_of(result) != "answered":
        return False
    pred = " ".join(_squad_normalize(span))
    for g in gold.short:
        truth = " ".join(_squad_normalize(g))
        if pred == truth or (truth and truth in pred) or (pred and pred in truth):
            return False
    return True


def is_fact_question(gold: GoldQuestion) -> bool:
    """An answerable question with a short answer (news sets mark them kind "fact"; SQuAD's all have one)."""
    return gold.answerable and bool(gold.short) and gold.kind in (None, "fact")


def risk_coverage(golds: Sequence[GoldQuestion], results: Sequence[dict], steps: int = 20) -> list[dict]:
    """For confidence thresholds 0, 1/steps, ..., 1: what answering only at or above it would give (questions the
    rules refused, or without a confidence, are never answered): answered share, coverage (answerable questions
    answered right) and risk (wrong among answered; an unanswerable question answered is wrong)."""
    rows = [(r.get("confidence"), g.answerable and answer_correct(r, g), g.answerable)
            for g, r in zip(golds, results) if r.get("answer") is not None or r.get("confidence") is not None]
    n_answerable = sum(g.answerable for g in golds)
    out = []
    for i in range(steps + 1):
        t = i / steps
        taken = [(right, answerable) for c, right, answerable in rows if c is not None and c >= t and right is not None]
        n = len(taken)
        right_n = sum(1 for right, _ in taken if right)
        out.append({"threshold": round(t, 4), "answered": round(n / len(golds), 4) if golds else None,
                    "coverage": round(right_n / n_answerable, 4) if n_answerable else None,
                    "risk": round(1 - right_n / n, 4) if n else None})
    return out


def reliability(golds: Sequence[GoldQuestion], results: Sequence[dict], bins: int = 10) -> list[dict]:
    """The reliability diagram's points: per confidence bin, the questions whose reply quoted a sentence (answered or
    uncertain), their mean confidence and how often the sentence was right (an unanswerable question's never is)."""
    pairs = [(r["confidence"], g.answerable and answer_correct(r, g)) for g, r in zip(golds, results)
             if r.get("confidence") is not None and r.get("answer") is not None]
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi or (b == bins - 1 and c == hi)]
        if inside:
            out.append({"bin": [round(lo, 4), round(hi, 4)], "n": len(inside),
                        "mean_confidence": round(sum(c for c, _ in inside) / len(inside), 4),
                        "right": round(sum(ok for _, ok in inside) / len(inside), 4)})
    return out


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def compute_metrics(golds: Sequence[GoldQuestion], results: Sequence[dict], latencies: Sequence[float], k: int) -> dict:
    """Metrics over one run. Retrieval metrics count the listed passages even when the engine
    abstained; answer accuracy counts a false abstention as wrong."""
    answerable = [(g, r) for g, r in zip(golds, results) if g.answerable]
    located = [(g, r) for g, r in answerable if g.located]  # where the answer is, the gold says
    unanswerable = [(g, r) for g, r in zip(golds, results) if not g.answerable]
    judged_wrong = [(g, r) for g, r in zip(golds, results) if g.wrong]
    ranks = [first_hit_rank(r, g) for g, r in located]

    def rate(xs: Iterable[bool], n: int) -> float | None:
        return round(sum(xs) / n, 4) if n else None

    na, nl, nu = len(answerable), len(located), len(unanswerable)
    passages = [len(p["text"]) for r in results for p in r["passages"]]
    spans = [(span_scores(r, g)) for g, r in located if g.short]
    answered = [(g, r) for g, r in zip(golds, results) if status_of(r) == "answered" and (g.located or not g.answerable)]
    facts = [(g, r) for g, r in located if is_fact_question(g)]
    return {
        "questions": len(golds), "answerable": na, "unanswerable": nu, "k": k,
        "hit@1": rate((r == 1 for r in ranks), nl),
        "hit@3": rate((r is not None and r <= 3 for r in ranks), nl),
        f"hit@{k}": rate((r is not None and r <= k for r in ranks), nl),
        f"mrr@{k}": round(sum(1 / r for r in ranks if r is not None and r <= k) / nl, 4) if nl else None,
        "answer_accuracy": rate((answer_correct(r, g) for g, r in located), nl),
        "coverage": rate((status_of(r) == "answered" and answer_correct(r, g) for g, r in located), nl),
        "answered_precision": rate((g.answerable and answer_correct(r, g) for g, r in answered), len(answered)),
        "unanswerable_answered": rate((status_of(r) == "answered" for _, r in unanswerable), nu),
        "uncertain": rate((status_of(r) == "uncertain" for r in results), len(results)),
        "fact_questions": len(facts),
        "wrong_bold": rate((wrong_bold(r, g) for g, r in facts), len(facts)),
        "correct_abstentions": rate((r["abstained"] for _, r in unanswerable), nu),
        "false_abstentions": rate((r["abstained"] for _, r in answerable), na),
        "wrong_repeated": rate((repeats_wrong(r, g) for g, r in judged_wrong), len(judged_wrong)),
        "mean_passage_chars": round(sum(passages) / len(passages), 1) if passages else None,
        "span_exact_match": round(sum(em for em, _ in spans) / len(spans), 4) if spans else None,
        "span_f1": round(sum(f1 for _, f1 in spans) / len(spans), 4) if spans else None,
        "span_shown": round(sum(bool((r.get("answer") or {}).get("span")) for g, r in located if g.short) / len(spans), 4)
        if spans else None,
        "latency_ms_p50": round(percentile(latencies, 0.5) * 1000, 2),
        "latency_ms_p95": round(percentile(latencies, 0.95) * 1000, 2),
    }


def per_question(golds: Sequence[GoldQuestion], results: Sequence[dict]) -> list[dict]:
    """One record per question: what was expected, what came back, and whether it was right."""
    rows = []
    for g, r in zip(golds, results):
        rank = first_hit_rank(r, g) if g.located else None
        if g.answerable:  # a feedback line answerable "somewhere": answered, and not with a sentence marked wrong
            ok = (rank == 1 if g.located else not repeats_wrong(r, g)) and not r["abstained"]
        else:
            ok = r["abstained"]
        rows.append({
            "id": g.id, "question": g.question, "expected": g.answer, "evidence": list(g.evidence),
            "ok": ok, "hit_rank": rank, "abstained": r["abstained"],
            "answer_correct": answer_correct(r, g) if g.located else None,
            "answer": r["answer"]["text"] if r.get("answer") else None,
            "top_passage": r["passages"][0]["text"] if r["passages"] else None,
            "top_similarity": r["passages"][0]["dense"] if r["passages"] and "dense" in r["passages"][0] else None,
        })
    return rows


THRESHOLDS = {  # option -> (metric, direction)
    "min_hit1": ("hit@1", "min"),
    "min_hit3": ("hit@3", "min"),
    "min_answer_accuracy": ("answer_accuracy", "min"),
    "min_correct_abstentions": ("correct_abstentions", "min"),
    "max_false_abstentions": ("false_abstentions", "max"),
}


def check_thresholds(metrics: dict, limits: dict[str, float | None]) -> list[str]:
    """Failures as sentences; empty when every given limit holds."""
    failures = []
    for option, limit in limits.items():
        if limit is None:
            continue
        metric, direction = THRESHOLDS[option]
        value = metrics.get(metric)
        if value is None:
            continue
        if (direction == "min" and value < limit) or (direction == "max" and value > limit):
            word = "below" if direction == "min" else "above"
            failures.append(f"{metric} = {value} is {word} the limit {limit} (--{option.replace('_', '-')}).")
    return failures


def squad_corpus(path: str | Path) -> tuple[list, list[GoldQuestion]]:
    """A SQuAD v1.1 or v2.0 file as a newsroom archive: one article per SQuAD article (its paragraphs
    joined by blank lines; offsets refer to that text, not the JSON file) and one gold question per
    question, whose evidence is its answers (v2.0's impossible questions are unanswerable)."""
    p = Path(path)
    layout = '{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text"}]}]}]}]}'
    try:
        data = json.loads(p.read_text(encoding="utf-8"))["data"]
        return _squad_articles(p, data)
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldSetError(f"{p}: cannot read the SQuAD file ({exc}).") from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise GoldSetError(f"{p}: not a SQuAD file ({type(exc).__name__}: {exc}); expected {layout}.") from None


def _squad_articles(p: Path, data: list) -> tuple[list, list[GoldQuestion]]:
    if not isinstance(data, list) or not data:
        raise ValueError("'data' must be a non-empty list of articles")
    articles, golds = [], []
    for item in data:
        aid = item["title"]
        for para in item["paragraphs"]:
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a["text"].strip()))
                impossible = qa.get("is_impossible", False) or not answers
                golds.append(GoldQuestion(qa["id"], qa["question"], None if impossible else answers[0],
                                          () if impossible else answers, aid, () if impossible else answers))
        articles.append(article_of_paragraphs(aid, str(p.resolve()), [para["context"].strip() for para in item["paragraphs"]],
                                              aid.replace("_", " ")))
    return articles, golds


def article_of_paragraphs(article_id: str, source: str, texts: Sequence[str], title: str):
    """An Article of the texts as paragraphs, joined by blank lines (SQuAD's contexts, a CANARD dialogue's answers)."""
    import hashlib

    from .types import Article, Paragraph

    parts, paragraphs, pos = [], [], 0
    for i, text in enumerate(texts):
        if i:
            parts.append("\n\n")
            pos += 2
        paragraphs.append(Paragraph(len(paragraphs) + 1, pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
    raw = "".join(parts)
    return Article(article_id, source, raw, hashlib.sha256(raw.encode()).hexdigest(), title, None, tuple(paragraphs))


def sample(golds: Sequence[GoldQuestion], n: int | None, seed: int) -> list[GoldQuestion]:
    import random

    if n is None or n >= len(golds):
        return list(golds)
    return random.Random(seed).sample(list(golds), n)


# --- conversations ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GoldConversation:
    """A conversation gold line: {"id", "turns": [{"question", "answer", "evidence", "kind"?, "interpreted_as"?}],
    "article"?}. Each turn is scored like a gold question (`turns`), asked with the service's own earlier replies
    as history."""

    id: str
    turns: tuple[GoldQuestion, ...]
    kinds: tuple[str | None, ...]
    rewrites: tuple[str | None, ...]  # the self-contained question a careful reader would have asked


def is_conversation_file(path: str | Path) -> bool:
    """True when the file's first line is a conversation (it has "turns")."""
    try:
        with open(path, encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
        return isinstance(json.loads(first), dict) and "turns" in json.loads(first)
    except (OSError, ValueError):
        return False


def load_conversations(path: str | Path) -> list[GoldConversation]:
    """Read a conversation gold file; errors name the line and the problem."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldSetError(f"{p}: cannot read the conversations ({exc}).") from None
    out: list[GoldConversation] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise GoldSetError(f"{p}:{n}: not JSON ({exc}).") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("turns"), list) \
                or not row["turns"]:
            raise GoldSetError(f'{p}:{n}: each line needs an "id" string and a non-empty "turns" list.')
        turns, kinds, rewrites = [], [], []
        for t, turn in enumerate(row["turns"], start=1):
            if not isinstance(turn, dict) or not isinstance(turn.get("question"), str):
                raise GoldSetError(f'{p}:{n}: turn {t} needs a "question" string.')
            answer, evidence = turn.get("answer"), turn.get("evidence", [])
            if answer is not None and (not isinstance(answer, str) or not evidence):
                raise GoldSetError(f'{p}:{n}: turn {t}: an answerable turn needs an "answer" string and "evidence" quotes.')
            if not isinstance(evidence, list) or not all(isinstance(e, str) and e.strip() for e in evidence):
                raise GoldSetError(f'{p}:{n}: turn {t}: "evidence" must be a list of non-empty strings.')
            turns.append(GoldQuestion(f"{row['id']}/{t}", turn["question"], answer, tuple(evidence), row.get("article"),
                                      part=row.get("part")))
            kinds.append(turn.get("kind"))
            rewrites.append(turn.get("interpreted_as"))
        out.append(GoldConversation(row["id"], tuple(turns), tuple(kinds), tuple(rewrites)))
    if not out:
        raise GoldSetError(f"{p}: the file has no conversations.")
    return out


def run_conversation(conversation: GoldConversation, ask: Callable[[str, list[dict]], dict]) -> list[dict]:
    """Ask each turn with the service's own earlier replies as history (chat messages, oldest first)."""
    from .conversation import reply_text

    history: list[dict] = []
    results = []
    for turn in conversation.turns:
        result = ask(turn.question, list(history))
        results.append(result)
        history += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": reply_text(result)}]
    return results


def conversation_metrics(conversations: Sequence[GoldConversation], results: Sequence[Sequence[dict]]) -> dict:
    """First turns, follow-ups (answerable later turns) and abstentions (turns the article does not answer,
    asked mid-conversation or first): a follow-up counts as answered from the right passage when the top
    passage holds its evidence and the service did not abstain."""
    first, follow, refuse = [], [], []
    for conv, res in zip(conversations, results):
        for i, (gold, r) in enumerate(zip(conv.turns, res)):
            if not gold.answerable:
                refuse.append((gold, r))
            elif i == 0:
                first.append((gold, r))
            else:
                follow.append((gold, r))

    def part(pairs: list) -> dict:
        n = len(pairs)
        if not n:
            return {"turns": 0}
        top = [first_hit_rank(r, g) == 1 and not r["abstained"] for g, r in pairs]
        return {"turns": n, "hit@1": round(sum(top) / n, 4),
                "answer_accuracy": round(sum(answer_correct(r, g) for g, r in pairs) / n, 4),
                "false_abstentions": round(sum(r["abstained"] for _, r in pairs) / n, 4)}

    later = [(g.question, rewrite, r.get("interpreted_as")) for conv, res in zip(conversations, results)
             for i, (g, rewrite, r) in enumerate(zip(conv.turns, conv.rewrites, res)) if i > 0 and rewrite is not None]
    return {"conversations": len(conversations), "turns": sum(len(c.turns) for c in conversations),
            "first_turn": part(first), "follow_up": part(follow),
            "interpreted_as": added_word_scores(later) if later else {"turns": 0},
            "abstention": {"turns": len(refuse), "correct_abstentions":
                           round(sum(r["abstained"] for _, r in refuse) / len(refuse), 4) if refuse else None}}


def added_words(question: str, rewrite: str | None) -> set[str]:
    """The content words a rewrite adds to its question ("when did they disband" -> "when did Zappa and the Mothers
    of Invention disband": zappa, mothers, invention); empty for a rewrite that is the question."""
    from .lexical import content_words

    return set(content_words(rewrite or "")) - set(content_words(question))


def added_word_scores(items: Iterable[tuple[str, str | None, str | None]]) -> dict:
    """Added-word precision, recall and F1 of (question, a person's rewrite, the service's `interpreted_as`)
    triples, micro-averaged: of the words the service added to the questions, the share the person added too;
    of the words the person added, the share the service added. `untouched` is the share of questions the
    person left as they were that the service left alone too."""
    tp = added = gold = same = same_kept = rows = 0
    for question, rewrite, interpreted in items:
        want, got = added_words(question, rewrite), added_words(question, interpreted)
        rows += 1
        tp += len(want & got)
        added += len(got)
        gold += len(want)
        if not want:
            same += 1
            same_kept += not got
    p = tp / added if added else 0.0
    r = tp / gold if gold else 0.0
    return {"turns": rows, "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "words_added": added, "words_gold": gold,
            "untouched": round(same_kept / same, 4) if same else None}


def conversation_rows(conversations: Sequence[GoldConversation], results: Sequence[Sequence[dict]]) -> list[dict]:
    """One record per turn, for --output and for printing misses."""
    rows = []
    for conv, res in zip(conversations, results):
        for gold, kind, rewrite, r in zip(conv.turns, conv.kinds, conv.rewrites, res):
            row = per_question([gold], [r])[0]
            if gold.answerable:
                row["ok"] = first_hit_rank(r, gold) == 1 and not r["abstained"]
            row.update(kind=kind, gold_interpreted_as=rewrite, interpreted_as=r.get("interpreted_as"))
            rows.append(row)
    return rows
