# Two set-up commands: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
export OMNI_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export GRPC_VERBOSITY ?= ERROR

.PHONY: run test faults lint typecheck secrets audit rules unit bench lock clean gmp image image-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3

LOCK := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock

# Every third-party file is checked against requirements.lock (pip --require-hashes); the project
# itself is then installed editable with the build backend (hatchling + editables) from that same lock, so nothing
# unhashed is fetched. One lock holds the runtime, dev and bench sets alike; requirements-runtime.lock
# is its runtime part (same hashes), all `make run` installs: no lint, type or test tool.
$(RUN_STAMP): $(BIN)/python pyproject.toml $(RUNTIME_LOCK)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(RUNTIME_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

$(STAMP): $(RUN_STAMP) $(LOCK)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip check
	touch $@

$(DEV_STAMP): $(STAMP)
	touch $@

## make run: the service with everything embedded (GSM emulator, SQLite, dev tokens) on 127.0.0.1:8080
## (PORT=8081 for another port); installs the runtime only
run: $(RUN_STAMP)
	$(BIN)/omni-secrets dev $(if $(PORT),--port $(PORT))

## make test: lint, types, secret scan, dependency audit, alert rules, then the whole test suite
test: $(DEV_STAMP) lint typecheck secrets audit rules
	$(BIN)/pytest

## make faults: the fault suite (contract section 18): two serve replicas on PostgreSQL behind a
## TCP proxy, the GSM and Pub/Sub emulators, faketime, kill -9, SIGTERM, wrk; at most 5 minutes
faults: $(DEV_STAMP)
	timeout 300 $(BIN)/pytest tests/faults -m faults -p no:cacheprovider

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(DEV_STAMP)
	$(BIN)/mypy src scripts/audit_dependencies.py scripts/generate_gmp.py

secrets: $(DEV_STAMP)
	git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline

audit: $(DEV_STAMP)
	$(BIN)/python scripts/audit_dependencies.py

## make rules: promtool check + unit tests of deploy/prometheus (skipped without promtool, except in CI)
PROMTOOL ?= promtool
RULES := deploy/prometheus/omni-secrets.rules.yml
RULES_TESTS := deploy/prometheus/omni-secrets.rules.test.yml deploy/prometheus/omni-secrets.rules.long.test.yml
rules:
	@if command -v $(PROMTOOL) >/dev/null 2>&1; then \
	  $(PROMTOOL) check rules $(RULES) && $(PROMTOOL) test rules $(RULES_TESTS); \
	elif [ "$${CI:-}" = "true" ]; then \
	  echo "rules: FAILED: promtool is not on PATH and CI=true requires it (.ci/run unpacks Debian's prometheus package)" >&2; exit 1; \
	else \
	  echo "rules: SKIPPED: promtool is not on PATH, alert rules NOT checked (apt-get install prometheus, or run .ci/run)"; \
	fi

## make gmp: regenerate deploy/k8s/base/monitoring/ (PodMonitoring, Rules) from deploy/prometheus/
gmp: $(DEV_STAMP)
	$(BIN)/python scripts/generate_gmp.py

## make image: the container image (docker, else podman); IMAGE=name:tag, BASE_IMAGE=... to override
IMAGE ?= omni-secrets:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_BUILDER ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)
image:
	@test -n "$(IMAGE_BUILDER)" || { echo "image: neither docker nor podman is on PATH" >&2; exit 1; }
	$(IMAGE_BUILDER) build $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) -t $(IMAGE) .

## make image-test: build with podman from a local mmdebstrap base and check inside (opt-in: ~3 min cold)
image-test:
	scripts/image_test.sh

unit: $(DEV_STAMP)
	$(BIN)/pytest tests/unit

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

## make lock: after changing pyproject.toml, re-resolve into constraints.txt and requirements.lock
lock: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]' hatchling==1.33.0 editables==0.6
	{ echo "# The whole resolved dependency set, pinned (pip freeze of .venv with [dev,bench] and the build backend). Regenerate with 'make lock'."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^omni-secrets'; } > constraints.txt
	$(BIN)/python scripts/hash_lock.py --constraints constraints.txt --output $(LOCK)
	$(BIN)/python scripts/runtime_lock.py --lock $(LOCK) --output $(RUNTIME_LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
