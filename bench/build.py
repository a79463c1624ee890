"""Benchmark: the whole ``digest build`` process against the reference MJML CLI.

Generates synthetic blogs of 1,000 and 10,000 articles under ``bench/_work/`` (about ten
articles a week, so the 10k blog spans ~19 years and both issues hold a realistic
handful), then in one run and interleaved, so both see the same machine load:

* ``digest build`` of the 1k and the 10k folder (a fresh process each time, wall time),
  cold (the compiled email of the previous build deleted) and as a rebuild (kept);
* with ``--base SRC``, the same builds by another checkout's ``src/`` (copies of the blogs
  in ``blog-N-base/``), for before/after figures from one run;
* the npm ``mjml`` CLI (v5, installed into ``bench/_work/node`` on first use) compiling
  the MJML that digest renders for that same issue.

Reports medians, the two target ratios (build_1k / mjml_cli < 1.0 and build_10k /
build_1k < 3.0) and each process's peak RSS, and rewrites the "## Build" section of
BENCHMARKS.md.

    .venv/bin/python bench/build.py                  # full run, updates BENCHMARKS.md
    .venv/bin/python bench/build.py --reps 3 --no-write
    .venv/bin/python bench/build.py --profile        # + import-time and cProfile breakdown
    git archive main src | tar -x -C /tmp/base                   # then, before vs after:
    .venv/bin/python bench/build.py --base /tmp/base/src
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work"
# Where the npm `mjml` CLI is (installed there on first use); DIGEST_BENCH_MJML_PREFIX
# points at another `npm install --prefix DIR mjml@5` (issue 14).
NODE = Path(os.environ.get("DIGEST_BENCH_MJML_PREFIX") or WORK / "node")
MJML_BIN = NODE / "node_modules" / ".bin" / "mjml"
MJML_SPEC = "mjml@5"
VENV_BIN = Path(sys.executable).parent
DIGEST_BIN = VENV_BIN / "digest"
COMMAND = ".venv/bin/python bench/build.py"
SIZES = (1_000, 10_000)
# The newest synthetic article; the clock is pinned just after it so runs are repeatable.
ANCHOR = dt.datetime(2026, 11, 22, 16, 0, tzinfo=dt.UTC)  # a Sunday: the issue week is full
NOW = "2026-11-22T20:00:00+00:00"
PER_WEEK = 10  # average articles a week (Poisson-ish spread)
GENERATOR = 3

# --- synthetic content -------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_VOCAB = _words(
    """
model compute latency cluster inference training silicon supply chain margin pricing
vendor cloud region outage migration contract license budget roadmap benchmark workload
accelerator memory bandwidth storage network edge device battery sensor firmware update
privacy regulation policy audit compliance security breach patch exploit identity access
developer platform ecosystem framework library runtime compiler toolchain release version
startup investor funding valuation revenue customer subscription retention churn growth
market share competitor partnership acquisition merger strategy execution team hiring
research paper dataset evaluation accuracy throughput efficiency energy carbon datacenter
open source community maintainer governance standard protocol interface integration
analyst forecast quarter earnings guidance demand shortage capacity factory yield node
"""
)
_GLUE = _words("the a of to in for on with as by from that this which while and but or")
_VERBS = _words(
    "shifts reshapes accelerates undercuts signals doubles lowers raises exposes rewards "
    "complicates simplifies locks unlocks pressures delays"
)
_LEADS = (
    "Cost",
    "Speed",
    "Risk",
    "Lock-in",
    "Talent",
    "Supply",
    "Regulation",
    "Margins",
    "Energy",
    "Adoption",
    "Security",
    "Timing",
)
_HEADINGS = (
    "Everyday User Impact",
    "ROI for Business",
    "Strategic Analysis",
    "What to Watch",
    "The Bottom Line",
    "Why It Matters",
    "By the Numbers",
)
_AUTHORS = ("Ada Park", "Jonas Weber", "Priya Raman", "Tomás Ruiz", "Mei Lin", "Sam Okafor")
_TAGS = ("ai", "chips", "cloud", "policy", "security", "startups", "open-source", "energy")


def _sentence(rng: random.Random, words: int) -> str:
    out = []
    for i in range(words):
        out.append(rng.choice(_GLUE) if i % 3 == 1 else rng.choice(_VOCAB))
    out.insert(min(3, len(out)), rng.choice(_VERBS))
    if rng.random() < 0.15:
        k = rng.randrange(len(out))
        out[k] = f"**{out[k]}**"
    s = " ".join(out)
    return s[0].upper() + s[1:] + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(12, 24)) for _ in range(sentences))


def _title(rng: random.Random) -> str:
    w = [rng.choice(_VOCAB).capitalize() for _ in range(rng.randint(3, 6))]
    return f"{' '.join(w[:2])} {rng.choice(_VERBS)} {' '.join(w[2:])}: What It Means"


def article(rng: random.Random, n: int, when: dt.datetime, draft: bool) -> tuple[str, str]:
    """(file name, text) of one ~500-word analysis post like the sample content."""
    title = _title(rng)
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] + f"-{n}"
    fmt = n % 3  # the date formats real blogs use
    if fmt == 0:
        date = when.strftime("%Y-%m-%d %H:%M:%S +0000")
    elif fmt == 1:
        date = when.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()
    else:
        date = when.strftime("%Y-%m-%d")
    tags = rng.sample(_TAGS, rng.randint(1, 3))
    fm = [
        "---",
        f'title: "{title}"',
        f"date: {date}",
        f"author: {rng.choice(_AUTHORS)}",
    ]
    if n % 2:  # half flow lists, half block lists: both are common
        fm.append(f"tags: [{', '.join(tags)}]")
    else:
        fm.append("tags:")
        fm += [f"  - {t}" for t in tags]
    if n % 5 == 0:
        fm.append(f'description: "{_sentence(rng, 18)}"')
    if n % 7 == 0:
        fm.append(f"image: /images/{slug}.jpg")
        fm.append(f'image_alt: "{_sentence(rng, 6)[:-1]}"')
    if draft:
        fm.append("draft: true")
    fm.append("---")
    body = [f"# {title}", "", _paragraph(rng, 3), ""]
    if n % 4 == 0:
        body += ["<!--more-->", ""]
    for h in rng.sample(_HEADINGS, 3):
        body += [f"## {h}", "", _paragraph(rng, rng.randint(4, 5)), ""]
    body += ["## Key Shifts", ""]
    for lead in rng.sample(_LEADS, 4):
        body.append(f"- **{lead}**: {_sentence(rng, rng.randint(14, 22))}")
    body += [
        "",
        f"Read the [full report](https://example.org/reports/{n}) or our "
        f"[earlier take](../{slug}-background/) for context. Run `digest check` first.",
        "",
    ]
    name = f"{when:%Y-%m-%d}-{slug}.md"
    return name, "\n".join(fm) + "\n\n" + "\n".join(body)


CONFIG = """\
[newsletter]
name = "Bench Weekly"
base_url = "https://bench.example.com"
postal_address = "Bench Weekly, 1 Example Street, 10115 Berlin, Germany"

[schedule]
timezone = "Europe/Berlin"
day = "mon"
time = "09:00"

[content]
folder = "content"
max_articles = 10

[output]
folder = "out"
"""


def generate(size: int) -> Path:
    """Write ``bench/_work/blog-<size>/`` (content/ + config.toml) unless already there."""
    folder = WORK / f"blog-{size}"
    stamp = folder / ".complete"
    if stamp.exists() and stamp.read_text() == _fingerprint(size):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rng = random.Random(size)
    span = dt.timedelta(weeks=size / PER_WEEK)
    times = sorted(ANCHOR - span * rng.random() for _ in range(size - 1))
    times.append(ANCHOR)
    for n, when in enumerate(times):
        when = when.replace(microsecond=0)
        name, text = article(rng, n, when, draft=rng.random() < 0.01)
        path = folder / "content" / "posts" / f"{when:%Y}" / name  # Hugo/Jekyll-like tree
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
    stamp.write_text(_fingerprint(size))
    return folder


def _fingerprint(size: int) -> str:
    # Bump GENERATOR when the synthetic content changes, so old folders are rebuilt.
    return f"{GENERATOR}:{size}:{ANCHOR.isoformat()}"


# --- processes -----------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float  # user + system CPU seconds of the process (and its children)
    maxrss_kb: int
    stdout: str


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run a process to the end; wall time and its own peak RSS (via wait4)."""
    started = time.perf_counter()
    p = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = p.stdout.read() if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - started
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{out}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The sandbox sets this; a user's installed digest has its .pyc files. Let the
    # warm-up run write them so timed runs measure what users get.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["DIGEST_NOW"] = NOW
    env.pop("DIGEST_CONFIG", None)
    return env


def digest_cmd(folder: Path) -> list[str]:
    return [str(DIGEST_BIN), "--config", str(folder / "config.toml"), "build", "--latest"]


def base_copy(folder: Path) -> Path:
    """``blog-N-base/``: the same files for the code under ``--base``, whose caches in
    ``out/.cache`` (another code version: another fingerprint) must not evict ours."""
    copy = folder.with_name(folder.name + "-base")
    stamp = folder / ".complete"
    if not (copy / ".complete").exists() or (copy / ".complete").read_text() != stamp.read_text():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(folder, copy, symlinks=True, ignore=shutil.ignore_patterns("out"))
    return copy


def base_env(env: dict[str, str], src: str) -> dict[str, str]:
    """Run another checkout's digest (its ``src/``) with this venv's libraries."""
    return {**env, "PYTHONPATH": str(Path(src).resolve())}


def run_cold(cmd: list[str], folder: Path, env: dict[str, str], bare: bool = False) -> Run:
    """A build without the compiled email kept by the previous one (issue 14's render
    cache, ``out/.cache/render.json``); the scan cache stays, as after editing a post.
    ``bare``: nor the CSS parse memo (``inline.json``), as after an upgrade."""
    (folder / "out" / ".cache" / "render.json").unlink(missing_ok=True)
    if bare:
        (folder / "out" / ".cache" / "inline.json").unlink(missing_ok=True)
    return run(cmd, cwd=WORK, env=env)


def run_edited(cmd: list[str], folder: Path, env: dict[str, str], every: bool = False) -> Run:
    """A build after editing the first sentence of a post of the issue (its summary,
    hence the email, changes: that post is read and summarized again and the email
    compiled; the issue's other posts come from the scan cache, as they would). With
    ``every``, all the issue's posts are edited: as in a new week, none was read before
    (each is read, parsed and summarized; only the scan of the other files is kept)."""
    found = sorted((folder / "out").glob("*/issue.json"), key=lambda p: p.stat().st_mtime)
    articles = json.loads(found[-1].read_text(encoding="utf-8"))["articles"]
    for article in articles if every else articles[:1]:
        post = folder / "content" / article["source"]
        text = post.read_text(encoding="utf-8")
        head, sep, body = text.partition("\n\n# ")  # the front matter, then the H1 and lede
        title, _, rest = body.partition("\n\n")
        edited = rest[len(EDIT) :] if rest.startswith(EDIT) else EDIT + rest
        post.write_text(head + sep + title + "\n\n" + edited, encoding="utf-8")
    return run_cold(cmd, folder, env)


EDIT = "Edited again: "


def ensure_mjml() -> str:
    if not MJML_BIN.exists():
        print(f"installing {MJML_SPEC} into {NODE.relative_to(ROOT)} ...", flush=True)
        NODE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(NODE), MJML_SPEC, "--no-audit", "--no-fund"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    pkg = json.loads((NODE / "node_modules" / "mjml" / "package.json").read_text())
    return str(pkg["version"])


def issue_mjml(folder: Path) -> tuple[str, str]:
    """The MJML source digest renders for the issue of ``folder``, and how we got it.

    Uses ``render.mjml_source(issue, cfg)`` when render.py has it; otherwise renders the
    same template with the same context that ``render.render`` builds.
    """
    code = r"""
import datetime as dt, sys
from digest import config, pipeline, render, templating
from digest import issue as issues
cfg = config.load(sys.argv[1])
now = dt.datetime.fromisoformat(sys.argv[2])
window, col = pipeline.gather(cfg, now, pipeline.Selection(latest=True), pipeline.cache_for(cfg))
issue = issues.build_issue(cfg, window, col.articles, number=pipeline.number_for(cfg, window, []))
if hasattr(render, "mjml_source"):
    how, src = "render.mjml_source(issue, cfg)", render.mjml_source(issue, cfg)
else:
    env = templating.environment(cfg.templates.folder)
    ctx = {"issue": issue, "newsletter": cfg.newsletter, "ph": render.placeholders()}
    how = f"render._render_template(env, {render.HTML_TEMPLATE!r}, context of render.render)"
    src = render._render_template(env, render.HTML_TEMPLATE, ctx)
sys.stdout.write(how + "\n" + src)
"""
    p = subprocess.run(
        [sys.executable, "-c", code, str(folder / "config.toml"), NOW],
        capture_output=True,
        text=True,
        cwd=WORK,
    )
    if p.returncode != 0:
        raise SystemExit(f"could not get the issue's MJML:\n{p.stderr}")
    how, _, src = p.stdout.partition("\n")
    return src, how


# Where one build's CPU goes, phase by phase, in the order `digest build` runs them. Lazy
# imports land in the phase that triggers them (markdown-it and nh3 in "content", syntok in
# "summaries", premailer/cssutils/lxml in "render").
_PHASES = r"""
import time
clock = time.process_time
marks = [("start", clock())]
def mark(name):
    marks.append((name, clock()))
import click, digest.cli
mark("import click + digest.cli")
import digest.config
mark("import digest.config (dataclasses, models)")
from digest import issue as issue_stage, pipeline, render
mark("import digest.pipeline (jinja2, stages)")
import datetime as dt, json, sys
cfg = digest.config.load(sys.argv[1])
now = dt.datetime.fromisoformat(sys.argv[2])
mark("config.load")
cache = pipeline.cache_for(cfg)
window, col = pipeline.gather(cfg, now, pipeline.Selection(latest=True), cache, save=False)
mark(f"content ({col.files} files, {len(col.articles)} parsed in full)")
number = pipeline.number_for(cfg, window, pipeline.history(cfg))
issue = issue_stage.build_issue(cfg, window, col.articles, number=number, cache=cache)
cache.save()
mark("issue + summaries")
rendered = render.render(issue, cfg)
mark("render (Jinja, MJML, premailer; cold: the compiled email is not read back)")
pipeline.write_build(cfg, pipeline.Built(issue, rendered, col, 0.0), None)
mark("write out/")
print(json.dumps([(n, round((t - marks[i][1]) * 1000)) for i, (n, t) in enumerate(marks[1:])]))
"""


def phases(folder: Path, env: dict[str, str]) -> tuple[list[tuple[str, int]], int]:
    """CPU ms per phase of one build (in-process), and the whole process's CPU ms."""
    p = subprocess.Popen(
        [sys.executable, "-c", _PHASES, str(folder / "config.toml"), NOW],
        cwd=WORK,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = p.stdout.read() if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase breakdown failed:\n{out}")
    rows = [(str(n), int(ms)) for n, ms in json.loads(out.strip().splitlines()[-1])]
    return rows, round((usage.ru_utime + usage.ru_stime) * 1000)


def median_phases(
    folder: Path, env: dict[str, str], runs: int = 3
) -> tuple[list[tuple[str, int]], int]:
    """Per-phase medians over a few runs (one run's phases are noisy)."""
    got = [phases(folder, env) for _ in range(runs)]
    names = [n for n, _ in got[0][0]]
    rows = [(n, round(statistics.median(g[0][i][1] for g in got))) for i, n in enumerate(names)]
    rest = statistics.median(g[1] - sum(ms for _, ms in g[0]) for g in got)
    rows.append(("interpreter start-up and exit (rest of the process)", round(rest)))
    return rows, round(statistics.median(g[1] for g in got))


def phase_table(
    p1k: tuple[list[tuple[str, int]], int], p10k: tuple[list[tuple[str, int]], int]
) -> list[str]:
    lines = ["| phase (CPU ms) | 1k | 10k |", "| --- | ---: | ---: |"]
    for (name, a), (_, b) in zip(p1k[0], p10k[0], strict=True):
        if name.startswith("content"):
            name = "content: walk, stat, scan cache; the window's articles scanned and parsed"
        lines.append(f"| {name} | {a} | {b} |")
    whole = "**whole process** (median; the phases' medians need not add up to it)"
    lines.append(f"| {whole} | **{p1k[1]}** | **{p10k[1]}** |")
    return lines


# --- the benchmark -------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def rss_mb(self) -> float:
        return max(r.maxrss_kb for r in self.runs) / 1024

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def row(self) -> str:
        walls = [r.wall for r in self.runs]
        return (
            f"| {self.name} | {self.median:.3f} | {min(walls):.3f} | {max(walls):.3f} "
            f"| {self.cpu:.3f} | {self.rss_mb:.0f} |"
        )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}"


def versions(mjml_version: str) -> str:
    from importlib.metadata import version

    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    libs = ", ".join(
        f"{p} {version(p)}"
        for p in ("digest", "mjml-python", "premailer", "jinja2", "markdown-it-py")
    )
    return f"Python {platform.python_version()}, {libs}; node {node}, mjml {mjml_version}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=11, help="timed runs of each (default 11)")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--profile", action="store_true", help="also print where the time goes")
    ap.add_argument(
        "--base",
        metavar="SRC",
        help="also time another checkout's src/ (e.g. main's, from git archive) in the same run",
    )
    ap.add_argument("--base-label", default="", help="what --base is, for the report")
    args = ap.parse_args(argv)

    mjml_version = ensure_mjml()
    env = child_env()
    blogs = {size: generate(size) for size in SIZES}
    print(f"content: {', '.join(str(b.relative_to(ROOT)) for b in blogs.values())}", flush=True)

    mjml_src, mjml_how = issue_mjml(blogs[SIZES[0]])
    mjml_in = WORK / "issue.mjml"
    mjml_in.write_text(mjml_src, encoding="utf-8")
    mjml_cmd = [str(MJML_BIN), str(mjml_in), "-o", str(WORK / "issue.mjml.html")]

    series = {
        "build_1k": Series("`digest build`, 1,000 articles (compiled email kept: a rebuild)"),
        "build_10k": Series("`digest build`, 10,000 articles (compiled email kept: a rebuild)"),
        "cold_1k": Series("`digest build`, 1,000 articles, compiled email not kept (cold)"),
        "edit_1k": Series("`digest build`, 1,000 articles, after editing a post of the issue"),
        "week_1k": Series(
            "`digest build`, 1,000 articles, every post of the issue new (as in a new week)"
        ),
        "bare_1k": Series(
            "`digest build`, 1,000 articles, cold and without the CSS memo (after an upgrade)"
        ),
        "cold_10k": Series("`digest build`, 10,000 articles, compiled email not kept (cold)"),
        "mjml": Series(f"`mjml` CLI {mjml_version}, same issue's MJML"),
    }
    # (command, folder, environment, how: "" a rebuild, "cold", "bare", "edit", "week")
    jobs: dict[str, tuple[list[str], Path, dict[str, str], str]] = {
        "build_1k": (digest_cmd(blogs[1_000]), blogs[1_000], env, ""),
        "build_10k": (digest_cmd(blogs[10_000]), blogs[10_000], env, ""),
        "cold_1k": (digest_cmd(blogs[1_000]), blogs[1_000], env, "cold"),
        "edit_1k": (digest_cmd(blogs[1_000]), blogs[1_000], env, "edit"),
        "week_1k": (digest_cmd(blogs[1_000]), blogs[1_000], env, "week"),
        "bare_1k": (digest_cmd(blogs[1_000]), blogs[1_000], env, "bare"),
        "cold_10k": (digest_cmd(blogs[10_000]), blogs[10_000], env, "cold"),
        "mjml": (mjml_cmd, WORK, env, ""),
    }
    if args.base:
        for size, k in ((1_000, "base_1k"), (10_000, "base_10k")):
            folder = base_copy(blogs[size])
            series[k] = Series(f"before (`--base`): `digest build`, {size:,} articles (a rebuild)")
            jobs[k] = (digest_cmd(folder), folder, base_env(env, args.base), "")

    def once(k: str) -> Run:
        cmd, folder, job_env, how = jobs[k]
        if how in ("cold", "bare"):
            return run_cold(cmd, folder, job_env, bare=how == "bare")
        if how in ("edit", "week"):
            return run_edited(cmd, folder, job_env, every=how == "week")
        return run(cmd, cwd=WORK, env=job_env)

    # Warm-up: writes .pyc files, fills the page cache and the scan caches; not counted.
    warm = {k: once(k) for k in jobs}
    issues = {k: _issue_summary(blogs[s]) for k, s in (("build_1k", 1_000), ("build_10k", 10_000))}
    for k in ("build_1k", "build_10k"):
        print(f"{k}: {issues[k]}; digest says: {_done_line(warm[k].stdout)}", flush=True)

    load_before = os.getloadavg()[0]
    for rep in range(args.reps):
        # Interleave, rotating the order, so all see the same background load.
        keys = list(jobs)
        keys = keys[rep % len(keys) :] + keys[: rep % len(keys)]
        for k in keys:
            series[k].runs.append(once(k))
        print(f"rep {rep + 1}/{args.reps} done", flush=True)

    load = f"1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after"
    print(f"machine: {load}")
    b1, b10, mj = series["build_1k"], series["build_10k"], series["mjml"]
    k1, k10, e1 = series["cold_1k"], series["cold_10k"], series["edit_1k"]
    r1 = k1.median / mj.median
    r10 = k10.median / k1.median
    today = dt.date.today().isoformat()
    table = [
        "| process | wall median s | wall min s | wall max s | CPU median s | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(x.row() for x in series.values()),
    ]
    c1, c10 = k1.cpu / mj.cpu, k10.cpu / k1.cpu
    w1, w10 = b1.cpu / mj.cpu, b10.cpu / b1.cpu

    def target(name: str, ratio: float, goal: float) -> str:
        return f"| {name} | {ratio:.2f} | <= {goal} | {_verdict(ratio, goal + 1e-9)} |"

    ratios = [
        "| ratio (of medians), cold builds | wall | target | | CPU, for reference |",
        "| --- | ---: | ---: | --- | ---: |",
        f"| build_1k / mjml_cli | {r1:.2f} | < 1.0 | {_verdict(r1, 1.0)} | {c1:.2f} |",
        f"| build_10k / build_1k | {r10:.2f} | < 3.0 | {_verdict(r10, 3.0)} | {c10:.2f} |",
        "",
        "| issue 14 targets (CPU, ratio of medians) | CPU | target | |",
        "| --- | ---: | ---: | --- |",
        target("build_1k / mjml_cli, cold (the email compiled, no post changed)", c1, 0.45),
        target(
            "build_1k / mjml_cli, after editing a post (it and the email made again)",
            e1.cpu / mj.cpu,
            0.45,
        ),
        target(
            "build_1k / mjml_cli, a new week (every post of the issue read and summarized)",
            series["week_1k"].cpu / mj.cpu,
            0.45,
        ),
        target("build_1k / mjml_cli, rebuild (compiled email kept)", w1, 0.45),
        target(
            "build_1k / mjml_cli, cold without the CSS memo (the first build after an upgrade)",
            series["bare_1k"].cpu / mj.cpu,
            0.45,
        ),
        target("build_10k / build_1k, cold", c10, 1.3),
        target("build_10k / build_1k, rebuild", w10, 1.3),
    ]
    if args.base:
        o1, o10 = series["base_1k"], series["base_10k"]
        label = args.base_label or f"`{args.base}`"
        ratios += [
            "",
            f"Before: the same builds by {label} (`--base`; copies of the blogs in "
            "`blog-N-base/`), interleaved in the same run:",
            "",
            "| before (`--base`) -> after, same run (CPU) | before | after cold | after rebuild |",
            "| --- | ---: | ---: | ---: |",
            f"| build_1k / mjml_cli | {o1.cpu / mj.cpu:.2f} | {c1:.2f} | {w1:.2f} |",
            f"| build_10k / build_1k | {o10.cpu / o1.cpu:.2f} | {c10:.2f} | {w10:.2f} |",
            f"| peak RSS MB, 1k / 10k | {o1.rss_mb:.0f} / {o10.rss_mb:.0f} "
            f"| {k1.rss_mb:.0f} / {k10.rss_mb:.0f} | {b1.rss_mb:.0f} / {b10.rss_mb:.0f} |",
        ]
    print()
    print("\n".join(table))
    print()
    print("\n".join(ratios))
    breakdown = phase_table(*(median_phases(blogs[n], env) for n in SIZES))
    print()
    print("\n".join(breakdown))
    if args.profile:
        profile(blogs, env)
    if not args.no_write:
        section = _section(
            today,
            table,
            ratios,
            breakdown,
            mjml_version,
            mjml_how,
            issues,
            args.reps,
            len(mjml_src),
            load,
        )
        write_section(ROOT / "BENCHMARKS.md", section)
        print("\nwrote the Build section of BENCHMARKS.md")
    return 0


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio < target else "**missed**"


def _issue_summary(folder: Path) -> str:
    found = sorted((folder / "out").glob("*/issue.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        return "no issue.json"
    data = json.loads(found[-1].read_text(encoding="utf-8"))
    n = len(data.get("articles", []))
    size = data.get("sizes", {}).get("html_bytes", 0) / 1024
    return f"issue {data.get('id')} with {n} articles, HTML {size:.1f} KB"


def _done_line(stdout: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("Done")]
    return lines[-1] if lines else stdout.strip().splitlines()[-1]


def _section(
    today: str,
    table: list[str],
    ratios: list[str],
    breakdown: list[str],
    mjml_version: str,
    mjml_how: str,
    issues: dict[str, str],
    reps: int,
    mjml_len: int,
    load: str,
) -> str:
    lines = [
        "## Build",
        "",
        f"Command: `{COMMAND}` (from the repository root; needs Node.js/npm).",
        "",
        f"- Measured {today} on {machine()}; {load}. The machine was shared with other",
        "  work, so compare within a run: the processes are interleaved and each row is a",
        f"  median of {reps} timed runs after one warm-up run (which writes .pyc files).",
        f"- Versions: {versions(mjml_version)}.",
        f"- Input: synthetic blogs of 1,000 and 10,000 ~500-word articles, ~{PER_WEEK} a week",
        "  (YAML front matter: title, date in three formats, author, tags as flow or block",
        "  lists, some descriptions and images; 1% drafts), in `bench/_work/`.",
        "- `digest build`: `digest --config blog-N/config.toml build --latest`, clock pinned",
        "  (since issue 14 a build reuses the scan cache in `out/.cache/`: the warm-up run",
        "  fills it, as a user's previous build or check does, and with it the issue's",
        "  articles whole and their summaries; and it keeps the compiled email,",
        "  `out/.cache/render.json`, keyed by the MJML and the code and library versions,",
        "  and what premailer's CSS parsing found for it, `inline.json`).",
        "  A *rebuild* of an unchanged issue reads the email back; a *cold* build is timed",
        "  after deleting it, as after a template or config edit (the email is compiled,",
        "  the posts are unchanged); *after editing a post*, the first sentence of one of",
        "  the issue's posts is changed before each run (that post is read and summarized",
        "  again, the email compiled; the other posts come from the cache); *a new week*",
        "  changes the first sentence of every post of the issue (all are read, parsed and",
        "  summarized, as a new week's posts are; the scan of the other files is kept);",
        "  *without the CSS memo*, `inline.json` is deleted too, as after an upgrade of",
        "  digest or its libraries (which also empties the scan cache, kept here),",
        f"  with `DIGEST_NOW={NOW}`. Built: 1k: {issues['build_1k']}; 10k:",
        f"  {issues['build_10k']}.",
        f"- `mjml` CLI: `mjml issue.mjml -o issue.html` (npm `mjml` {mjml_version}) on the MJML",
        f"  digest renders for the same 1k issue ({mjml_len:,} characters, from",
        f"  `{mjml_how}`).",
        "- Wall time and peak RSS are the whole process's (`wait4` rusage); CPU is user +",
        "  system time, shown because it is less disturbed by other load (node uses more",
        "  than one thread, so its CPU exceeds its wall time).",
        "",
        *table,
        "",
        *ratios,
        "",
        "Where a build's CPU goes (the same pipeline calls timed in-process, median of 3",
        "runs; lazy imports count in the phase that triggers them):",
        "",
        *breakdown,
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or add) the section ``section`` starts with (its ``## `` heading line),
    leaving every other section alone. The bench scripts share it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    heading = section.split("\n", 1)[0]
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def profile(blogs: dict[int, Path], env: dict[str, str]) -> None:
    """Where one build's time goes: import time by package, then cProfile by own time."""
    for size, folder in blogs.items():
        args = digest_cmd(folder)[1:]
        p = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", _ENTRY, *args],
            cwd=WORK,
            env=env,
            capture_output=True,
            text=True,
        )
        by_package: dict[str, int] = {}
        for line in p.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
            if m:
                top = m.group(2).split(".")[0]
                if top == "digest":
                    top = m.group(2)
                by_package[top] = by_package.get(top, 0) + int(m.group(1))
        total = sum(by_package.values()) / 1000
        print(f"\n== {size} articles: import time {total:.0f} ms, self time by package (ms)")
        for name, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:20]:
            print(f"  {us / 1000:8.1f}  {name}")
        print(f"\n== {size} articles: cProfile, top 25 functions by own time")
        p = subprocess.run(
            [sys.executable, "-c", _PROFILE, *args],
            cwd=WORK,
            env=env,
            capture_output=True,
            text=True,
        )
        print(p.stdout[-8000:])


_ENTRY = "import sys; sys.argv[0] = 'digest'; from digest.cli import main; main()"
_PROFILE = """
import cProfile, pstats, sys
sys.argv[0] = 'digest'
pr = cProfile.Profile()
pr.enable()
try:
    from digest.cli import main
    main(standalone_mode=False)
finally:
    pr.disable()
    pstats.Stats(pr, stream=sys.stdout).sort_stats('tottime').print_stats(25)
"""


if __name__ == "__main__":
    sys.exit(main())
