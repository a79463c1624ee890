"""Benchmark: one huge article through ``digest check`` (issue 13, item 6).

Generates, under ``bench/_work/huge/``, a blog whose newest article is either a
1.6 MB Markdown table (the case that took 38 s and 2 GB) or a 50 MB post of
paragraphs, and runs ``digest check`` on it in a fresh process, reporting wall
time and peak RSS. Run with ``--max-file-kb`` high enough to let the file through
to measure the parse itself; by default (1024 KB) the 50 MB post is skipped with a
warning.

    .venv/bin/python bench/huge.py                       # both cases, default limit
    .venv/bin/python bench/huge.py --max-file-kb 60000   # both parsed
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work" / "huge"


def table(size: int) -> str:
    rows = ["| a | b | c | d |", "|---|---|---|---|"]
    n, total = 0, 0
    while total < size:
        row = f"| cell {n} | **bold** {n} | [link](/p/{n}) | `code {n}` |"
        rows.append(row)
        total += len(row) + 1
        n += 1
    return "\n".join(rows) + "\n"


def post(size: int) -> str:
    para = (
        "The quick brown fox jumps over the lazy dog, and then it *runs* away to "
        "[the woods](https://example.com/woods) before nightfall. "
    ) * 4
    return "\n\n".join([para] * (size // (len(para) + 2) + 1)) + "\n"


CASES = {"table-1.6MB": lambda: table(1_600_000), "post-50MB": lambda: post(50_000_000)}


def blog(name: str, body: str, max_kb: int) -> Path:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "content").mkdir(parents=True)
    (folder / "content" / "2026-11-20-small.md").write_text("# Small\n\nA short post.\n")
    (folder / "content" / "2026-11-21-huge.md").write_text(
        "---\ntitle: Huge\n---\nA lede sentence that a summary can use.\n\n" + body
    )
    (folder / "config.toml").write_text(
        f'[content]\nfolder = "content"\nmax_file_kb = {max_kb}\n'
        '[schedule]\ntimezone = "UTC"\n[newsletter]\nbase_url = "https://example.com"\n'
    )
    return folder


# Each case runs in its own wrapper process, so ru_maxrss of its children is that case's.
_WRAP = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True,"
    " text=True); sys.stdout.write(r.stdout + r.stderr); "
    "print('\\nMAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def run(folder: Path) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of ``digest check`` in a fresh process."""
    cmd = [sys.executable, "-m", "digest.cli", "--config", str(folder / "config.toml"), "check"]
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _WRAP, *cmd],
        capture_output=True,
        text=True,
        # PYTHONPATH passes through, to measure another checkout's src/ the same way.
        env={"DIGEST_NOW": "2026-11-23T08:00:00Z", "PATH": "/usr/bin:/bin"}
        | {k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    ).stdout
    wall = time.perf_counter() - t0
    text, _, rss = out.rpartition("MAXRSS ")
    return wall, int(rss) / 1024, text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-file-kb", type=int, default=1024)
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    args = ap.parse_args()
    for name in args.case or list(CASES):
        folder = blog(name, CASES[name](), args.max_file_kb)
        wall, peak, out = run(folder)
        skipped = "skipped" if "above content.max_file_kb" in out else "parsed"
        rendered = "rendered" if "Checked" in out and "nothing to send" not in out else "-"
        print(f"{name:12} {skipped:8} {rendered:8} {wall:6.2f} s  peak RSS {peak:7.0f} MB")
        if "Traceback" in out:
            print(out[-2000:])


if __name__ == "__main__":
    main()
