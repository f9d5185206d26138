"""Stage plan: which optional stages the planned runs need -> data/plan/<stage>.json (rl_policy, projection,
pseudo_label, retrieval). Each of those stages depends on its own file only, so an edit to experiments.* re-runs it when
its answer changes, and a stage no run needs writes its empty outputs in a moment instead of training.

It is the first stage to read the sampler and baseline names of experiments.*, so it refuses an unknown one
before any run trains."""

import json

from ganaug import paths
from ganaug.experiment.plan import optional_stage_plan
from ganaug.experiment.variants import VARIANTS
from ganaug.params import ExperimentParams, load_params
from ganaug.registry import lookup
from ganaug.sampling.samplers import SAMPLERS
from ganaug.stages import main


def check_names(exp: ExperimentParams) -> None:
    """Every sampler and baseline experiments.* names is its registry's; the first that is not is refused."""
    for name in exp.baselines:
        lookup(VARIANTS, name, "experiments.baselines", "baseline")
    for name in exp.samplers:
        lookup(SAMPLERS, name, "experiments.samplers", "sampler")
    lookup(SAMPLERS, exp.replace_sampler, "experiments.replace_sampler", "sampler")
    lookup(SAMPLERS, exp.count_sampler, "experiments.count_sampler", "sampler")
    own = {name: s for name, s in SAMPLERS.items() if s.own is not None}
    for name in exp.own:
        lookup(own, name, "experiments.own", "own-choice sampler")  # one that also chooses how many


def run() -> None:
    params = load_params()
    check_names(params.experiments)
    plan = optional_stage_plan(params)
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
