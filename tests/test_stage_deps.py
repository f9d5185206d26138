"""Every file of ganaug code a stage runs is a dependency of that stage in dvc.yaml, so that an edit to
it marks the stage changed in `dvc status` (the import closure of each stage module, read with ast)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Modules that cannot change what a stage writes: left out of stage deps on purpose, each with its reason.
# (Cutting an import a stage does not need is better than a new entry here.)
# A package __init__.py that holds only its docstring is left out too (checked below, not listed here).
ALLOWED = {
    "src/ganaug/__init__.py": "the package docstring and version string, written to no output",
    "src/ganaug/errors.py": "error types: a changed message cannot change an output",
    "src/ganaug/paths.py": "output path constants: a moved path is a dvc.yaml change, which DVC sees",
    "src/ganaug/timing.py": "wall-clock times appended to logs/, never a DVC output",
    "src/ganaug/warm.py": "how a stage process starts (forked from a warm server or on its own), not what it writes",
    "src/ganaug/tracking.py": "the MLflow client: what is logged to the tracking store, never a DVC output "
    "(the digests it logs, which outputs carry too, come from digests.py: a dep)",
}


def module_file(name: str) -> Path | None:
    """The source file of a dotted ganaug module name (a package's __init__.py), or None."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, name: str) -> set[str]:
    """The ganaug modules a file imports, anywhere in it (function-level imports run too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {m for m in found if m.split(".")[0] == "ganaug" and module_file(m)}


def closure(module: str) -> set[Path]:
    """Every file that running `python -m <module>` executes from ganaug, packages' __init__ included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # importing a.b.c runs a and a.b
        path = module_file(name)
        if str(path.relative_to(ROOT)) not in ALLOWED:  # what an allowed module imports serves only it
            todo.extend(imported_modules(path, name))
    return {module_file(name).relative_to(ROOT) for name in seen}


def stage_modules() -> dict[str, tuple[str, list[str]]]:
    """dvc.yaml's stages (a matrix stage once, by its template) -> (module its cmd runs, its deps)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for stage, spec in stages.items():
        match = re.search(r"python -m (ganaug\.[\w.]+)", spec["cmd"])
        assert match, f"stage {stage}: its cmd does not run a ganaug module"
        out[stage] = (match.group(1), [str(d) for d in spec.get("deps", [])])
    return out


def docstring_only(path: Path) -> bool:
    body = ast.parse((ROOT / path).read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body
    )


def covered(path: Path, deps: list[str]) -> bool:
    return docstring_only(path) or any(str(path) == d or str(path).startswith(d.rstrip("/") + "/") for d in deps)


def test_every_stage_depends_on_every_ganaug_file_it_runs():
    missing = [
        f"{stage}: {path}"
        for stage, (module, deps) in stage_modules().items()
        for path in sorted(closure(module))
        if str(path) not in ALLOWED and not covered(path, deps)
    ]
    assert not missing, "files a stage runs but does not list in dvc.yaml deps:\n" + "\n".join(missing)


def test_the_closure_follows_imports_the_way_python_does():
    files = {str(p) for p in closure("ganaug.stages.experiment")}
    assert {
        "src/ganaug/stages/experiment.py",
        "src/ganaug/stages/__init__.py",
        "src/ganaug/experiment.py",
        "src/ganaug/distributed.py",
        "src/ganaug/params.py",
    } <= files  # distributed: imported inside main()
    assert "src/ganaug/stages/fetch.py" not in files and "src/ganaug/ui.py" not in files


def test_allow_list_names_existing_files():
    assert all((ROOT / path).is_file() for path in ALLOWED)
