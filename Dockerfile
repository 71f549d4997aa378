# syntax=docker/dockerfile:1
# Tradewind's image: one image for every role (init, scheduler, dag-processor, worker,
# webserver, flower); the compose service picks the role with its command.
#
#   docker build -t tradewind .
#   docker run --rm tradewind version
#
# Layers are ordered for the build cache: the dependencies (from pyproject.toml) are
# installed before any source is copied, so editing the code rebuilds only the last
# layers.

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRADEWIND_HOME=/var/lib/tradewind \
    TRADEWIND_DAGS_FOLDER=/opt/tradewind/dags

# A fixed uid/gid, so a bind-mounted dags/ or a backup volume can be given to it.
RUN groupadd --system --gid 50000 tradewind \
 && useradd --system --uid 50000 --gid tradewind --no-create-home \
      --home-dir /var/lib/tradewind --shell /usr/sbin/nologin tradewind \
 && install -d -o tradewind -g tradewind /var/lib/tradewind /var/lib/tradewind/logs \
      /opt/tradewind/dags

WORKDIR /opt/tradewind/src

# 1. Dependencies only: the list is read from pyproject.toml (with the Flower extra).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['flower']))" > requirements.txt \
 && pip install -r requirements.txt \
 && rm requirements.txt

# 2. The project itself, without touching the dependencies installed above.
COPY README.md ./
COPY tradewind ./tradewind
COPY scheduler ./scheduler
COPY worker ./worker
COPY webserver ./webserver
COPY migrations ./migrations
RUN pip install --no-deps . && rm -rf /opt/tradewind/src

WORKDIR /var/lib/tradewind
USER tradewind

EXPOSE 8080

# Healthy while a component of this container heartbeats (scheduler, dag-processor,
# worker). The compose file gives the webserver an HTTP check and the init service none.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD tradewind jobs check --job-type any --this-host --allow-multiple || exit 1

ENTRYPOINT ["tradewind"]
CMD ["--help"]
