"""Every stage's code deps in dvc.yaml are exactly the ganaug files it runs (ganaug.pipeline writes them from the
import graph; CI checks them here): an edit to a file a stage runs marks it changed, and no other edit does."""

from __future__ import annotations

import subprocess
import sys

from ganaug.pipeline import (
    DVC_YAML,
    NOT_DEPS,
    ROOT,
    closure,
    code_deps,
    differences,
    matrix_differences,
    written,
    written_matrices,
)


def test_dvc_yaml_lists_each_stage_s_code_deps_as_the_import_graph_says():
    proc = subprocess.run([sys.executable, "-m", "ganaug.pipeline", "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = DVC_YAML.read_text()
    assert written(written_matrices(text)) == text  # --write would change nothing


def test_the_check_names_a_mode_stage_whose_matrix_disagrees_with_the_registry(tmp_path, monkeypatch, capsys):
    from ganaug import pipeline

    text = DVC_YAML.read_text()
    wrong_axis = text.replace("      ratio: ${experiments.ratios}\n", "      ratio: ${experiments.counts}\n", 1)
    [problem] = matrix_differences(wrong_axis)
    assert problem.startswith("augment: its matrix and cmd are not mode augment's") and "experiments.counts" in problem
    no_seed = text.replace(
        "      n: ${experiments.counts}\n      seed: ${experiments.seeds}\n", "      n: ${experiments.counts}\n"
    )
    assert [p.split(":")[0] for p in matrix_differences(no_seed)] == ["count"]
    swapped = text.replace(
        "experiment own ${item.sampler} own ${item.seed}", "experiment own own ${item.sampler} ${item.seed}"
    )
    assert [p.split(":")[0] for p in matrix_differences(swapped)] == ["own"]
    apart = text.replace(  # a hand comment between the matrix and the cmd stays where it is
        "      seed: ${experiments.seeds}\n    cmd: python -m ganaug.stages.experiment own",
        "      seed: ${experiments.seeds}\n    # a note\n    cmd: python -m ganaug.stages.experiment own",
    )
    assert matrix_differences(apart) == [] and written_matrices(apart) == apart
    for broken in (wrong_axis, no_seed, swapped):
        assert written_matrices(broken) == text  # --write puts it right, every hand-written line kept
    monkeypatch.setattr(pipeline, "DVC_YAML", tmp_path / "dvc.yaml")
    pipeline.DVC_YAML.write_text(wrong_axis)
    assert pipeline.main(["--check"]) == 1
    assert "dvc.yaml: augment: its matrix and cmd are not mode augment's" in capsys.readouterr().err
    assert pipeline.main(["--write"]) == 0 and pipeline.DVC_YAML.read_text() == text


def test_a_mode_without_its_stage_and_a_stray_experiment_stage_are_named():
    text = DVC_YAML.read_text()
    renamed = text.replace("\n  count:  #", "\n  counted:  #", 1)
    assert sorted(matrix_differences(renamed)) == [
        "count: mode count has no stage in dvc.yaml",
        "counted: runs ganaug.stages.experiment but is no mode of ganaug.experiment.plan.MODES",
    ]


def test_the_check_names_a_missing_and_an_extra_dep():
    text = DVC_YAML.read_text()
    no_params = text.replace("      - src/ganaug/params.py\n", "", 1)  # fetch's: the first stage listing it
    assert differences(no_params) == ["fetch: missing src/ganaug/params.py"]
    extra = text.replace(
        "      - src/ganaug/stages/fetch.py\n", "      - src/ganaug/stages/fetch.py\n      - src/ganaug/ui.py\n", 1
    )
    assert differences(extra) == ["fetch: extra src/ganaug/ui.py"]
    assert written(extra) == text and written(no_params) == text  # --write puts both right, hand lines kept


def test_the_check_refuses_borrowed_deps_of_a_stage_that_runs_another_module():
    text = DVC_YAML.read_text()
    other = text.replace(
        "cmd: python -m ganaug.stages.experiment replace", "cmd: python -m ganaug.stages.report replace", 1
    )
    assert "replace: its deps are augment's, which runs another module" in differences(other)
    assert not any("replace" in problem for problem in differences(text))


def test_the_closure_follows_imports_the_way_python_does():
    files = {str(p) for p in closure("ganaug.stages.experiment")}
    assert {
        "src/ganaug/stages/experiment.py",
        "src/ganaug/stages/__init__.py",
        "src/ganaug/experiment/run.py",
        "src/ganaug/experiment/training.py",  # imported inside run_experiment()
        "src/ganaug/distributed.py",  # imported inside main()
        "src/ganaug/params.py",
    } <= files
    assert "src/ganaug/stages/fetch.py" not in files and "src/ganaug/ui.py" not in files


def test_a_folder_stands_for_its_files_only_when_the_stage_runs_all_of_them():
    experiment = code_deps("ganaug.stages.experiment")
    assert {"src/ganaug/classify", "src/ganaug/experiment"} <= set(experiment)  # a run runs every module of both
    report = code_deps("ganaug.stages.report")
    # the report reads the plan, never the training code: an edit to how a run trains re-runs the runs, and the
    # report only through their outputs
    assert "src/ganaug/experiment/plan.py" in report and "src/ganaug/experiment/run.py" not in report
    assert "src/ganaug/classify/models.py" in report and "src/ganaug/classify/train.py" not in report
    assert "src/ganaug/report" not in report and "src/ganaug/report/tables.py" in report  # headline.py does not
    assert not any(dep in NOT_DEPS for dep in report)


def test_not_deps_name_existing_files():
    assert all((ROOT / path).is_file() for path in NOT_DEPS)


def test_the_experiment_package_is_layered_plan_below_training_below_run():
    """Who imports whom: the plan and the report never reach the training code, the training code never the run (the
    one module that reads and writes files)."""
    from ganaug.pipeline import imported_modules, module_file

    def imports(name: str) -> set[str]:
        return {m for m in imported_modules(module_file(name), name) if m.startswith("ganaug.experiment.")}

    assert imports("ganaug.experiment.variants") == set()
    assert imports("ganaug.experiment.plan") == {"ganaug.experiment.variants"}
    assert imports("ganaug.experiment.training") == {"ganaug.experiment.plan", "ganaug.experiment.variants"}
    assert imports("ganaug.experiment.run") == {"ganaug.experiment.plan", "ganaug.experiment.training"}
    for name in ("ganaug.report.rows", "ganaug.report.tables", "ganaug.stages.report", "ganaug.stages.plan"):
        assert imports(name) <= {"ganaug.experiment.plan", "ganaug.experiment.variants"}, name
