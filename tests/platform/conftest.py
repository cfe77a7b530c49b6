"""Fixtures of the platform tests: the cluster's Gateway, Prometheus and echo backends."""

from __future__ import annotations

import pytest

from tests.support import platform
from tests.support.kube import Kubectl


@pytest.fixture(scope="session")
def gateway_url(kube: Kubectl) -> str:
    return platform.gateway_url(kube)


@pytest.fixture(scope="session")
def prometheus_url(kube: Kubectl) -> str:
    return platform.prometheus_url(kube)


@pytest.fixture(scope="session")
def echo_image(kube: Kubectl) -> str:
    return platform.echo_image(kube)
