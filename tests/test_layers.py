"""The layers stay what they say: a pure domain, sources behind one seam, a UI and
commands that talk to a source and never to files."""

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tandem_tui"

#: Libraries the domain must never load: UI, terminal, watching, network, databases,
#: file locking.
NOT_IN_DOMAIN = ("textual", "rich", "watchfiles", "httpx", "psycopg", "sqlite3", "filelock")


def _modules_loaded_by_importing(package: str) -> list[str]:
    code = (
        "import json, pkgutil, importlib, sys\n"
        f"import {package} as package\n"
        "for m in pkgutil.iter_modules(package.__path__):\n"
        f"    importlib.import_module('{package}.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_importing_the_domain_loads_no_ui_watching_network_database_or_source_module():
    loaded = _modules_loaded_by_importing("tandem_tui.domain")
    assert [name for name in loaded if name.split(".")[0] in NOT_IN_DOMAIN] == []
    ours = [name for name in loaded if name.startswith("tandem_tui.")]
    assert [name for name in ours if not name.startswith("tandem_tui.domain")] == []


def _calls_and_attributes(path: Path) -> list[str]:
    """``open(...)`` calls and ``os.environ`` / ``os.replace``-like uses in one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    io_attributes = {"environ", "getenv", "replace", "rename", "remove", "unlink", "fsync", "scandir", "listdir", "stat"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append(f"{path.name}:{node.lineno} open()")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in io_attributes
        ):
            found.append(f"{path.name}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.Attribute) and node.attr in {"read_text", "read_bytes", "write_text", "write_bytes"}:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_the_domain_does_no_file_io_and_reads_no_environment():
    uses = [use for path in sorted((PACKAGE / "domain").glob("*.py")) for use in _calls_and_attributes(path)]
    assert uses == []


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_console_and_the_commands_import_no_module_of_a_particular_source():
    offenders = []
    for layer in ("ui", "commands"):
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[:2] == ["tandem_tui", "source"] and len(parts) > 2 and parts[2] not in ("base", "open", "actor"):
                    offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert offenders == []


def test_commands_other_than_simulate_do_not_import_the_console():
    offenders = []
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        for name in _imports(path):
            if name.startswith("tandem_tui.ui") and path.stem != "console":
                offenders.append(f"{path.name}: {name}")
    assert offenders == []
