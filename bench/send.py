"""Benchmark: `digest send` against Postfix's own load generator, on Postfix's sink.

In one run, on one local discarding SMTP server (Postfix ``smtp-sink`` on 127.0.0.1, a
free port), interleaved so both see the same machine load:

* ``digest send`` of a 60 KB issue to 10,000 subscribers (a fresh process each time:
  start-up, reading and queueing the list, composing, SMTP with PIPELINING over 4 reused
  connections, one ledger commit per message);
* ``smtp-source`` sending the same number of 60 KB messages at the same concurrency over
  reused connections (``-s 4 -d``).

Reports medians and the ratio of digest's rate to smtp-source's (target >= 0.5), then the
peak RSS of ``digest send`` at 1,000 and 100,000 subscribers (target: at most 1.5x), and
rewrites the "## Send" section of BENCHMARKS.md (other sections are left alone).

    .venv/bin/python bench/send.py                   # full run (about 4 minutes)
    .venv/bin/python bench/send.py --reps 1 --memory 1000,10000 --no-write
    .venv/bin/python bench/send.py --profile         # + cProfile of one send, in-process
    .venv/bin/python bench/send.py --synchronous     # ledger FULL vs NORMAL (issue 13)
    .venv/bin/python bench/send.py --dkim rsa,ed25519 --memory 1000 --no-write
                                                     # + signed sends, "## DKIM" section

Needs Postfix's test tools (Debian: ``apt-get install postfix``; nothing has to run as a
mail server): /usr/sbin/smtp-sink and /usr/sbin/smtp-source.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work" / "send"
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SIZE = 61_440  # bytes per message, as smtp-source -l 61440
CONCURRENCY = 4
WEEK = "2026-W48"
SECRET = "bench-secret-not-for-real-use-0123456789"
COMMAND = ".venv/bin/python bench/send.py"

sys.path.insert(0, str(ROOT / "src"))

from build import write_section  # noqa: E402  (bench/build.py)
from digest.ledger import Ledger  # noqa: E402
from digest.message import Composer  # noqa: E402
from digest.model import Recipient, RenderedEmail  # noqa: E402

# -- the issue -----------------------------------------------------------------------------

_BLOCK = (
    '<tr><td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;font-size:16px;'
    'line-height:1.5;color:#222222"><h2 style="margin:0 0 8px;font-size:20px"><a href="'
    'https://example.com/articles/{i}/" style="color:#1a56db;text-decoration:none">Article '
    'number {i}, with a title about this long</a></h2><p style="margin:0 0 12px">A summary '
    "of the article in two or three sentences, written from the content. It tells the reader "
    "what the piece is about and why it matters this week.</p></td></tr>\n"
)
_TEXT = (
    "Article number {i}, with a title about this long\nA summary of the article in two or "
    "three sentences, written from the content.\nIt tells the reader what the piece is about "
    "and why it matters this week.\nhttps://example.com/articles/{i}/\n\n"
)


def issue(blocks: int) -> RenderedEmail:
    html = (
        "<html><body><p>Hi __digest_first_name__,</p><table>"
        + "".join(_BLOCK.format(i=i) for i in range(blocks))
        + '</table><p><a href="__digest_web_url__">View in your browser</a> | '
        '<a href="__digest_unsubscribe_url__">Unsubscribe</a></p></body></html>'
    )
    text = (
        "Hi __digest_first_name__,\n\n"
        + "".join(_TEXT.format(i=i) for i in range(blocks // 2))
        + "Unsubscribe: __digest_unsubscribe_url__\n"
    )
    return RenderedEmail(
        WEEK,
        "The Weekly Digest #48: what happened this week",
        "Ten articles this week",
        html,
        text,
        defaults={"web_url": f"https://example.com/newsletter/issues/{WEEK}/"},
    )


def sized_issue(target: int = SIZE) -> tuple[RenderedEmail, int]:
    """The issue whose composed message is closest to ``target`` bytes."""

    def size(blocks: int) -> int:
        c = Composer(
            issue(blocks),
            secret=SECRET,
            from_email="news@example.com",
            from_name="The Weekly Digest",
            unsubscribe_url="https://example.com/u",
        )
        return len(c.compose(Recipient("reader12345@example.com", "Reader 12345")).data)

    best = min(range(20, 200), key=lambda b: abs(size(b) - target))
    return issue(best), size(best)


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if port:  # a server already listening (--server): not started or stopped here
            return
        args = [SINK]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        self.proc = subprocess.Popen([*args, f"127.0.0.1:{self.port}", "256"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("smtp-sink did not start")

    def cpu(self) -> float:
        return cpu_of(self.proc.pid) if self.proc is not None else float("nan")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


@dataclass
class Run:
    seconds: float
    cpu: float  # user + system CPU seconds of the process
    maxrss_kb: int
    code: int
    out: str = ""
    sink_cpu: float = float("nan")  # CPU seconds the SMTP sink spent during the run


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux /proc; else nan)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def timed(args: list[str], env: dict[str, str] | None = None) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=WORK
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, out)


def subscribers(n: int) -> Path:
    path = WORK / f"subscribers-{n}.csv"
    if not path.exists():
        with path.open("w") as f:
            f.write("email,name\n")
            for i in range(n):
                f.write(f"reader{i}@example{i % 97}.com,Reader {i}\n")
    return path


def dkim_key(kind: str) -> Path:
    """A DKIM key made as the README says (openssl genpkey)."""
    path = WORK / f"dkim-{kind}.pem"
    if not path.exists():
        algo = ["-algorithm", "ed25519"]
        if kind == "rsa":
            algo = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        subprocess.run(["openssl", "genpkey", *algo, "-out", str(path)], check=True)
    return path


def prepare_send(port: int, n: int, rendered: RenderedEmail, dkim: str = "") -> Path:
    """A config sending to the sink, a fresh ledger with the issue frozen in it."""
    signing = (
        f'[dkim]\ndomain = "example.com"\nselector = "bench"\nkey_file = "{dkim_key(dkim)}"\n'
        if dkim
        else ""
    )
    config = WORK / f"config-{n}.toml"
    ledger = WORK / f"ledger-{n}.sqlite3"
    for p in WORK.glob(f"ledger-{n}.sqlite3*"):
        p.unlink()
    config.write_text(
        f"""
[newsletter]
base_url = "https://news.example.com"

[sender]
email = "news@example.com"
name = "The Weekly Digest"

[subscribers]
file = "{subscribers(n).name}"

[ledger]
path = "{ledger.name}"

[delivery]
transport = "smtp"
concurrency = {CONCURRENCY}

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"

[unsubscribe]
secret_env = "DIGEST_BENCH_SECRET"
url = "https://example.com/newsletter/unsubscribe"

{signing}"""
    )
    with Ledger(ledger) as led:
        led.freeze(rendered)
    return config


# Runs the CLI with the ledger's synchronous mode set first (a bench-only override: digest
# itself has no knob for it, FULL is not negotiable for users).
# "NORMAL/100": NORMAL with an fsync of the WAL every 100 recorded deliveries (digest's
# choice); "NORMAL/0": never (SQLite's NORMAL alone).
_WITH_SYNCHRONOUS = (
    "import sys, digest.ledger as ledger; mode, _, every = sys.argv.pop(1).partition('/'); "
    "ledger.SYNCHRONOUS = mode; ledger.SYNC_EVERY = int(every or 0); "
    "from digest.cli import main; main(prog_name='digest')"
)


def digest_send(
    port: int, n: int, rendered: RenderedEmail, dkim: str = "", synchronous: str = ""
) -> Run:
    config = prepare_send(port, n, rendered, dkim)
    env = {**os.environ, "DIGEST_BENCH_SECRET": SECRET}
    start = ["-c", _WITH_SYNCHRONOUS, synchronous] if synchronous else ["-m", "digest.cli"]
    run = timed(
        [sys.executable, *start, "--config", str(config), "send", "--issue", WEEK, "--yes"],
        env,
    )
    m = re.search(r"^  sent\s+([\d,]+)$", run.out, re.M)
    sent = int(m.group(1).replace(",", "")) if m else -1
    if run.code != 0 or sent != n:
        raise SystemExit(f"digest send failed (exit {run.code}, sent {sent}):\n{run.out}")
    return run


def smtp_source(port: int, n: int) -> Run:
    run = timed(
        [SOURCE, "-s", str(CONCURRENCY), "-d", "-m", str(n), "-l", str(SIZE),
         "-f", "news@example.com", "-t", "reader@example.com", f"127.0.0.1:{port}"]
    )  # fmt: skip
    if run.code != 0:
        raise SystemExit(f"smtp-source failed (exit {run.code}):\n{run.out}")
    return run


# -- report ----------------------------------------------------------------------------------


def section(
    n: int,
    size: int,
    digest_runs: list[Run],
    source_runs: list[Run],
    memory: dict[int, Run],
) -> str:
    d = statistics.median(r.seconds for r in digest_runs)
    s = statistics.median(r.seconds for r in source_runs)
    ratio = s / d  # digest's rate / smtp-source's rate
    d_cpu = statistics.median(r.cpu for r in digest_runs)
    sizes = sorted(memory)
    small, big = memory[sizes[0]], memory[sizes[-1]]
    mem_ratio = big.maxrss_kb / small.maxrss_kb
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ok = lambda good: "met" if good else "NOT met"  # noqa: E731
    lines = [
        "## Send",
        "",
        f"`{COMMAND}` on {platform.node() or 'this machine'} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {dt.date.today().isoformat()}, load "
        f"{load:.2f} at the end). One `digest send` process per run (start-up, reading and "
        f"queueing the list, composing, SMTP, a ledger commit per message) against Postfix "
        f"`smtp-source` on the same `smtp-sink`, interleaved; medians of "
        f"{len(digest_runs)} runs.",
        "",
        f"| {n:,} messages of {size / 1024:.0f} KB, concurrency {CONCURRENCY} | wall | "
        "messages/s | CPU |",
        "| --- | ---: | ---: | ---: |",
        f"| `digest send` | {d:.2f} s | {n / d:,.0f} | {d_cpu:.2f} s |",
        f"| `smtp-source -s {CONCURRENCY} -d` | {s:.2f} s | {n / s:,.0f} | "
        f"{statistics.median(r.cpu for r in source_runs):.2f} s |",
        "",
        f"**Rate ratio digest / smtp-source: {ratio:.2f}** (target >= 0.5: {ok(ratio >= 0.5)}).",
        "",
        "| subscribers | peak RSS of `digest send` | wall |",
        "| ---: | ---: | ---: |",
        *(
            f"| {k:,} | {memory[k].maxrss_kb / 1024:.1f} MB | {memory[k].seconds:.1f} s |"
            for k in sizes
        ),
        "",
        f"**Peak memory {sizes[-1]:,} / {sizes[0]:,} subscribers: {mem_ratio:.2f}x** (target "
        f"<= 1.5x: {ok(mem_ratio <= 1.5)}).",
        "",
        "How: the issue is rendered once and frozen in the ledger; per recipient only the "
        "personal fields are quoted-printable-encoded and spliced between pre-encoded bytes "
        "(about 50 us for 60 KB; a line-leading dot is encoded, so there is no dot-stuffing "
        "pass); SMTP PIPELINING sends MAIL, RCPT and DATA in one write "
        "(smtp-source does not pipeline); TCP_NODELAY; four threads, one reused connection "
        "each. The subscriber list is streamed into the ledger (duplicates folded by its "
        "unique index) and read back in batches, so memory does not grow with the list. "
        "On 2 cores the sink takes one core and digest the other (the GIL), so wall times "
        "move with the machine's load.",
    ]
    return "\n".join(lines) + "\n"


def micro(rendered: RenderedEmail, kinds: list[str], n: int = 300) -> dict[str, float]:
    """In-process, one thread: milliseconds of CPU to compose one message, unsigned and
    signed by each key; the parts of signing (the private-key operation alone, the
    SHA-256 of a body); and dkimpy's own ``dkim.sign`` on the composed bytes. Each the
    best of 5 rounds (the machine is shared)."""
    import hashlib

    import dkim

    from digest.signing import Signer, load_key

    def composer() -> Composer:
        return Composer(
            rendered,
            secret=SECRET,
            from_email="news@example.com",
            from_name="The Weekly Digest",
            unsubscribe_url="https://example.com/u",
        )

    def best(fn: Callable[[int], object], count: int = n) -> float:
        times = []
        for _ in range(5):
            started = time.process_time()
            for i in range(count):
                fn(i)
            times.append((time.process_time() - started) / count * 1000)
        return min(times)

    def per_message(c: Composer) -> float:
        return best(lambda i: c.compose(Recipient(f"reader{i}@example.com", f"Reader {i}")))

    out = {"unsigned": per_message(composer())}
    data = composer().compose(Recipient("reader@example.com", "Reader")).data
    body = data[data.index(b"\r\n\r\n") + 4 :]
    digest = hashlib.sha256(b"x").digest()
    for kind in kinds:
        c = composer()
        c.signer = Signer(load_key(dkim_key(kind)), "example.com", "bench", c._head)
        out[kind] = per_message(c)
        key = c.signer.key
        out[f"{kind} key operation"] = best(lambda i: key.sign_digest(digest))  # noqa: B023
    out["SHA-256 of the body"] = best(lambda i: hashlib.sha256(body).digest())
    pem = dkim_key("rsa").read_bytes()
    out["dkim.sign (rsa)"] = best(lambda i: dkim.sign(data, b"bench", b"example.com", pem), 3)
    return out


def dkim_section(
    n: int,
    size: int,
    plain: list[Run],
    signed: dict[str, list[Run]],
    costs: dict[str, float],
    load_start: float,
    server: int = 0,
) -> str:
    med = statistics.median
    p = med(r.seconds for r in plain)
    option = f" --server {server}" if server else ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "## DKIM",
        "",
        f"`{COMMAND} --dkim {','.join(signed)}{option}` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}, load {load_start:.2f} at the start, {load:.2f} at "
        f"the end): the same `digest send` of {n:,} messages of {size / 1024:.0f} KB to "
        f"{f'the SMTP server on port {server}' if server else '`smtp-sink`'}, unsigned "
        f"and signed, interleaved (the order reversed every other "
        f"rep); medians of {len(plain)} runs. CPU: of `digest send` (with its threads), "
        "and of `smtp-sink` during the run (nan: another server's is not measured).",
        "",
        "| send | wall | messages/s | CPU digest | CPU sink | rate vs unsigned | CPU-bound ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base_cpu = med(r.cpu for r in plain) + med(r.sink_cpu for r in plain)
    rows = [("unsigned", plain), *((k, runs) for k, runs in signed.items())]
    verdicts = []
    for kind, runs in rows:
        s = med(r.seconds for r in runs)
        cpu, sink = med(r.cpu for r in runs), med(r.sink_cpu for r in runs)
        label = {"rsa": "signed, RSA-2048", "ed25519": "signed, Ed25519"}.get(kind, kind)
        lines.append(
            f"| {label} | {s:.2f} s | {n / s:,.0f} | {cpu:.2f} s | {sink:.2f} s | "
            f"{p / s:.2f} | {base_cpu / (cpu + sink):.2f} |"
        )
        if kind != "unsigned":
            verdicts.append(f"{kind} {p / s:.2f} ({'met' if p / s >= 2 / 3 else 'NOT met'})")
    lines += [
        "",
        f"**Signed rate / unsigned rate: {', '.join(verdicts)}** (target: signing cuts the "
        "rate by at most a third, >= 0.67). The CPU-bound ratio is what the rate ratio "
        "would be if the machine's CPU (digest and the sink together) were the limit: "
        "(digest + sink CPU, unsigned) / (the same, signed).",
        "",
        "CPU per message, in-process, one thread, best of 5: "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in costs.items())
        + ".",
        "",
        "How: per send the key is loaded once, the fixed header fields are canonicalized "
        "and hashed once, and the DKIM-Signature field is folded once with holes for t=, "
        "bh= and b=; per message a copy of the hash state takes the four personal fields "
        "and the filled-in field, the body is hashed as it is (c=relaxed/simple), and "
        "OpenSSL (through `cryptography`, which lets go of the GIL) does the one "
        "private-key operation. Two threads compose and sign ahead of the four sending "
        "threads, taking 8 jobs at a time. The header is byte for byte what dkimpy's "
        "`sign` writes (tested).",
    ]
    return "\n".join(lines) + "\n"


def profile(port: int, n: int, rendered: RenderedEmail, dkim: str = "") -> None:
    import cProfile
    import pstats

    from digest import delivery, pipeline, sending
    from digest.config import load

    config = prepare_send(port, n, rendered, dkim)
    os.environ["DIGEST_BENCH_SECRET"] = SECRET
    cfg = load(config)
    profiles = [cProfile.Profile()]
    worker = delivery.Engine._worker

    def profiled(self):  # type: ignore[no-untyped-def]
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.runcall(worker, self)

    delivery.Engine._worker = profiled  # type: ignore[method-assign]
    started = time.perf_counter()
    report = profiles[0].runcall(
        sending.send, cfg, dt.datetime.now(dt.UTC), pipeline.Selection(week=WEEK)
    )
    print(report, f"in {time.perf_counter() - started:.2f} s")
    print("worker threads, by own time:")
    pstats.Stats(*profiles[1:]).sort_stats("tottime").print_stats(25)


DURABILITY = "## Ledger durability: synchronous FULL vs NORMAL (issue 13)"
# (label, mode passed to _WITH_SYNCHRONOUS, most deliveries a power loss can roll back)
MODES = [
    ("`synchronous = FULL`", "FULL", "0"),
    ("`NORMAL` (SQLite's: the WAL synced before each checkpoint)", "NORMAL/0", "~925"),
    ("`NORMAL` + fsync of the WAL every 100 deliveries (digest's choice)", "NORMAL/100", "100"),
]
DURABILITY_BOUND = 0.10  # FULL is chosen unless it costs more than this


def token_costs(reps: int = 20_000) -> dict[str, float]:
    """Microseconds per unsubscribe token: the opaque format, and the address-carrying one
    it replaced (one HMAC-SHA256 of the address), for the same addresses."""
    import hmac

    from digest.tokens import make_token

    addresses = [f"reader{i}@example{i % 97}.com" for i in range(reps)]

    def legacy(secret: str, email: str) -> str:
        mac = hmac.new(secret.encode(), b"digest-unsubscribe-v1\0" + email.encode(), "sha256")
        return email + "." + mac.hexdigest()

    out = {}
    for name, fn in (("opaque (issue 13)", make_token), ("address + MAC (before)", legacy)):
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for a in addresses:
                fn(SECRET, a)
            best = min(best, time.perf_counter() - started)
        out[name] = best / reps * 1e6
    return out


def commits(n: int, reps: int) -> dict[str, list[float]]:
    """Seconds for the ledger alone to record ``n`` deliveries (one commit each, as a
    send does), per mode, interleaved: the send's ledger cost without the SMTP noise."""
    import digest.ledger as ledger_module

    out: dict[str, list[float]] = {mode: [] for _, mode, _ in MODES}
    rows = [(f"r{i}@example.com", f"r{i}@example.com", "", "") for i in range(n)]
    for rep in range(reps):
        for mode in list(out) if rep % 2 == 0 else list(reversed(out)):
            sync, _, every = mode.partition("/")
            ledger_module.SYNCHRONOUS, ledger_module.SYNC_EVERY = sync, int(every or 0)
            path = WORK / "commits.sqlite3"
            for p in WORK.glob("commits.sqlite3*"):
                p.unlink()
            with Ledger(path) as led:
                led.freeze(sized_issue(2_000)[0])
                led.enqueue(WEEK, rows)
                ids = [r.id for r in led.to_send(WEEK)]
                started = time.perf_counter()
                for i in ids:
                    led.mark(i, "sent", message_id=f"<{i}@example.com>")
                out[mode].append(time.perf_counter() - started)
    return out


def durability(port: int, n: int, reps: int, rendered: RenderedEmail) -> str:
    """Interleaved sends with the ledger at FULL and at NORMAL; the section's text."""
    runs: dict[str, list[Run]] = {mode: [] for _, mode, _ in MODES}
    for rep in range(reps):
        order = list(runs) if rep % 2 == 0 else list(reversed(runs))
        for mode in order:
            runs[mode].append(digest_send(port, n, rendered, synchronous=mode))
            print(f"rep {rep + 1} {mode}: {runs[mode][-1].seconds:.2f} s "
                  f"(cpu {runs[mode][-1].cpu:.2f} s)")  # fmt: skip
    wall = {m: statistics.median(r.seconds for r in rs) for m, rs in runs.items()}
    cpu = {m: statistics.median(r.cpu for r in rs) for m, rs in runs.items()}
    low = {m: min(r.seconds for r in rs) for m, rs in runs.items()}
    base = wall["NORMAL/0"]
    alone = commits(n, reps)
    for mode, times in alone.items():
        print(f"ledger alone, {mode}: median {statistics.median(times):.2f} s")
    extra = {m: statistics.median(t) - statistics.median(alone["NORMAL/0"])
             for m, t in alone.items()}  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tokens = token_costs()
    ledger_fs = subprocess.run(
        ["df", "-T", str(WORK)], capture_output=True, text=True, check=False
    ).stdout.splitlines()[-1:]
    fs = ledger_fs[0].split()[1] if ledger_fs else "?"
    lines = [
        DURABILITY,
        "",
        f"`{COMMAND} --synchronous` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}, load {load:.2f} at the end; ledger on {fs}). "
        f"The Send benchmark's `digest send` (a fresh process, {n:,} recipients, 60 KB, "
        f"concurrency {CONCURRENCY}, Postfix `smtp-sink`), the ledger opened with "
        f"`PRAGMA synchronous = FULL` or `NORMAL`, interleaved; medians of {reps} runs each.",
        "",
        "| ledger | wall median | wall min | messages/s | CPU | vs NORMAL | "
        "deliveries a power loss can roll back |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {label} | {wall[m]:.2f} s | {low[m]:.2f} s | {n / wall[m]:,.0f} | "
            f"{cpu[m]:.2f} s | {wall[m] / base - 1:+.1%} | {lost} |"
            for label, m, lost in MODES
        ),
        "",
        f"**FULL costs {wall['FULL'] / base - 1:+.1%} of the send's wall time, NORMAL with "
        f"an fsync every 100 deliveries {wall['NORMAL/100'] / base - 1:+.1%}** (bound: "
        f"{DURABILITY_BOUND:.0%}). NORMAL syncs the WAL only before a checkpoint (every "
        "1,000 WAL pages, ~925 deliveries at ~1.08 pages each); a power loss rolls back "
        "what was recorded since the last sync, and those messages are sent again (same "
        "Message-ID). A crash of the process loses nothing in WAL mode with any setting.",
        "",
        f"The ledger alone, recording the same {n:,} deliveries (one commit each, no SMTP; "
        f"medians of {reps}), and what that adds to the median send at NORMAL:",
        "",
        "| ledger | recording alone | added to the send |",
        "| --- | ---: | ---: |",
        *(
            f"| {label} | {statistics.median(alone[m]):.2f} s | "
            f"{extra[m]:+.2f} s ({extra[m] / base:+.1%}) |"
            for label, m, _ in MODES
        ),
        "",
        "| unsubscribe token, per message | us |",
        "| --- | ---: |",
        *(f"| {name} | {us:.2f} |" for name, us in tokens.items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--memory", default="1000,100000", help="subscriber counts for peak RSS")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--synchronous", action="store_true", help="compare the ledger at FULL and NORMAL"
    )
    ap.add_argument("--dkim", default="", help="also send signed: rsa, ed25519 or both")
    ap.add_argument(
        "--server",
        type=int,
        default=0,
        metavar="PORT",
        help="send to this SMTP server on 127.0.0.1 (a local Postfix, say) instead of "
        "starting smtp-sink",
    )
    args = ap.parse_args()
    kinds = [k for k in args.dkim.split(",") if k]
    for tool in (SINK, SOURCE):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} not found: install Postfix (apt-get install postfix)")
    WORK.mkdir(parents=True, exist_ok=True)
    rendered, size = sized_issue()
    print(f"issue: {size:,} bytes per message")
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sink = Sink(args.server)
    try:
        if args.profile:
            profile(sink.port, args.messages, rendered, kinds[0] if kinds else "")
            return
        if args.synchronous:
            text = durability(sink.port, args.messages, args.reps, rendered)
            print()
            print(text)
            if not args.no_write:
                write_section(ROOT / "BENCHMARKS.md", text)
                print("wrote the durability section of BENCHMARKS.md")
            return
        digest_runs, source_runs = [], []
        signed: dict[str, list[Run]] = {k: [] for k in kinds}

        def measured(kind: str) -> Run:
            before = sink.cpu()
            run = digest_send(sink.port, args.messages, rendered, kind)
            run.sink_cpu = sink.cpu() - before
            return run

        for rep in range(args.reps):
            source_runs.append(smtp_source(sink.port, args.messages))
            # Unsigned and signed sends in turn, the order reversed every other rep, so
            # that neither always follows smtp-source or the other.
            for kind in ["", *kinds][:: -1 if rep % 2 else 1]:
                run = measured(kind)
                (signed[kind] if kind else digest_runs).append(run)
                print(f"rep {rep + 1} {kind or 'unsigned'}: {run.seconds:.2f} s (cpu "
                      f"{run.cpu:.2f} s, sink {run.sink_cpu:.2f} s, rss "
                      f"{run.maxrss_kb / 1024:.0f} MB)")  # fmt: skip
            print(f"rep {rep + 1} smtp-source {source_runs[-1].seconds:.2f} s")
        memory: dict[int, Run] = {}
        for n in (int(x) for x in args.memory.split(",")):
            memory[n] = digest_send(sink.port, n, rendered)
            print(f"memory: {n:,} subscribers: peak RSS {memory[n].maxrss_kb / 1024:.1f} MB, "
                  f"{memory[n].seconds:.1f} s")  # fmt: skip
    finally:
        sink.stop()
    text = section(args.messages, size, digest_runs, source_runs, memory)
    print()
    print(text)
    extra = ""
    if kinds:
        costs = micro(rendered, kinds)
        extra = dkim_section(
            args.messages, size, digest_runs, signed, costs, load_start, args.server
        )
    print(extra)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", text)
        print("wrote the Send section of BENCHMARKS.md")
        if extra:
            write_section(ROOT / "BENCHMARKS.md", extra)
            print("wrote the DKIM section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
