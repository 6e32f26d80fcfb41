# vaegen's everyday commands. Every target is idempotent; bare `make` runs the tests.
#   make run      set up if needed, then draw 64 digits from the shipped model into grid.png
#   make test     set up if needed, then run the fast test suite
#   make test-all the fast and the slow tests (real MNIST when VAEGEN_DATA_DIR points at it)
#   make lint     ruff
#   make bench    side-by-side benchmarks into benchmarks/results/ (about 1 h 40 min: six training runs,
#                 the colour default against the anchor among them; BENCH_ARGS=--sections=ttq runs one part)
#   make screenshots  the README's explorer pictures (docs/map.png, docs/serve.png; needs MNIST and chromium)
#   make weights  retrain the shipped models and their judges (hours on a 2-core CPU; weights-mnist,
#                 weights-fashion-mnist, weights-emoji and judges do one part each)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch; GPU users see the README ("Installing with a GPU").
TORCH  ?= torch==2.13.0

.DEFAULT_GOAL := test
.PHONY: install run test test-all lint bench screenshots weights weights-mnist weights-fashion-mnist weights-emoji judges clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[train,dev]"
	$(BIN)/python -m compileall -q vaegen  # as pip does for a wheel: no compile at every start
	touch $(STAMP)

run: install
	$(BIN)/vaegen sample -n 64 -o grid.png --scale 2

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: install
	$(BIN)/ruff check vaegen tests tools benchmarks

bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

screenshots: install
	$(BIN)/vaegen map -o docs/map.png --quiet
	PYTHONPATH=. $(BIN)/python tools/screenshots.py docs/serve.png

# The judges of sample quality (weights/judges/<dataset>): each trained on the first 50,000
# training images, so that the other 10,000 and the test set, which its figures compare, are unseen.
# The emoji folder's judge: its training split but every 4th image (the reference), `vaegen judge`.
EMOJI ?= ../shared/data/emoji
judges: install
	$(BIN)/python tools/train_judge.py --dataset mnist --epochs 5
	$(BIN)/python tools/train_judge.py --dataset fashion-mnist --epochs 10
	$(BIN)/vaegen judge --dataset $(EMOJI) --image-size 64 --channels 3 --epochs 8 --threads 1 --out weights/judges/emoji

weights: weights-mnist weights-fashion-mnist weights-emoji

# The shipped MNIST model: two seeded stages, then a full evaluation, the prior and the card.
# Stage 1 trains the VAE; stage 2 fine-tunes it on the importance-weighted bound
# (k=10, Burda et al.; DReG gradients, Tucker et al.) with a new cosine schedule.
# Each stage resumes if interrupted.
WEIGHTS_RUN ?= runs/weights-mnist
STAGE1 = --arch mlp --latent-dim 64 --hidden 512 --decoder-layers 3 --epochs 130 --batch-size 128 --lr 1e-3 \
         --kl-warmup 10 --seed 0
STAGE2 = --epochs 154 --iw-samples 10 --iw-estimator dreg --lr 3e-4
weights-mnist: install $(WEIGHTS_RUN)/stage2.done
	$(BIN)/python tools/ship.py bundle $(WEIGHTS_RUN) weights/mnist

$(WEIGHTS_RUN)/stage1.done:
	$(BIN)/vaegen train $(STAGE1) --threads 2 --out $(WEIGHTS_RUN) $(if $(wildcard $(WEIGHTS_RUN)/checkpoint.pt),--resume,)
	touch $@

$(WEIGHTS_RUN)/stage2.done: $(WEIGHTS_RUN)/stage1.done
	$(BIN)/vaegen train --resume $(STAGE2) --threads 2 --out $(WEIGHTS_RUN)
	touch $@

# The shipped Fashion-MNIST model: one seeded stage of a conv VAE (one 3x3 block at each
# resolution) on the 8-bit images (a discretized logistic), KL weight 0.05 (samples come from the
# fitted prior), then the same shipping steps. 1.8 min of epochs on one H200 GPU (the recipe
# `vaegen train --dataset fashion-mnist` takes on a GPU). FASHION_DEVICE=cpu trains it on the CPU:
# about 2.4 h on 2 cores (docs/training.md).
FASHION_RUN ?= runs/weights-fashion-mnist
FASHION_DEVICE ?= cuda
FASHION = --dataset fashion-mnist --arch conv --conv-channels 64 --conv-blocks 1 --hidden 256 --latent-dim 64 \
	--epochs 50 --lr 1e-3 --beta 0.05 --kl-warmup 5 --seed 0 --device $(FASHION_DEVICE) --no-fit-prior
weights-fashion-mnist: install $(FASHION_RUN)/train.done
	$(BIN)/python tools/ship.py bundle $(FASHION_RUN) weights/fashion-mnist --k 100 --limit 1000 --max-codes 30000 --purity 0.9999

$(FASHION_RUN)/train.done:
	$(BIN)/vaegen train $(FASHION) --out $(FASHION_RUN) $(if $(wildcard $(FASHION_RUN)/checkpoint.pt),--resume,)
	touch $@

# The shipped emoji model: the default colour recipe, `vaegen train --dataset <folder> --channels 3` as any
# user runs it (about 25 min on 2 CPU cores; resumed if interrupted), then shipped under the folder's name with
# its designs' licences on the card, judged by weights/judges/emoji (make judges).
EMOJI_RUN ?= runs/weights-emoji
weights-emoji: install $(EMOJI_RUN)/train.done
	$(BIN)/python tools/ship.py bundle $(EMOJI_RUN) weights/emoji --folder $(EMOJI) --k 100 --components 100 \
		--class-components 5

$(EMOJI_RUN)/train.done:
	$(BIN)/vaegen train --dataset $(EMOJI) --channels 3 --threads 2 --out $(EMOJI_RUN) \
		$(if $(wildcard $(EMOJI_RUN)/checkpoint.pt),--resume,)
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
