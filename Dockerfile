# syntax=docker/dockerfile:1
#
# function-bsls: build on Debian 12 with its Python 3.11, run on Google's distroless
# python3-debian12 image, which carries the same Python 3.11. Both stages must share the
# Python minor version: the virtualenv's interpreter link and compiled wheels depend on it.
#
# The base images are build args, for mirrors:
#   DEBIAN_IMAGE       the build stage (default docker.io/library/debian:12-slim)
#   DISTROLESS_PREFIX  the registry path that serves Google's distroless images (default
#                      gcr.io/distroless), e.g. --build-arg DISTROLESS_PREFIX=<registry>/distroless
ARG DEBIAN_IMAGE=docker.io/library/debian:12-slim
ARG DISTROLESS_PREFIX=gcr.io/distroless

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install --no-install-recommends --yes python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY function ./function
RUN /venv/bin/pip install --no-cache-dir . \
 && /venv/bin/python -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version"

FROM ${DISTROLESS_PREFIX}/python3-debian12:nonroot AS runtime
COPY --from=build /venv /venv
USER 65532:65532
EXPOSE 9443
# Crossplane passes the TLS directory in TLS_SERVER_CERTS_DIR.
ENTRYPOINT ["/venv/bin/python3", "-m", "function.main"]
