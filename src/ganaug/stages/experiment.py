"""Stage baseline@ / augment@ / replace@ / count@: one experiment run (see ganaug.experiment).

Usage: python -m ganaug.stages.experiment <mode> <sampler> <amount> <seed>"""

import sys

from ganaug.errors import GanaugError
from ganaug.experiment import RunSpec, run_experiment
from ganaug.params import load_params
from ganaug.stages import main


def run() -> None:
    if len(sys.argv) != 5:
        raise GanaugError("usage: python -m ganaug.stages.experiment <mode> <sampler> <amount> <seed>")
    mode, sampler, amount, seed = sys.argv[1:5]
    spec = RunSpec(mode, sampler, amount, int(seed))
    metrics = run_experiment(spec, load_params())
    if metrics is None:  # a torchrun rank other than 0
        return
    print(
        f"{mode}@{spec.key}: test accuracy {metrics['test_accuracy']:.4f} "
        f"({metrics['n_real']} real + {metrics['n_synthetic']} synthetic, {metrics['steps']} steps)"
    )


if __name__ == "__main__":
    main(run, torchrun=True)
