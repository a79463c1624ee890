"""Shared test set-up.

Every test runs in its own empty working directory, so a relative path in a config
(`digest.sqlite3`, `out/`, `outbox/`) can never read or write the files of whoever runs
the tests (a ledger left by `make demo` once made a scheduler test see "already sent").
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return cwd
