# The one entry point: `make run`, `make test`, `make unit`, `make lint`, `make bench`,
# `make chaos`, `make schemas`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test unit lint schemas bench chaos setup clean dashboards prometheus-tools node-subscriber \
	browser-tools connector-dist

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,embedded]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	exec $(BIN)/python -m services.entrypoints.run

test: $(STAMP) prometheus-tools node-subscriber browser-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The pure and fake-backed tests: no broker, no Postgres; promtool is the one tool.
unit: $(STAMP) prometheus-tools
	$(BIN)/python -m pytest -m "not integration" -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/python -m events.schemagen
	$(BIN)/python -m events.catalogue_schemagen
	$(BIN)/python -m events.measures_table

clean:
	rm -rf $(VENV) .redline .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# The connector as its own distribution (distributions/redline-connector): the wheel a utility
# or bank installs with `pip install`, into build/connector-dist/.
connector-dist: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps -w build/connector-dist distributions/redline-connector
	@ls build/connector-dist/redline_connector-*.whl

# The fault suite: faults injected while cases flow; fails on any loss or double effect.
# CHAOS_PLAN=small is the short form `make test` also runs. Then the attacks (issue #18).
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos
	# Then every attack of the README's security section, by the command it names as proof.
	$(BIN)/python -m tests.chaos.attacks


# Regenerate what deploy/ derives from the catalogue and the topics: Grafana dashboards,
# the Compose file and its Prometheus targets, Kubernetes manifests and Strimzi topics.
dashboards: $(STAMP)
	$(BIN)/python -m deploy.generate

# promtool (Debian's `prometheus` package), which tests/unit/test_promtool.py runs. Where
# make runs as root (CI, a fresh container) the package is installed, Prometheus with it
# for `make run`; elsewhere, never through sudo: the package is downloaded (apt-get
# download needs no root) and promtool alone unpacked into the virtualenv.
prometheus-tools: $(STAMP)
	@command -v promtool >/dev/null 2>&1 || test -x $(BIN)/promtool || { \
		if [ "$$(id -u)" -eq 0 ]; then \
			apt-get update && \
			env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; \
		else \
			rm -rf $(VENV)/promtool-download && mkdir $(VENV)/promtool-download && \
			(cd $(VENV)/promtool-download && apt-get download prometheus && \
				dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool > promtool) && \
			install -m 755 $(VENV)/promtool-download/promtool $(BIN)/promtool && \
			rm -rf $(VENV)/promtool-download; \
		fi; \
	}
	@$$(command -v promtool || echo $(BIN)/promtool) --version 2>&1 | head -n 1

# chromium (Debian's package), which tests/integration/test_pages_offline.py runs headless
# to see each page as a person would, with no outside network.
browser-tools:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	}
	@chromium --version 2>/dev/null | head -n 1

# The Node subscriber's dependencies (kafkajs, yaml), exactly as its package-lock.json pins
# them: tests/integration/test_node_subscriber.py runs it beside the Python connector.
# Node and npm come with the machine's image; Debian's packages stand in where missing.
NODE_SUBSCRIBER := connectors/node-subscriber
NODE_MODULES := $(NODE_SUBSCRIBER)/node_modules/.package-lock.json

node-subscriber: $(NODE_MODULES)

$(NODE_MODULES): $(NODE_SUBSCRIBER)/package.json $(NODE_SUBSCRIBER)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm; \
	}
	npm ci --prefix $(NODE_SUBSCRIBER) --no-audit --no-fund
	touch $@
