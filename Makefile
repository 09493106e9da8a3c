# hubasync: make demo | make test | make unit | make e2e | make bench | make pyz
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check unit e2e coverage bench pyz clean

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

# The fast tests: everything but the end-to-end runs (tests/e2e) and the simulator's own tests
# (tests/sim), which start many processes and servers.
unit: $(STAMP)
	@command -v rsyslogd >/dev/null 2>&1 || echo "make unit: rsyslog is not installed: the delivery tests against it are skipped (apt-get install rsyslog rsyslog-relp rsyslog-openssl)"
	$(VPY) -m pytest -q --ignore=tests/e2e --ignore=tests/sim

# The end-to-end runs against the simulator over real sockets, and the simulator's own tests.
e2e: $(STAMP)
	$(VPY) -m pytest -q --durations=8 tests/e2e tests/sim

# The orchestration, covered by the tests that open no socket (tests/core), at least 80%.
ORCHESTRATION := core.job core.cursor core.stalls run.pipeline run.resumable run.driving run.stopping \
	run.delivering \
	transport.session transport.body cli.download service.scheduler
coverage: $(STAMP)
	$(VPY) -m pytest -q -p no:cacheprovider tests/core $(ORCHESTRATION:%=--cov=hubasync.%) \
		--cov-report=term --cov-fail-under=80

# Everything: the checks, every test, the coverage of the orchestration (6 to 10 min on 2 cores).
test: check unit e2e coverage

bench: $(STAMP)
	$(VPY) bench/run.py
	$(VPY) bench/delivery_run.py

pyz:
	$(PYTHON) tools/build_pyz.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
