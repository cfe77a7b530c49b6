# syntax=docker/dockerfile:1
# The model server and storage initializer: `modeldeploy serve` / `modeldeploy fetch` with the
# base package and the [serve] extra (scikit-learn, uvicorn; no kopf). Build from the root:
#   docker build -f images/server.Dockerfile -t ghcr.io/modeldeploy/modeldeploy-server:0.1.0 .
# Object stores need their extra too: --build-arg EXTRAS=serve,s3 (boto3) or serve,gcs. The
# operator runs the pods as user 65532 with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=serve
# Installed with [serve] but never imported by the server: skops needs them for its model cards
# (skops.card) only, and the server only loads models (skops.io).
ARG UNIMPORTED="prettytable wcwidth"
# The modules the image's commands import as they start: only these keep their bytecode.
ARG STARTUP_MODULES="modeldeploy_operator.cli modeldeploy_serving.server modeldeploy_serving.fetch.cli uvicorn.loops.uvloop uvicorn.protocols.http.httptools_impl"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# strip, for this stage only. images/build.sh gives this stage a base that has it (--from).
RUN command -v strip >/dev/null \
    || (apt-get update && apt-get install --yes --no-install-recommends binutils)
RUN python -m venv /opt/modeldeploy
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY serving ./serving
# pip and setuptools only install (the runtime never runs them).
RUN /opt/modeldeploy/bin/pip install ".[${EXTRAS}]" \
    && /opt/modeldeploy/bin/python -m pip uninstall --yes --quiet pip setuptools ${UNIMPORTED}
# What never runs in the image: the dependencies' test suites (numpy, scipy and scikit-learn ship
# 65 MB of them), their Cython/C sources, headers and type stubs, the symbols of their extension
# modules (27 MB; the libraries auditwheel bundled in *.libs/ are left alone: patchelf rewrote
# them, and strip makes them unloadable, "ELF load command address/offset not page-aligned"),
# and the bytecode of modules nothing imports at start (compiled on first import, if ever, as
# the root filesystem is read-only). The start itself keeps its bytecode: without it, importing
# scipy and scikit-learn takes seconds longer in every new pod. That bytecode is checked against
# nothing (unchecked-hash; the image never changes): with the default timestamp check, 369 of
# the modules the server imports were compiled again at every start, COPY --from having moved
# their sources' mtimes by a second.
RUN cd /opt/modeldeploy/lib \
    && find . -depth -type d \( -name tests -o -name test \) -exec rm -rf {} + \
    && find . -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.c' \
        -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.pyi' \) -delete \
    && find . -path '*/site-packages/*.libs' -prune -o -type f -name '*.so' \
        -exec strip --strip-unneeded {} + \
    && find . -depth -type d -name __pycache__ -exec rm -rf {} + \
    && /opt/modeldeploy/bin/python -c \
        "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" ${STARTUP_MODULES} \
    && find . -name '*.pyc' | sed 's|__pycache__/\([^/]*\)\.cpython-[0-9]*\.pyc$|\1.py|' \
        | /opt/modeldeploy/bin/python -m compileall -q -f --invalidation-mode unchecked-hash -i -

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/modeldeploy /opt/modeldeploy
ENV PATH=/opt/modeldeploy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["modeldeploy"]
CMD ["serve", "--help"]
