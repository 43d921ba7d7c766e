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

.PHONY: demo test venv services lint bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py ensure_admin
	DEBUG=true LOG_LEVEL=WARNING $(PY) manage.py seed_demo  # its eager tasks log at INFO: keep the login above in view
	@echo ""
	@echo "  Admin (login above):         http://$(HOST):$(PORT)/admin/"
	@echo "  Card review queue:           http://$(HOST):$(PORT)/admin/study/memocard/review/"
	@echo "  API docs (Swagger UI):       http://$(HOST):$(PORT)/api/docs"
	@echo ""
	DEBUG=true $(PY) manage.py runserver $(HOST):$(PORT)

services:
	bash scripts/ensure_services.sh

lint: venv
	$(VENV)/bin/ruff check .

test: venv services
	$(VENV)/bin/ruff check .
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	DEBUG=true $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	DEBUG=true DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile
	# Again on SQLite, the demo's database, without what needs PostgreSQL itself (marker `postgresql`), a
	# worker or a browser.
	DEBUG=true DATABASE_URL=sqlite:///$${TMPDIR:-/tmp}/studyserver-test-$$$$.sqlite3 REDIS_URL=$(TEST_REDIS_URL) \
		$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not postgresql and not worker and not browser"

bench: venv services
	DEBUG=false bash bench/run.sh

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm media staticfiles artifacts
