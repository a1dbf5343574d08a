# One command runs the main job, one runs the tests; both set themselves up.
SHELL := /bin/bash
VENV ?= .venv
DATA ?= var/sample
OUTPUT ?= var/run
PIP_VERSION := 26.3
# The TFX 1.16 stack installs on Python 3.10 only; find one even without pyenv shims on PATH.
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: install install-scale run test test-fast lint sample bench bench-refresh bench-serving bench-batch bench-scale clean
ANIME_SRC ?= ../shared/data/anime/anime.zip
LASTFM_SRC ?= ../shared/data/lastfm/hetrec2011-lastfm-2k.zip

install: $(STAMP)

# Reinstalls only when the lock file or setup.py changed.
$(STAMP): requirements.lock setup.py
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (the TFX 1.16 stack needs it)" >&2; exit 1; }
	$(PYTHON310) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

sample: $(DATA)/historical_data.csv

$(DATA)/historical_data.csv: | $(STAMP)
	$(BIN)/influencer-recs generate --out $(DATA)

# Exit code 0: pushed; 3: trained but not blessed (nothing pushed); 2: bad input (README: What you see).
run: $(STAMP) sample
	@$(BIN)/influencer-recs run --data $(DATA) --output $(OUTPUT); rc=$$?; \
	case $$rc in 0) ;; 3) echo "make run: the model was not blessed, so nothing was pushed (exit code 3)" >&2 ;; \
	2) echo "make run: bad input or options (exit code 2)" >&2 ;; *) echo "make run: the run failed (exit code $$rc)" >&2 ;; esac; exit $$rc

# Every test: the fast unit tests and the end-to-end ones sharing one pipeline run (pytest.ini: markers).
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# The unit tests alone (no pipeline run): about a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e" tests

# The layering of the packages (.importlinter; README: Layout).
lint: $(STAMP)
	$(BIN)/lint-imports

# Benchmarks print their numbers; MARKDOWN=BENCHMARKS.md also writes them into that file's section.
# Quality benchmark on both real datasets (anime, Last.fm): 3 training seeds each and the baselines (docs/benchmark.md).
bench: $(STAMP)
	test -f var/anime/historical_data.csv || $(BIN)/influencer-recs convert-anime --src $(ANIME_SRC) --out var/anime
	test -f var/lastfm/historical_data.csv || $(BIN)/influencer-recs convert-lastfm --src $(LASTFM_SRC) --out var/lastfm
	rm -rf var/bench
	$(BIN)/influencer-recs benchmark --name anime --data var/anime --output var/bench/anime $(if $(MARKDOWN),--markdown $(MARKDOWN))
	$(BIN)/influencer-recs benchmark --name lastfm --data var/lastfm --output var/bench/lastfm $(if $(MARKDOWN),--markdown $(MARKDOWN))

# New influencers by refresh-catalog against the same ones trained in: 5% of the anime catalog held out (two pipeline runs).
bench-refresh: $(STAMP)
	test -f var/anime/historical_data.csv || $(BIN)/influencer-recs convert-anime --src $(ANIME_SRC) --out var/anime
	rm -rf var/bench-refresh
	$(BIN)/influencer-recs refresh-benchmark --data var/anime --output var/bench-refresh $(if $(MARKDOWN),--markdown $(MARKDOWN))

# REST serving latency (stand-in brute force vs ScaNN vs in-process), 30 s per level; needs a pushed model (make run).
bench-serving: $(STAMP)
	$(BIN)/influencer-recs bench-serving --model-base-path $(OUTPUT)/serving/influencer_recs $(if $(MARKDOWN),--markdown $(MARKDOWN))

# Batch scoring of every owner of $(DATA) on the DirectRunner (in one process, on 2 workers) and on Dask (a
# LocalCluster of 2 workers); needs a pushed model (make run; or OUTPUT=... DATA=... of another run).
bench-batch: $(STAMP)
	$(BIN)/influencer-recs bench-batch --model $(OUTPUT)/serving/influencer_recs --owners $(DATA) --output var/bench-batch $(if $(MARKDOWN),--markdown $(MARKDOWN))

# Scale benchmark (issue 20's settings): 1M influencers, 200k owners, 10M history rows under var/scale, after
# pipeline runs at 1M and 3M rows with the same catalog and owners (how time and memory grow with the rows).
# Long: the 1M-row pipeline alone took 32 min on 2 cores (BENCHMARKS, "Scale").
bench-scale: install-scale
	rm -rf var/scale/run var/scale/rows_*/run var/scale/batch_scores_*
	$(BIN)/influencer-recs scale-benchmark --data var/scale/data --output var/scale \
		--influencers 1000000 --owners 200000 --interactions 10000000 --row-ladder 1000000 3000000 --epochs 2 $(if $(MARKDOWN),--markdown $(MARKDOWN))

# The scale extra: SANSA, the baseline at 1M items; scikit-sparse builds against SuiteSparse (Debian: apt-get install libsuitesparse-dev).
install-scale: $(STAMP)
	@test -e /usr/include/suitesparse/cholmod.h || { echo "install-scale: SuiteSparse's headers are missing (Debian: apt-get install libsuitesparse-dev)" >&2; exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[scale]'

clean:
	rm -rf var
