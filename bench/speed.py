"""Benchmark (issue 14, "fast where a user waits"): what a user feels, not what a build costs.

Measures, in one run, on the synthetic blogs of ``bench/build.py`` (``bench/_work/``):

* ``digest check`` over 10,000 articles, a second run (the scan cache warm), and one cold
  run (cache deleted) for reference;
* a preview refresh at 10,000 articles after one edit (in-process, as ``serve --preview``
  answers it, its cache in memory);
* the archive index with 1 and 260 sent issues: requests/s at 4 clients against a real
  ``digest serve`` process;
* start-up: ``digest --help`` and ``digest schedule --next 5``, beside ``python -c pass``;
* ``send --dry-run`` to 10,000 recipients: bytes written with the default sample;
* memory of the scan: peak RSS of ``digest build`` at 1,000, 10,000 and 50,000 articles;
* the floor: one Python process doing only mjml-python + premailer on the same MJML as a
  1k build (as plain imports, and imported as digest does), beside ``digest build`` of
  the 1k blog, cold and as a rebuild (CPU).

With ``--base SRC`` (another checkout's ``src/``, e.g. main's from ``git archive``), the
start-up and memory rows are also measured for it, interleaved: before/after in one run.

    .venv/bin/python bench/speed.py                # full run, rewrites its BENCHMARKS.md section
    .venv/bin/python bench/speed.py --reps 3 --no-write
    .venv/bin/python bench/speed.py --base /tmp/base/src
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import build  # bench/build.py: the synthetic blogs, process timing, the issue's MJML
from digest.render import _MJML_HEAD  # handed to the lean floor (which imports no digest)

ROOT = build.ROOT
WORK = build.WORK
NOW = build.NOW
COMMAND = ".venv/bin/python bench/speed.py"
SECTION = "## Issue 14: where a user waits"


def timed(cmd: list[str], env: dict[str, str], reps: int, cwd: Path = WORK) -> list[build.Run]:
    return [build.run(cmd, cwd=cwd, env=env) for _ in range(reps)]


def med(runs: list[build.Run]) -> tuple[float, float, float]:
    """Median wall s, median CPU s, peak RSS MB."""
    return (
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.maxrss_kb for r in runs) / 1024,
    )


# --- check -----------------------------------------------------------------------------------


def check_10k(blog: Path, env: dict[str, str], reps: int) -> dict[str, tuple[float, float, float]]:
    cmd = [str(build.DIGEST_BIN), "--config", str(blog / "config.toml"), "check"]
    shutil.rmtree(blog / "out" / ".cache", ignore_errors=True)
    cold = timed(cmd, env, 1)
    timed(cmd, env, 1)  # settles the cache (files written less than 2 s before are not kept)
    warm = timed(cmd, env, reps)
    return {"cold": med(cold), "warm": med(warm)}


# --- preview ---------------------------------------------------------------------------------

_PREVIEW = r"""
import datetime as dt, json, os, statistics, sys, time
from digest.config import load
from digest.web.preview import memory_cache, preview_html
cfg = load(sys.argv[1])
reps = int(sys.argv[2])
now = dt.datetime.fromisoformat(sys.argv[3])
cache = memory_cache(cfg)
query = {"latest": "1"}
t = time.perf_counter(); first = preview_html(cfg, query, cache=cache, now=lambda: now)
first_s = time.perf_counter() - t
assert "srcdoc=" in first, first[-2000:]
# An article in the issue's window: the worst case (it is parsed and rendered again).
newest = max((cfg.content.folder).glob("**/*.md"), key=lambda p: p.name)
text = newest.read_text()
times, cpu = [], []
for i in range(reps):
    newest.write_text(text.replace('title: "', f'title: "Edit {i}: ', 1))
    c = time.process_time(); t = time.perf_counter()
    page = preview_html(cfg, query, cache=cache, now=lambda: now)
    times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    assert f"Edit {i}: " in page, i
newest.write_text(text)
print(json.dumps([first_s, statistics.median(times), statistics.median(cpu)]))
"""


def preview_10k(blog: Path, env: dict[str, str], reps: int) -> tuple[float, float, float]:
    import json

    out = subprocess.run(
        [sys.executable, "-c", _PREVIEW, str(blog / "config.toml"), str(reps), NOW],
        cwd=WORK,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    first, wall, cpu = json.loads(out.stdout.strip().splitlines()[-1])
    return first, wall, cpu


# --- archive ---------------------------------------------------------------------------------


def archive_site(n: int, html: str, text: str) -> Path:
    from digest.ledger import Ledger
    from digest.model import RenderedEmail

    site = WORK / f"archive-{n}"
    if (site / "ledger.sqlite3").exists():
        return site
    site.mkdir(parents=True, exist_ok=True)
    (site / "config.toml").write_text(
        '[newsletter]\nname = "Bench Weekly"\nbase_url = "https://bench.example.com"\n'
        '[ledger]\npath = "ledger.sqlite3"\n[unsubscribe]\nsecret_env = "BENCH_SECRET"\n'
    )
    start = dt.datetime(2021, 1, 4, 8, tzinfo=dt.UTC)
    with Ledger(site / "ledger.sqlite3") as ledger:
        for i in range(n):
            when = start + dt.timedelta(weeks=i)
            year, week, _ = when.isocalendar()
            issue_id, subject = f"{year}-W{week:02d}", f"Bench Weekly #{i + 1}"
            r = RenderedEmail(issue_id, subject, "Ten articles", html, text)
            ledger.freeze(r, number=i + 1, send_at=when)
    return site


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def index_rate(site: Path, env: dict[str, str], seconds: float, clients: int = 4) -> float:
    import httpx

    port = _free_port()
    cfg = str(site / "config.toml")
    cmd = [str(build.DIGEST_BIN), "--config", cfg, "serve", "--port", str(port)]
    secret = {"BENCH_SECRET": secrets.token_urlsafe(32)}
    server = subprocess.Popen(
        cmd, cwd=site, env={**env, **secret}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("digest serve did not start")
            time.sleep(0.1)
        counts = [0] * clients
        stop = time.monotonic() + seconds

        def client(i: int) -> None:
            with httpx.Client() as c:
                while time.monotonic() < stop:
                    r = c.get(url)
                    assert r.status_code == 200
                    counts[i] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / (time.monotonic() - started)
    finally:
        server.terminate()
        server.wait(10)


# --- start-up, dry run, floor ----------------------------------------------------------------


def startup(
    blog: Path, env: dict[str, str], reps: int, base: dict[str, str] | None = None
) -> dict[str, tuple[float, float, float]]:
    digest = str(build.DIGEST_BIN)
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "digest --help": [digest, "--help"],
        "digest schedule --next 5": [digest, "--config", str(blog / "config.toml"), "schedule"],
    }  # fmt: skip
    cmds["digest schedule --next 5"] += ["--next", "5"]
    envs = {k: env for k in cmds}
    if base is not None:  # the same commands by the --base checkout, interleaved
        for k in ("digest --help", "digest schedule --next 5"):
            cmds[f"before: {k}"], envs[f"before: {k}"] = cmds[k], base
    runs: dict[str, list[build.Run]] = {k: [] for k in cmds}
    for k, c in cmds.items():
        build.run(c, cwd=WORK, env=envs[k])  # warm-up
    for _ in range(reps):
        for k, c in cmds.items():
            runs[k].append(build.run(c, cwd=WORK, env=envs[k]))
    return {k: med(v) for k, v in runs.items()}


# --- memory of the scan ------------------------------------------------------------------------

MEMORY_SIZES = (1_000, 10_000, 50_000)


def scan_memory(
    env: dict[str, str], reps: int, base: dict[str, str] | None = None
) -> dict[str, tuple[float, float, float]]:
    """``digest build`` (scan cache warm) of 1k, 10k and 50k articles: peak RSS should
    grow with the files only by a small tuple each, not by their front matter."""
    cmds: dict[str, tuple[list[str], dict[str, str]]] = {}
    for n in MEMORY_SIZES:
        blog = build.generate(n)
        cmds[f"{n:,}"] = (build.digest_cmd(blog), env)
        if base is not None:
            cmds[f"before: {n:,}"] = (build.digest_cmd(build.base_copy(blog)), base)
    runs: dict[str, list[build.Run]] = {k: [] for k in cmds}
    for cmd, e in cmds.values():
        build.run(cmd, cwd=WORK, env=e)  # fills the scan cache
    for _ in range(reps):
        for k, (cmd, e) in cmds.items():
            runs[k].append(own_rss(cmd, e))
    return {k: med(v) for k, v in runs.items()}


TIME = Path("/usr/bin/time")


def own_rss(cmd: list[str], env: dict[str, str]) -> build.Run:
    """``build.run``, with the peak RSS GNU time reports when it is there: a child forked
    from this (larger) process reports at least this process's RSS as its own peak (Linux
    carries the old memory's high-water mark across exec), which hides a small build's."""
    if not TIME.exists():
        return build.run(cmd, cwd=WORK, env=env)
    r = build.run([str(TIME), "-f", "maxrss_kb=%M", *cmd], cwd=WORK, env=env)
    found = [ln for ln in r.stdout.splitlines() if ln.startswith("maxrss_kb=")]
    return build.Run(r.wall, r.cpu, int(found[-1].split("=")[1]), r.stdout) if found else r


def dry_run(blog: Path, env: dict[str, str], recipients: int) -> tuple[float, int, int]:
    csv = blog / "bench-subscribers.csv"
    if not csv.exists():
        rows = "".join(f"reader{i}@example.com,Reader {i}\n" for i in range(recipients))
        csv.write_text("email,name\n" + rows)
    site = blog.parent / f"{blog.name}-dry"
    site.mkdir(exist_ok=True)
    cfg = (blog / "config.toml").read_text()
    cfg = cfg.replace('folder = "content"', f'folder = "{blog / "content"}"')
    cfg += f'\n[subscribers]\nfile = "{csv}"\n[ledger]\npath = "ledger.sqlite3"\n'
    (site / "config.toml").write_text(cfg)
    shutil.rmtree(site / "out", ignore_errors=True)
    cmd = [str(build.DIGEST_BIN), "--config", str(site / "config.toml"), "send", "--latest"]
    cmd.append("--dry-run")
    r = build.run(cmd, cwd=site, env={**env, "DIGEST_SECRET": secrets.token_urlsafe(32)})
    files = list((site / "out").glob("*/dry-run/new/*.eml"))
    return r.wall, len(files), sum(f.stat().st_size for f in files)


# premailer with digest's options (render._inline_css), the end of both floor scripts.
_PREMAILER = r"""out = premailer.Premailer(
    base_url=None, disable_link_rewrites=True, allow_network=False, external_styles=None,
    keep_style_tags=False, strip_important=False, disable_validation=True,
    cssutils_logging_level=logging.CRITICAL, remove_classes=False,
    exclude_pseudoclasses=True, align_floating_images=False, cache_css_parsing=True,
).transform(html, pretty_print=False)
sys.stdout.write(str(len(out)))
"""

_FLOOR = (
    r"""
import logging, sys
import mjml, premailer
src = open(sys.argv[1], encoding="utf-8").read()
html = mjml.mjml2html(src)
"""
    + _PREMAILER
)


# The same, imported and run as digest does it (issue 14): requests, urllib.request and
# importlib.metadata deferred while premailer and cssutils import (render._import_without:
# they only fetch over the network, which digest never lets them do), and no cssutils
# validation of style attributes.
_FLOOR_LEAN = (
    r"""
import importlib, importlib.util, logging, sys, types
render_deferred = ("requests", "urllib.request", "importlib.metadata")
class Deferred(types.ModuleType):
    def __getattr__(self, attr):
        return getattr(importlib.import_module(self.__name__), attr)
for name in render_deferred:
    stub = Deferred(name); stub.__spec__ = importlib.util.find_spec(name)
    sys.modules[name] = stub
    if "." in name:
        setattr(importlib.import_module(name.rpartition(".")[0]), name.rpartition(".")[2], stub)
import mjml, premailer, cssutils
for name in render_deferred:
    del sys.modules[name]
parse = cssutils.parseStyle
cssutils.parseStyle = lambda css, enc="utf-8", validate=None: parse(css, enc, validate=False)
import re
head = re.compile(sys.argv[2])  # render._MJML_HEAD: MJML's reset block is not inlined
src = open(sys.argv[1], encoding="utf-8").read()
html = mjml.mjml2html(src, disable_comments=True, fonts={})
html = head.sub(r'<style\1 data-premailer="ignore">\2', html)  # as render._inline_css
"""
    + _PREMAILER
)

FLOOR = "floor: mjml-python + premailer only"
FLOOR_LEAN = "floor, imported as digest does (deferred imports, no style validation)"
BUILD_COLD = "`digest build`, 1,000 articles, cold (compiled email not kept)"
BUILD_WARM = "`digest build`, 1,000 articles, rebuild (compiled email kept)"


def floor(
    mjml_file: Path, blog: Path, env: dict[str, str], reps: int
) -> dict[str, tuple[float, float, float]]:
    cmds = {
        FLOOR: [sys.executable, "-c", _FLOOR, str(mjml_file)],
        FLOOR_LEAN: [sys.executable, "-c", _FLOOR_LEAN, str(mjml_file), _MJML_HEAD.pattern],
        BUILD_COLD: build.digest_cmd(blog),
        BUILD_WARM: build.digest_cmd(blog),
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    runs: dict[str, list[build.Run]] = {k: [] for k in cmds}

    def once(k: str) -> build.Run:
        if k == BUILD_COLD:
            return build.run_cold(cmds[k], blog, env)
        return build.run(cmds[k], cwd=WORK, env=env)

    for k in cmds:
        once(k)
    for _ in range(reps):
        for k in cmds:
            runs[k].append(once(k))
    return {k: med(v) for k, v in runs.items()}


# --- the report ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=5.0, help="per archive load test")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--base", metavar="SRC", help="also run another checkout's src/ (before/after, one run)"
    )
    ap.add_argument("--base-label", default="", help="what --base is, for the report")
    args = ap.parse_args(argv)
    env = build.child_env()
    base = build.base_env(env, args.base) if args.base else None
    blogs = {n: build.generate(n) for n in build.SIZES}
    load_before = os.getloadavg()[0]
    lines: list[str] = []

    chk = check_10k(blogs[10_000], env, args.reps)
    print("check", chk, flush=True)
    pre = preview_10k(blogs[10_000], env, args.reps)
    print("preview", pre, flush=True)

    mjml_src, _how = build.issue_mjml(blogs[1_000])
    mjml_file = WORK / "issue.mjml"
    mjml_file.write_text(mjml_src, encoding="utf-8")
    sample = subprocess.run(
        [str(build.DIGEST_BIN), "--config", str(blogs[1_000] / "config.toml"), "build", "--latest"],
        cwd=WORK, env=env, capture_output=True, text=True,
    )  # fmt: skip
    built = sorted((blogs[1_000] / "out").glob("*/email.html"), key=lambda p: p.stat().st_mtime)
    html = built[-1].read_text(encoding="utf-8") if built else "<html></html>"
    texts = sorted((blogs[1_000] / "out").glob("*/email.txt"), key=lambda p: p.stat().st_mtime)
    text = texts[-1].read_text(encoding="utf-8") if texts else ""
    assert sample.returncode == 0, sample.stderr
    rates: dict[int, float] = {}
    before: dict[int, float] = {}  # with --base: its server on the same ledger, in turn
    for n in (1, 260):
        site = archive_site(n, html, text)
        rates[n] = index_rate(site, env, args.seconds)
        if base is not None:
            before[n] = index_rate(site, base, args.seconds)
    print("archive", rates, flush=True)
    start = startup(blogs[1_000], env, max(args.reps, 11), base)
    print("startup", start, flush=True)
    memory = scan_memory(env, args.reps, base)
    print("memory", memory, flush=True)
    dry = dry_run(blogs[1_000], env, 10_000)
    print("dry run", dry, flush=True)
    flo = floor(mjml_file, blogs[1_000], env, args.reps)
    print("floor", flo, flush=True)
    load = f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after"

    w_chk, c_chk, m_chk = chk["warm"]
    w_cold, c_cold, m_cold = chk["cold"]
    first, w_pre, c_pre = pre
    lines += [
        SECTION,
        "",
        f"Command: `{COMMAND}` (from the repository root). Measured {dt.date.today()} on "
        f"{build.machine()}; {load}; medians of {args.reps} runs unless said otherwise. "
        "The machine is shared: CPU time (user + system) is the steadier figure.",
        "",
    ]
    busiest = max(load_before, os.getloadavg()[0])
    if busiest > (os.cpu_count() or 1):
        lines += [
            f"The load average ({busiest:.1f}) was above the number of CPUs: a process "
            "then also waits for a CPU, so its wall time overstates what it costs on an "
            "idle machine, where the wall time of these single-threaded commands is their "
            "CPU time and a few ms. Both verdicts are shown.",
            "",
        ]
    if args.base:
        label = args.base_label or f"`{args.base}`"
        lines += [
            f"Rows marked before (`--base`): the same commands by {label}, interleaved with "
            "this code's in the same run (the blogs copied to `blog-N-base/`).",
            "",
        ]
    lines += [
        "| what | wall s | CPU s | peak RSS MB | target | by wall | by CPU |",
        "| --- | ---: | ---: | ---: | --- | --- | --- |",
        f"| `digest check`, 10,000 articles, second run (cache warm) | {w_chk:.3f} | {c_chk:.3f} "
        f"| {m_chk:.0f} | <= 1.5 s | {verdict(w_chk <= 1.5)} | {verdict(c_chk <= 1.5)} |",
        f"| `digest check`, 10,000 articles, cold (cache deleted; one run) | {w_cold:.3f} "
        f"| {c_cold:.3f} | {m_cold:.0f} | | | |",
        f"| preview refresh, 10,000 articles, after editing an article of the issue | {w_pre:.3f} "
        f"| {c_pre:.3f} | | <= 0.3 s | {verdict(w_pre <= 0.3)} | {verdict(c_pre <= 0.3)} |",
        f"| preview, first render of the process (cache read from disk) | {first:.3f} | | | | | |",
    ]
    for k, (w, c, m) in start.items():
        target = "<= 0.1 s" if k.startswith("digest") else ""
        ok = f"{verdict(w <= 0.1)} | {verdict(c <= 0.1)}" if target else " |"
        name = f"before (`--base`): `{k[8:]}`" if k.startswith("before: ") else f"`{k}`"
        lines.append(f"| {name} | {w:.3f} | {c:.3f} | {m:.0f} | {target} | {ok} |")
    lines += [
        "",
        "| archive index (`GET /`), 4 clients, real `digest serve` | requests/s | target | |",
        "| --- | ---: | --- | --- |",
        f"| 1 sent issue | {rates[1]:.0f} | | |",
        f"| 260 sent issues | {rates[260]:.0f} | >= 500 | {verdict(rates[260] >= 500)} |",
        *(
            f"| before (`--base`): {n} sent issue{'s' if n > 1 else ''} | {r:.0f} | | |"
            for n, r in before.items()
        ),
        "",
        f"`send --dry-run` to 10,000 recipients (1k blog, default `delivery.dry_run_sample` = "
        f"100): {dry[0]:.1f} s, {dry[1]} files written, {dry[2] / 1e6:.1f} MB (every message "
        "is still composed and counted).",
        "",
        "Memory of the scan: `digest build --latest` (scan cache warm; the issue holds 9 "
        "articles at every size), peak RSS as the number of files outside the issue's "
        "window grows (RSS from GNU time, whose child's peak is its own: the other tables' "
        "RSS column cannot show less than this script's own RSS):",
        "",
        "| articles | wall s | CPU s | peak RSS MB |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {k.replace('before: ', 'before (`--base`): ')} | {w:.3f} | {c:.3f} | {m:.0f} |"
            for k, (w, c, m) in memory.items()
        ),
        "",
        "The floor: one Python process doing only mjml-python + premailer (digest's options) on "
        "the MJML of the 1k issue, beside the whole `digest build` of that issue:",
        "",
        "| process | wall s | CPU s | peak RSS MB |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {k} | {w:.3f} | {c:.3f} | {m:.0f} |" for k, (w, c, m) in flo.items()),
        f"| ratio cold build / floor | {flo[BUILD_COLD][0] / flo[FLOOR][0]:.2f} "
        f"| {flo[BUILD_COLD][1] / flo[FLOOR][1]:.2f} | |",
        f"| ratio cold build / floor as digest imports it | "
        f"{flo[BUILD_COLD][0] / flo[FLOOR_LEAN][0]:.2f} "
        f"| {flo[BUILD_COLD][1] / flo[FLOOR_LEAN][1]:.2f} | |",
        "",
    ]
    print("\n".join(lines))
    if not args.no_write:
        build.write_section(ROOT / "BENCHMARKS.md", "\n".join(lines))
        print(f"wrote the {SECTION!r} section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
