# One image per Rezolus service, all from this file:
#
#   docker build --build-arg SERVICE=exporter -t rezolus-exporter .
#
# SERVICE is a directory under services/ (agent, exporter, recorder,
# hindsight, viewer); compose.yaml passes it for each service. Build from the
# repository root.
#
# Stages:
# - manifests: the pyproject.toml files of every workspace member and the
#   lock, found by name, so a source edit keeps the dependency layer cached
#   and a new workspace member needs no change here.
# - build: the service's third-party dependencies from the committed uv.lock
#   (`uv export --frozen --package rezolus-$SERVICE`; wheels only, checked
#   against the lock's hashes, so no compiler is ever needed) into a venv at
#   /opt/rezolus, then the workspace packages that service depends on.
# - runtime: debian:bookworm-slim with Debian's python3, user rezolus
#   (uid/gid 4240) and the bus directory. One small stage per service adds
#   its directories, port, healthcheck and entrypoint.
# - agent: the one exception. Its venv sees the system site-packages so
#   Debian's python3-bpfcc (bcc and its in-process LLVM) is importable; it
#   runs as root (loading BPF needs the capabilities compose.yaml grants) and
#   its entrypoint links the host's kernel headers
#   (deploy/docker/agent-entrypoint.sh). No other image holds a compiler or
#   LLVM (tests/deploy/test_compose.py checks).
# The last stage is the one named by SERVICE plus the venv.
ARG SERVICE

FROM debian:bookworm-slim AS manifests
COPY . /tree
RUN cd /tree && mkdir /manifests \
 && find . -name tests -prune -o \( -name pyproject.toml -o -name uv.lock \) -print \
    | xargs cp --parents -t /manifests

FROM debian:bookworm-slim AS build
# PEM certificates of a TLS-intercepting proxy, if the build host sits behind
# one (deploy/docker/local-ca.sh prints them). Used by this stage only.
ARG EXTRA_CA_CERTS=""
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && if [ -n "$EXTRA_CA_CERTS" ]; then \
      printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt \
      && update-ca-certificates >/dev/null; fi \
 && python3 -m venv /opt/uv && /opt/uv/bin/pip install -q "uv==$UV_VERSION"
WORKDIR /src
COPY --from=manifests /manifests ./
ARG SERVICE
RUN if [ -z "$SERVICE" ] || [ ! -f "services/$SERVICE/pyproject.toml" ]; then \
      echo "Dockerfile: build with --build-arg SERVICE=<$(ls services | paste -sd '|')>, got '$SERVICE'" >&2; \
      exit 2; fi \
 && /opt/uv/bin/uv export --frozen --no-dev --package "rezolus-$SERVICE" --no-emit-workspace \
      --output-file /tmp/requirements.txt >/dev/null \
 && /opt/uv/bin/uv export --frozen --no-dev --package "rezolus-$SERVICE" --no-hashes --no-editable \
    | grep '^\./' > /tmp/workspace.txt \
 && if [ "$SERVICE" = agent ]; then site=--system-site-packages; else site=; fi \
 && python3 -m venv $site /opt/rezolus \
 && /opt/rezolus/bin/pip install -q --no-deps --only-binary :all: --require-hashes \
      -r /tmp/requirements.txt
COPY --from=manifests /tree ./
RUN /opt/rezolus/bin/pip install -q --no-deps $(cat /tmp/workspace.txt) \
 && /opt/rezolus/bin/pip uninstall -q -y pip setuptools \
 && /opt/rezolus/bin/python -m compileall -q -j 0 /opt/rezolus/lib >/dev/null

# `apt-get clean`: Docker Hub's slim image drops downloaded .debs by itself,
# the debootstrapped base of deploy/docker/ensure-base-image.sh does not.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 4240 rezolus \
 && useradd --system --uid 4240 --gid rezolus --home-dir /nonexistent --shell /usr/sbin/nologin rezolus \
 && install -d -o root -g rezolus -m 2770 /run/rezolus
ENV PATH=/opt/rezolus/bin:$PATH PYTHONDONTWRITEBYTECODE=1

FROM runtime AS agent
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-bpfcc \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/agent-entrypoint.sh /usr/local/bin/rezolus-agent-entrypoint
# Healthy once a frame arrives on the bus socket.
HEALTHCHECK --interval=10s --timeout=10s --start-period=60s --retries=3 \
  CMD ["rezolus", "tap", "--source", "ipc:///run/rezolus/agent.sock", "--count", "1", "--timeout", "8", "--json"]
ENTRYPOINT ["rezolus-agent-entrypoint"]
CMD ["--config", "/etc/rezolus/agent.toml", "--listen", "ipc:///run/rezolus/agent.sock"]

FROM runtime AS exporter
USER rezolus
EXPOSE 4242
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4242/healthz', timeout=4)"]
ENTRYPOINT ["rezolus-exporter"]
CMD ["--config", "/etc/rezolus/exporter.toml"]

FROM runtime AS hindsight
RUN install -d -o rezolus -g rezolus -m 0750 /var/lib/rezolus /var/lib/rezolus/hindsight \
 && install -d -o rezolus -g rezolus -m 0775 /var/lib/rezolus/snapshots
USER rezolus
EXPOSE 4243
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4243/status', timeout=4)"]
ENTRYPOINT ["rezolus-hindsight"]
CMD ["--config", "/etc/rezolus/hindsight.toml"]

FROM runtime AS recorder
RUN install -d -o rezolus -g rezolus -m 0775 /recordings
USER rezolus
# Without an OUTPUT argument the recorder names its file
# rezolus-HOST-TIME.parquet in the working directory.
WORKDIR /recordings
# Healthy while the recording's journal is being written (every interval).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["sh", "-c", "find /recordings -maxdepth 1 -name '*.journal' -mmin -1 | grep -q ."]
ENTRYPOINT ["rezolus-recorder", "--source", "ipc:///run/rezolus/agent.sock"]
CMD ["--duration", "15m"]

FROM runtime AS viewer
# The page for one recording or snapshot: mount files read-only and publish
# the port on loopback, e.g.
#   docker run --rm -p 127.0.0.1:8080:8080 -v "$PWD/data:/data:ro" rezolus-viewer /data/rezolus.parquet
# 0.0.0.0 here is the container's own network namespace; where it is
# reachable from is decided by the publish (compose.yaml uses the host's
# loopback instead).
USER rezolus
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=4)"]
ENTRYPOINT ["rezolus-viewer", "--listen=0.0.0.0:8080"]

FROM ${SERVICE}
COPY --from=build /opt/rezolus /opt/rezolus
