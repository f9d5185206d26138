"""Sweeps that rerun the whole pipeline as DVC experiments, and their reports across experiments.

`python -m ganaug.sweep lowdata --per-class 10 50`: the low-data sweep (paper 003, Fig. 6), leak-free.
`python -m ganaug.sweep pools --pool-seeds 0 1 2`: GAN + pool replicates, the stronger test.
`python -m ganaug.sweep gan --seeds 0 1 --variant "ndis1: gan.n_dis=1 gan.steps=1600"`: GAN settings A/B.

One module per sweep (lowdata, pools, gan), each with its `add_arguments` and `run` for the command line
(ganaug.sweep), on the helpers in common."""
