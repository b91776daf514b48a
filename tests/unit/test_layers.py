"""Knowledge flows one way, flows -> tasks -> imagehop: the core never imports Prefect, and
the product never imports the local cloud (only the CLI's demo and sandbox commands, lazily)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import imagehop

PACKAGE_DIR = Path(imagehop.__file__).parent
REPO = PACKAGE_DIR.parent
PRODUCT_DIRS = [PACKAGE_DIR, REPO / "flows", REPO / "tasks"]


def _parsed(paths: list[Path]) -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in paths}


#: Every product file's tree, parsed at collection: CPython 3.11's ast.parse can fail with
#: "SystemError: AST constructor recursion depth mismatch" while another thread compiles
#: (the background threads that earlier tests of a test worker leave), CPython gh-106905.
TREES = _parsed(sorted(path for folder in PRODUCT_DIRS for path in folder.rglob("*.py")))


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
        for node in ast.walk(TREES[path]):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}:{node.lineno}" for n in names if n.split(".")[0] == "prefect"]
    assert offenders == []


def _imports(path: Path) -> list[tuple[ast.AST, str]]:
    """(node, module) of every import in the file, nested ones included."""
    found: list[tuple[ast.AST, str]] = []
    for node in ast.walk(TREES[path]):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node, node.module))
    return found


def test_the_product_imports_the_local_cloud_only_lazily_in_the_cli() -> None:
    top_level, lazy = [], []
    for folder in PRODUCT_DIRS:
        for path in sorted(folder.rglob("*.py")):
            tree = TREES[path]
            module_level = {id(node) for node in tree.body}
            for node, name in _imports(path):
                if name.split(".")[0] != "imagehop_sandbox":
                    continue
                where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
                (top_level if id(node) in module_level else lazy).append(where)
    assert top_level == []
    assert lazy and all(where.startswith("flows/cli.py:") for where in lazy), lazy


def test_no_local_cloud_inside_the_product_package() -> None:
    assert not (PACKAGE_DIR / "sandbox").exists()
    assert not any("sandbox" in path.name for path in PACKAGE_DIR.rglob("*.py"))


def test_the_cli_says_how_to_get_the_local_cloud_when_swift_is_missing() -> None:
    """Without the sandbox extra, ``imagehop sandbox ...`` and ``imagehop demo`` name the
    extra to install instead of waiting for Swift servers that cannot start."""
    script = (
        "import sys; sys.modules['swift'] = None\n"
        "from imagehop.flows.cli import main\n"
        "sys.argv = ['imagehop', *sys.argv[1:]]\n"
        "main()\n"
    )
    for command in (["sandbox", "status"], ["demo"]):
        done = subprocess.run(
            [sys.executable, "-c", script, *command],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        assert done.returncode == 4, done.stderr
        assert "pip install 'imagehop[sandbox]'" in done.stderr.strip().splitlines()[-1]
