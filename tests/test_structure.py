"""The package's structure: floors, imports at the top, files a reader can hold.

These read the source as text (``ast``); nothing is imported or run.

- A module imports only from its own floor or below (``FLOORS``, bottom first); the op
  tiers and the layers never import the floors above them. The one exception is the
  optional GPU tier, which the floors below it import inside the function that needs it
  (``model.to("cuda")``, ``set_backend("cuda")``).
- Imports sit at the top of a module. One inside a function is there for a reason (an
  optional GPU or torch import, a cycle, an environment variable numba must see first),
  says so in a comment on its line or the line above, and there are few of them.
- No file of the package is over 400 lines, and the tutorials import only from the
  packages (their `__init__`) and top-level modules.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyface"

# bottom floor first; a module may import its own floor and those below
FLOORS = [
    {"ops_list", "cache", "option", "reference", "kernels", "optim", "atomic", "backend",
     "gradcheck", "helpformat", "runlock", "vectors"},
    {"nn", "losses", "data", "checkpoint"},
    {"models", "eval", "select"},
    {"cuda"},
    {"train"},
    {"checks", "distill"},
    {"bench"},
    {"experiments"},
    {"cli", "tutorial", "__main__"},
]
MAX_LINES = 400
MAX_FUNCTION_IMPORTS = 40


def _floor(part):
    for level, names in enumerate(FLOORS):
        if part in names:
            return level
    raise KeyError(part)


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _part(path):
    """The first name under tinyface/ of a source file: ``kernels`` for kernels/conv.py."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def _imports(path):
    """(lineno, imported tinyface part, inside a function) for each internal import."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    if path.name == "__init__.py":
        package = path.relative_to(PACKAGE.parent).parts[:-1]
    out = []

    def visit(node, depth):
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = list(package[:len(package) - child.level + 1])
                    names = [".".join(base + ([child.module] if child.module else []))]
                else:
                    names = [child.module or ""]
                if names[0] == "tinyface":
                    names = [f"tinyface.{a.name}" for a in child.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "tinyface" and len(parts) > 1:
                    out.append((child.lineno, parts[1], depth > 0))
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, depth + inner)

    visit(tree, 0)
    return out


def _function_imports(path):
    """(lineno, source line) of every import statement inside a function."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node, depth):
        for child in ast.iter_child_nodes(node):
            if depth and isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append(child.lineno)
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, depth + inner)

    visit(tree, 0)
    return out


def test_every_part_of_the_package_has_a_floor():
    unknown = sorted({_part(p) for p in _modules()} - set().union(*FLOORS) - {"__init__"})
    assert not unknown, f"give these a floor in FLOORS: {unknown}"


def test_no_module_imports_a_floor_above_its_own():
    upward = []
    for path in _modules():
        part = _part(path)
        if part == "__init__":
            continue
        for lineno, target, in_function in _imports(path):
            # the GPU tier is optional: below it, it is imported on demand only
            on_demand_gpu = target == "cuda" and in_function
            if target != part and _floor(target) > _floor(part) and not on_demand_gpu:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} imports tinyface.{target}")
    assert not upward, "imports that run upwards:\n" + "\n".join(upward)


def test_function_level_imports_are_few_and_say_why():
    silent, total = [], 0
    for path in _modules():
        lines = path.read_text().splitlines()
        for lineno in _function_imports(path):
            total += 1
            here, above = lines[lineno - 1], lines[lineno - 2] if lineno > 1 else ""
            if "#" not in here and not above.strip().startswith("#"):
                silent.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {here.strip()}")
    assert not silent, "imports inside a function without a comment saying why:\n" + "\n".join(silent)
    assert total <= MAX_FUNCTION_IMPORTS, f"{total} imports inside functions (at most {MAX_FUNCTION_IMPORTS})"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_file_is_over_400_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES})"



def test_tutorials_import_only_from_packages():
    """A tutorial imports ``tinyface.models`` or ``tinyface.checkpoint`` (a package, or a
    top-level module), never ``tinyface.models.zoo``: it uses the packages' public face."""
    inside = []
    for path in sorted((PACKAGE.parent / "tutorials").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "tinyface" and len(parts) > 2:
                    inside.append(f"{path.name}:{node.lineno}: {name}")
    assert not inside, "tutorials importing a package's insides:\n" + "\n".join(inside)
