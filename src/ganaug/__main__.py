"""`python -m ganaug`: what a user can run, one line each; `python -m ganaug <command> ...` runs one of them
(the same as `python -m ganaug.<command> ...`). The pipeline itself runs with `make run` / `dvc repro`."""

from __future__ import annotations

import importlib
import sys

from ganaug.errors import GanaugError

# command -> what it does; each is the module ganaug.<command> with a main(argv) (a test checks every --help runs)
COMMANDS = {
    "summary": "print the headline numbers and the table of the last run (reports/summary.md)",
    "trace": "trace a training run (its reports/runs/ folder or MLflow run id) back to its code, data and params",
    "ui": "the MLflow UI on the project's store, opened on the training runs",
    "server": "a shared MLflow tracking server for a team, with logins; add-user and grant",
    "sweep": "sweeps as DVC experiments: lowdata, pools, gan, unlabelled",
    "budget": "real-only at several epoch counts: where validation accuracy stops improving",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: python -m ganaug <command> [--help | args]",
        "",
        "Does GAN synthetic data help your image classifier? The pipeline: `make run` (dvc repro); these commands",
        "read, trace, share and extend its results:",
        "",
        *(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()),
        "",
        "`make help` lists the make targets.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, *rest = argv
    if command not in COMMANDS:
        print(f"ganaug: unknown command {command!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"ganaug.{command}")
    sys.argv = [f"python -m ganaug.{command}", *rest]
    try:
        return module.main(rest) or 0
    except GanaugError as err:  # bad input: one line, as the stages say it, never a traceback
        print(f"ganaug: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
