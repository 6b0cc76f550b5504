# The two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= .data
ADMIN_KEY ?= gv_local_dev_admin_key_change_me_0001
PYTEST_ARGS ?=
# Every test starts dozens of Python processes (API, workers, simulator, CLI commands).
# Without bytecode each one compiles every module it imports from source, ~2 s of CPU a
# start: the installs compile site-packages once (--compile-bytecode), and our own modules
# are written to __pycache__ on first import even where the environment says otherwise (CI
# sets PYTHONDONTWRITEBYTECODE=1).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run dev test deps lint typecheck unit integration chaos fuzz bench clean lock policy-deps policy

deps: $(STAMP)
# uv (pinned in pyproject.toml) installs the rest in a fraction of pip's time: this runs
# on every fresh clone, CI's included.
$(STAMP): pyproject.toml deploy/install-deps.sh
	bash deploy/install-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet "$$(grep -o '"uv==[^"]*"' pyproject.toml | tr -d '"')"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[test]"
	touch $(STAMP)

## make run: the embedded default (SQLite, private redis-server, local disk, simulator),
## then a text-to-video and an image-to-video demo; prints where the two MP4s are.
run: deps
	@bash deploy/run-demo.sh "$(HOST)" "$(PORT)" "$(DATA_DIR)" "$(ADMIN_KEY)"

## make dev: the same service in the foreground until Ctrl-C.
dev: deps
	GOOGLE_VIDEO_ADMIN_KEY=$(ADMIN_KEY) $(BIN)/google-video dev --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

## make lock: recompile the hash-pinned lock files after a dependency change (needs PyPI):
## requirements.lock (pyproject.toml's dependencies, what the image installs),
## deploy/requirements-build.lock (its [build-system]) and deploy/requirements-policy.lock
## (deploy/requirements-policy.in). tests/deploy/test_lock.py fails until they agree.
COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock"
lock: deps
	$(COMPILE) pyproject.toml -o requirements.lock
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(COMPILE) - -o deploy/requirements-build.lock
	$(COMPILE) deploy/requirements-policy.in -o deploy/requirements-policy.lock

## make policy-deps: checkov and kubectl in their own venv (their pins clash with ours).
POLICY_VENV := .venv-policy
POLICY_STAMP := $(POLICY_VENV)/.installed
policy-deps: $(POLICY_STAMP)
# Only uv from the main venv is needed (order-only): a pyproject.toml change must not
# rebuild this venv.
$(POLICY_STAMP): deploy/requirements-policy.lock | $(STAMP)
	rm -rf $(POLICY_VENV)
	$(PY) -m venv --without-pip $(POLICY_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(POLICY_VENV)/bin/python --require-hashes \
		-r deploy/requirements-policy.lock
	touch $(POLICY_STAMP)

## make policy: the deploy gate alone (docs/deploy.md): lock files in sync, kubernetes-validate
## (strict) and KEDA's schema on the rendered manifests, checkov, hadolint, the Compose
## schema, the alert rules and the dashboard against the exported metric names.
policy: deps policy-deps
	$(BIN)/pytest -q -p no:cacheprovider tests/deploy $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

typecheck: deps
	$(BIN)/mypy service worker schemas core cli simulator bench

unit: deps
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: deps
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

## make test: lint, types, then every test (real PostgreSQL, Redis, moto S3, simulator)
## in TEST_WORKERS pytest-xdist processes, each with its own private servers; much of a
## test's time is waiting on processes (a 30 s Redis outage, a video's polls), so three
## workers pay off even on CI's two cores (fresh clone: pytest 482 s with two, 360 s with three).
## Tests go out one at a time (loadgroup: each is its own unit), except that a module
## whose tests share a module-scoped fixture (a stack of processes) or an xdist_group
## marker goes out whole; the modules with a `slow` test first, in that order
## (tests/conftest.py, which also makes xdist_group work under pytest 9.2).
TEST_WORKERS ?= 3
## The checks before pytest run side by side (mypy is CPU, a fresh policy venv is network).
test: deps
	$(MAKE) --no-print-directory -j3 lint typecheck policy-deps
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder \
		tests $(PYTEST_ARGS)

## make fuzz: schemathesis against the real API on PostgreSQL for longer than `make test`
## does (FUZZ_SECONDS per run, three runs: admin, admin config, client).
FUZZ_SECONDS ?= 300
FUZZ_EXAMPLES ?= 500
fuzz: deps
	GOOGLE_VIDEO_FUZZ_SECONDS=$(FUZZ_SECONDS) GOOGLE_VIDEO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/pytest -q -p no:cacheprovider -s tests/integration/test_contract.py -k schemathesis

## make bench: the benchmarks (bench/run.py), each figure a ratio against a reference
## measured alternately in the same run; writes bench/results.md (README, "Benchmarks").
bench: deps
	$(BIN)/python -m bench.run

clean:
	rm -rf $(DATA_DIR) .mypy_cache .ruff_cache .pytest_cache $(POLICY_VENV)

## make chaos: the full chaos run (several hundred tasks, killed workers, Redis flush,
## PostgreSQL restart); the short form is part of `make test`.
chaos: deps
	$(BIN)/python -m tests.chaos.run --tasks 300 --workers 3
