"""pytest fixtures for tests that install the chart; a conftest imports them by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chart import CHART_PREFIX, ChartInstaller
from tests.support.helm import Helm, helm_binary
from tests.support.kube import Kubectl


@pytest.fixture(scope="session")
def helm() -> Helm:
    """The real helm, without a cluster (lint, template)."""
    return Helm(helm_binary())


@pytest.fixture(scope="session")
def cluster_helm(helm: Helm, kubeconfig: Path) -> Helm:
    """The real helm against the test cluster."""
    return Helm(helm.binary, kubeconfig)


@pytest.fixture
def installer(
    cluster_helm: Helm, kube: Kubectl, request: pytest.FixtureRequest
) -> Iterator[ChartInstaller]:
    """Releases installed during the test, into fresh `<prefix>chart-*` namespaces (outside every
    test operator's `<prefix>-*` glob); removed afterwards."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:24].strip("-")
    with ChartInstaller(cluster_helm, kube, f"{CHART_PREFIX}-{base}") as chart:
        yield chart
