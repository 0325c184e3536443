"""The package layout stays what docs/development.md says: every module in its table, no
module over 500 lines, no import circle between modules. Pure file reading: no torch."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pytest_torchscript"
MAX_LINES = 500


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports when it is imported (function-local and
    ``TYPE_CHECKING`` imports run later, so they cannot make a circle at import time)."""
    package = dotted(path) if path.name == "__init__.py" else dotted(path).rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
        for alias in node.names:
            candidate = f"{target}.{alias.name}"
            is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists()
            found.add(candidate if is_module else target)
    return found


def test_no_module_is_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (at most {MAX_LINES} lines each): {long}"


def test_no_import_circle():
    graph = {dotted(p): module_level_imports(p) for p in modules()}
    circles = []

    def visit(name: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(name, ())):
            if nxt in path:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert not circles, f"import circles: {circles}"


def test_the_architecture_table_names_every_module_and_only_real_ones():
    page = (ROOT / "docs" / "development.md").read_text()
    section = page.split("## How the code is organised", 1)[1].split("\n## ", 1)[0]
    named = set()
    for row in (line for line in section.splitlines() if line.startswith("| `")):
        first, job = row.split("|")[1:3]
        for name in re.findall(r"`([\w/.]+)`", first):
            if name.endswith("/"):  # a folder's row names its modules in its job cell
                named |= {name + module for module in re.findall(r"`(\w+\.py)`", job)}
            else:
                named.add(name)
    real = {str(p.relative_to(PACKAGE)) for p in modules() if p.name not in ("__init__.py", "__main__.py")}
    real.add("deploy/cpp/runner.cpp")
    assert not sorted(real - named), f"modules missing from docs/development.md: {sorted(real - named)}"
    assert not sorted(named - real), f"docs/development.md names modules that do not exist: {sorted(named - real)}"
    for folder in sorted({p.split("/")[0] for p in real if "/" in p}):
        assert f"  {folder}/" in section, f"the tree in docs/development.md lacks {folder}/"
