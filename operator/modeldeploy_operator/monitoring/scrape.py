"""The scrape object of a ModelDeployment: one PodMonitor `<md>` for the pods of every version.

Why a PodMonitor and not a ServiceMonitor:

- It selects exactly what is measured: the serving pods, by the immutable `model` label their
  Deployments' templates guarantee. A ServiceMonitor would select Services, and the model's own
  Service `<md>` selects the very same pods as the per-version Services (all versions at once
  under the replica-ratio router): it must be excluded by hand, or every pod is scraped twice
  and every rate doubles. A PodMonitor cannot scrape a pod twice, whatever Services exist.
- One scrape job for all versions (`<namespace>/<md>`): a version's series do not move between
  jobs when the traffic router or the Services change, and `up{job=...}` covers the model.
- The track (stable/canary) is deliberately not a target label: it changes at promotion, and a
  label change would break every series (and every rate) of the newly promoted version. Series
  carry `model` and `version` from the server itself.

kube-prometheus-stack selects PodMonitors exactly as it selects ServiceMonitors (by its
`release` label by default), so the operator puts its configured extra labels on the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders.meta import child_metadata

API_VERSION: Final = kinds.POD_MONITOR.api_version
KIND: Final = kinds.POD_MONITOR.kind
# The serving container's port name (builders.deployment.PORT_NAME) and the server's path.
PORT: Final = "http"
PATH: Final = "/metrics"
# Finer than kube-prometheus-stack's 30s default: canary analysis windows are a minute or two,
# and a rate needs several samples in its window.
INTERVAL: Final = "15s"
SCRAPE_TIMEOUT: Final = "10s"


def build_pod_monitor(md: ModelDeployment, labels: Mapping[str, str]) -> dict[str, Any]:
    """The PodMonitor scraping `/metrics` of every version's pods of `md`."""
    name, namespace = md.metadata.name, md.metadata.namespace
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": child_metadata(md, name, dict(labels)),
        "spec": {
            "selector": {
                "matchLabels": {
                    **naming.model_selector(name),
                    naming.LABEL_MANAGED_BY: naming.MANAGER,
                }
            },
            "namespaceSelector": {"matchNames": [namespace]},
            "podMetricsEndpoints": [
                {
                    "port": PORT,
                    "path": PATH,
                    "interval": INTERVAL,
                    "scrapeTimeout": SCRAPE_TIMEOUT,
                }
            ],
        },
    }
