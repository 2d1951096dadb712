# Two commands on a fresh machine: `make run` and `make test`. Both depend on `setup`,
# which is idempotent: the virtualenv, the editable install and the jars are made once
# (stamp files), so a second run downloads nothing and works offline.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
JARS := .jars
DEPENDENCY_PLUGIN := org.apache.maven.plugins:maven-dependency-plugin:3.8.1
UV_VERSION := 0.9.30

.PHONY: venv-location setup redis chromium run test unit reliability lint online-store-up online-store-down online-store-status catalog-up catalog-down catalog-status cluster-up cluster-down sql-server connect-server status mlflow-ui serve clean

setup: venv-location $(VENV)/.installed $(JARS)/.fetched $(JARS)/athlete-platform-catalog.jar

# A moved or copied project folder: its venv's scripts still name the old place; rewrite them
# first (offline), before anything runs from the venv (tools/relocate_venv.py).
venv-location:
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed: install python3.11 (with venv and pip)."; exit 1; }
	@$(PYTHON) tools/relocate_venv.py $(VENV)

# uv installs the pinned tree (constraints.txt pins every package) in about 30 s from an empty
# cache, where pip took 2 min 37 s with a warm one; the packages and versions are the same.
# uv reads neither pip.conf nor PIP_* settings (a mirror, find-links, a CA bundle): if it
# cannot install, pip does, as before.
$(VENV)/.installed: pyproject.toml constraints.txt | venv-location
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION) \
	  && $(BIN)/uv pip install --python $(BIN)/python --quiet -c constraints.txt -e '.[dev]' \
	  || { echo "uv could not install the pinned tree (above); installing with pip instead"; \
	       $(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'; }
	@$(PYTHON) tools/relocate_venv.py $(VENV)
	touch $@

$(JARS)/.fetched: conf/jars.pom.xml
	@command -v mvn >/dev/null || { echo "Maven (mvn) is needed once to fetch the jars: apt-get install maven"; exit 1; }
	mkdir -p $(JARS)
	mvn --quiet --batch-mode -f conf/jars.pom.xml $(DEPENDENCY_PLUGIN):copy-dependencies -DoutputDirectory=$(abspath $(JARS))
	touch $@

# The catalog alias plugin (java/), compiled against the Spark jars pyspark ships.
$(JARS)/athlete-platform-catalog.jar: java/io/athleteplatform/catalog/SessionCatalogAlias.java $(VENV)/.installed
	@command -v javac >/dev/null || { echo "A JDK 17 (javac) is needed: apt-get install openjdk-17-jdk-headless"; exit 1; }
	rm -rf $(JARS)/classes && mkdir -p $(JARS)/classes
	javac --release 17 -nowarn -d $(JARS)/classes -cp "$$($(BIN)/python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')/jars/*" $<
	jar cf $@ -C $(JARS)/classes .

# redis-server for the online store's redis backend and its tests: installed from Debian's
# package when missing and this user is root, else the command to run is printed (no stamp
# file: the binary lives outside the project, so its presence is checked each time).
redis:
	@tools/ensure_redis.sh

# A headless Chromium for the report pages' browser check in `make test` (Debian's package,
# installed the same way as redis-server).
chromium:
	@tools/ensure_chromium.sh

run: setup
	$(BIN)/athlete-platform catalog up
	$(BIN)/athlete-platform init
	$(BIN)/athlete-platform run

# Two workers (pytest-xdist), each with its own catalog server, Spark session and temp data
# folder; a module stays on one worker (`--dist loadscope`), so module fixtures are built once.
test: setup redis chromium
	$(BIN)/ruff check src tests jobs dags bench tools
	$(BIN)/pytest -n 2 --dist loadscope --no-loadscope-reorder

# Unit tests only: pure logic and transforms on tiny in-memory DataFrames; no catalog server,
# no Airflow scheduler, no cluster. Two workers: 1 min 30 s for 1,177 tests on an idle 2-core
# machine (2026-12-03; one process took 3 min 51 s for 1,067 tests, over the 3-minute budget).
unit: setup redis chromium
	$(BIN)/pytest -m "not integration and not airflow and not cluster" -n 2 --dist loadscope

# The reliability suite: hostile input, kill -9 sweeps, overlapping runs, 30 simulated days;
# ends with a ledger table (scenario, runs, faults, rows lost, rows duplicated, crashes, time).
reliability: setup
	$(BIN)/pytest -m "reliability or reliability_slow" -n 2 --dist load  # per test: the sweeps of one module spread; workers hand their ledger rows to the printer

lint: setup
	$(BIN)/ruff check src tests jobs dags bench tools
	$(BIN)/ruff format --check src tests jobs dags bench tools

# The project's redis-server (online_store.backend: redis), on 127.0.0.1:online_store.port.
online-store-up: setup redis
	$(BIN)/athlete-platform online-store up

online-store-down: setup
	$(BIN)/athlete-platform online-store down

online-store-status: setup
	$(BIN)/athlete-platform online-store status

catalog-up: setup
	$(BIN)/athlete-platform catalog up

catalog-down: setup
	$(BIN)/athlete-platform catalog down

catalog-status: setup
	$(BIN)/athlete-platform catalog status

# A Spark standalone master + two workers on 127.0.0.1 (spark://127.0.0.1:7077, UI :8080).
cluster-up: setup
	$(BIN)/athlete-platform cluster up

cluster-down: setup
	$(BIN)/athlete-platform cluster down

# The query servers over the catalog (README "Query access"): Spark's Thrift JDBC/ODBC server
# (jdbc:hive2://127.0.0.1:10000/) and the Spark Connect server (sc://127.0.0.1:15002).
sql-server: setup
	$(BIN)/athlete-platform catalog up
	$(BIN)/athlete-platform sql-server up

connect-server: setup
	$(BIN)/athlete-platform catalog up
	$(BIN)/athlete-platform connect-server up

# Tables (version, rows, freshness), models and aliases, services, last DAG runs; no Spark.
status: setup
	$(BIN)/athlete-platform status

# The MLflow UI over the same tracking store the jobs use (data/mlflow), on 127.0.0.1:5000.
mlflow-ui: setup
	$(BIN)/athlete-platform mlflow-ui

# The deployment API (FastAPI on uvicorn) in the foreground, on 127.0.0.1:serving.port (15280).
# Needs a trained model and a materialized online store (`make run` leaves both).
serve: setup
	$(BIN)/athlete-platform serve

clean:
	-$(BIN)/athlete-platform catalog down
	-$(BIN)/athlete-platform online-store down
	-$(BIN)/athlete-platform sql-server down
	-$(BIN)/athlete-platform connect-server down
	rm -rf $(VENV) $(JARS) .test-data
