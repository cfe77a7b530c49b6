# syntax=docker/dockerfile:1
# The operator: `modeldeploy operator` with the base package and the [operator] extra only
# (kopf, aiohttp; no scikit-learn, no numpy). Build from the repository root:
#   docker build -f images/operator.Dockerfile -t ghcr.io/modeldeploy/modeldeploy-operator:0.1.0 .
# The chart runs it as user 65532 with a read-only root filesystem and /tmp as an emptyDir.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modeldeploy
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY serving ./serving
# A regular (non-editable) install: the source tree stays in this stage. pip compiles the
# bytecode here, so the read-only runtime never needs to write any.
# pip and setuptools only install (the runtime never runs them), and the test suites of the
# dependencies never run in the image.
RUN /opt/modeldeploy/bin/pip install ".[operator]" \
    && /opt/modeldeploy/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && find /opt/modeldeploy/lib -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/modeldeploy /opt/modeldeploy
ENV PATH=/opt/modeldeploy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["modeldeploy", "operator"]
