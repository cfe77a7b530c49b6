"""Progressive delivery: the rollout state machine and what it calls.

- `machine`: the state machine itself, (model, health, clock, verdict, request) → `Plan`, with
  one function per named state (`Stage`).
- `context`: `RolloutContext`, what one pass of the machine reads, fixed for the pass.
- `plan`: what the machine produces (`Plan`, `RolloutState`, `Event`) and `Routing`, what it
  needs to know of the traffic router.
- `requests`: the annotation contract of one-shot requests (promote, abort, pause, resume) that
  the kubectl plugin writes and the operator acts on once.
- `analysis`: PromQL for each check, the verdict over the measured values, the Prometheus client.
- `routers`: how traffic reaches each version (Gateway API HTTPRoute or replica ratio), one
  module per router behind one small interface, and the factory that picks one.

Everything here is pure except the Prometheus client in `analysis`; status and the reconciler's
wiring live in `status` and `reconciler`.
"""
