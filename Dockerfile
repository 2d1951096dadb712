# The project's image: Python 3.11 + Java 17 + Maven, the project installed with its jars by
# `make setup` (the same target as on a laptop). Every service of docker-compose.yml runs it:
# Spark master and workers (the venv's pyspark 4.0.1), the catalog server, MLflow, Airflow.
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven make procps \
    && rm -rf /var/lib/apt/lists/*
ENV ATHLETE_PLATFORM_HOME=/opt/athlete-platform \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
WORKDIR /opt/athlete-platform

# 1. Dependencies: only what `make setup` reads, so this slow layer (the pinned Python tree,
#    the jars, the catalog plugin) is rebuilt when the pins, the pom or the plugin change,
#    not on every code change. The editable install points at src/ (a .pth file), so the
#    placeholder package below is replaced by the real one in step 2.
COPY pyproject.toml constraints.txt Makefile README.md ./
COPY conf/jars.pom.xml conf/
COPY tools/relocate_venv.py tools/
COPY java/ java/
RUN mkdir -p src/athlete_platform \
    && touch src/athlete_platform/__init__.py \
    && make setup PYTHON=python3.11 \
    && rm -rf /root/.m2 /root/.cache

# Postgres drivers for the servers only (MLflow's and Airflow's metadata databases): psycopg2
# for the sync engines, asyncpg for the async engine Airflow 3 derives from the same URL
# (postgresql+asyncpg). Not project dependencies: a laptop uses SQLite.
RUN .venv/bin/pip install -c constraints.txt psycopg2-binary==2.9.13 asyncpg==0.32.0

# 2. The project itself (.dockerignore keeps the host's .venv, .jars and data out), then
#    `make setup` again: a no-op when step 1 is current (stamp files), a check otherwise.
COPY . .
RUN make setup PYTHON=python3.11 && rm -rf /root/.m2 /root/.cache

# spark-class / spark-submit find Spark in the venv's pyspark; executors and Python workers
# use the venv's interpreter (the same path in every container of the stack).
ENV PATH=/opt/athlete-platform/.venv/bin:$PATH \
    SPARK_HOME=/opt/athlete-platform/.venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/athlete-platform/.venv/bin/python
CMD ["athlete-platform", "--help"]
