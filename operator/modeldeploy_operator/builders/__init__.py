"""Pure builders: a ModelDeployment and the reconciler's plan → the children it should have.

No I/O, no clock, no kopf: every function maps its arguments to plain dicts ready for
server-side apply (apiVersion, kind, metadata with labels and a controlling ownerReference).
One module per kind of child; `desired_children` assembles them.
"""

from modeldeploy_operator.builders.children import desired_children
from modeldeploy_operator.builders.context import BuildContext
from modeldeploy_operator.builders.deployment import build_deployment
from modeldeploy_operator.builders.hpa import build_hpa
from modeldeploy_operator.builders.plan import TrackPlan
from modeldeploy_operator.builders.service import build_model_service, build_track_service

__all__ = [
    "BuildContext",
    "TrackPlan",
    "build_deployment",
    "build_hpa",
    "build_model_service",
    "build_track_service",
    "desired_children",
]
