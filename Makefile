# hubasync: make demo | make test | make bench | make pyz
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check unit coverage bench pyz clean

demo:
	@$(PYTHON) tools/demo.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

check: $(STAMP)
	$(VENV)/bin/ruff check src tests bench tools async.py
	$(VENV)/bin/mypy
	$(VENV)/bin/vermin --no-tips --violations -t=3.9- --eval-annotations src/hubasync async.py

unit: $(STAMP)
	@command -v rsyslogd >/dev/null 2>&1 || echo "make unit: rsyslog is not installed: the delivery tests against it are skipped (apt-get install rsyslog rsyslog-relp rsyslog-openssl)"
	$(VPY) -m pytest -q

# The orchestration, covered by the tests that open no socket (tests/core), at least 80%.
ORCHESTRATION := job cursor pipeline session body stalls destination download
coverage: $(STAMP)
	$(VPY) -m pytest -q -p no:cacheprovider tests/core $(ORCHESTRATION:%=--cov=hubasync.%) \
		--cov-report=term --cov-fail-under=80

test: check unit coverage

bench: $(STAMP)
	$(VPY) bench/run.py

pyz:
	$(PYTHON) tools/build_pyz.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
