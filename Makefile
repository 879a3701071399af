# geo — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TEST_WORKERS ?= 2
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt geo/api/*.c | cksum | cut -d' ' -f1)

.PHONY: demo test install system-deps lock clean-demo

# Everything the project needs, from the project's own files.
install: system-deps $(STAMP)

system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml constraints.txt $(wildcard geo/api/*.c)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -c constraints.txt -e ".[dashboard,scale,dev,bench]"
	@rm -f $(VENV)/.installed-*; touch $@

# Start PostGIS, load the synthetic demo district, partition, serve API + dashboard.
demo: install
	@$(BIN)/geo demo

# The test suite against a real PostGIS the tests start themselves.
test: install
	@$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup

# Re-pin every dependency (run after changing pyproject.toml, commit constraints.txt).
lock:
	@$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
