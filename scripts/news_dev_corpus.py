"""Write the news-dev evaluation corpus: the 15 Voice of America stories the news gold sets are about.

    .venv/bin/python scripts/news_dev_corpus.py OUT_DIR [--stories DIR]
    .venv/bin/qa build OUT_DIR --index INDEX_DIR

Each story is written to OUT_DIR/<id>.txt exactly as `qa add FILE --title T --url U --source "Voice of America"`
stores it (qa.collection.prepare_article: the title/source/url front matter, a blank line, then the story byte
for byte), so the articles of the built index are named by the story ids (n142 ...) that the gold sets'
"article" fields give. The stories are checked against their sha256 first: citations are character offsets,
and a story changed by a byte would move them. DIR defaults to ../shared/news-dev beside the checkout.

The held-out part of the gold sets is the stories `random.Random(HELD_OUT_SEED).sample(sorted(ids), 5)`
(`held_out()`); docs/news-dev.md describes the sets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORIES = ROOT.parent / "shared" / "news-dev"
SOURCE = "Voice of America"
HELD_OUT_SEED = 22
HELD_OUT_STORIES = 5

# sha256 of each story file as distributed in ../shared/news-dev (the QuAIL texts, typos included).
SHA256 = {
    "n142": "f6529d4806c31e3a19735e0b599cee285bfd04a726d32be37c155c1044b3897e",
    "n143": "d48c8f4f9d8b164e6744f8d425b22b617183bda479c8949c14441091258edf6b",
    "n146": "abbf726c216227199122136e18dc9dbdfb48b27530bbac8a320dcf06ae2d4a00",
    "n148": "e05dd614534a5c0d1691d4a11c742dbf27e9f39c4e89c68abf88a5532f33b211",
    "n150": "dcb3bfb97ba9dfd46f6c5fbdc5f4fe7c67d9bc83f6b5ca670c08a941ff724603",
    "n152": "4b6b604a010aa67732a3c95ce1262b3e8d72e47745911298ed7fe9632ed10e33",
    "n154": "2cf82a98e55bc96c5707243c885f56f20a51056e5d5d11d634fca314c2d5b179",
    "n156": "8497e521c1c4ed842eb322e99e5e0502bbdc0646dc21eeb4f9db852049093866",
    "n158": "8cf66aa25a3795734cfedc598496adb0f1fc0a42a50649a9fe1f55734f5c9a37",
    "n160": "1c516af9ebb85288c6238fbe4f516980882f1997d47e3dfbe199420916a63f7c",
    "n162": "5d603662ef8fa006adc3b9356ba8f64abc2f5a63e446a1e463471ba8cf3f8ceb",
    "n164": "74cad3aa8f7ece0b886ed765c08e3782e8bc41adbdecc02e14ef5c5164d2f4f5",
    "n166": "921c62acb7294348f878763adfabef1ca9e0bdaf4dc9d43f2085c89468147c88",
    "n168": "17e5f70467b34c250bd735687e5adff4ba21d535086fbd6779391ac18328705a",
    "n170": "da6c8bbf85d0d6cafff03685ed737e0df9a938a96c1e0ce331db6ff5c05f265e",
}


def held_out(ids=SHA256) -> list[str]:
    """The stories kept aside as the team's own held-out part (sorted)."""
    return sorted(random.Random(HELD_OUT_SEED).sample(sorted(ids), HELD_OUT_STORIES))


def read_stories(folder: Path = STORIES) -> list[dict]:
    """articles.json's entries, each with its story's bytes under "data"; SystemExit naming the file on a mismatch."""
    listing = folder / "articles.json"
    try:
        entries = json.loads(listing.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{listing}: cannot read the story list ({exc}); give the news-dev folder with --stories DIR.")
    ids = sorted(e.get("id") for e in entries)
    if ids != sorted(SHA256):
        raise SystemExit(f"{listing} lists {ids}; expected the 15 stories {sorted(SHA256)}. Is --stories the "
                         "news-dev folder?")
    for e in entries:
        path = folder / e["file"]
        try:
            e["data"] = path.read_bytes()
        except OSError as exc:
            raise SystemExit(f"{path}: cannot read the story ({exc.strerror or exc}).")
        digest = hashlib.sha256(e["data"]).hexdigest()
        if digest != SHA256[e["id"]]:
            raise SystemExit(f"{path} has sha256 {digest}, not {SHA256[e['id']]}: the story changed, so the gold sets' "
                             "quotes and offsets may no longer hold. Restore the original file.")
    return sorted(entries, key=lambda e: e["id"])


def stored_text(entry: dict) -> str:
    """The file `qa add` would store for the story: front matter, a blank line, the story unchanged."""
    from qa.collection import prepare_article

    article = prepare_article(entry["data"], title=entry["title"], url=entry["url"], source=SOURCE)
    story = entry["data"].decode("utf-8")
    if not article.raw.endswith("\n\n" + story):
        raise SystemExit(f"{entry['file']}: the stored text would not end with the story byte for byte "
                         "(leading or trailing blank lines, or CR line ends?).")
    return article.raw


def write_corpus(out: Path, folder: Path = STORIES) -> list[Path]:
    entries = read_stories(folder)
    out.mkdir(parents=True, exist_ok=True)
    ours = {f"{e['id']}.txt" for e in entries}
    others = sorted(p.name for p in out.iterdir() if p.is_file() and p.name not in ours and not p.name.startswith("."))
    if others:
        raise SystemExit(f"{out} holds other files ({', '.join(others[:5])}{' ...' if len(others) > 5 else ''}), which "
                         "`qa build` would index too; give an empty or new folder.")
    written = []
    for e in entries:
        path = out / f"{e['id']}.txt"
        path.write_bytes(stored_text(e).encode("utf-8"))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write <id>.txt into (created; must hold nothing else)")
    parser.add_argument("--stories", type=Path, default=STORIES, help=f"the news-dev folder (default {STORIES})")
    args = parser.parse_args(argv)
    written = write_corpus(args.out, args.stories)
    print(f"Wrote {len(written)} stories to {args.out} (held out: {', '.join(held_out())}). Next:\n"
          f"  .venv/bin/qa build {args.out} --index INDEX_DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
