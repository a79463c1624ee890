"""The package's layout holds its architecture: data moves one way, no import cycles, no
stage imports the CLI, and the wheel carries the package, its templates and the example
config, nothing else."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "digest"

# Lowest first. A module may import its own layer or a lower one, never a higher one.
# Settings, the template factory and the state at the edges (ledger, subscriber list)
# sit low: every stage is handed them; the stages then follow the data.
LAYERS: list[set[str]] = [
    {"text", "errors", "files", "values"},
    {"model", "window"},  # window: the one model type the calendar needs (issue 14)
    {"i18n"},
    {"config", "templating", "ledger", "subscribers"},
    {"tokens", "content", "upkeep", "signing", "bounces", "roster"},
    {"summarize"},
    {"issue"},
    {"render"},
    {"inspect", "export", "message"},
    {"pipeline", "delivery", "push"},
    {"sending", "prefetch", "signup"},
    {"schedule", "web", "scaffold"},
    {"scheduler"},  # issue 14: APScheduler apart, so `schedule --next` starts fast
    {"cli"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of digest that ``module`` imports at run time, at any depth of the file
    (lazy imports inside functions count); ``if TYPE_CHECKING:`` blocks do not."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    deps: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                full = f"{name}.{alias.name}"
                deps.add(full if full in known else name)
        elif isinstance(node, ast.Import):
            deps.update(alias.name for alias in node.names)
    return {d for d in deps if d in known and d != module}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: __version__ only
        return 0
    for i, layer in enumerate(LAYERS):
        if parts[1] in layer:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycle = [*path[path.index(d) :], d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_stage_imports_the_cli_and_data_moves_one_way() -> None:
    wrong = []
    for module, deps in sorted(_graph().items()):
        for dep in sorted(deps):
            if dep == "digest.cli" or _layer(dep) > _layer(module):
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "imports against the flow of data:\n" + "\n".join(wrong)


def test_the_layout_test_sees_a_violation(tmp_path: Path) -> None:
    """The walker finds lazy imports and relative ones (a test that cannot fail is none)."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from ..cli import main\n\nfrom .. import sending\n")
    known = {"digest.cli": src, "digest.sending": src, "digest.content.m": src}
    assert _imports("digest.content.m", src, known) == {"digest.cli", "digest.sending"}


@pytest.mark.slow
def test_wheel_holds_the_package_and_runs_init_and_build(tmp_path: Path) -> None:
    """Build the wheel, install it alone in a fresh venv, and make a newsletter with it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("digest-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("digest/", "digest-"))]
    assert not outside, f"the wheel ships files outside the package: {outside}"
    shipped = {n for n in names if n.startswith("digest/") and not n.endswith(".py")}
    templates = {
        f"digest/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
        for p in (ROOT / "templates").rglob("*")
        if p.is_file()
    }
    # The gettext catalogs of the email's words (issue 12), read as .po at render time.
    catalogs = {f"digest/{p.relative_to(SRC).as_posix()}" for p in (SRC / "locale").rglob("*.po")}
    assert len(catalogs) >= 8, catalogs
    assert shipped == templates | {"digest/config.example.toml"} | catalogs

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    # Dependencies from the test environment's site-packages (PYTHONPATH processes no
    # .pth file, so the editable digest there stays invisible: only the wheel's is found).
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": deps, "DIGEST_NO_TEMPLATE_CACHE": "1"}
    run = [str(python), "-c", "import sys; from digest.cli import main; sys.exit(main())"]
    where = subprocess.run(
        [str(python), "-c", "import digest; print(digest.__file__)"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert str(env_dir) in where.stdout, where.stdout
    subprocess.run([*run, "init", "news"], cwd=tmp_path, env=env, check=True, capture_output=True)
    built = subprocess.run(
        [*run, "build", "--latest"],
        cwd=tmp_path / "news", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert list((tmp_path / "news" / "out").glob("*/email.html"))
