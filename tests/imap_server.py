"""A real IMAP server for tests: Dovecot on 127.0.0.1, started from a config of our own in
a temporary folder (free ports, TLS with a certificate from ``make_cert``, one user).

    with ImapServer(tmp_path) as imap:
        imap.deliver(raw_bytes)           # into the user's INBOX (Maildir)
        imap.url                          # imaps://bounces@127.0.0.1:PORT/INBOX
        imap.folder("digest-handled")     # messages in a folder, from the disk

Needs Debian's ``dovecot-imapd`` (not installed by ``make test``: installing it starts a
system-wide IMAP service on most hosts); tests skip without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from smtp_server import make_cert

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"


def available() -> bool:
    return Path(DOVECOT).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ImapServer:
    def __init__(self, folder: Path) -> None:
        # Not under pytest's tmp_path: Dovecot's auth and mail processes run as other
        # users, who cannot enter that (0700) folder.
        self.root = Path(tempfile.mkdtemp(prefix="digest-imap-"))
        self.root.chmod(0o755)
        self.port, self.starttls_port = _free_port(), _free_port()
        self.cert, key = make_cert(folder)
        home = self.root / "home" / USER
        self.maildir = home / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        self.config = self.root / "dovecot.conf"
        uid = "nobody" if os.geteuid() == 0 else str(os.geteuid())
        gid = "nogroup" if os.geteuid() == 0 else str(os.getegid())
        self.config.write_text(
            f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/log
instance_name = digest-test-{self.port}
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{key}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        self._chown(self.root / "home")

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "nobody", "nogroup")
            for p in path.rglob("*"):
                shutil.chown(p, "nobody", "nogroup")

    @property
    def url(self) -> str:
        return f"imaps://{USER}@127.0.0.1:{self.port}/INBOX"

    @property
    def starttls_url(self) -> str:
        return f"imap://{USER}@127.0.0.1:{self.starttls_port}/INBOX"

    def deliver(self, raw: bytes, name: str) -> None:
        path = self.maildir / "new" / f"{name}.test"
        path.write_bytes(raw)
        self._chown(path)

    def folder(self, name: str) -> list[Path]:
        box = self.maildir / f".{name}"
        return sorted([*box.glob("new/*"), *box.glob("cur/*")])

    def inbox(self) -> list[Path]:
        return sorted([*self.maildir.glob("new/*"), *self.maildir.glob("cur/*")])

    def start(self) -> ImapServer:
        # In the foreground (-F), as our child: stopped by its pid, never left behind.
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start: {(self.root / 'log').read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
