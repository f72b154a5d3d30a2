"""CI's quality gate: `qa eval eval/seed.jsonl` with thresholds, on the real model and the shipped index.

The thresholds are the measured figures minus about one question of slack; README records the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATE = ["--min-hit1", "0.83", "--min-hit3", "0.94", "--min-answer-accuracy", "0.80",
        "--min-correct-abstentions", "0.55", "--max-false-abstentions", "0.02"]


def test_seed_gold_set_meets_the_gate(tmp_path):
    out = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "qa.cli", "eval", "eval/seed.jsonl", "--json", "--output", str(out), *GATE],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, f"gate failed: {report['failures']}"
    m = report["metrics"]
    assert m["questions"] >= 50 and m["unanswerable"] >= 12
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == m["questions"]
    # every citation span the run returned matches its file exactly
    for row in rows:
        for p in row["result"]["passages"]:
            c = p["citation"]
            raw = (ROOT / c["path"]).read_bytes().decode("utf-8")
            assert raw[c["start"] : c["end"]] == p["text"]
            assert c["start"] <= p["highlight"]["start"] < p["highlight"]["end"] <= c["end"]


def test_gate_fails_when_a_threshold_is_not_met():
    proc = subprocess.run(
        [sys.executable, "-m", "qa.cli", "eval", "eval/seed.jsonl", "--quiet", "--min-hit1", "1.01"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1
    assert "hit@1" in proc.stderr and "below the limit 1.01" in proc.stderr
