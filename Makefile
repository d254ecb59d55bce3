# The two commands the README starts with. Both create the virtual environment when it is missing
# or older than pyproject.toml / constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test test-fast rules lint clean

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

# The pages' end-to-end tests drive Debian's Chromium through Playwright (which never downloads a
# browser here). A fresh machine has none, so the test set-up installs it: as root, or through sudo.
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else "Python 3.11 or 3.12 is needed (durable-rules does not import on 3.13): set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
