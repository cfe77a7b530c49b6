-- Argo CD health of a ModelDeployment (modeldeploy.dev/v1alpha1), from the status the operator
-- writes: phase (Pending | Progressing | Ready | Degraded | Failed) and the Ready, Progressing
-- and Degraded conditions, and status.pauseConditions. Install it under the argocd-cm key
--   resource.customizations.health.modeldeploy.dev_ModelDeployment
-- (deploy/argocd/kustomization.yaml does that; docs/install.md explains).
--
--   Healthy      phase Ready and the Ready condition True, for the current generation; or
--                scaled to zero on purpose (KEDA, no traffic) with no rollout in progress
--   Suspended    a canary rollout held by spec.rollout.paused or `kubectl modeldeploy pause`
--   Progressing  no status yet, a generation the operator has not observed, Pending, Progressing
--   Degraded     Degraded (pods crash, cannot pull, miss their deadline) or Failed (rolled back)
--   Unknown      a phase this script does not know (a newer operator)

local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the modeldeploy operator to report status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
local progressing = condition(status, "Progressing")
local degraded = condition(status, "Degraded")

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message_of(progressing, "The rollout failed and was rolled back")
  return hs
end

if phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message_of(degraded, "The model is degraded")
  return hs
end

local paused_by_spec = obj.spec ~= nil and obj.spec.rollout ~= nil and obj.spec.rollout.paused == true
-- status.pauseConditions says so explicitly; the Progressing reason says the same (and is all a
-- status written by an operator before pauseConditions existed has).
local listed = status.pauseConditions ~= nil and #status.pauseConditions > 0
local held = listed or (progressing ~= nil and progressing.status == "True"
  and (progressing.reason == "Paused" or progressing.reason == "PausedByRequest"))
if held or (paused_by_spec and status.canaryVersion ~= nil) then
  hs.status = "Suspended"
  hs.message = message_of(progressing, "Rollout of version " .. tostring(status.canaryVersion) .. " paused")
  return hs
end

local rolling = progressing ~= nil and progressing.status == "True"
if ready ~= nil and ready.reason == "ScaledToZero" and not rolling then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Scaled to zero")
  return hs
end

if phase == "Pending" or phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = message_of(progressing, message_of(ready, "Rolling out"))
  return hs
end

if phase == "Ready" then
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
    hs.message = message_of(ready, "Serving version " .. tostring(status.stableVersion))
  else
    hs.status = "Progressing"
    hs.message = message_of(ready, "Waiting for the serving replicas")
  end
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
