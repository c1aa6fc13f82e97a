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

.PHONY: demo test system venv kernels bench-kernels lint mutate clean

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
	$(PY) -m pytest

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
	rm -rf .stamps .venv runs build mutants *.egg-info
