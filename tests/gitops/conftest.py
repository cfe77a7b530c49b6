"""Fixtures for the GitOps tests: chart releases whose operator serves the synced models."""

from tests.support.chart_fixtures import cluster_helm, helm, installer

__all__ = ["cluster_helm", "helm", "installer"]
