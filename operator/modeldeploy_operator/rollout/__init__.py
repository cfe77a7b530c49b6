"""Progressive delivery leaves: what the rollout state machine calls, never the machine itself.

- `analysis`: PromQL for each check, the verdict over the measured values, the Prometheus client.
- `routers`: how traffic reaches each version (Gateway API HTTPRoute or replica ratio), one
  module per router behind one small interface, and the factory that picks one.
- `requests`: the annotation contract of one-shot requests (promote, abort, pause, resume) that
  the kubectl plugin writes and the operator acts on once.

Everything here is pure except the two Prometheus functions in `analysis`; the state machine,
status and the reconciler's wiring live in `planning`, `status` and `reconciler`.
"""
