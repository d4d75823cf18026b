-- Argo CD health of an atoll.dev/v1alpha1 Workspace or ExternalConnection (one
-- script for both: their conditions follow the same rules).
-- Healthy only when Ready=True for the current generation; Degraded when a
-- condition is False for a reason that retrying will not fix (the spec or the
-- data must change); Progressing otherwise, including a missing status and a
-- status written for an older generation.
local terminal = {
  CiphertextRejected = true, TypeNotFound = true, TypeNotAllowed = true,
  InvalidSettings = true, WorkspaceNotFound = true, DuplicateWorkspace = true,
  AuthenticationFailed = true, PolicyViolation = true,
}
local kind = obj.kind or "resource"

local hs = { status = "Progressing", message = "Waiting for the atoll operator to reconcile the " .. kind }
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = kind .. " is being deleted"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for the atoll operator to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
-- Ready first, then the specific conditions it summarises.
local candidates = {}
if ready ~= nil then table.insert(candidates, ready) end
for _, c in ipairs(obj.status.conditions) do table.insert(candidates, c) end
for _, c in ipairs(candidates) do
  if c.status == "False" and c.reason ~= nil and terminal[c.reason] then
    hs.status = "Degraded"
    hs.message = c.reason .. ": " .. (c.message or "")
    return hs
  end
end
if ready ~= nil then
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
end
return hs
