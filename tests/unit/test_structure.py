"""The codebase stays readable against the paper: no import cycles, the networks free of speed
code, a short training step, no function too long to read, a --help a person can read."""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path

import pytest

from stargan.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "stargan"
SPEED_WORDS = ("torch.utils.checkpoint", "autocast", "channels_last", "torch.compile", "accel")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (lazy imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # "from pkg import mod" depends on pkg.mod alone; "from mod import name" on mod.
            subs = {f"{base}.{a.name}" for a in node.names} & known
            found |= subs if subs else {base}
    return {m for m in found if m in known and m != name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other in a circle (Tarjan's SCCs > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_in_a_circle():
    modules = _modules()
    graph = {n: _imports(n, p, set(modules)) for n, p in modules.items()}
    assert import_cycles(graph) == []


def test_the_networks_are_the_papers_and_nothing_else():
    files = sorted((PACKAGE / "models").glob("*.py"))
    assert sum(len(f.read_text().splitlines()) for f in files) < 250
    for f in files:
        code = f.read_text().lower()
        assert not [w for w in SPEED_WORDS if w in code], f"speed code in {f.name}"


def _functions() -> list[tuple[str, int]]:
    out = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path.relative_to(SRC)}:{node.name}"
                out.append((name, node.end_lineno - node.lineno + 1))
    return out


def test_the_training_step_reads_in_one_screen():
    (lines,) = [n for name, n in _functions() if name.endswith("trainer.py:train_step")]
    assert lines < 40


def test_no_function_is_too_long_to_read():
    assert [(name, n) for name, n in _functions() if n > 80] == []


@pytest.mark.parametrize("command", [["train"], ["translate"], ["evaluate"], []])
def test_help_fits_on_two_screens(command):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*command, "--help"])
    assert len(out.getvalue().splitlines()) < 120


def test_training_does_not_import_inference():
    modules = _modules()
    training = {n: p for n, p in modules.items() if n.startswith("stargan.training")}
    for name, path in training.items():
        assert "stargan.inference" not in _imports(name, path, set(modules)), name
