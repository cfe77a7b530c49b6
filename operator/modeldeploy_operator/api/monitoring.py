"""spec.monitoring: the scrape objects and alert rules made for the Prometheus Operator."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modeldeploy_operator.api.base import SpecModel, wire_default
from modeldeploy_operator.api.units import prometheus_duration_field


class MonitoringMode(StrEnum):
    AUTO = "Auto"
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class MonitoringThresholds(SpecModel):
    """Thresholds and `for` durations of the generated alerts."""

    error_rate_percent: float = Field(
        default=5,
        description="Alert when more than this percent of requests fail (5xx).",
        gt=0,
        le=100,
    )
    error_rate_for: str = prometheus_duration_field("5m", "How long the error rate must stay high.")
    latency_p99_ms: float = Field(
        default=500, description="Alert when p99 latency exceeds this many milliseconds.", gt=0
    )
    latency_for: str = prometheus_duration_field("5m", "How long p99 latency must stay high.")
    drift_psi: float = Field(
        default=0.25, description="Alert when any feature's PSI drift exceeds this.", gt=0, le=10
    )
    drift_for: str = prometheus_duration_field("15m", "How long drift must stay high.")
    unavailable_for: str = prometheus_duration_field(
        "5m", "How long a version may have no ready pod or no loaded model before alerting."
    )


class MonitoringSpec(SpecModel):
    """Scrape objects and alert rules for the Prometheus Operator."""

    service_monitor: MonitoringMode = Field(
        default=MonitoringMode.AUTO,
        description="Auto: create a ServiceMonitor when its CRD exists; Enabled: always (status "
        "reports a missing CRD); Disabled: never.",
    )
    rules: MonitoringMode = Field(
        default=MonitoringMode.AUTO,
        description="Auto: create a PrometheusRule with the default alerts when its CRD exists; "
        "Enabled: always; Disabled: never.",
    )
    thresholds: MonitoringThresholds = Field(
        default_factory=lambda: MonitoringThresholds(),
        description="Thresholds and durations of the alerts.",
        json_schema_extra={"default": wire_default(MonitoringThresholds)},
    )
