# The two commands the README starts with. Both create the virtual environment when it is missing
# or older than pyproject.toml / constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test lint clean

# Authentication is on: the CDS Hooks sandbox is trusted (or TRUST=your-trust.yaml), and calls must be
# addressed to PUBLIC_URL. The playground and the feedback report pages are on, for local use, and FHIR
# servers on loopback or private addresses may be fetched from (a local FHIR server; the service says so
# loudly at start-up). Never in production: docs/security.md.
TRUST      ?= docs/trust/cds-hooks-sandbox.yaml
PUBLIC_URL ?= http://127.0.0.1:8080

serve: $(STAMP)
	CDS_FETCH_ALLOW_PRIVATE=1 $(BIN)/cds-service serve --trust $(TRUST) --public-url $(PUBLIC_URL) --playground --report-page

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
