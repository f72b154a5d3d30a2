"""The passage encoder of index builds: precision choice, one tokenization per text, the real model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import FakeEmbedder, seed_article_path
from qa import ConfigError, resolve_settings
from qa.articles import read_article
from qa.chunking import chunk_article
from qa.embedding import SentenceTransformerEmbedder, bfloat16_in_hardware
from qa.engine import build_embedder, build_precision

SQUAD = Path("/work/shared/bench-data/squad-dev-v1.1.json")


def _cpuinfo(tmp_path: Path, flags: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return str(path)


@pytest.mark.parametrize(("flags", "expected"), [
    ("avx512f amx_bf16 amx_tile", True), ("avx512f avx512_bf16", True), ("avx512f avx512_fp16", False), ("", False),
])
def test_bfloat16_in_hardware_reads_the_cpu_flags(tmp_path, flags, expected):
    assert bfloat16_in_hardware(_cpuinfo(tmp_path, flags)) is expected


def test_bfloat16_in_hardware_is_false_without_cpuinfo(tmp_path):
    assert bfloat16_in_hardware(str(tmp_path / "missing")) is False


def test_build_precision_auto_follows_the_hardware(monkeypatch):
    import qa.embedding

    for hardware, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(qa.embedding, "bfloat16_in_hardware", lambda hardware=hardware: hardware)
        assert build_precision("auto") == expected
        assert build_precision("float32") == "float32" and build_precision("bfloat16") == "bfloat16"


def test_build_precision_setting_is_checked(monkeypatch):
    monkeypatch.setenv("QA_BUILD_PRECISION", "float16")
    with pytest.raises(ConfigError, match="QA_BUILD_PRECISION must be auto, float32 or bfloat16, not 'float16'"):
        resolve_settings()
    monkeypatch.setenv("QA_BUILD_PRECISION", "bfloat16")
    assert resolve_settings().build_precision == "bfloat16"


def test_embedder_precision_is_checked():
    with pytest.raises(ConfigError, match="float32 or bfloat16, not 'int8'"):
        SentenceTransformerEmbedder(precision="int8")


def test_build_embedder_choice():
    fake = FakeEmbedder()
    assert build_embedder(fake, "all-MiniLM-L6-v2", "bfloat16") is fake  # a caller's embedder embeds its passages
    f32 = SentenceTransformerEmbedder()
    assert build_embedder(f32, "all-MiniLM-L6-v2", "float32") is f32
    bf16 = build_embedder(f32, "all-MiniLM-L6-v2", "bfloat16")
    assert bf16 is not f32 and bf16.backend == "torch" and bf16.precision == "bfloat16"
    assert build_embedder(f32, "all-MiniLM-L6-v2", "bfloat16") is bf16  # loaded once per process


# --- the real model ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def f32() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def _texts() -> list[str]:
    article = read_article(seed_article_path())
    texts = [article.raw[p.start : p.end] for p in article.paragraphs]
    if SQUAD.exists():  # longer paragraphs, some past the model's 256 pieces once joined
        data = json.loads(SQUAD.read_text(encoding="utf-8"))
        texts += [p["context"] for p in data["data"][0]["paragraphs"][:20]]
    return texts + [" ".join(texts[:6]), "naïve café — “quotes” 123,456", texts[0]]  # truncated; accents; repeated


@pytest.mark.slow
def test_counted_encodings_are_reused_and_equal_fresh_tokenization(f32):
    texts = _texts()
    f32.count_tokens(texts[: len(texts) // 2])  # the chunker counted these: encode takes their encodings
    assert len(f32._counted) > 0
    reused = f32.encode(texts)
    assert len(f32._counted) == 0  # taken, not kept
    n = len(texts)
    wrapper = f32._encode_with_wrapper(texts, np.zeros((n, f32.dimension), np.float32), [None] * n, [None] * n, 32)
    assert np.allclose(reused.vectors, wrapper.vectors, atol=1e-6)
    for a, b, oa, ob in zip(reused.tokens, wrapper.tokens, reused.offsets, wrapper.offsets):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-5)
        assert np.array_equal(oa, ob)
    assert max(len(t) for t in reused.tokens) == f32.max_tokens  # the joined text was cut at 254 pieces


@pytest.mark.slow
def test_count_tokens_matches_the_tokenizer(f32):
    texts = _texts()
    expected = [len(x) for x in f32.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]]
    assert f32.count_tokens(texts) == expected
    f32._counted.clear()


@pytest.mark.slow
def test_bfloat16_vectors_agree_with_float32(f32):
    texts = _texts()
    bf16 = SentenceTransformerEmbedder(precision="bfloat16")
    a, b = f32.encode(texts), bf16.encode(texts)
    assert b.vectors.dtype == np.float32 and b.tokens[0].dtype == np.float32
    assert float((a.vectors * b.vectors).sum(axis=1).min()) > 0.999
    for x, y in zip(a.tokens, b.tokens):
        cos = (x * y).sum(axis=1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        assert float(cos.min()) > 0.99


@pytest.mark.slow
def test_chunking_counts_each_fitting_paragraph_once(f32):
    article = read_article(seed_article_path())
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return f32.count_tokens(texts)

    chunks = chunk_article(article, max_tokens=f32.max_tokens, count_tokens=counting)
    f32._counted.clear()
    assert calls == [[article.raw[p.start : p.end] for p in article.paragraphs], []]  # no sentence counted
    assert [(c.start, c.end) for c in chunks] == [(p.start, p.end) for p in article.paragraphs]
