# The two promises of the README: `make run` and `make test`, on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
# The token of the gateway `local`'s agent (made on the first run, mode 0600).
LOCAL_TOKEN ?= $(or $(DATA_DIR),$(CURDIR)/var)/local-gateway-token
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := orchestrator.settings

.PHONY: run venv venv-dev migrate test test-unit test-e2e test-faults test-browser screenshots bench bench-quick lint stack-up stack-down clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

migrate: venv
	$(PY) manage.py migrate --noinput

# Web server and the agent of the gateway `local` (a Celery worker with the heartbeat, talking to the web
# through the agent API with its token, on settings with no database and no keys: orchestrator/conf/agent.py);
# Ctrl-C stops both. SQLite and the filesystem broker unless the environment says otherwise.
# Development settings (generated keys in var/, no HTTPS) unless DJANGO_DEBUG is set: the image
# and docker-compose.yml run as production.
run: export DJANGO_DEBUG ?= 1
run: migrate
	$(PY) manage.py ensure_admin
	$(PY) manage.py gateway ensure-local --token-file $(LOCAL_TOKEN)
	@echo "Console on http://$(HOST):$(PORT)/  (gateway local: Docker daemon $${DOCKER_HOST:-unix:///var/run/docker.sock})"
	@trap 'kill 0' INT TERM EXIT; \
	CONSOLE_URL=http://$(HOST):$(PORT) GATEWAY_TOKEN_FILE=$(LOCAL_TOKEN) $(PY) manage.py agent -l info & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload & \
	wait

# The whole suite on the real stack: installs what is missing (as root), then pytest.
# The stack (dockerd, registry, redis, worker) is started and stopped by the test fixtures.
test: venv-dev
	bash tests/stack/install.sh
	DATA_DIR=$(CURDIR)/var/test REQUIRE_E2E=1 HYPOTHESIS_PROFILE=ci \
	  $(PY) -m pytest -p no:cacheprovider --junitxml=var/test/report.xml $(PYTEST_ARGS)

test-unit: venv-dev
	DATA_DIR=$(CURDIR)/var/test $(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: venv-dev
	bash tests/stack/install.sh
	DATA_DIR=$(CURDIR)/var/test $(PY) -m pytest tests/e2e -m "e2e and not faults" $(PYTEST_ARGS)

test-faults: venv-dev
	bash tests/stack/install.sh
	DATA_DIR=$(CURDIR)/var/test $(PY) -m pytest -m faults $(PYTEST_ARGS)

test-browser: venv-dev
	bash tests/stack/install.sh
	DATA_DIR=$(CURDIR)/var/test $(PY) -m pytest tests/browser $(PYTEST_ARGS)

# The README's screenshots (docs/screenshots/), retaken by the browser tests; other runs leave them alone.
screenshots: venv-dev
	bash tests/stack/install.sh
	DATA_DIR=$(CURDIR)/var/test WRITE_SCREENSHOTS=1 $(PY) -m pytest tests/browser $(PYTEST_ARGS)

# Benchmarks on the real stack (bench/): the console against `docker pull`, the progress
# pipeline, status endpoints at scale. Full run -> bench/results/latest.{md,json};
# quick run (what the test suite checks) -> bench/results/quick-latest.{md,json}, not committed.
bench: venv
	bash tests/stack/install.sh
	$(PY) -m bench.run $(BENCH_ARGS)

bench-quick: venv
	bash tests/stack/install.sh
	$(PY) -m bench.run --quick $(BENCH_ARGS)

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

stack-up: venv-dev
	bash tests/stack/install.sh
	$(PY) -m tests.stack up

stack-down:
	$(PY) -m tests.stack down

clean:
	rm -rf var/test .pytest_cache
