"""The docs cannot drift from the code: every make target, `python -m ganaug...` command and params key that
README.md and docs/ name exists; each command's --help runs; the README keeps to its budget; its headline
table is the committed run's; and neither points at things a clone does not have."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_BUDGET = 250  # lines: the front door stays one page; the record lives in docs/

PARAM_SECTIONS = tuple(yaml.safe_load((ROOT / "params.yaml").read_text()))
FILE_SUFFIXES = (".py", ".md", ".json", ".csv", ".png", ".yaml", ".npz", ".npy", ".parquet", ".db", ".txt", ".lock")


def code_of(text: str) -> str:
    """The page's code: fenced blocks and inline `spans`, where commands and keys are written."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join([*fenced, *inline])


def named(pattern: str) -> list[tuple[str, str]]:
    """(page, match) for every match of ``pattern`` in the code of README.md and docs/."""
    return sorted(
        {
            (page.relative_to(ROOT).as_posix(), m)
            for page in PAGES
            for m in re.findall(pattern, code_of(page.read_text()))
        }
    )


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def test_the_docs_exist_and_say_something():
    assert README.is_file() and len(DOCS) >= 6
    for page in DOCS:
        assert page.read_text().startswith("# "), f"{page.name}: starts with its title"


def test_every_make_target_named_exists():
    targets = makefile_targets()
    names = named(r"\bmake ([a-z][a-z-]*)")
    assert len(names) > 10
    missing = [(page, t) for page, t in names if t not in targets]
    assert not missing, f"make targets the docs name but the Makefile lacks: {missing}"


def test_every_python_module_named_imports_and_every_subcommand_exists():
    from ganaug.__main__ import COMMANDS
    from ganaug.sweep import SWEEPS

    names = named(r"python -m (ganaug(?:\.[a-z_]+)*)(?:[ \t]+([a-z][a-z-]*))?")
    assert len(names) > 5
    for page, (module, word) in names:
        assert importlib.util.find_spec(module) is not None, f"{page}: python -m {module}: no such module"
        if module == "ganaug" and word and word != "help":
            assert word in COMMANDS, f"{page}: python -m ganaug {word}: not a command ({', '.join(COMMANDS)})"
        if (module == "ganaug.sweep" or (module == "ganaug" and word == "sweep")) and word not in (None, "", "sweep"):
            assert word in SWEEPS, f"{page}: python -m {module} {word}: not a sweep"


def params_keys() -> list[tuple[str, str]]:
    sections = "|".join(PARAM_SECTIONS)
    names = named(rf"(?<![\w./-])((?:{sections})(?:\.[a-z_0-9]+)+)(?![\w/-])")
    return [(page, key) for page, key in names if not key.endswith(FILE_SUFFIXES)]


def test_every_params_key_named_exists_in_params_yaml():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = params_keys()
    assert len(keys) > 30
    missing = []
    for page, key in keys:
        node = params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append((page, key))
                break
            node = node[part]
    assert not missing, f"params keys the docs name but params.yaml lacks: {missing}"


@pytest.mark.parametrize("command", ["summary", "trace", "ui", "server", "sweep", "budget"])
def test_each_command_answers_help(command, capsys):
    from ganaug.__main__ import COMMANDS, main

    assert command in COMMANDS
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


def test_python_m_ganaug_lists_every_command_one_line_each():
    out = subprocess.run([sys.executable, "-m", "ganaug", "--help"], capture_output=True, text=True, check=True).stdout
    from ganaug.__main__ import COMMANDS

    for command in COMMANDS:
        [line] = [line for line in out.splitlines() if line.strip().startswith(command + " ")]
        assert len(line) < 120
    bad = subprocess.run([sys.executable, "-m", "ganaug", "nonsense"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'nonsense'" in bad.stderr


def test_make_help_lists_every_target_one_line_each():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1] for line in out.splitlines() if line.strip().startswith("make ")}
    assert listed == makefile_targets() - {".PHONY"}


def test_the_readme_keeps_to_its_budget():
    lines = len(README.read_text().splitlines())
    assert lines <= README_BUDGET, f"README.md has {lines} lines (budget {README_BUDGET}): move the detail to docs/"


def test_the_readme_headline_table_is_the_committed_runs():
    from ganaug.report.headline import headline_table

    text = README.read_text()
    block = re.search(r"<!-- headline:[^\n]*-->\n(.*?)\n<!-- /headline -->", text, flags=re.S)
    assert block, "README.md: the headline table's markers are missing"
    assert block.group(1) == headline_table(ROOT / "reports"), (
        "README.md's headline table differs from reports/summary.csv: paste "
        "`python -c 'from pathlib import Path; from ganaug.report.headline import headline_table as h; "
        'print(h(Path("reports")))\'`'
    )


def test_no_page_points_at_the_team_tracker_or_files_a_clone_lacks():
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"\bissues? #?\d+", text, flags=re.I), f"{page.name}: refers to the issue tracker"
        assert "shared/papers" not in text and not re.search(r"\bpaper 00\d\b", text), f"{page.name}: cite authors"
        for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if not link.startswith(("http://", "https://", "mailto:")):
                assert (page.parent / link).exists(), f"{page.name}: broken link {link}"
