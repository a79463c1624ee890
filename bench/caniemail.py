"""Benchmark: features of the sample email that mail clients do not support (caniemail),
digest's output against the reference MJML CLI's for the same design.

Renders the sample issue (config.example.toml, the clock of the golden files), takes the
MJML that digest's templates produce (``render.mjml_source``) and compiles it with the npm
``mjml`` CLI (v5); then runs ``@jsx-email/doiuse-email`` (which ships the caniemail.com
database, so nothing is fetched) on both HTML files for every client it knows, and counts
the "not supported" findings (feature x client). Target: digest's count is no worse than
MJML's.

    .venv/bin/python bench/caniemail.py          # prints the table for BENCHMARKS.md

Node.js and npm install ``mjml@5`` and ``@jsx-email/doiuse-email`` into
``bench/_work/node`` on first use.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from digest import config, pipeline, render

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "bench" / "_work" / "node"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
PACKAGES = ["mjml@5", "@jsx-email/doiuse-email@1.0.4"]

CHECK = r"""
const fs = require('fs');
const { doIUseEmail } = require('@jsx-email/doiuse-email');
const out = {};
for (const f of process.argv.slice(1)) {
  const r = doIUseEmail(fs.readFileSync(f, 'utf8'), { emailClients: ['*'] });
  out[f] = { errors: r.errors || [], notes: (r.notes || []).length };
}
process.stdout.write(JSON.stringify(out));
"""


def ensure_node() -> None:
    if (
        not (NODE / "node_modules" / "@jsx-email" / "doiuse-email").exists()
        or not (NODE / "node_modules" / ".bin" / "mjml").exists()
    ):
        NODE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(NODE), *PACKAGES, "--no-audit", "--no-fund"],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def feature(error: str) -> str:
    """``"`<feature>` is not supported by `client`"`` -> the feature."""
    return error.split("`")[1] if "`" in error else error


def main() -> int:
    ensure_node()
    work = ROOT / "bench" / "_work" / "caniemail"
    work.mkdir(parents=True, exist_ok=True)
    cfg = config.load(ROOT / "config.example.toml")
    built = pipeline.prepare(cfg, NOW, pipeline.Selection(latest=True))
    html, _ = built.rendered.fill({"unsubscribe_url": "https://example.com/u/token"})
    (work / "digest.html").write_text(html, encoding="utf-8")
    (work / "issue.mjml").write_text(render.mjml_source(built.issue, cfg), encoding="utf-8")
    subprocess.run(
        [str(NODE / "node_modules" / ".bin" / "mjml"), str(work / "issue.mjml"),
         "-o", str(work / "mjml.html")],
        check=True,
    )  # fmt: skip
    p = subprocess.run(
        ["node", "-e", CHECK, str(work / "digest.html"), str(work / "mjml.html")],
        cwd=NODE, capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = json.loads(p.stdout)
    rows = []
    for name, label in (("digest.html", "digest (mjml-python + premailer)"),
                        ("mjml.html", "MJML CLI 5 on the same MJML")):  # fmt: skip
        errors = got[str(work / name)]["errors"]
        features = Counter(feature(e) for e in errors)
        rows.append((label, len(errors), len(features), features))
    print("| output | not supported (feature x client) | distinct features |")
    print("| --- | ---: | ---: |")
    for label, n, k, _ in rows:
        print(f"| {label} | {n} | {k} |")
    print()
    for label, _, _, features in rows:
        print(f"{label}: " + ", ".join(f"{f} ({c})" for f, c in features.most_common()))
    ok = rows[0][1] <= rows[1][1]
    print(f"\ntarget digest <= MJML: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
