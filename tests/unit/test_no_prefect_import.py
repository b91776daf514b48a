"""The core package never imports Prefect (knowledge flows flows -> tasks -> imagehop)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import imagehop

PACKAGE_DIR = Path(imagehop.__file__).parent


def all_modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="imagehop.")
    )


def test_importing_every_imagehop_module_loads_no_prefect() -> None:
    modules = all_modules()
    assert "imagehop.transfer.engine" in modules and "imagehop.object_store" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE_DIR.parent,
        timeout=120,
    )
    assert result.stdout.strip() == "[]"


def test_no_imagehop_source_file_mentions_a_prefect_import() -> None:
    """Also catches imports inside functions, which importing the module would not run."""
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}:{node.lineno}" for n in names if n.split(".")[0] == "prefect"]
    assert offenders == []
