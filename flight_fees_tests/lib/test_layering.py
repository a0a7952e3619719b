"""Guards on the shape of ``flight_fees/lib``: the domain core imports no Dagster and no entry
point (``flight_fees.defs``, ``flight_fees.cli``, ``flight_fees.http``), and no module grows
past the size a reader can hold (except the two engines allowed to)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import flight_fees

PACKAGE_ROOT = Path(flight_fees.__file__).resolve().parent
LIB = PACKAGE_ROOT / "lib"
#: modules a lib module must never import (nor any of their submodules)
FORBIDDEN = ("dagster", "flight_fees.defs", "flight_fees.cli", "flight_fees.http")
MAX_LINES = 800
#: the crossings engine and the Pinot source: one algorithm each, split would scatter it
ALLOWED_LONGER = frozenset({"airspace/crossings.py", "tracks/pinot.py"})


def lib_files() -> list[Path]:
    return sorted(LIB.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def forbidden(name: str) -> bool:
    return any(
        name == bad or name.startswith(bad + ".") or name.startswith(bad + "_") for bad in FORBIDDEN
    )


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def imported_names(source: str, package: str) -> list[tuple[int, str]]:
    """Every module ``source`` (a module of ``package``) imports, at any depth (functions,
    ``TYPE_CHECKING`` blocks...), relative imports resolved, plus
    ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name."""
    tree = ast.parse(source)
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.append((node.lineno, module))
            names.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in {"import_module", "__import__"}
                )
            )
        ):
            names.append((node.lineno, node.args[0].value))
    return names


def test_the_walk_sees_every_kind_of_import():
    """The AST walk itself: function-level, conditional, relative and dynamic imports."""
    source = (
        "import os\n"
        "def f():\n"
        "    import dagster as dg\n"
        "    from flight_fees.defs import resources\n"
        "if False:\n"
        "    from ..billing import fee_lines\n"
        "import importlib\n"
        "def g():\n"
        "    return importlib.import_module('flight_fees.cli.app')\n"
    )
    names = {name for _, name in imported_names(source, "flight_fees.lib.core")}
    assert {
        "dagster",
        "flight_fees.defs",
        "flight_fees.lib.billing",
        "flight_fees.cli.app",
    } <= names
    assert (
        forbidden("dagster") and forbidden("dagster_postgres") and forbidden("flight_fees.cli.app")
    )
    assert not forbidden("flight_fees.lib.ops.queue") and not forbidden("dagsterish")


def test_lib_imports_no_dagster_nor_entry_points():
    files = lib_files()
    assert len(files) > 40  # the walk found the package
    offending = [
        f"{path.relative_to(PACKAGE_ROOT.parent)}:{line}: {name}"
        for path in files
        for line, name in imported_names(path.read_text(encoding="utf-8"), package_of(path))
        if forbidden(name)
    ]
    assert offending == []


_IMPORT_ALL = """
import importlib, json, sys
def bad(m):
    return m.startswith(("dagster.", "dagster_")) or any(
        m == b or m.startswith(b + ".") for b in {forbidden!r}
    )
first = {{}}
for name in {modules!r}:
    importlib.import_module(name)
    for loaded in [m for m in sys.modules if bad(m) and m not in first]:
        first[loaded] = name
print(json.dumps(first))
"""


def test_importing_every_lib_module_loads_no_dagster():
    """At run time too: importing every lib module (one fresh interpreter) brings in neither
    Dagster nor an entry point; the report names the lib module that first loaded one."""
    modules = [module_name(path) for path in lib_files()]
    script = _IMPORT_ALL.format(forbidden=FORBIDDEN, modules=modules)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def test_no_lib_module_over_800_lines():
    sizes = {
        path.relative_to(LIB).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in lib_files()
    }
    assert set(ALLOWED_LONGER) <= set(sizes)  # the exceptions still exist under these names
    too_long = {
        name: lines
        for name, lines in sorted(sizes.items())
        if lines > MAX_LINES and name not in ALLOWED_LONGER
    }
    assert too_long == {}
