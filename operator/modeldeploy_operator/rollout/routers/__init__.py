"""Traffic routers: one small interface (`base`), one module per router, one factory that picks.

The state machine asks a router which versions the model Service selects, for the objects of its
own a traffic split needs, and for the canary's size; it never knows which router it talks to.
"""

from modeldeploy_operator.rollout.routers.base import TrafficRouter, TrafficSplit
from modeldeploy_operator.rollout.routers.factory import RouterUnavailableError, select_router
from modeldeploy_operator.rollout.routers.gateway_api import GatewayApiRouter
from modeldeploy_operator.rollout.routers.replica_ratio import ReplicaRatioRouter

__all__ = [
    "GatewayApiRouter",
    "ReplicaRatioRouter",
    "RouterUnavailableError",
    "TrafficRouter",
    "TrafficSplit",
    "select_router",
]
