"""CANARD: follow-up questions of QuAC conversations and the self-contained rewrites people wrote for them.

CANARD (Elgohary, Peskov and Boyd-Graber, EMNLP 2019; CC BY-SA 4.0) is in `shared/bench-data/canard/`:
- `train.question.tsv` / `train.rewrite.tsv`: 31,526 rows of 4,383 dialogues, `<dialog id>_q#<n>` TAB text; a
  row's history is the earlier rows of its dialogue (questions only here: QuAC's answers and the article title
  are not part of the train files);
- `dev.json`: 3,430 rows of 490 dialogues with the full history (Wikipedia title, section title, then the earlier
  questions and QuAC's answers; "I don't know." where QuAC had no answer).

Dev is split by dialogue, once, with a fixed seed (`split_dialogues`): a part the resolver may train on, a part to
choose the method and its thresholds on, and a held-out part that is only measured (`qa eval dev.json --part
held-out`). The split is a pure function of the dialogue ids and the seed, so every command sees the same parts.

For the service, a dialogue becomes an article (`dialogue_articles`): the title is the Wikipedia title, the text
the section title and QuAC's answers, one paragraph each; each follow-up is asked restricted to that article with
its history as chat messages (a QuAC "I don't know." becomes the service's own refusal).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import GoldSetError

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "bench-data" / "canard"
SPLIT_SEED = 23  # random.Random(SPLIT_SEED).shuffle(sorted dialogue ids)
PARTS = {"train": 0.5, "tune": 0.2, "held-out": 0.3}  # shares of dev's 490 dialogues, in this order
NO_ANSWER = "I don't know."  # QuAC's CANNOTANSWER, as CANARD's dev.json writes it


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str | None  # None: QuAC had no answer (the service would have refused)


@dataclass(frozen=True)
class Row:
    """One CANARD row: a question, the rewrite a person wrote, and what was said before it."""

    dialog: str
    number: int  # 1 for the first question of the dialogue
    question: str
    rewrite: str
    title: str | None  # the Wikipedia title (dev), or None (train: not part of the files)
    section: str | None
    history: tuple[Exchange, ...]  # earlier exchanges, oldest first


def load_dev(path: str | Path | None = None) -> list[Row]:
    """dev.json (the original release format) as rows; GoldSetError naming the file and the problem."""
    p = Path(path) if path is not None else DEFAULT_DIR / "dev.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GoldSetError(f"{p}: cannot read the CANARD file ({exc}).") from None
    if not is_canard(data):
        raise GoldSetError(f'{p}: not a CANARD file; expected a JSON list of {{"History", "Question", "Rewrite", '
                           '"QuAC_dialog_id", "Question_no"}} objects (the release\'s dev.json or test.json).')
    rows = []
    for n, item in enumerate(data, start=1):
        history = item["History"]
        if len(history) < 2 or len(history) % 2:
            raise GoldSetError(f"{p}: row {n}: History must hold the title, the section, then question/answer pairs.")
        exchanges = tuple(Exchange(q, None if a.strip() in (NO_ANSWER, "CANNOTANSWER") else a)
                          for q, a in zip(history[2::2], history[3::2]))
        rows.append(Row(item["QuAC_dialog_id"], int(item["Question_no"]), item["Question"], item["Rewrite"],
                        history[0], history[1], exchanges))
    return rows


def is_canard(data: object) -> bool:
    return isinstance(data, list) and bool(data) and all(
        isinstance(x, dict) and {"History", "Question", "Rewrite", "QuAC_dialog_id", "Question_no"} <= x.keys()
        for x in data[:50])


def is_canard_file(path: str | Path) -> bool:
    """True when the file opens like CANARD's release JSON (a list of rows with "History" and "Rewrite")."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return head.lstrip().startswith("[") and '"History"' in head and '"Rewrite"' in head


def load_train(folder: str | Path | None = None) -> list[Row]:
    """train.question.tsv / train.rewrite.tsv as rows whose history is the earlier questions of the dialogue
    (no answers, no title: the files have neither)."""
    d = Path(folder) if folder is not None else DEFAULT_DIR

    def read(name: str) -> list[tuple[str, str]]:
        try:
            lines = (d / name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise GoldSetError(f"{d / name}: cannot read the CANARD train file ({exc}).") from None
        return [tuple(line.split("\t", 1)) for line in lines if line.strip()]  # type: ignore[misc]

    questions, rewrites = read("train.question.tsv"), read("train.rewrite.tsv")
    if [k for k, _ in questions] != [k for k, _ in rewrites]:
        raise GoldSetError(f"{d}: train.question.tsv and train.rewrite.tsv do not list the same ids in the same order.")
    rows: list[Row] = []
    earlier: list[Exchange] = []
    current = None
    for (key, question), (_, rewrite) in zip(questions, rewrites):
        dialog, _, number = key.rpartition("_q#")
        if dialog != current:
            current, earlier = dialog, []
        rows.append(Row(dialog, int(number) + 1, question.strip(), rewrite.strip(), None, None, tuple(earlier)))
        earlier.append(Exchange(question.strip(), None))
    return rows


def split_dialogues(dialogs: Sequence[str], seed: int = SPLIT_SEED) -> dict[str, str]:
    """Each dialogue id -> "train", "tune" or "held-out" (PARTS' shares), fixed by the seed."""
    ids = sorted(set(dialogs))
    random.Random(seed).shuffle(ids)
    out, start = {}, 0
    names = list(PARTS)
    for i, name in enumerate(names):
        end = len(ids) if i == len(names) - 1 else start + round(PARTS[name] * len(ids))
        out.update((d, name) for d in ids[start:end])
        start = end
    return out


def part_of(rows: Sequence[Row], part: str, seed: int = SPLIT_SEED) -> list[Row]:
    if part not in PARTS and part != "all":
        raise GoldSetError(f"No CANARD part {part!r}; choose one of {', '.join(PARTS)} or all.")
    if part == "all":
        return list(rows)
    parts = split_dialogues([r.dialog for r in rows], seed)
    return [r for r in rows if parts[r.dialog] == part]


def article_id(dialog: str) -> str:
    return "canard_" + hashlib.sha1(dialog.encode()).hexdigest()[:12]


def dialogue_articles(rows: Sequence[Row], source: str) -> list:
    """One article per dialogue: its title, and as text the section title and every QuAC answer of the dialogue
    (the last row's history and the last answer are not in dev.json: the text holds what the rows show)."""
    from .evaluation import article_of_paragraphs

    last: dict[str, Row] = {}
    for r in rows:
        if r.dialog not in last or r.number > last[r.dialog].number:
            last[r.dialog] = r
    articles = []
    for dialog, row in sorted(last.items()):
        texts = [row.section or ""] + [e.answer for e in row.history if e.answer]
        articles.append(article_of_paragraphs(article_id(dialog), source, [t.strip() for t in texts if t and t.strip()],
                                              row.title or dialog))
    return articles


def chat_history(row: Row) -> list[dict]:
    """The row's earlier exchanges as chat messages; no answer is the service's own refusal."""
    from .conversation import REFUSAL_PREFIX

    out = []
    for e in row.history:
        out += [{"role": "user", "content": e.question},
                {"role": "assistant", "content": e.answer if e.answer else f"{REFUSAL_PREFIX}."}]
    return out
