# ganaug: `make run` reproduces the pipeline, `make test` runs the tests. `make help` lists all.
VENV ?= .venv
BIN := $(VENV)/bin
# stage commands (python -m ganaug.stages.*) must find the venv's python
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install lock run run-paper run-gpu run-longtail run-unlabelled run-fewshot budget test test-all lint ui server compare bench gpu-check browser clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install ganaug with its team and dev extras at the versions in constraints.txt (about 3 min the first time)

$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e '.[team,dev]'
	touch $@

# a fresh resolve in a scratch venv (slow: pip backtracks), then its versions become constraints.txt
lock: ## re-pin constraints.txt after a dependency change in pyproject.toml (tens of minutes)
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/pip install --disable-pip-version-check -q -e '.[team,dev]'
	head -3 constraints.txt > constraints.new
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e' >> constraints.new
	mv constraints.new constraints.txt && rm -rf .venv-lock

run: install ## dvc repro of the pipeline on the dataset in params.yaml (default Fashion-MNIST), then where its time went
	@$(BIN)/python -m compileall -q src  # stages then load ganaug's bytecode (PYTHONDONTWRITEBYTECODE set or not)
	@$(BIN)/python -m ganaug.timing start
	$(BIN)/python -m ganaug.warm $(BIN)/dvc repro  # stages fork from a process that has imported torch, timm, mlflow
	@echo
	@$(BIN)/python -m ganaug.summary
	@echo
	@$(BIN)/python -m ganaug.summary --timings
	@echo
	@echo "Results: reports/summary.md (the table), reports/figures/ (plots, grids, Grad-CAM), reports/metrics/*.json;"
	@echo "         reports/runs/<mode>/<run>/ (one per training run). Plots: dvc plots show -> dvc_plots/index.html."
	@echo "Runs:    make ui (MLflow on the training runs; it prints the address)."

PAPER := -S 'experiments.ratios=[1,2,5]' -S 'experiments.seeds=[0,1,2,3,4]' \
	-S 'experiments.samplers=[random,cl-sam,cr-sam,rl,combined,diverse,dapper]' -S 'experiments.own=[rl]' \
	-S 'experiments.epochs=null' -S 'experiments.replace=[0.2,0.4,0.6,0.8,1.0]' -S 'experiments.counts=[500,1500,2000,3000]' \
	-S 'experiments.baselines=[real,rotate,plain,rotated-copies]' -S gan.steps=3000 -S projection.per_class=all

run-paper: install ## the paper-scale grid (ratios 1/2/5, 5 seeds, full epochs) x 3 pool replicates, + the low-data sweep (for a GPU)
	$(BIN)/python -m ganaug.sweep pools --pool-seeds 0 1 2 $(PAPER)
	$(BIN)/python -m ganaug.sweep lowdata --per-class 10 25 50 $(PAPER) -S 'experiments.samplers=[random,cl-sam,dapper]'
	@echo "Results: reports/sweep/pools.md (verdicts over GAN replicates), reports/sweep/lowdata.md; dvc exp show"

# the long-tail regime of docs/results.md's "Where it helps" where synthetic rows came closest to the best real-only
# baseline: Fashion-MNIST 100 down to 10 per class, StarGAN translations, every class topped up to 100,
# then the head refitted on real images (every row, real-only included), against the long-tail baselines, 3 seeds
LONGTAIL := -S data.imbalance=10 -S gan.arch=stargan -S 'experiments.ratios=[topup]' \
	-S 'experiments.samplers=[random,cl-sam,uncertainty]' -S 'experiments.baselines=[real,resample,logit-adjust]' \
	-S 'experiments.seeds=[0,1,2]' -S experiments.epochs=30 -S experiments.recipe=head-refit -S experiments.finetune_epochs=5

# one GPU: the default regime with the GAN trained 10x longer at twice the batch and width, the classifiers at
# their full train.epochs, 5 seeds; cuDNN's fast kernels (not bit-reproducible). Sized from the CPU timings
# (a GAN step costs ~0.45 s on 2 cores); not yet run on a GPU here
GPU := -S gan.steps=8000 -S gan.batch_size=64 -S gan.g_width=96 -S gan.d_width=64 -S gan.eval_samples=2000 \
	-S experiments.epochs=null -S train.deterministic=false -S train.eval_batch_size=2048

# DAPPER's setting: generators pre-trained on the ~55,000 Fashion-MNIST training images not drawn as labelled
# (data.unlabelled: rest): a style GAN with DAPPER in its W space (random and predictor perturbations) and a DDPM with
# Diffusion Inversion, against pseudo-labelling the same images, at 10 and 100 labelled images per class, 3 seeds
# (python -m ganaug.sweep unlabelled adds the regime; ARGS="--generators style" for the style GAN alone)
UNLABELLED := -S gan.steps=2000 -S gan.eval_every=200 -S gan.ckpt_every=200 -S 'experiments.seeds=[0,1,2]'

run-unlabelled: install ## generators pre-trained on unlabelled images (DAPPER in W, Diffusion Inversion) vs pseudo-labelling them, 10 and 100 labelled/class (reports/sweep/unlabelled.md)
	$(BIN)/python -m ganaug.sweep unlabelled --per-class 10 100 $(UNLABELLED) $(ARGS)

# DA-Fusion's few-shot protocol (Trabucco et al. 2024): 1, 2, 4, 8 and 16 labelled images per class (and data.per_class,
# the "data saved" reference), the source's other training images unlabelled (data.unlabelled: rest); at each size
# real-only, pseudo-labelling and retrieval from those images, and the generator's samples (random, cl-sam), 5 seeds
FEWSHOT := -S data.unlabelled=rest -S 'experiments.samplers=[pseudo-label,retrieval,random,cl-sam]' \
	-S 'experiments.seeds=[0,1,2,3,4]'

run-fewshot: install ## the few-shot sweep: 1-16 labelled/class vs real-only, pseudo-label and retrieval at each size (reports/sweep/lowdata.md; ARGS="-S ...")
	$(BIN)/python -m ganaug.sweep lowdata --per-class 1 2 4 8 16 $(FEWSHOT) $(ARGS)

run-gpu: install ## the default regime sized for one GPU (GANAUG_DEVICE=cuda) as DVC experiment `gpu` (ARGS="-S ...")
	GANAUG_DEVICE=$${GANAUG_DEVICE:-cuda} $(BIN)/dvc exp run --temp -n gpu $(GPU) $(ARGS)
	@echo "Results: dvc exp apply gpu, or make compare"

run-longtail: install ## the long-tail regime (imbalance 10, StarGAN top-up + head refit vs long-tail baselines) as DVC experiment `longtail` (~25 min; ARGS="-S ...")
	$(BIN)/dvc exp run --temp -n longtail $(LONGTAIL) $(ARGS)
	@echo "Results: git show \$$(git for-each-ref refs/exps --format='%(refname)' | grep '/longtail$$' | tail -1):reports/summary.md"
	@echo "         or dvc exp apply longtail (puts its outputs in the workspace)"

budget: install ## real-only at 6..40 epochs x 3 seeds: where validation accuracy stops improving (reports/budget/)
	$(BIN)/python -m ganaug.budget

# 2 workers on a 2-core machine, one thread each; the tests of the shared pipeline stay in one worker (loadgroup)
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup

test: install ## every test but the slow tier: units, one real dvc repro and what a user does with it (~8.5 min on 2 cores)
	$(PYTEST) -m "not slow"
	@echo "left out: the slow tier (the low-data and pool sweeps, the experiment queue): make test-all runs it, CI does"

lint: install ## ruff: pycodestyle, unused code, import order, bugbear, pyupgrade, formatting (CI fails on any finding)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test-all: install browser ## everything, the slow tier included (what CI runs)
	$(PYTEST)

# the MLflow UI screenshot test (slow tier) needs a browser: Debian's chromium, where apt-get runs as root
browser: ## Debian's chromium for the UI screenshot test (test-all; needs apt-get as root)
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }; } || \
	  echo "chromium not installed (needs apt-get as root; elsewhere install it by hand): the UI screenshot test is skipped"

# the headline of each experiment; per-run and per-class detail stays in files (reports/, MLflow)
COMPARE = 'Experiment|^fid$$|^label_agreement$$|real_only|best_augmented\.row|best_vs_real_only\.(diff|verdict)'
compare: install ## dvc exp show, headline columns only: GAN FID, label agreement, real-only, best row, its difference and verdict (ARGS=-A: every commit)
	$(BIN)/dvc exp show --no-pager --drop '.*' --keep $(COMPARE) $(ARGS)

# a team's tracking server; every stage logs there with MLFLOW_TRACKING_URI=http://<host>:<port> (and, when it has
# logins, MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD); users: python -m ganaug.server add-user | grant
HOST ?= 127.0.0.1
PORT ?= 5000
BACKEND ?= sqlite:///mlflow-server.db
ARTIFACTS ?= mlartifacts
server: install ## team tracking server, this machine only; HOST=0.0.0.0 opens it, with logins (docs/scaling.md); ARTIFACTS=s3://...
	$(BIN)/python -m ganaug.server serve --host $(HOST) --port $(PORT) --backend $(BACKEND) --artifacts $(ARTIFACTS) $(ARGS)

ui: install ## MLflow UI on the project's store, opened on the training runs (ARGS="--exp NAME", "--screenshot runs.png")
	$(BIN)/python -m ganaug.ui $(ARGS)

bench: install ## the benchmarks (by hand; results go in docs/performance.md)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/input_pipeline.py
	$(BIN)/python benchmarks/gan_throughput.py
	$(BIN)/python benchmarks/pool_memory.py --count 1000000
	$(BIN)/python benchmarks/score_throughput.py
	$(BIN)/python benchmarks/score_memory.py --count 1000000
	$(BIN)/python benchmarks/select_speed.py
	$(BIN)/python benchmarks/decode_folder.py
	$(BIN)/python benchmarks/stage_startup.py --warm 3  # reads the outputs of a make run

# each part under its own time limit, a failed part named in the report; parts: ARGS="--parts classifier,gan"
gpu-check: install ## every CUDA path once on small settings (< 8 min on one GPU; CPU parts only without one) -> reports/gpu-check/ (or $OUT/)
	PYTHON=$(BIN)/python bash benchmarks/gpu_check.sh $(ARGS)

clean: ## remove the venv and Python caches (DVC outputs stay in the cache)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
