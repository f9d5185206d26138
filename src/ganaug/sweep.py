"""`python -m ganaug.sweep <sweep>`: sweeps that rerun the pipeline as DVC experiments (ganaug.sweeps), one
module per sweep in SWEEPS, and their reports across experiments:

  lowdata  `--per-class 10 50`: the leak-free low-data sweep (paper 003, Fig. 6); at `--per-class 1 2 4 8 16`
           with data.unlabelled: rest, the few-shot protocol (make run-fewshot)
  pools    `--pool-seeds 0 1 2`: GAN + pool replicates, the stronger test
  gan      `--seeds 0 1 --variant "ndis1: gan.n_dis=1 gan.steps=1600"`: GAN settings A/B
  unlabelled `--per-class 10 100`: generators pre-trained on unlabelled images (DAPPER in W, Diffusion
             Inversion) vs pseudo-labelling them
"""

from __future__ import annotations

import argparse

from ganaug.sweeps import gan, lowdata, pools, unlabelled

# name -> (module with add_arguments(parser) and run(args) -> the report's path, its one-line help)
SWEEPS = {
    "lowdata": (lowdata, "the leak-free low-data sweep: one experiment per real-set size"),
    "pools": (pools, "GAN + pool replicates: one experiment per pool seed"),
    "gan": (gan, "GAN settings A/B: one train_gan experiment per (variant, GAN seed)"),
    "unlabelled": (unlabelled, "generators pre-trained on unlabelled images vs pseudo-labelling them, per size"),
}


def main(argv: list[str] | None = None) -> int:
    from ganaug.stages import main as stage_main

    parser = argparse.ArgumentParser(
        description="Sweeps as DVC experiments: low-data sizes, pool replicates, GAN settings."
    )
    sub = parser.add_subparsers(dest="sweep", required=True)
    for name, (module, help_text) in SWEEPS.items():
        p = sub.add_parser(name, help=help_text)
        module.add_arguments(p)
        p.add_argument(
            "-S",
            "--set",
            dest="overrides",
            action="append",
            default=[],
            help="extra params override for every experiment, as for dvc exp run -S "
            "(e.g. 'experiments.samplers=[cl-sam]')",
        )
        p.add_argument("--report-only", action="store_true", help="rebuild the report from the finished experiments")
    args = parser.parse_args(argv)

    def run() -> None:
        print(SWEEPS[args.sweep][0].run(args).read_text())

    stage_main(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
