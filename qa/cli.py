"""The `qa` command: build, ask, eval. Heavy libraries are imported inside the commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import QAError, QuestionError


def _settings(args: argparse.Namespace, **extra):
    from .config import resolve_settings

    return resolve_settings(
        index_dir=getattr(args, "index", None), model=getattr(args, "model", None), backend=getattr(args, "backend", None),
        rebuild="never" if getattr(args, "no_rebuild", False) else None, store=getattr(args, "store", None), **extra,
    )


def _progress() -> bool:
    return sys.stderr.isatty()


def cmd_build(args: argparse.Namespace) -> int:
    from .engine import Engine

    settings = _settings(args, articles=args.paths or None)
    t = time.perf_counter()
    engine = Engine.open(settings, force=args.force, export_onnx=not args.no_onnx, compact=True, progress=_progress())
    counts = engine.index.counts()
    where = f"index {settings.index_dir}/" if settings.store == "files" else f"Qdrant {engine.store.where}"
    print(f"{counts['articles']} article(s), {counts['passages']} passages, model {engine.index.model}, "
          f"queries on {engine.embedder.backend}, {where} ({time.perf_counter() - t:.1f} s)")
    return 0


def format_answer(result: dict) -> str:
    """The terminal form: the answer, then numbered passages with their citations."""
    lines = []
    if result["abstained"]:
        lines.append((result.get("reason") or "The article does not say.")
                     + (f" ({result['details']})" if result.get("details") else ""))
        if result["passages"]:
            lines.append("Closest passages (not answers):")
    elif result.get("status") == "uncertain":
        a = result["answer"]
        lines.append(f"{result.get('reason') or 'The article may not answer this.'} The closest it comes "
                     f"(confidence {result['confidence']:.2f}): {a['text']} [{a['citation']}]")
    else:
        a = result["answer"]
        short = (a.get("span") or {}).get("text")
        sure = f" (confidence {result['confidence']:.2f})" if result.get("confidence") is not None else ""
        lines.append("Answer: " + (f"{short} — " if short else "") + f"{a['text']} [{a['citation']}]{sure}")
    for p in result["passages"]:
        c = p["citation"]
        lines.append("")
        date = f", {c['date']}" if c["date"] else ""
        lines.append(f"[{p['rank']}] {c['title']}{date}, paragraph {c['paragraph']}, "
                     f"characters {c['start']}-{c['end']} of {c['path']} (score {p['score']:.3f})")
        h0, h1 = p["highlight"]["start"] - c["start"], p["highlight"]["end"] - c["start"]
        marked = p["text"][:h0] + "»" + p["text"][h0:h1] + "«" + p["text"][h1:]
        lines.append(textwrap.fill(marked, width=100, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines)


def _stdin_lines():
    """Standard input one line at a time, as (text, None) or (None, error) for a line that is not UTF-8: one bad
    line is reported and the next ones are still read (text mode stopped at the first bad byte)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # already text (a caller replaced sys.stdin)
        for line in sys.stdin:
            yield line.rstrip("\r\n"), None
        return
    for n, raw in enumerate(stream, start=1):
        line = raw.rstrip(b"\r\n")
        try:
            yield line.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield line.decode("utf-8", "replace"), (f"Line {n} is not valid UTF-8 (byte 0x{line[exc.start]:02x} at "
                                                     f"offset {exc.start}); send UTF-8 text.")


def cmd_ask(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .validation import check_article_ids, check_k, check_question

    settings = _settings(args)
    check_k(args.k, 50)  # a usage error before anything is loaded, not one error per line
    if args.article:
        check_article_ids(args.article)
    if args.question != "-":
        check_question(args.question, settings.max_question_chars)  # fail before loading anything
    engine = Engine.open(settings, progress=_progress())
    articles = args.article or None
    if args.question != "-":
        result = engine.ask(args.question, args.k, articles=articles).to_json()
        print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else format_answer(result))
        return 0
    failed = 0
    for line, problem in _stdin_lines():
        question: object = line
        try:
            if problem is not None:
                raise QuestionError(problem)
            request = _line_request(line, args.k, articles, settings.max_question_chars)
            question = request.question
            out = engine.ask(request.question, request.k, history=request.history, articles=request.articles).to_json()
        except QAError as exc:
            failed += 1
            shown = question if isinstance(question, str) else line
            out = {"question": shown.encode("utf-8", "replace").decode("utf-8"), "error": str(exc)}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def _line_request(line: str, k: int | None, articles, max_chars: int):
    """One line of `qa ask -`: a plain question, or a JSON request {"question", "history"?, "k"?, "article"?}."""
    from .validation import AskRequest, check_question, parse_ask_request

    if line.lstrip().startswith("{"):
        try:
            payload = json.loads(line)
        except (ValueError, RecursionError):
            raise QuestionError('The line starts with "{" but is not JSON; send {"question": "...", "history": [...]}.') from None
        request = parse_ask_request(payload, max_question_chars=max_chars, max_k=50)
        return AskRequest(request.question, request.k or k, request.history,
                          request.articles if request.articles is not None else articles)
    return AskRequest(check_question(line, max_chars), k, (), articles)


def cmd_chat(args: argparse.Namespace) -> int:
    """An interactive chat in the terminal: follow-up questions understood in context."""
    from .conversation import reply_text
    from .engine import Engine
    from .validation import Turn, check_article_ids

    try:
        import readline  # noqa: F401 - line editing and the session's input history for input()
    except ImportError:
        pass
    if args.article:
        check_article_ids(args.article)
    engine = Engine.open(_settings(args), progress=_progress())
    if args.article:
        engine.rows_of(args.article)  # an unknown article: exit 2 now, not an error at every question
    history: list[Turn] = []
    print("Ask about the article(s). /new starts a new conversation; Ctrl-D quits.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            continue
        if line.strip() == "/new":
            history = []
            print("(a new conversation)", file=sys.stderr)
            continue
        if not line.strip():
            continue
        try:
            result = engine.ask(line, args.k, history=history[-12:], articles=args.article or None).to_json()
        except QAError as exc:
            print(f"qa: {exc}", file=sys.stderr)
            continue
        if result["interpreted_as"] != result["question"]:
            print(f"Understood as: {result['interpreted_as']}")
        print(format_answer(result), flush=True)
        print()
        history += [Turn("user", line.strip()), Turn("assistant", reply_text(result))]


def _stderr_if_waiting(message: str) -> None:
    """The engine's log, minus what the command prints itself: waiting for another writer, and merges left to do."""
    if message.startswith(("Waiting", "The index has")):
        print(message, file=sys.stderr, flush=True)


def read_article_input(path: str, limit: int | None = None) -> bytes:
    """The bytes of the article `qa add` was given: standard input ("-") or a regular file inside its own folder (a
    symbolic link out of it is refused, as `qa build` refuses one out of the articles folder), read up to `limit`
    (an HTML page's limit) plus one byte, so a device, a FIFO or an endless pipe can neither hang nor fill memory."""
    import stat

    from .articles import size_text
    from .collection import MAX_PAGE_BYTES
    from .errors import ArticleError, ArticleTooLargeError

    limit = MAX_PAGE_BYTES if limit is None else limit
    too_big = f"the limit is {size_text(limit)} per page (and 1 MB of story text, QA_MAX_ARTICLE_BYTES)"
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise ArticleTooLargeError(f"The standard input is over {size_text(limit)}; {too_big}.")
        return data
    link = Path(path)
    if link.is_symlink():
        target, folder = link.resolve(), link.absolute().parent.resolve()
        if not target.is_relative_to(folder):
            raise ArticleError(f"{path}: a symbolic link to {target}, outside its folder {folder}; copy the article "
                               "into that folder, or add the file itself.")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once instead of waiting for a writer
    except OSError as exc:
        raise ArticleError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket")
            raise ArticleError(f"{path}: not a regular file ({kind}); save the article to a file and add that, or "
                               "pipe it in with `qa add -`.")
        if info.st_size > limit:
            raise ArticleTooLargeError(f"{path}: the file is {size_text(info.st_size)}; {too_big}.")
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while we read it
        raise ArticleTooLargeError(f"{path}: the file is over {size_text(limit)}; {too_big}.")
    return data


def cmd_add(args: argparse.Namespace) -> int:
    from .articles import decode_article
    from .engine import Engine
    from .extract import looks_like_html

    data = read_article_input(args.file)
    fmt = args.format
    if fmt == "auto" and args.file.lower().endswith((".html", ".htm")):
        fmt = "html"
    text: bytes | str = data
    if fmt in ("text", "markdown") or fmt == "auto" and not looks_like_html(data[:200_000].decode("utf-8", "replace")):
        # decoded here, so that a file that is not UTF-8 is named in the message (a page finds its own encoding)
        text = decode_article(data, "standard input" if args.file == "-" else args.file, is_file=args.file != "-")
    engine = Engine.open(_settings(args), progress=_progress(), trust_index=True)
    # segments due for a merge are merged here when small; larger merges are left to the app or `qa build`
    entry = engine.add_article(text, title=args.title, date=args.date, url=args.url, source=args.source, fmt=fmt,
                               log=_stderr_if_waiting, merge="small")
    for note in entry.get("notes") or ():
        print(f"qa: note: {note}", file=sys.stderr)
    print(json.dumps(entry, ensure_ascii=False) if args.json else
          f"Added {entry['article']}: {entry['title']} ({entry['passages']} passages, {entry['path']})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .engine import Engine

    engine = Engine.open(_settings(args), progress=_progress())
    articles = engine.list_articles()
    if args.json:
        print(json.dumps(articles, ensure_ascii=False, indent=2))
        return 0
    for a in articles:
        meta = ", ".join(x for x in (a["date"], a["source"]) if x)
        print(f"{a['article']}  {a['title']}" + (f" ({meta})" if meta else "") + f", {a['passages']} passages")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .validation import check_article_id

    check_article_id(args.id, slash=True)  # a usage error before anything is loaded
    engine = Engine.open(_settings(args), progress=_progress(), trust_index=True)
    entry = engine.remove_article(args.id, log=_stderr_if_waiting, merge="small")
    print(f"Removed {entry['article']}: {entry['title']} ({entry['path']} deleted)")
    return 0


def _asker(args: argparse.Namespace, articles=None, warm: str | None = None):
    """ask(question, history, article) -> answer JSON: through a running app (--url) or an engine of our own."""
    if args.url:
        from .client import ask_remote

        auth = (args.user, os.environ.get("QA_PASSWORD", "")) if args.user else None

        def ask(q, history=None, article=None):
            return ask_remote(args.url, q, args.k, auth=auth, history=history, article=article)

        if warm:
            # one request before the parallel run: a wrong password costs one failed login, not one per question
            # (which would lock the user, and then the address, out of the app for a minute)
            ask(warm)
        return ask
    from .engine import Engine
    from .validation import check_history

    overrides = {k2: getattr(args, k2) for k2 in ("dense_weight", "maxsim_weight", "abstain_below", "max_sentences", "candidates", "rerank")}
    index = args.index or (".bench/squad-index" if args.squad else None)
    settings = _settings(argparse.Namespace(index=index, model=args.model, backend=args.backend), **overrides)
    engine = Engine.open(settings, articles=articles, sources=[args.squad] if args.squad else None,
                         progress=_progress(), method=args.method)
    if warm:
        engine.ask(warm, args.k)  # warm-up: the first call pays one-off costs
    return lambda q, history=None, article=None: engine.ask(
        q, args.k, history=check_history(history), articles=[article] if isinstance(article, str) else article).to_json()


def _each(args: argparse.Namespace, fn, items: Sequence) -> list:
    """`fn` over the items, in order: --parallel at once through a running app (--url), else one by one."""
    if args.url:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            return list(pool.map(fn, items))
    return [fn(x) for x in items]


def cmd_eval(args: argparse.Namespace) -> int:
    from .canard import is_canard_file
    from .evaluation import check_thresholds, compute_metrics, is_conversation_file, load_gold, per_question, sample, squad_corpus

    articles = None
    if args.gold and is_conversation_file(args.gold):
        return _eval_conversations(args)
    if args.gold and is_canard_file(args.gold):
        return _eval_canard(args)
    if args.no_history:
        raise QAError(f"--no-history is for conversation files (one {{\"id\", \"turns\"}} object per line); "
                      f"{args.gold or args.squad} holds single questions: drop --no-history.")
    if args.squad:
        articles, golds = squad_corpus(args.squad)
    elif args.gold:
        golds = load_gold(args.gold)
    else:
        raise QAError("Give a gold file (`qa eval eval/seed.jsonl`) or --squad FILE.")
    if args.part:
        golds = [g for g in golds if g.part == args.part]
        if not golds:
            raise QAError(f"No question of {args.gold} is in part {args.part!r}; the parts are given by each line's "
                          '"part" (news gold sets: "tuning" or "held-out").')
    golds = sample(golds, args.sample, args.seed)
    if args.per_article and any(g.article is None for g in golds):
        missing = next(g.id for g in golds if g.article is None)
        raise QAError(f'--per-article asks each question restricted to its "article"; {missing!r} of '
                      f'{args.gold or args.squad} has none: add it, or drop --per-article.')
    k = args.k
    results: list[dict] = []
    latencies: list[float] = []
    ask = _asker(args, articles, golds[0].question)
    gone: list[str] = []

    def one(g):
        t = time.perf_counter()
        # a feedback line is asked as it was: after its history, restricted to its articles; a gold line naming its
        # article is asked about that article (news gold sets, or any set with --per-article), as staff ask about the
        # story they chose (SQuAD's questions are asked of the whole archive: their article only decides what counts
        # as a hit, unless --per-article)
        own = g.article and (args.per_article or not args.squad)
        scope = list(g.scope) if g.scope else [g.article] if own else None
        try:
            r = ask(g.question, list(g.history) or None, scope)
        except QAError as exc:
            if g.scope is None or not _article_gone(exc):
                raise
            gone.append(g.id)  # its article was removed since: nothing to score it against
            return None, 0.0
        return r, time.perf_counter() - t

    outcomes = _each(args, one, golds)
    if gone:
        print(f"qa: note: {len(gone)} question(s) skipped, their article is no longer in the index: "
              f"{', '.join(gone[:5])}{' ...' if len(gone) > 5 else ''}", file=sys.stderr)
        golds = [g for g, (r, _) in zip(golds, outcomes) if r is not None]
        outcomes = [o for o in outcomes if o[0] is not None]
        if not golds:
            raise QAError("Every question of the gold set is about an article no longer in the index; nothing to score.")
    results = [r for r, _ in outcomes]
    latencies = [dt for _, dt in outcomes]
    metrics = compute_metrics(golds, results, latencies, k)
    rows = per_question(golds, results)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for row, r in zip(rows, results):
                fh.write(json.dumps({**row, "result": r}, ensure_ascii=False) + "\n")
    failures = check_thresholds(metrics, {
        "min_hit1": args.min_hit1, "min_hit3": args.min_hit3, "min_answer_accuracy": args.min_answer_accuracy,
        "min_correct_abstentions": args.min_correct_abstentions, "max_false_abstentions": args.max_false_abstentions,
    })
    if args.json:
        from .evaluation import reliability, risk_coverage

        print(json.dumps({"metrics": metrics, "risk_coverage": risk_coverage(golds, results),
                          "reliability": reliability(golds, results), "misses": [r for r in rows if not r["ok"]],
                          "failures": failures, "skipped": gone}, ensure_ascii=False, indent=2))
    else:
        misses = [r for r in rows if not r["ok"]]
        if misses and not args.quiet:
            print(f"Misses ({len(misses)}):")
            for r in misses[: args.show]:
                want = "(unanswerable: should abstain)" if r["expected"] is None else f"expected {r['evidence'][0]!r}"
                got = "abstained" if r["abstained"] else f"top passage rank-of-hit={r['hit_rank']}"
                print(f"- {r['id']} {r['question']!r}: {want}; {got}; sim={r['top_similarity']}")
                if r["top_passage"]:
                    print(f"    returned: {r['top_passage'][:150]!r}")
            if len(misses) > args.show:
                print(f"  ... {len(misses) - args.show} more (--output FILE has them all)")
            print()
        width = max(len(key) for key in metrics)
        for key, value in metrics.items():
            print(f"{key:<{width}}  {value}")
        for f in failures:
            print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


def _article_gone(exc: QAError) -> bool:
    """Whether asking failed because an article the question is restricted to is not in the index (any more)."""
    from .errors import ArticleNotFoundError

    return isinstance(exc, ArticleNotFoundError) or getattr(exc, "status", None) == 404


def _eval_conversations(args: argparse.Namespace) -> int:
    """`qa eval CONVERSATIONS.jsonl`: each turn asked with the service's own earlier replies as history."""
    from .evaluation import conversation_metrics, conversation_rows, load_conversations, squad_corpus

    conversations = load_conversations(args.gold)
    if args.part:
        conversations = [c for c in conversations if c.turns[0].part == args.part]
        if not conversations:
            raise QAError(f"No conversation of {args.gold} is in part {args.part!r}.")
    if args.per_article and any(c.turns[0].article is None for c in conversations):
        missing = next(c.id for c in conversations if c.turns[0].article is None)
        raise QAError(f'--per-article asks each conversation restricted to its "article"; {missing!r} of {args.gold} '
                      'has none: add it, or drop --per-article.')
    articles = squad_corpus(args.squad)[0] if args.squad else None
    ask = _asker(args, articles, conversations[0].turns[0].question)
    if args.no_history:  # the baseline the conversation figures are compared with: every turn asked alone
        with_history = ask

        def ask(q, history=None, article=None):
            return with_history(q, None, article)
    from .evaluation import run_conversation

    if args.per_article:
        def run(c):
            return run_conversation(c, lambda q, h: ask(q, h, c.turns[0].article))
    else:
        def run(c):
            return run_conversation(c, ask)
    results = _each(args, run, conversations)
    metrics = conversation_metrics(conversations, results)
    rows = conversation_rows(conversations, results)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for row, r in zip(rows, [r for res in results for r in res]):
                fh.write(json.dumps({**row, "result": r}, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps({"metrics": metrics, "misses": [r for r in rows if not r["ok"]]}, ensure_ascii=False, indent=2))
        return 0
    misses = [r for r in rows if not r["ok"]]
    if misses and not args.quiet:
        print(f"Misses ({len(misses)}):")
        for r in misses[: args.show]:
            want = "(not in the article: should abstain)" if r["expected"] is None else f"expected {r['evidence'][0]!r}"
            print(f"- {r['id']} [{r['kind']}] {r['question']!r}: {want}; {'abstained' if r['abstained'] else 'answered'}")
            if r["interpreted_as"] != r["question"]:
                print(f"    understood as: {r['interpreted_as']!r}")
            if r["top_passage"]:
                print(f"    top passage: {r['top_passage'][:120]!r}")
        print()
    for part in ("first_turn", "follow_up"):
        m = metrics[part]
        if m["turns"]:
            print(f"{part:<12}  turns {m['turns']:>3}  hit@1 {m['hit@1']:.3f}  answer accuracy {m['answer_accuracy']:.3f}  "
                  f"false abstentions {m['false_abstentions']:.3f}")
    a = metrics["abstention"]
    if a["turns"]:
        print(f"{'abstention':<12}  turns {a['turns']:>3}  correct abstentions {a['correct_abstentions']:.3f}")
    _print_added_words("interpreted", metrics["interpreted_as"])
    return 0


def _print_added_words(label: str, m: dict) -> None:
    if m["turns"]:
        untouched = "" if m["untouched"] is None else f"  self-contained left alone {m['untouched']:.3f}"
        print(f"{label:<12}  turns {m['turns']:>3}  added words: precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
              f"F1 {m['f1']:.3f}{untouched}")


def _eval_canard(args: argparse.Namespace) -> int:
    """`qa eval dev.json [--part held-out]`: each CANARD dialogue of the part becomes an article (its title, section
    and answers); each follow-up is asked restricted to it, with its history; `interpreted_as` is scored against
    the person's rewrite by the words each added to the question."""
    from .canard import article_id, chat_history, dialogue_articles, load_dev, part_of
    from .evaluation import added_word_scores, added_words

    if args.no_history:
        raise QAError("--no-history does not apply to CANARD files: their follow-ups are scored by what the history "
                      "adds to them; drop --no-history.")
    part = args.part or "held-out"
    if part not in ("train", "tune", "held-out", "all"):
        raise QAError(f"--part {part!r}: a CANARD file's parts are train, tune, held-out and all.")
    rows = part_of(load_dev(args.gold), part)
    follow = [r for r in rows if r.number > 1]
    if not follow:
        raise QAError(f"{args.gold}: part {part} has no follow-up (only first questions); choose another --part.")
    if args.sample:
        import random

        follow = random.Random(args.seed).sample(follow, min(args.sample, len(follow)))
    articles = dialogue_articles(rows, str(Path(args.gold).resolve()))
    if not args.url and not args.index:
        args.index = f".bench/canard-index-{part}"
    ask = _asker(args, articles if not args.url else None, follow[0].question)

    def one(r):
        t = time.perf_counter()
        result = ask(r.question, chat_history(r), article_id(r.dialog))
        return result, time.perf_counter() - t

    outcomes = _each(args, one, follow)
    from .evaluation import percentile

    latencies = [dt for _, dt in outcomes]
    metrics = {"part": part, "dialogues": len({r.dialog for r in follow}),
               "added_words": added_word_scores((r.question, r.rewrite, res.get("interpreted_as")) for r, (res, _) in zip(follow, outcomes)),
               "headline_words_added": added_word_scores((r.question, r.rewrite, f"{r.question} {r.title}") for r in follow),
               "latency_ms_p50": round(percentile(latencies, 0.5) * 1000, 2)}
    rows_out = [{"id": f"{r.dialog}_q#{r.number}", "question": r.question, "rewrite": r.rewrite,
                 "interpreted_as": res.get("interpreted_as"), "gold_added": sorted(added_words(r.question, r.rewrite)),
                 "added": sorted(added_words(r.question, res.get("interpreted_as")))} for r, (res, _) in zip(follow, outcomes)]
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for row, (res, _) in zip(rows_out, outcomes):
                fh.write(json.dumps({**row, "result": res}, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps({"metrics": metrics}, ensure_ascii=False, indent=2))
        return 0
    if not args.quiet:
        wrong = [r for r in rows_out if set(r["added"]) != set(r["gold_added"])]
        print(f"Follow-ups whose added words differ from the person's ({len(wrong)}):")
        for r in wrong[: args.show]:
            print(f"- {r['id']} {r['question']!r}\n    person:  {r['rewrite']!r}\n    service: {r['interpreted_as']!r}")
        print()
    print(f"CANARD {Path(args.gold).name}, part {part}: {metrics['dialogues']} dialogues, latency p50 {metrics['latency_ms_p50']} ms")
    _print_added_words("service", metrics["added_words"])
    _print_added_words("headline", metrics["headline_words_added"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Question answering over news articles, with cited passages.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", help="index folder (QA_INDEX_DIR; default index/)")
    common.add_argument("--model", help="sentence-transformers model name or path (QA_MODEL)")
    common.add_argument("--backend", choices=["auto", "onnx", "torch"], help="query encoder (QA_BACKEND, default auto)")
    common.add_argument("--store", choices=["files", "qdrant"],
                        help="where the archive lives (QA_STORE, default files); qdrant: QA_QDRANT_URL or QA_QDRANT_PATH. "
                             "`qa build --store qdrant` copies the files index there with its vectors")

    b = sub.add_parser("build", parents=[common], help="build or update the index")
    b.add_argument("paths", nargs="*", help="article files or folders (default: the index's own, else articles/)")
    b.add_argument("--force", action="store_true", help="re-embed everything")
    b.add_argument("--no-onnx", action="store_true", help="do not export the model to ONNX (queries then use PyTorch)")
    b.set_defaults(func=cmd_build)

    a = sub.add_parser("ask", parents=[common], help="answer a question ('-' reads one per line from stdin)")
    a.add_argument("question")
    a.add_argument("-k", type=int, default=None, help="passages to return (QA_TOP_K, default 3)")
    a.add_argument("--json", action="store_true", help="print the JSON object")
    a.add_argument("--no-rebuild", action="store_true", help="refuse a stale index instead of rebuilding it")
    a.add_argument("--article", action="append", metavar="ID", help="answer from this article only (repeat for several)")
    a.set_defaults(func=cmd_ask)

    ch = sub.add_parser("chat", parents=[common], help="an interactive chat: follow-up questions understood in context")
    ch.add_argument("-k", type=int, default=None, help="passages to show (QA_TOP_K, default 3)")
    ch.add_argument("--article", action="append", metavar="ID", help="talk about this article only (repeat for several)")
    ch.add_argument("--no-rebuild", action="store_true", help="refuse a stale index instead of rebuilding it")
    ch.set_defaults(func=cmd_chat)

    ad = sub.add_parser("add", parents=[common], help="add an article (text, Markdown or an HTML page) to the index")
    ad.add_argument("file", help="the article's file, or - for standard input")
    ad.add_argument("--title")
    ad.add_argument("--date", help="YYYY-MM-DD")
    ad.add_argument("--url")
    ad.add_argument("--source", help="the publication")
    ad.add_argument("--format", choices=["auto", "text", "markdown", "html"], default="auto")
    ad.add_argument("--json", action="store_true", help="print the article's entry as JSON")
    ad.set_defaults(func=cmd_add)

    ls = sub.add_parser("list", parents=[common], help="list the articles of the index")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    rm = sub.add_parser("remove", parents=[common], help="remove an article: its file and its passages")
    rm.add_argument("id")
    rm.set_defaults(func=cmd_remove)

    e = sub.add_parser("eval", parents=[common], help="score the service against a gold question set")
    e.add_argument("gold", nargs="?", help="gold JSONL file")
    e.add_argument("-k", type=int, default=5)
    e.add_argument("--json", action="store_true")
    e.add_argument("--output", help="write one JSON line per question here")
    e.add_argument("--url", help="ask a running app over HTTP instead of in-process")
    e.add_argument("--parallel", type=int, default=8, help="requests in flight with --url")
    e.add_argument("--user", help="login name for an app with QA_AUTH (the password comes from QA_PASSWORD)")
    e.add_argument("--squad", help="a SQuAD v1.1/v2.0 JSON file: all its articles in one index")
    e.add_argument("--sample", type=int, help="ask a random sample of N questions")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--show", type=int, default=25, help="misses to print")
    e.add_argument("--quiet", action="store_true", help="metrics only")
    e.add_argument("--per-article", action="store_true",
                   help='ask each question (or conversation) restricted to its gold "article", as a chat about one story')
    e.add_argument("--part", help='only the lines of this part: "tuning" or "held-out" in the news gold sets; for '
                                  'CANARD files "train", "tune", "held-out" (the default) or "all" of the split by '
                                  "dialogue (qa/canard.py)")
    e.add_argument("--no-history", action="store_true",
                   help="conversations: ask every turn alone, without the earlier turns (the baseline)")
    e.add_argument("--method", choices=["hybrid", "convex", "rrf", "dense", "bm25"], default="hybrid",
                   help="retrieval method (hybrid is the service's; the others are for comparison)")
    e.add_argument("--dense-weight", type=float)
    e.add_argument("--maxsim-weight", type=float)
    e.add_argument("--rerank", type=int)
    e.add_argument("--abstain-below", type=float)
    e.add_argument("--max-sentences", type=int)
    e.add_argument("--candidates", type=int)
    for opt in ("min-hit1", "min-hit3", "min-answer-accuracy", "min-correct-abstentions", "max-false-abstentions"):
        e.add_argument(f"--{opt}", type=float)
    e.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `qa ask ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 141


if __name__ == "__main__":
    sys.exit(main())
