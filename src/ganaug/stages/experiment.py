"""Stage baseline@ / augment@ / replace@ / count@: one experiment run (see ganaug.experiment.run).

Usage: python -m ganaug.stages.experiment <mode> <method> <amount> <seed>"""

import sys

from ganaug.errors import GanaugError
from ganaug.experiment.plan import RunSpec
from ganaug.experiment.run import run_experiment
from ganaug.params import load_params
from ganaug.stages import main


def run() -> None:
    if len(sys.argv) != 5:
        raise GanaugError("usage: python -m ganaug.stages.experiment <mode> <method> <amount> <seed>")
    mode, method, amount, seed = sys.argv[1:5]
    spec = RunSpec(mode, method, amount, int(seed))
    metrics = run_experiment(spec, load_params())
    if metrics is None:  # a torchrun rank other than 0
        return
    print(
        f"{mode}@{spec.key}: test accuracy {metrics['test_accuracy']:.4f} "
        f"({metrics['n_real']} real + {metrics['n_synthetic']} synthetic, {metrics['steps']} steps)"
    )


if __name__ == "__main__":
    main(run, torchrun=True)
