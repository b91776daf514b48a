"""docs/reliability.md cannot drift: every test its tables name exists, and the tables are as
long as the issue asks (>= 20 faults, >= 25 bad inputs)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
NODE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def table_rows(section: str) -> list[str]:
    """The body rows of the table under the ``## <section>`` heading."""
    text = DOC.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return rows[2:]  # after the header and the separator


def function_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


#: The test functions of every file the tables name, parsed at collection: CPython 3.11's
#: ast.parse can fail with "AST constructor recursion depth mismatch" while another thread
#: compiles (gh-106905; threads earlier tests of a test worker leave), as in test_layers.
NAMED = {
    file: function_names(ROOT / file) if (ROOT / file).exists() else set()
    for file, _ in NODE.findall(DOC.read_text())
}


def test_every_row_names_a_test_that_exists() -> None:
    rows = table_rows("Faults") + table_rows("Bad inputs")
    missing = []
    for row in rows:
        named = NODE.findall(row)
        assert named, f"a row without a test: {row}"
        for file, name in named:
            if name not in NAMED[file]:
                missing.append(f"{file}::{name}")
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_the_tables_are_as_long_as_promised() -> None:
    assert len(table_rows("Faults")) >= 20
    assert len(table_rows("Bad inputs")) >= 25


def test_the_readme_links_the_page() -> None:
    assert "docs/reliability.md" in (ROOT / "README.md").read_text()
