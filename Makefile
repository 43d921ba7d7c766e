# studyserver — `make demo` runs it on the embedded defaults, `make test` runs every test
# against real PostgreSQL and Redis. See README.md.

# Settings from the environment or the command line; unset, empty or blank means the default (as in the app).
default = $(or $(strip $(1)),$(2))
override PYTHON := $(call default,$(PYTHON),python3)
override HOST := $(call default,$(HOST),127.0.0.1)
override PORT := $(call default,$(PORT),8000)
override TEST_DATABASE_URL := $(call default,$(TEST_DATABASE_URL),postgres://postgres@127.0.0.1:5432/studyserver)
override TEST_REDIS_URL := $(call default,$(TEST_REDIS_URL),redis://127.0.0.1:6379/1)
override PYTEST_WORKERS := $(call default,$(PYTEST_WORKERS),auto)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help demo test venv services lint bench clean
.DEFAULT_GOAL := help

help:
	@echo "make demo      venv, install, migrate, admin user, demo data, server on http://$(HOST):$(PORT)"
	@echo "make test      ruff, migrations check, OpenAPI validation, the suite on PostgreSQL + Redis, then SQLite"
	@echo "make services  start (or install) PostgreSQL, Redis, Tesseract, Chromium and CJK fonts"
	@echo "make lint      ruff"
	@echo "make bench     the benchmarks (bench/README.md)"
	@echo "make clean     remove the venv, the demo database and uploads"

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	@if [ -n "$$DATABASE_URL$$CELERY_BROKER_URL" ]; then \
		echo "make demo: your shell sets DATABASE_URL or CELERY_BROKER_URL; the demo uses them (unset them for SQLite and eager tasks)"; fi
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py ensure_admin
	DEBUG=true LOG_LEVEL=WARNING $(PY) manage.py seed_demo  # its eager tasks log at INFO: keep the login above in view
	@echo ""
	@echo "  Admin (login above):         http://$(HOST):$(PORT)/admin/"
	@echo "  Card review queue:           http://$(HOST):$(PORT)/admin/study/memocard/review/"
	@echo "  API docs (Swagger UI):       http://$(HOST):$(PORT)/api/docs"
	@if [ -n "$$VIEWER_SYNC_TOKEN" ]; then echo "  Viewer channel:              on (Authorization: Bearer <your VIEWER_SYNC_TOKEN>)"; \
		else echo "  Viewer channel:              off (503); VIEWER_SYNC_TOKEN=demo make demo, then Authorization: Bearer demo"; fi
	@echo ""
	DEBUG=true $(PY) manage.py runserver $(HOST):$(PORT)

services:
	bash scripts/ensure_services.sh

lint: venv
	$(VENV)/bin/ruff check .

test: venv services
	$(VENV)/bin/ruff check .
	# A CELERY_BROKER_URL of the shell would send every test's tasks to a broker with no worker: the tests that
	# need one bring their own.
	env -u CELERY_BROKER_URL DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	env -u CELERY_BROKER_URL DEBUG=true $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	env -u CELERY_BROKER_URL DEBUG=true DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile
	# Again on SQLite, the demo's database, without what needs PostgreSQL itself (marker `postgresql`), a
	# worker or a browser.
	env -u CELERY_BROKER_URL DEBUG=true DATABASE_URL=sqlite:///$${TMPDIR:-/tmp}/studyserver-test-$$$$.sqlite3 \
		REDIS_URL=$(TEST_REDIS_URL) \
		$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not postgresql and not worker and not browser"

bench: venv services
	DEBUG=false bash bench/run.sh

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm media staticfiles artifacts
