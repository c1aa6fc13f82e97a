# Two entry points (see README): `make demo` and `make test`. Each installs what it needs on a fresh
# Debian machine (as root, no GPU) and is fast to re-run: every step is skipped once done.
SHELL := /bin/bash
PY := .venv/bin/python
APT_PACKAGES := gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
	gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 libgirepository1.0-dev libcairo2-dev \
	pkg-config python3-dev gcc gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp shellcheck
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NVCC := $(shell command -v nvcc 2>/dev/null)

.PHONY: demo test test-py38 system venv kernels bench-kernels lint mutate clean

.stamps/system:
	@mkdir -p .stamps
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

.stamps/venv: pyproject.toml .stamps/system
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# JetPack 5's Python: the runtime (edge run/bench/info/doctor/build) is tested on 3.8 too, in .venv38, where
# a working python3.8 is found (PATH or pyenv). There `pip install -e .` installs the runtime only (no torch).
PY38 := $(shell for p in python3.8 $(HOME)/.pyenv/versions/3.8*/bin/python3.8; do \
	$$p -V >/dev/null 2>&1 && { command -v $$p; break; }; done)

.stamps/venv38: pyproject.toml .stamps/system
	@test -x .venv38/bin/python || $(PY38) -m venv .venv38
	.venv38/bin/python -m pip install -q --upgrade pip
	.venv38/bin/python -m pip install -q -e '.[dev]'
	@touch $@

system: .stamps/system
venv: .stamps/venv

# Compile the CUDA kernels for every arch the local nvcc supports; skipped (with a notice) without nvcc.
kernels: .stamps/venv
	$(PY) -m kernels.build

# On a GPU machine (CUDA build of torch): times the kernels against their baselines -> docs/results/kernels.md
bench-kernels: kernels
	$(PY) -m benchmarks.kernels

lint: .stamps/venv
	.venv/bin/ruff check edge train export kernels tests benchmarks
	.venv/bin/lint-imports
	shellcheck jetson/*.sh

test: .stamps/venv
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory kernels
	$(MAKE) --no-print-directory test-py38
	$(PY) -m pytest

# The runtime's own tests on Python 3.8; tests/test_jetpack5_runtime.py then runs the 3.8 `edge` on a real
# bundle next to the main one. Without a python3.8 both are skipped, with that reason.
test-py38:
ifeq ($(PY38),)
	@echo "python3.8 not found: the runtime's Python 3.8 (JetPack 5) tests are skipped"
else
	@$(MAKE) --no-print-directory .stamps/venv38
	.venv38/bin/python -m pytest tests/edge tests/export/test_sparsity.py -p no:cacheprovider
endif

# Mutation testing (docs/testing.md): slow, so not part of `make test`. mutmut keeps the verdicts of
# unchanged code in mutants/, so a re-run only tests what changed, then re-checks the survivors (tests may
# have been added since); the report fails on a module with more than 10% surviving mutants or a survivor
# docs/testing.md does not explain.
# Most pipeline tests wait on real-time streams rather than the CPU, so more workers than cores pay off.
MUTATE_JOBS ?= 3
mutate: kernels
	$(PY) -m pip install -q -e '.[mutation]'
	@# mutmut picks the tests to run for a mutant from stats of an earlier run: tests added since would never
	@# be run against old mutants, so the stats are always collected afresh
	rm -f mutants/mutmut-stats.json
	EDGE_KERNELS_BUILD=$(CURDIR)/kernels/_build $(PY) -m mutmut run --max-children $(MUTATE_JOBS)
	@survivors=$$($(PY) -m benchmarks.mutation --list-survivors); if [ -n "$$survivors" ]; then \
		echo "re-checking $$(echo $$survivors | wc -w) survivors against the current tests"; \
		EDGE_KERNELS_BUILD=$(CURDIR)/kernels/_build $(PY) -m mutmut run --max-children $(MUTATE_JOBS) $$survivors; fi
	$(PY) -m benchmarks.mutation

demo: .stamps/venv
	$(PY) -m edge.demo --out runs/demo

clean:
	rm -rf .stamps .venv .venv38 runs build mutants *.egg-info
