-- Argo CD health check for pullpolicy.io/PullPolicy (Lua 5.1, Argo CD's dialect).
-- Install it as resource.customizations.health.pullpolicy.io_PullPolicy in
-- argocd-cm (see argocd-cm.yaml beside this file).
--   deleting, no status yet, generation ahead of observedGeneration,
--   or Ready=False reason Waiting                    -> Progressing
--   Ready=True                                       -> Healthy
--   any other Ready=False                            -> Degraded
--   Ready=True but CredentialsVerified=False (a registry refused a linked
--   secret, or cannot be reached)                    -> Degraded
--   stale pods (R13, status.stalePods) do not change it: the policy applied what it
--   declares, and the pods show their own health; Ready's message counts them
local hs = {}

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "The policy is being deleted; the controller is undoing what it made"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe the policy"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if observed == nil or observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end

local ready = nil
local creds = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "CredentialsVerified" then
      creds = c
    end
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "The policy has no Ready condition yet"
  return hs
end

local message = ready.message or ""
if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end

if ready.status == "True" and creds ~= nil and creds.status == "False" then
  hs.status = "Degraded"
  hs.message = (creds.reason or "CredentialsNotVerified") .. ": " .. (creds.message or "")
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif ready.status == "False" and ready.reason == "Waiting" then
  hs.status = "Progressing"
  hs.message = message
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. message
else
  hs.status = "Progressing"
  hs.message = message
end
return hs
