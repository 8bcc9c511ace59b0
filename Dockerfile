# syntax=docker/dockerfile:1
# omni-secrets container image.
#
#   docker build -t omni-secrets .                      # or: make image
#   podman build --isolation chroot --build-arg BASE_IMAGE=localhost/base -t omni-secrets .
#
# Two stages on the same BASE_IMAGE (the virtualenv's interpreter symlinks must resolve in
# both): the first builds the wheel and installs it with the pinned dependency set into
# /opt/omni-secrets; the second copies only that virtualenv, without pip, and runs as a non-root
# uid. BASE_IMAGE needs python3 (3.11+) with the venv module; nothing else.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# Binary wheels only (--only-binary): the build stage has no compiler either, and a dependency
# that would need one must fail the build here, not arrive half-built.
# Behind a TLS-intercepting proxy, hand its CA bundle in as the build secret "pip-ca"
# (podman/docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt): it is
# mounted for this step only and never stored in a layer.
RUN --mount=type=secret,id=pip-ca,required=false \
    set -eu; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    python3 -m venv /opt/build-tools; \
    /opt/build-tools/bin/pip wheel --quiet --no-deps --wheel-dir /wheels .; \
    python3 -m venv /opt/omni-secrets; \
    /opt/omni-secrets/bin/pip install --quiet --only-binary=:all: -c constraints.txt /wheels/*.whl; \
    /opt/omni-secrets/bin/pip uninstall --quiet --yes pip; \
    find /opt/omni-secrets -name '__pycache__' -prune -exec rm -rf {} +; \
    /opt/omni-secrets/bin/omni-secrets --help >/dev/null

FROM ${BASE_IMAGE}
# The runtime has no pip at all: not in the virtualenv (removed above) and not in the base
# (python:*-slim installs one globally; Debian's python3-venv ships pip as a wheel to bootstrap
# virtualenvs). Nothing in this image can install or build code.
RUN set -eu; \
    for python in python3 /usr/local/bin/python3; do \
      "$python" -m pip uninstall --quiet --yes pip setuptools wheel 2>/dev/null || true; \
    done; \
    rm -rf /usr/local/bin/pip* /usr/bin/pip* /usr/share/python-wheels /root/.cache
COPY --from=build /opt/omni-secrets /opt/omni-secrets
ENV PATH=/opt/omni-secrets/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A fixed numeric uid/gid (the Kubernetes manifests pin the same one with runAsNonRoot).
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["omni-secrets"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
