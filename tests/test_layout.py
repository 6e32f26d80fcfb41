"""The shape of the code, checked: modules reach each other through public
names only, nothing outside tests/ imports the tests, test modules share code
through tests/support.py and conftest.py alone, vaegen's functions stay
short, and the likelihood registry is light to import. (Which packages may
import torch or click is checked by test_torch_free.py and test_cli.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 60  # a function longer than this does more than one job
MAX_PARAMETERS = 8  # outside the CLI, whose commands take one parameter per option


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of each `from module import name` in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.module or "", alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            for alias in node.names] + [
        (alias.name, "") for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]


@pytest.mark.parametrize("folder", ["vaegen", "tools", "benchmarks", "tests"])
def test_no_module_takes_another_modules_private_names(folder):
    private = [f"{p.relative_to(ROOT)}: {module}.{name}" for p in modules(folder) for module, name in imports(p)
               if module.startswith("vaegen") and name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_nothing_outside_the_tests_imports_them():
    found = [f"{p.relative_to(ROOT)}: {module}" for p in modules("vaegen", "tools", "benchmarks")
             for module, _ in imports(p) if module == "tests" or module.startswith("tests.")]
    assert found == []


def test_test_modules_share_code_through_support_alone():
    found = [f"{p.name}: {module}" for p in modules("tests") for module, _ in imports(p)
             if module.startswith("tests.") and module != "tests.support"]
    assert found == []


def test_vaegens_functions_are_short_and_take_few_parameters():
    long, wide = [], []
    for path in modules("vaegen"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            if node.end_lineno - node.lineno + 1 > MAX_LINES:
                long.append(where)
            a = node.args
            names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)] + [x.arg for x in (a.vararg, a.kwarg) if x]
            if len([n for n in names if n not in ("self", "cls")]) > MAX_PARAMETERS and "cli" not in path.parts:
                wide.append(where)
    assert long == [] and wide == []



def module_level_imports(path: Path) -> list[str]:
    """The modules a file imports at its top level, outside any function."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return [alias.name for node in body if isinstance(node, ast.Import) for alias in node.names] + [
        node.module or "" for node in body if isinstance(node, ast.ImportFrom)]


def test_the_likelihoods_import_neither_numpy_nor_torch_at_module_level():
    """bundle/read.py checks a bundle's likelihood when any command starts, so
    the registry costs no heavy import: each half imports numpy or torch when it runs."""
    found = [f"{p.relative_to(ROOT)}: {module}" for p in modules("vaegen/likelihoods")
             for module in module_level_imports(p) if module.split(".")[0] in ("numpy", "torch")]
    assert found == []


# The modules that stand alone at vaegen/'s top: the public API and what every part shares. Anything
# else belongs in the package of its part (data/, bundle/, latent/, evaluation/, likelihoods/, training/,
# cli/, serve/), where a newcomer looks for it.
TOP_LEVEL = {"__init__", "__main__", "api", "archs", "choices", "errors", "fileio", "images", "plot", "recipes", "runtime"}


def test_every_module_lives_in_the_package_of_its_part():
    assert {p.stem for p in (ROOT / "vaegen").glob("*.py")} == TOP_LEVEL


def test_only_the_registries_switch_on_an_architecture_or_likelihood_name():
    """A new architecture or likelihood is a file and a registration: no code
    elsewhere compares a model's arch or likelihood with a name."""
    from vaegen.archs import ARCHS
    from vaegen.likelihoods import LIKELIHOODS

    names = {*ARCHS, *LIKELIHOODS}
    owners = ("vaegen/likelihoods", "vaegen/training/architectures")
    found = []
    for path in modules("vaegen"):
        if str(path.relative_to(ROOT)).startswith(owners):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                constants = [c.value for c in (node.left, *node.comparators) if isinstance(c, ast.Constant)]
                found += [f"{path.relative_to(ROOT)}:{node.lineno}" for c in constants if c in names]
    assert found == []


def test_the_wheel_lists_every_package():
    """pyproject.toml names the packages a wheel carries; a package left out imports in a checkout (the
    editable install finds it) and fails in an installed wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vaegen").rglob("__init__.py")}
    assert found <= listed
