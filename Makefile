# make run  - create .venv, install, prepare the database, serve on 127.0.0.1:5000
# make test - install dev dependencies and tools, run the whole suite
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip -q --disable-pip-version-check

.PHONY: run test deps dev-deps node-deps system-deps bench bench-serving soak secret clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.deps: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	touch $@

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-deps: node_modules/.installed

# Debian packages the tests drive: Chromium (login page), wrk (bench) and nginx
# (bench/serving_choice.py's proxy candidate; in /usr/sbin, off a user's PATH).
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v wrk >/dev/null \
	    || ! { command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium wrk nginx >/dev/null; \
	  else \
	    echo "install Debian's chromium, wrk and nginx (sudo apt-get install chromium wrk nginx)"; exit 1; \
	  fi; \
	fi
	@# The cluster suite (tests/cluster): Galera SST by rsync, Redis Sentinel, HAProxy.
	@if ! command -v rsync >/dev/null || ! command -v redis-sentinel >/dev/null || ! command -v haproxy >/dev/null \
	    || [ ! -e /usr/lib/galera/libgalera_smm.so ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync redis-sentinel haproxy galera-4 >/dev/null; \
	  else \
	    echo "install Debian's rsync, redis-sentinel, haproxy and galera-4 (sudo apt-get install ...)"; exit 1; \
	  fi; \
	fi
	@# libmariadb-dev: the bench's DRF peer builds mysqlclient against it (bench/peers/requirements-drf-simplejwt.txt).
	@if ! pkg-config --exists libmariadb 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null; \
	  else \
	    echo "install Debian's libmariadb-dev and pkg-config (sudo apt-get install libmariadb-dev pkg-config)"; exit 1; \
	  fi; \
	fi
	@# The mysql client: tests/test_readme.py runs the README's mysql recipe as written.
	@if ! command -v mysql >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-client-core >/dev/null; \
	  else \
	    echo "install Debian's mariadb-client-core (sudo apt-get install mariadb-client-core)"; exit 1; \
	  fi; \
	fi

# A private .env with a fresh signing secret; never overwrites an existing one.
# APP_ENV=development: `make run` is the way to a working demo (sql/seed.sql's
# users load); a deployment sets APP_ENV=production (README, "Running in production").
.env:
	sed -e "s|^APP_ENV=.*|APP_ENV=development|" \
	    -e "s|^SECRET_KEY=.*|SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')|" \
	    -e "s|^MFA_ENCRYPTION_KEY=.*|MFA_ENCRYPTION_KEY=$$(python3 -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')|" \
	    -e "s|^MYSQL_ROOT_PASSWORD=.*|MYSQL_ROOT_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_hex(24))')|" \
	    -e "s|^MYSQL_PASSWORD=.*|MYSQL_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_hex(24))')|" \
	    .env.example > .env
	@echo "wrote .env (APP_ENV=development) with a new SECRET_KEY, MFA_ENCRYPTION_KEY and MySQL container passwords"

secret:
	@python3 -c 'import secrets; print(secrets.token_urlsafe(48))'

run: deps .env
	$(VENV)/bin/flask --app app bootstrap
	$(PY) -m serving

test: dev-deps node-deps system-deps
	$(PY) -m pytest

bench: dev-deps system-deps
	$(PY) bench/run.py

# Issue 17's serving candidates side by side (docs/performance.md, "Choosing the server"; ~6 min).
bench-serving: dev-deps system-deps
	$(PY) bench/serving_choice.py

soak: dev-deps
	$(PY) bench/soak.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache bench/.venvs
