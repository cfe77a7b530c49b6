"""Bounds the CEL rules rely on, and bounds several fields share.

They keep the CEL rules inside the apiserver's cost budget: CEL cost is estimated from the largest
possible list or string, so every list or string a rule walks (or whose items a rule checks) has
a bound here.
"""

from __future__ import annotations

from typing import Final

MAX_VERSION_LENGTH: Final = 63  # a Kubernetes label value (the version is one)
MAX_NAME_LENGTH: Final = 63  # a DNS-1035 label (the model's Service takes the name)
MAX_URI_LENGTH: Final = 2048
MAX_DURATION_LENGTH: Final = 32
MAX_QUANTITY_LENGTH: Final = 64
MAX_STEPS: Final = 20
MAX_ENV: Final = 64
MAX_HOSTNAMES: Final = 16
MAX_RESOURCE_NAMES: Final = 16
MAX_REPLICAS: Final = 1000
MAX_TOLERATIONS: Final = 32
MAX_NODE_SELECTOR: Final = 32
