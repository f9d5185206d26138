"""Stage plan: which optional stages the planned runs need -> data/plan/<stage>.json (rl_policy, projection,
pseudo_label). Each of those stages depends on its own file only, so an edit to experiments.* re-runs it when
its answer changes, and a stage no run needs writes its empty outputs in a moment instead of training."""

import json

from ganaug import paths
from ganaug.experiment.plan import optional_stage_plan
from ganaug.params import load_params
from ganaug.stages import main


def run() -> None:
    plan = optional_stage_plan(load_params())
    paths.PLAN.mkdir(parents=True, exist_ok=True)
    for stage, entry in plan.items():
        (paths.PLAN / f"{stage}.json").write_text(json.dumps({"stage": stage, **entry}) + "\n")
    print(
        "plan: "
        + "; ".join(
            f"{stage} {'for ' + ', '.join(e['needed_by']) if e['needed_by'] else 'not needed'}"
            for stage, e in plan.items()
        )
    )


if __name__ == "__main__":
    main(run)
