"""Benchmark: half-open connections against a real ``digest serve`` (issue 13, item 13).

Starts the server (``digest serve`` in a subprocess, on a free loopback port, with the
outbox's development secret), opens N connections that send half a request head or
nothing at all (slowloris), and reports how many the server closed at once (beyond
``web.max_connections``), when it closed the rest (``web.request_timeout``), and whether
a normal request was answered meanwhile.

    .venv/bin/python bench/halfopen.py                      # 1,500 connections, timeout 10 s
    .venv/bin/python bench/halfopen.py --count 300 --timeout 2
"""

from __future__ import annotations

import argparse
import re
import selectors
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work" / "halfopen"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--max-connections", type=int, default=256)
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "content").mkdir(parents=True)
    (WORK / "config.toml").write_text(
        f"[web]\nrequest_timeout = {args.timeout}\nmax_connections = {args.max_connections}\n"
    )
    log = WORK / "serve.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", "config.toml", "serve", "--port", "0"],
            cwd=WORK,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (m := re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start: " + log.read_text())
            time.sleep(0.1)
        port = int(m.group(1))
        time.sleep(0.5)  # uvicorn takes the socket over
        socks = []
        for i in range(args.count):
            s = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            s.setblocking(False)
            socks.append(s)
        started = time.monotonic()
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        closed: list[float] = []
        answered = None
        while len(closed) < len(socks) and time.monotonic() - started < args.timeout + 10:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(4096)
                except ConnectionError:
                    data = b""
                if not data:
                    closed.append(time.monotonic() - started)
                    sel.unregister(s)
            if answered is None and time.monotonic() - started > 1:
                t = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                        answered = f"{r.status} in {(time.monotonic() - t) * 1000:.0f} ms"
                except OSError as exc:
                    answered = f"failed: {exc}"
        at_once = sum(t < args.timeout / 2 for t in closed)  # refused over the limit
        later = sorted(t for t in closed if t >= args.timeout / 2)
        print(f"{args.count} half-open connections, request_timeout {args.timeout:g} s, "
              f"max_connections {args.max_connections}")  # fmt: skip
        print(f"  closed before half the timeout (over the limit): {at_once}")
        if later:
            span = f"from {later[0]:.2f} s to {later[-1]:.2f} s"
            print(f"  closed after the timeout: {len(later)} ({span})")
        print(f"  still open after {args.timeout + 10:g} s: {len(socks) - len(closed)}")
        print(f"  a normal request meanwhile: {answered}")
        for s in socks:
            s.close()
        t = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            after = f"{r.status} in {(time.monotonic() - t) * 1000:.0f} ms"
        print(f"  a normal request afterwards: {after}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        lines = log.read_text().count("\n")
        print(f"  server log: {lines} lines")


if __name__ == "__main__":
    main()
