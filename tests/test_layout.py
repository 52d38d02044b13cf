"""The house rules of the layout (README "Layout"), checked on the code itself.

- accounts/ and content/ (the domain) never import flask.request, rest, or
  werkzeug.exceptions, and never name an HTTP status;
- rest/ runs no SQL: no module of it imports db's query helpers;
- db.py is the only module that imports PyMySQL;
- nothing low imports something high: no import cycles among service modules;
- settings are read through config.py only: no os.environ outside it.
"""
import ast
import re
import subprocess
import sys

import pytest

from support import ROOT

DOMAIN = ("accounts", "content")
SERVICE_FILES = sorted(
    [p for package in ("accounts", "content", "rest") for p in (ROOT / package).glob("*.py")]
    + [ROOT / name for name in ("app.py", "db.py", "config.py", "cli.py", "security_cli.py",
                                "mail_cli.py", "redis_client.py", "schema.py")]
    + sorted((ROOT / "serving").glob("*.py"))
)


def _imports(path):
    """Every (module, name) a file imports; name is None for `import module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def _module_name(path):
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


@pytest.mark.parametrize("path", [p for d in DOMAIN for p in sorted((ROOT / d).glob("*.py"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_never_touches_http(path):
    for module, name in _imports(path):
        assert not (module == "flask" and name == "request"), f"{path.name} imports flask.request"
        assert module.split(".")[0] != "rest", f"{path.name} imports {module}"
        assert not module.startswith("werkzeug.exceptions"), f"{path.name} imports {module}"
    source = path.read_text()
    assert "abort(" not in source
    assert not re.search(r"status(_code)?\s*=\s*[1-5][0-9][0-9]\b", source)


@pytest.mark.parametrize("path", sorted((ROOT / "rest").glob("*.py")), ids=lambda p: p.name)
def test_http_layer_runs_no_sql(path):
    for module, name in _imports(path):
        if module == "db":
            assert name in (None, "DatabaseUnavailable"), f"{path.name} imports db.{name}"
        assert module != "pymysql"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "db":
            assert node.attr in ("DatabaseUnavailable", "pool_stats"), f"{path.name} uses db.{node.attr}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE)\s", node.value), \
                f"{path.name} holds SQL: {node.value[:40]!r}"


def test_db_is_the_only_pymysql_importer():
    importers = [p.name for p in SERVICE_FILES
                 if any(module.split(".")[0] == "pymysql" for module, _ in _imports(p))]
    assert importers == ["db.py"]


def _code_only(source):
    """The source without docstrings and comments (they may name os.environ)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
            node.body = node.body[1:]
    return ast.unparse(tree)


def test_settings_are_read_in_config_only():
    readers = [p.name for p in SERVICE_FILES
               if p.name != "config.py"
               and re.search(r"os\.environ|os\.getenv|load_dotenv", _code_only(p.read_text()))]
    assert readers == []


def test_no_import_cycles():
    names = {_module_name(p): p for p in SERVICE_FILES}
    graph = {}
    for name, path in names.items():
        targets = set()
        for module, imported in _imports(path):
            for candidate in (f"{module}.{imported}" if imported else None, module):
                if candidate in names and candidate != name:
                    targets.add(candidate)
                    break
        graph[name] = targets
    seen, on_stack = set(), []

    def visit(node):
        if node in on_stack:
            cycle = on_stack[on_stack.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in seen:
            return
        seen.add(node)
        on_stack.append(node)
        for target in sorted(graph[node]):
            visit(target)
        on_stack.pop()

    for node in sorted(graph):
        visit(node)


def test_domain_imports_cleanly_without_the_http_layer():
    """Importing the whole domain loads no module of rest/ (run in a fresh interpreter)."""
    code = ("import sys, pkgutil, importlib, accounts, content\n"
            "for package in (accounts, content):\n"
            "    for info in pkgutil.iter_modules(package.__path__):\n"
            "        importlib.import_module(f'{package.__name__}.{info.name}')\n"
            "print(sorted(m for m in sys.modules if m == 'rest' or m.startswith('rest.')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
