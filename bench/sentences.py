"""Evaluation: the summarizer's sentence splitting without syntok, against syntok.

``summarize._plain_spans`` splits plain prose the way syntok does without importing it
(~17 ms of a build that summarizes). This script checks that claim where it matters:

1. on real blogs (content folders checked out outside the repository): every post is
   summarized as a build does; every text handed to the splitter is split both ways,
   and every summary is made again with syntok alone. Any difference is a bug.
2. on random texts (seeded) made of the words that steer syntok's decisions:
   abbreviations, sentence starters, roman numerals, single letters, "iPhone",
   numbers, in-word dots, quotes, brackets and several marks in a row.

It prints how many texts took the plain path, how many differ (must be 0), and the
time a text costs each way. Nothing is timed in the tests; tests/test_summarize.py runs
a smaller seeded sample of part 2.

    .venv/bin/python bench/sentences.py rust=/work/sites/blog.rust-lang.org/content ...
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import summaries  # bench/summaries.py: the same loader
from digest import summarize as sm

# Words and marks that steer syntok (see summarize._plain_spans), and plain ones.
WORDS = (  # noqa: SIM905
    "the a word Rust Google end it is new iPhone McDonald example.com 1.5 2026 v1.2.3 "
    "don't readers’ well-known é Élan ça Über x I IV XX etc Dr vs Inc Mr Fig no No Jan "
    "Mar Do So The However And It A B c — - & % 50% U.S e.g ok OK NASA Ltd St st min "
    "max Dž ǅa ß ÿ Ÿ ĳ Ĳ abcDef (aside) [1] “quoted” 'single' 3. Sodium-ion Here's Don't "
    "DON'T don'tx Can’t it’s well-a a e o y u Node.js Yes,we So-2 Well- -ish 'tis "
    "O'Neil a-b-c x-IV"
).split()
MARKS = [".", "!", "?", ";", ",", ":", "", "", "", "", "", "", "..", "?!", ".’", ".'", "…"]
SPACES = [" ", " ", " ", " ", "\n", "  ", "\t", " \n "]


def random_texts(seed: int, count: int, plain_only: bool = False) -> list[str]:
    rng = random.Random(seed)
    words = (
        [w for w in WORDS if w.replace("-", "").replace("'", "").isalpha()] if plain_only else WORDS
    )
    marks = [m for m in MARKS if m in ".!?;,:"] + [""] * 6 if plain_only else MARKS
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts += [rng.choice(words) + rng.choice(marks), rng.choice(SPACES)]
        text = "".join(parts)
        text = text.strip() if rng.random() < 0.5 else text
        text = " " + text if rng.random() < 0.3 else text
        if text.strip():
            texts.append(text)
    return texts


def by_syntok(chunk: str) -> list[tuple[int, int]]:
    from syntok import segmenter

    spans = [
        (s[0].offset, s[-1].offset + len(s[-1].value))
        for s in segmenter.split(sm._tokenizer().tokenize(chunk))
        if s
    ]
    return spans or [(0, len(chunk))]


def compare(texts: list[str]) -> dict[str, Any]:
    taken = differ = 0
    fast_s = slow_s = 0.0
    shown = []
    for text in texts:
        t0 = time.perf_counter()
        fast = sm._plain_spans(text)
        t1 = time.perf_counter()
        slow = by_syntok(text)
        t2 = time.perf_counter()
        if fast is None:
            continue
        taken += 1
        fast_s += t1 - t0
        slow_s += t2 - t1
        if fast != slow:
            differ += 1
            shown.append((text, fast, slow))
    per = 1e6 / max(taken, 1)
    return {
        "texts": len(texts), "taken": taken, "differ": differ, "shown": shown[:10],
        "fast_us": per * fast_s, "syntok_us": per * slow_s,
    }  # fmt: skip


def real_blogs(folders: list[tuple[str, Path]]) -> None:
    seen: list[str] = []
    original = sm._plain_spans

    def recording(chunk: str) -> list[tuple[int, int]] | None:
        seen.append(chunk)
        return original(chunk)

    print("| site | posts | texts split | plain path | differ | summaries differ |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    totals = [0, 0, 0, 0, 0]
    for label, folder in folders:
        articles = summaries.load(folder)
        seen.clear()
        sm._plain_spans = recording
        try:
            made = [sm.summarize(a, words=summaries.BUDGET) for a in articles]
        finally:
            sm._plain_spans = original
        result = compare(list(seen))
        sm._plain_spans = lambda _chunk: None  # syntok alone
        try:
            again = [sm.summarize(a, words=summaries.BUDGET) for a in articles]
        finally:
            sm._plain_spans = original
        changed = sum(a != b for a, b in zip(made, again, strict=True))
        row = [len(articles), result["texts"], result["taken"], result["differ"], changed]
        totals = [t + r for t, r in zip(totals, row, strict=True)]
        share = f"{result['taken']} ({100 * result['taken'] / max(result['texts'], 1):.0f}%)"
        print(f"| {label} | {row[0]} | {row[1]} | {share} | {row[3]} | {row[4]} |")
        for text, fast, slow in result["shown"]:
            print(f"  DIFF {text!r}: {fast} != syntok {slow}", file=sys.stderr)
    share = f"{totals[2]} ({100 * totals[2] / max(totals[1], 1):.0f}%)"
    print(f"| all | {totals[0]} | {totals[1]} | {share} | {totals[3]} | {totals[4]} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", help="content folders, optionally LABEL=PATH")
    ap.add_argument("--random", type=int, default=20000, help="random texts of each kind")
    args = ap.parse_args(argv)
    if sm._syntok_words() is None:
        print("syntok's word lists were not found: the plain path is off", file=sys.stderr)
        return 1
    folders = []
    for f in args.folders:
        label, _, path = f.rpartition("=")
        folders.append((label or Path(path).name, Path(path)))
    if folders:
        real_blogs(folders)
    print()
    print("| random texts | texts | plain path | differ | µs a text, plain | µs, syntok |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    bad = 0
    for kind, seed, plain_only in (("any words", 1, False), ("plain words", 2, True)):
        r = compare(random_texts(seed, args.random, plain_only))
        bad += r["differ"]
        print(f"| {kind} | {r['texts']} | {r['taken']} | {r['differ']} | "
              f"{r['fast_us']:.1f} | {r['syntok_us']:.1f} |")  # fmt: skip
        for text, fast, slow in r["shown"]:
            print(f"  DIFF {text!r}: {fast} != syntok {slow}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
