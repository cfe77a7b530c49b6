# syntax=docker/dockerfile:1
# The model server and storage initializer: `modeldeploy serve` / `modeldeploy fetch` with the
# base package and the [serve] extra (scikit-learn, uvicorn; no kopf). Build from the root:
#   docker build -f images/server.Dockerfile -t ghcr.io/modeldeploy/modeldeploy-server:0.1.0 .
# Object stores need their extra too: --build-arg EXTRAS=serve,s3 (boto3) or serve,gcs. The
# operator runs the pods as user 65532 with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=serve
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modeldeploy
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY serving ./serving
# pip and setuptools only install (the runtime never runs them), and the test suites of the
# dependencies (numpy, scipy and scikit-learn ship 65 MB of them) never run in the image.
RUN /opt/modeldeploy/bin/pip install ".[${EXTRAS}]" \
    && /opt/modeldeploy/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && find /opt/modeldeploy/lib -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/modeldeploy /opt/modeldeploy
ENV PATH=/opt/modeldeploy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["modeldeploy"]
CMD ["serve", "--help"]
