# QMS: `make run` serves the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q --disable-pip-version-check
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

PROD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/qms
PROD_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: install install-dev browser nginx wrk redis-sentinel gettext messages run run-prod test lint bench screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the browser tests (Playwright drives it; browsers cannot be downloaded here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# GNU gettext, to rebuild the translations (the compiled .mo files are committed: `make run` needs none of this).
gettext:
	@command -v msgfmt >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext; }

messages: install gettext
	$(BIN)/python manage.py makemessages -l de -i ".venv/*" -i "tests/*" -i "bench/*" -i "staticfiles/*" -i "var/*"
	$(BIN)/python manage.py makemessages -d djangojs -l de -i ".venv/*" -i "tests/*" -i "staticfiles/*" -i "var/*"
	$(BIN)/python manage.py compilemessages -l de -i .venv

run: install
	$(BIN)/python manage.py collectstatic --noinput -v0  # hashed, gzipped, cached for good (WhiteNoise)
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo
	exec $(BIN)/python manage.py serve

# nginx, in front of the production topology (`make run-prod`) and for bench/arrival.py.
nginx:
	@command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

# Debian's redis-sentinel (and redis-server, redis-cli): the failover and Redis Cluster tests start nodes of their own.
redis-sentinel:
	@command -v redis-sentinel >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-sentinel; }

# wrk, the HTTP load generator of bench/http_path.py.
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# Production topology on this machine: PostgreSQL, Redis, nginx on :8080 (static files; /ws/ to 2 Daphne,
# the rest to gunicorn), a Celery worker, beat (Procfile).
run-prod: install nginx
	mkdir -p var
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python deploy/local_nginx.py var/nginx 8080 8000 8001 8002 $(CURDIR)/staticfiles
	rm -rf var/prometheus && mkdir var/prometheus  # /metrics adds up every process's files: start from none
	test -s var/signing-key.pem || $(BIN)/python -c "from queues.tokens import generate_private_pem as g; print(g(), end='')" > var/signing-key.pem
	psql "$(dir $(PROD_DATABASE_URL))postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$(notdir $(PROD_DATABASE_URL))'" | grep -q 1 \
	  || psql "$(dir $(PROD_DATABASE_URL))postgres" -c "CREATE DATABASE $(notdir $(PROD_DATABASE_URL))"
	DATABASE_URL=$(PROD_DATABASE_URL) QMS_REDIS_URL=$(PROD_REDIS_URL) $(BIN)/python manage.py migrate --noinput -v0
	DATABASE_URL=$(PROD_DATABASE_URL) QMS_REDIS_URL=$(PROD_REDIS_URL) PORT=8080 $(BIN)/python manage.py seed_demo
	DATABASE_URL=$(PROD_DATABASE_URL) QMS_REDIS_URL=$(PROD_REDIS_URL) QMS_SIGNING_KEY_FILE=var/signing-key.pem \
	  PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/prometheus exec $(BIN)/honcho start -f Procfile

lint: install-dev
	$(BIN)/ruff check .

# Each run has a test database of its own (two runs on one machine do not drop each other's).
test: install-dev browser gettext nginx redis-sentinel lint
	DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_POOL=0 QMS_TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  DJANGO_TEST_DATABASE_NAME=test_qms_$$$$ $(BIN)/pytest

# Benchmarks (results in docs/PERFORMANCE.md); BENCH_SCALE=full runs the full-size scenarios.
bench: install-dev nginx wrk
	QMS_BENCH_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/store_scale.py $(if $(filter full,$(BENCH_SCALE)),,--sizes 1000 100000 --repeat 2)
	QMS_BENCH_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/broadcast.py $(if $(filter full,$(BENCH_SCALE)),,--sizes 1000 10000 --repeat 3)
	$(BIN)/python bench/load.py $(if $(filter full,$(BENCH_SCALE)),--fans 10000,--fans 1000 --repeat 2)
	$(BIN)/python bench/verify_path.py $(if $(filter full,$(BENCH_SCALE)),,--admissions 1000 --repeat 2 --duration 4)
	$(BIN)/python bench/embedded_storm.py --rate 400 --seconds 5 $(if $(filter full,$(BENCH_SCALE)),--repeat 3,--repeat 2)
	$(BIN)/python bench/login.py
	$(BIN)/python bench/eta_accuracy.py
	$(BIN)/python bench/http_path.py $(if $(filter full,$(BENCH_SCALE)),,--repeat 2 --duration 3)
	$(BIN)/python bench/arrival.py $(if $(filter full,$(BENCH_SCALE)),,--repeat 1)
	$(BIN)/python bench/gate.py $(if $(filter full,$(BENCH_SCALE)),,--repeat 2 --duration 3)

screenshots: install-dev browser
	$(BIN)/python bench/screenshots.py
