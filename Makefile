# Quick start: `make run` (app + workers on http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/easycrm
export PYTHONUNBUFFERED := 1

.PHONY: check-clean run serve test test-sqlite test-integration test-postgres test-browser postgres bench bench-smoke lint setup migrate

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

setup: $(VENV)/.installed

var/secret_key:
	mkdir -p var
	$(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

migrate: setup var/secret_key
	SECRET_KEY=$$(cat var/secret_key) $(PY) manage.py migrate --noinput
	SECRET_KEY=$$(cat var/secret_key) $(PY) manage.py ensure_admin
	SECRET_KEY=$$(cat var/secret_key) $(PY) manage.py collectstatic --noinput --verbosity 0

# Web server and both task clusters in one process group: Ctrl-C stops all of them.
run: migrate
	@echo "Easy CRM on http://127.0.0.1:8000  (Ctrl-C stops the server and the workers)"
	@export SECRET_KEY=$$(cat var/secret_key); trap 'kill 0' INT TERM EXIT; \
	$(PY) manage.py qcluster & \
	Q_CLUSTER_NAME=deepseek $(PY) manage.py qcluster & \
	$(VENV)/bin/gunicorn easycrm.wsgi --bind 127.0.0.1:8000 --workers 2 --threads 4 --access-logfile - & \
	wait

# For a team (docs/deployment.md): the same processes, configured only by the environment (SECRET_KEY,
# ALLOWED_HOSTS, DATABASE_URL, REDIS_URL, S3_*, HTTPS, …); nothing is generated or defaulted here.
# SERVE picks the parts this machine runs, e.g. SERVE=web on web machines, SERVE=deepseek on workers;
# MIGRATE=0 on all machines but one. Ctrl-C (or SIGTERM) stops all of them, and so does the end of any
# one (exiting with its status), so a supervisor restarts the set.
SERVE ?= web default deepseek
MIGRATE ?= 1
BIND ?= 0.0.0.0:8000
serve: SHELL := /bin/bash
serve: setup
	@test -n "$$SECRET_KEY" || { echo "make serve: set SECRET_KEY and the rest of the environment (docs/deployment.md)" >&2; exit 1; }
	@if [ "$(MIGRATE)" = 1 ]; then $(PY) manage.py migrate --noinput; fi
	@$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Easy CRM: $(SERVE)"
	@# Each part in its own session, stopped by a SIGTERM to its leader only: a signal to a whole
	@# qcluster process group kills its sentinel first, and the leader then hangs.
	@pids=; trap 'kill -TERM $$pids 2>/dev/null; wait' INT TERM; \
	for part in $(SERVE); do case $$part in \
	  web) setsid $(VENV)/bin/gunicorn easycrm.wsgi --bind $(BIND) --workers $${WEB_CONCURRENCY:-4} \
	         --threads $${WEB_THREADS:-4} --keep-alive $${WEB_KEEPALIVE:-5} --access-logfile - & ;; \
	  default) setsid $(PY) manage.py qcluster & ;; \
	  deepseek) Q_CLUSTER_NAME=deepseek setsid $(PY) manage.py qcluster & ;; \
	  *) echo "make serve: unknown part '$$part' (web, default, deepseek)" >&2; kill -TERM $$pids 2>/dev/null; exit 2 ;; \
	esac; pids="$$pids $$!"; done; \
	wait -n; status=$$?; kill -TERM $$pids 2>/dev/null; wait; exit $$status

# Lint (ruff format --check + ruff check), the whole suite on SQLite (fast tests, then the integration
# tests), again on PostgreSQL (started here if it is not running), then the browser tests. Those run on SQLite only: what they
# add is the browser, and the PostgreSQL run covers every view and query beneath it.
test: setup lint test-sqlite test-integration test-postgres test-browser bench-smoke check-clean

# On both cores (pytest-xdist): each worker has its own SQLite test database.
TEST_WORKERS ?= 2
test-sqlite: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow and not s3 and not postgres and not browser"

# Real task-queue workers (ORM and Redis brokers, a killed cluster) and a real S3 server (SeaweedFS).
test-integration: setup
	$(PY) -m pytest -q -m "(slow or s3) and not postgres and not browser"

test-postgres: setup postgres
	DATABASE_URL=$(PG_URL) $(PY) -m pytest -q -m "not browser"

# Headless Debian Chromium through Playwright, against gunicorn and both task clusters. A missing
# Chromium fails here, loudly: a skipped browser suite would pass CI without testing anything.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
test-browser: setup
	@test -x "$(CHROMIUM)" || { echo "test-browser: Chromium not found at $(CHROMIUM) (apt-get install -y chromium; .ci/run does)" >&2; exit 1; }
	$(PY) -m pytest -q -m "browser and not postgres"

# A test run must leave the checkout as it found it (uploads go to tmp_path, see conftest.py).
check-clean:
	@left=$$(git ls-files --others --exclude-standard 2>/dev/null; find var/media -type f 2>/dev/null); \
	if [ -n "$$left" ]; then echo "The test run left files behind:" >&2; echo "$$left" | head -20 >&2; exit 1; fi

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL did not start" >&2; exit 1

# REAL_FILES: a folder of real exports to look at by eye (`make bench REAL_FILES=~/exports`); optional.
REAL_FILES ?=
bench: setup postgres
	$(PY) bench/run.py --no-debug
	$(PY) bench/bulk.py
	$(PY) bench/table.py
	$(PY) bench/quality.py $(REAL_FILES)
	$(PY) bench/load.py

# Small sizes of every benchmark, run by `make test` so they cannot rot.
bench-smoke: setup postgres
	$(PY) bench/run.py --quick --no-debug
	$(PY) bench/bulk.py --quick
	$(PY) bench/table.py --quick
	$(PY) bench/quality.py --quick
	$(PY) bench/load.py --quick

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
