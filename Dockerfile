# The project's image: Python 3.11 + Java 17 + Maven, the project installed with its jars.
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven make procps \
    && rm -rf /var/lib/apt/lists/*
ENV ATHLETE_PLATFORM_HOME=/opt/athlete-platform
WORKDIR /opt/athlete-platform
COPY . .
RUN make setup PYTHON=python3.11
ENV PATH=/opt/athlete-platform/.venv/bin:$PATH
