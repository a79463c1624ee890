"""Benchmark: the suppression check made just before each message (issue 13, item 3).

`digest send` asks the ledger, right before each message goes, whether the reader has
unsubscribed since the row was read (rows are read ahead 500 at a time, which at a low
hourly rate is hours). This times that check alone at 100,000 recipients, the way a send
makes it: four sender threads sharing one ledger connection, a suppression list of
20,000 addresses, 1% of the recipients on it. It reports the total and per-message cost
next to a whole send of 100,000 (BENCHMARKS.md, "Send": 56.8 s), and writes the
"## Suppression check" section of BENCHMARKS.md.

    .venv/bin/python bench/suppression.py             # about 10 s
    .venv/bin/python bench/suppression.py --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from build import write_section  # noqa: E402  (bench/build.py)
from digest.ledger import Ledger  # noqa: E402
from digest.model import RenderedEmail  # noqa: E402

THREADS = 4
WHOLE_SEND_100K = 56.8  # s, BENCHMARKS.md "Send" (peak RSS run at 100,000 subscribers)


def setup(folder: Path, n: int, suppressed: int) -> Ledger:
    ledger = Ledger(folder / "ledger.sqlite3")
    ledger.freeze(RenderedEmail("2026-W48", "s", "p", "<p>h</p>", "t"))
    rows = ((f"reader{i}@example.com",) * 2 + ("", "") for i in range(n))
    ledger.enqueue("2026-W48", rows)
    # Every 100th recipient plus addresses not on the list: a long-running newsletter.
    keys = [f"reader{i}@example.com" for i in range(0, n, 100)]
    keys += [f"gone{i}@example.org" for i in range(suppressed - len(keys))]
    ledger.copy_suppressions((k, k, "unsubscribe", 0.0) for k in keys)
    return ledger


def run_once(ledger: Ledger, n: int) -> tuple[float, int]:
    """Seconds for ``n`` checks made by THREADS threads; how many were suppressed."""
    found = [0] * THREADS

    def worker(t: int) -> None:
        for i in range(t, n, THREADS):
            if ledger.is_suppressed(f"Reader{i}@example.com"):
                found[t] += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - started, sum(found)


def section(n: int, suppressed: int, times: list[float], hits: int) -> str:
    med = statistics.median(times)
    load = os.getloadavg()[0]
    return "\n".join(
        [
            "## Suppression check",
            "",
            f"`.venv/bin/python bench/suppression.py` on {platform.node()} ({os.cpu_count()} "
            f"cores, Python {platform.python_version()}, {dt.date.today()}, load {load:.2f}). "
            "The check `digest send` makes just before each message (is the reader "
            "suppressed now?), alone: one primary-key lookup on the ledger's shared "
            f"connection, from {THREADS} threads as the sender threads make it; "
            f"{suppressed:,} suppressed addresses, {hits:,} of the recipients among them; "
            f"median of {len(times)} runs.",
            "",
            "| recipients | checks, total | per message | share of a whole send of 100,000 |",
            "| ---: | ---: | ---: | ---: |",
            f"| {n:,} | {med:.2f} s | {med / n * 1e6:.1f} us | "
            f"{med / WHOLE_SEND_100K:.1%} of {WHOLE_SEND_100K} s |",
            "",
            "Before, suppression was read once per batch of 500 rows, so a reader who "
            "unsubscribed after the batch was read still got the issue (57 of 100 in the "
            "review, at `rate_per_hour = 100`). The batch join is kept: it drops rows "
            "suppressed before the batch is read without using a rate-limit slot.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--suppressed", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp,
        setup(Path(tmp), args.recipients, args.suppressed) as ledger,
    ):
        results = [run_once(ledger, args.recipients) for _ in range(args.reps)]
    times = [t for t, _ in results]
    text = section(args.recipients, args.suppressed, times, results[0][1])
    print(text)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", text)


if __name__ == "__main__":
    main()
