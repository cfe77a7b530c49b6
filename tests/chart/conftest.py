"""Fixtures for the chart tests: the real helm, and chart releases in fresh namespaces."""

from tests.support.chart_fixtures import cluster_helm, helm, installer

__all__ = ["cluster_helm", "helm", "installer"]
