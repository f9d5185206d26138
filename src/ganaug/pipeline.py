"""dvc.yaml's code dependencies and experiment matrices, written from their one source: each stage depends on exactly
the ganaug files its module runs (its import closure, function-level imports included), so no edit can leave a
result stale and no edit re-runs a stage that does not run it; each experiment mode's stage expands into exactly the
runs the mode registry plans (ganaug.experiment.plan.MODES).

    python -m ganaug.pipeline --write   # rewrite each stage's code deps and each mode stage's matrix and cmd
    python -m ganaug.pipeline --check   # exit 1 naming each stage whose code deps are missing one or list an extra,
                                        # or whose matrix or cmd disagrees with the mode registry

The code deps of a stage are the ``- src/...`` lines of its ``deps:``; a mode stage's ``matrix:`` block and its
``cmd:`` line are the mode's. Everything else in dvc.yaml (data deps, params, outs, comments) is written by hand and
left as it is. A folder whose every module the stage runs is listed as the folder."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DVC_YAML = ROOT / "dvc.yaml"
GENERATED = "# code: python -m ganaug.pipeline --write"
MATRIX = "# from ganaug.experiment.plan.MODES: python -m ganaug.pipeline --write"
EXPERIMENT = "ganaug.stages.experiment"  # the module every mode's stage runs

# Modules that cannot change what a stage writes: never a stage's dependency, each with its reason.
# (Cutting an import a stage does not need is better than a new entry here.)
NOT_DEPS = {
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
        if str(module_file(name).relative_to(ROOT)) not in NOT_DEPS:  # what such a module imports serves only it
            todo.extend(imported_modules(module_file(name), name))
    return {module_file(name).relative_to(ROOT) for name in seen}


def docstring_only(path: Path) -> bool:
    body = ast.parse((ROOT / path).read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body
    )


def code_deps(module: str) -> list[str]:
    """What a stage running ``module`` depends on: its module first, then its closure (less NOT_DEPS and docstring-only
    package files), a folder in place of its files when the stage runs every module in it."""
    files = {p for p in closure(module) if str(p) not in NOT_DEPS and not docstring_only(p)}
    folders = sorted({p.parent for p in files if p.parent != Path("src/ganaug")}, key=lambda f: len(f.parts))
    whole = []
    for folder in folders:
        modules = {p.relative_to(ROOT) for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}
        if modules <= files | {p for p in modules if docstring_only(p)} and not any(
            folder.is_relative_to(w) for w in whole
        ):
            whole.append(folder)
    listed = [f for f in files if not any(f.is_relative_to(w) for w in whole)] + whole
    first = module_file(module).relative_to(ROOT)
    return [str(first)] + sorted(str(p) for p in listed if p != first)


def stages(text: str) -> dict[str, tuple[str, int, int]]:
    """dvc.yaml's stages -> (the module its cmd runs, the first and the end line of its deps list)."""
    lines = text.splitlines()
    out, name, module = {}, None, None
    for i, line in enumerate(lines):
        if m := re.match(r"^  ([\w-]+):", line):
            name, module = m.group(1), None
        elif name and (m := re.search(r"cmd: python -m (ganaug\.[\w.]+)", line)):
            module = m.group(1)
        elif name and re.match(r"^    deps:\s*(&\w+)?\s*$", line):
            end = i + 1
            while end < len(lines) and re.match(r"^      (- |#)", lines[end]):
                end += 1
            if module is None:
                raise SystemExit(f"dvc.yaml: stage {name}: its cmd does not run a ganaug module")
            out[name] = (module, i + 1, end)
    return out


def written(text: str) -> str:
    """dvc.yaml with every stage's code deps as the import graph says (hand-written lines kept in their order)."""
    lines = text.splitlines()
    for _, (module, start, end) in sorted(stages(text).items(), key=lambda s: -s[1][1]):
        kept = [line for line in lines[start:end] if not re.match(r"^      - src/", line) and line.strip() != GENERATED]
        block = [f"      {GENERATED}"] + [f"      - {dep}" for dep in code_deps(module)]
        lines[start:end] = block + kept
    return "\n".join(lines) + "\n"


def differences(text: str) -> list[str]:
    """Each stage whose listed code deps differ from its import closure: what is missing, what is extra; and a
    stage that borrows another's deps (a YAML alias) but runs another module."""
    problems = []
    lines = text.splitlines()
    anchors = {
        m.group(1): name
        for name, (_, start, _) in stages(text).items()
        if (m := re.match(r"^    deps:\s*&(\w+)", lines[start - 1]))
    }
    modules = {name: module for name, (module, _, _) in stages(text).items()}
    name = module = None
    for line in lines:
        if m := re.match(r"^  ([\w-]+):", line):
            name, module = m.group(1), None
        elif name and (m := re.search(r"cmd: python -m (ganaug\.[\w.]+)", line)):
            module = m.group(1)
        elif name and (m := re.match(r"^    deps:\s*\*(\w+)", line)):
            owner = anchors.get(m.group(1))
            if owner is None or modules.get(owner) != module:
                problems.append(f"{name}: its deps are {owner or m.group(1)}'s, which runs another module")
    for name, (module, start, end) in stages(text).items():
        listed = {m.group(1) for line in lines[start:end] if (m := re.match(r"^      - (src/\S+)", line))}
        wanted = set(code_deps(module))
        if missing := sorted(wanted - listed):
            problems.append(f"{name}: missing {', '.join(missing)}")
        if extra := sorted(listed - wanted):
            problems.append(f"{name}: extra {', '.join(extra)}")
    return problems


def stage_spans(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Each top-level stage -> its first line (the ``  name:`` line) and its end."""
    starts = [(i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"^  ([\w-]+):", line))]
    ends = [i for i, _ in starts[1:]] + [len(lines)]
    return {name: (i, end) for (i, name), end in zip(starts, ends)}


def matrix_lines(mode) -> list[str]:
    """A mode stage's generated lines: its matrix (the mode's axes, in the order DVC joins them in stage names) and
    its cmd."""
    return [
        f"    matrix:  {MATRIX}",
        *(f"      {axis.name}: ${{experiments.{axis.param}}}" for axis in mode.axes),
        f"    cmd: {mode.cmd}",
    ]


def mode_lines(lines: list[str], start: int, end: int) -> tuple[list[int], int | None]:
    """Within a stage, the line numbers of its matrix block and of its cmd line: the lines MODES writes."""
    matrix, cmd, in_matrix = [], None, False
    for i in range(start + 1, end):
        if lines[i].startswith("    matrix:"):
            matrix.append(i)
            in_matrix = True
        elif in_matrix and re.match(r"^      \S", lines[i]):
            matrix.append(i)
        else:
            in_matrix = False
            if lines[i].startswith("    cmd:") and cmd is None:
                cmd = i
    return matrix, cmd


def written_matrices(text: str) -> str:
    """dvc.yaml with every mode stage's matrix and cmd as MODES says, each where it stood (the rest kept)."""
    from ganaug.experiment.plan import MODES

    lines = text.splitlines()
    for name, (start, end) in sorted(stage_spans(lines).items(), key=lambda s: -s[1][0]):
        if name not in MODES:
            continue
        *matrix, cmd = matrix_lines(MODES[name])
        found, at = mode_lines(lines, start, end)
        if at is not None:
            lines[at] = cmd  # one line for one: the matrix's line numbers still hold
        first = found[0] if found else start + 1
        lines[first : first + len(found)] = matrix if at is not None else [*matrix, cmd]
    return "\n".join(lines) + "\n"


def matrix_differences(text: str) -> list[str]:
    """Each mode stage whose matrix or cmd disagrees with MODES, each mode without a stage, and each stage that runs an
    experiment without being a mode."""
    from ganaug.experiment.plan import MODES

    lines, problems = text.splitlines(), []
    spans = stage_spans(lines)
    for name, (start, end) in spans.items():
        if name not in MODES:
            if any(f"cmd: python -m {EXPERIMENT} " in line for line in lines[start:end]):
                problems.append(f"{name}: runs {EXPERIMENT} but is no mode of ganaug.experiment.plan.MODES")
            continue
        matrix, cmd = mode_lines(lines, start, end)
        found = [lines[i].split("#")[0].rstrip() for i in [*matrix, *([] if cmd is None else [cmd])]]
        wanted = [line.split("#")[0].rstrip() for line in matrix_lines(MODES[name])]
        if found != wanted:
            problems.append(
                f"{name}: its matrix and cmd are not mode {name}'s in ganaug.experiment.plan.MODES "
                f"(dvc.yaml: {' | '.join(x.strip() for x in found) or 'none'}; "
                f"MODES: {' | '.join(x.strip() for x in wanted)})"
            )
    problems += [f"{mode}: mode {mode} has no stage in dvc.yaml" for mode in MODES if mode not in spans]
    return problems


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps and experiment matrices")
    mode.add_argument(
        "--check", action="store_true", help="exit 1 if a stage's code deps are missing or extra, or a matrix is wrong"
    )
    args = parser.parse_args(argv)
    text = DVC_YAML.read_text()
    if args.write:
        DVC_YAML.write_text(written(written_matrices(text)))
        return 0
    problems = matrix_differences(text) + differences(text)
    for problem in problems:
        print(f"dvc.yaml: {problem} (python -m ganaug.pipeline --write)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
