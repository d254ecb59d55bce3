# The two commands the README starts with. Both create the virtual environment when it is missing
# or older than pyproject.toml or a lock file in requirements/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test test-fast rules lint lock clean bench-ehr

# Authentication is on: the CDS Hooks sandbox is trusted (or TRUST=your-trust.yaml), and calls must be
# addressed to PUBLIC_URL. The playground and the feedback report pages are on, for local use, and FHIR
# servers on loopback or private addresses may be fetched from (a local FHIR server; the service says so
# loudly at start-up). Never in production: docs/security.md.
# The port and the public URL tokens are checked against (aud) move together: `make serve PORT=9000` or
# `CDS_PORT=9000 make serve`; a public URL given explicitly (PUBLIC_URL=... or CDS_PUBLIC_URL) wins. The
# `cds-service client` commands default to the same URL by the same rule (cds_service/config.py).
TRUST      ?= docs/trust/cds-hooks-sandbox.yaml
PORT       ?= $(or $(CDS_PORT),8080)
PUBLIC_URL ?= $(or $(CDS_PUBLIC_URL),http://127.0.0.1:$(PORT))

serve: $(STAMP)
	CDS_FETCH_ALLOW_PRIVATE=1 $(BIN)/cds-service serve --trust $(TRUST) --port $(PORT) --public-url $(PUBLIC_URL) --playground --report-page

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: everything but servers, processes, fault injection, fuzzing and the browser
# (markers in tests/markers.py). `make test` runs everything; CI runs `make test`.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

# After a rule change: lint, run the cases, regenerate every file made from rules/.
rules: $(STAMP)
	$(BIN)/cds-service rules lint
	$(BIN)/cds-service rules test
	$(BIN)/cds-service rules regen

# W1 as an EHR calls it, beside an empty FastAPI app and HealthChain (docs/performance.md); about 10
# minutes, more on a busy machine. Needs wrk (apt-get install wrk); installs HealthChain into a bench-only
# environment under ~/.cache on first use. Prints figures, asserts nothing.
bench-ehr: $(STAMP)
	$(BIN)/python bench/ehr.py $(BENCH_ARGS)

# The pages' end-to-end tests drive Debian's Chromium through Playwright (which never downloads a
# browser here). A fresh machine has none, so the test set-up installs it: as root, or through sudo.
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# The locked sets (`make lock`), every file checked against its hash. The build set (pip, setuptools,
# wheel) goes in first, so that durable-rules' sdist and this project build on locked tools without
# build isolation, which would fetch unlocked ones. --no-deps: the lock is the whole set, resolved
# already; `pip check` says if it is not. The project itself, editable, is the one thing without a hash.
LOCKS := requirements/build.txt requirements/runtime.txt requirements/test.txt

$(STAMP): pyproject.toml $(LOCKS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else "Python 3.11 or 3.12 is needed (durable-rules does not import on 3.13): set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --no-build-isolation -r requirements/test.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Regenerates the lock files after a change to pyproject.toml or requirements/build.in, keeping every pin
# that still fits. LOCK_ARGS=--upgrade moves them all, LOCK_ARGS='--upgrade-package NAME' one. pip-compile
# runs from a throwaway venv: a tool for this target only, never needed to install. It resolves for the
# Python running it: use 3.11, the oldest supported (the hashes cover every file of each version, so the
# lock installs on 3.11 and 3.12, x86_64 and aarch64 alike).
PIP_TOOLS  := pip-tools==7.7.0
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "lock with Python 3.11: set PYTHON=python3.11")'
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT \
	&& $(PYTHON) -m venv "$$tmp" && "$$tmp/bin/python" -m pip install --quiet '$(PIP_TOOLS)' \
	&& export CUSTOM_COMPILE_COMMAND='make lock' \
	&& "$$tmp/bin/pip-compile" $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements/build.txt requirements/build.in \
	&& "$$tmp/bin/pip-compile" $(LOCK_FLAGS) $(LOCK_ARGS) -c requirements/build.txt \
	   -o requirements/runtime.txt pyproject.toml \
	&& "$$tmp/bin/pip-compile" $(LOCK_FLAGS) $(LOCK_ARGS) -c requirements/build.txt -c requirements/runtime.txt \
	   --extra test -o requirements/test.txt pyproject.toml

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
