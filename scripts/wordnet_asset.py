"""Write qa/assets/wordnet-related.tsv.gz from WordNet 3.0: each lemma with its synonyms and antonyms.

    apt-get install wordnet-base        # Debian's WordNet 3.0 database, in /usr/share/wordnet
    python scripts/wordnet_asset.py [--wordnet /usr/share/wordnet] [--out qa/assets/wordnet-related.tsv.gz]

One line per lemma and part of speech (verb, adjective, noun): the lemma, a tab, the other words of the synsets of
its first four senses and their antonyms and derivationally related words ("agree" ~ "disagree", "tip" ~
"tipster"), space-separated (multi-word entries keep WordNet's "_"). qa/yes_no.py reads it to tell whether a
passage speaks of the event a yes/no question asks about. The file is
made once and shipped (WordNet's licence allows it with its notice: qa/assets/WORDNET-LICENSE), so the service
needs no system package.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENSES = 4


def _data(folder: Path, pos: str) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """offset -> (words, (part of speech, offset) of its antonym and derivationally related synsets) of data.<pos>."""
    out = {}
    for line in (folder / f"data.{pos}").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        f = line.split()
        n = int(f[3], 16)
        words = [f[4 + 2 * i].lower() for i in range(n)]
        pointers = int(f[4 + 2 * n])
        ptr = f[5 + 2 * n : 5 + 2 * n + 4 * pointers]
        # antonyms ("!") and derivationally related forms ("+": "tip" ~ "tipster") of the synset's words: lexical
        # pointers, from one word to one word (source/target "sstt", hex), so only the target word is taken ("fire"
        # ~ "hire", not "hire"'s synonym "engage")
        linked = [(ptr[4 * i + 2], ptr[4 * i + 1], int(ptr[4 * i + 3][2:], 16)) for i in range(pointers)
                  if ptr[4 * i] in ("!", "+")]
        out[f[0]] = ([w.split("(")[0] for w in words], linked)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--out", type=Path, default=ROOT / "qa" / "assets" / "wordnet-related.tsv.gz")
    args = ap.parse_args()
    lines = []
    names = {"v": "verb", "a": "adj", "s": "adj", "n": "noun", "r": "adv"}
    data_of = {pos: _data(args.wordnet, pos) for pos in ("verb", "adj", "noun", "adv")}
    for pos in ("verb", "adj", "noun"):
        data = data_of[pos]
        for line in (args.wordnet / f"index.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            f = line.split()
            lemma, pointers = f[0], int(f[3])
            offsets = f[4 + pointers + 2 :][:SENSES]
            words: set[str] = set()
            for o in offsets:
                synonyms, linked = data[o]
                words.update(synonyms)
                for other_pos, offset, target in linked:
                    targets = data_of[names[other_pos]][offset][0]
                    words.update(targets if target == 0 else targets[target - 1 : target])
            words.discard(lemma)
            if words:
                lines.append(f"{lemma}\t{' '.join(sorted(words))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", mtime=0) as fh:  # mtime 0: the same input writes the same bytes
        fh.write(("\n".join(sorted(lines)) + "\n").encode("utf-8"))
    print(f"wrote {len(lines)} lemmas to {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
