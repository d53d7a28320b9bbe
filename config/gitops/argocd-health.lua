-- Argo CD health for iam-operator.io objects: IamServiceAccount and
-- PodIdentityBinding report alike, so one script serves both.
--
-- iam-operator writes kstatus conditions: Ready (True when AWS and the
-- ServiceAccount or the Pod Identity association match the spec),
-- Reconciling (True while it works on a generation or waits on something
-- that settles by itself) and Stalled (True when only a change of the spec
-- or of AWS can help). Their absence
-- alone says nothing, so an object the operator has not reported on yet is
-- Progressing, never Healthy.
local function find(conditions, kind)
  if type(conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function explain(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.message or ""
  if c.reason ~= nil and c.reason ~= "" then
    if text == "" then
      text = c.reason
    else
      text = c.reason .. ": " .. text
    end
  end
  if text == "" then
    return fallback
  end
  return text
end

local meta = obj.metadata or {}
if meta.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "being deleted: iam-operator is removing what it made in AWS"}
end

local st = obj.status
local generation = meta.generation or 0
if st == nil or st.observedGeneration == nil or st.observedGeneration < generation then
  return {status = "Progressing", message = "waiting for iam-operator to reconcile generation " .. tostring(generation)}
end

local ready = find(st.conditions, "Ready")
local stalled = find(st.conditions, "Stalled")
local reconciling = find(st.conditions, "Reconciling")

if stalled ~= nil and stalled.status == "True" then
  -- Ready carries the full explanation (with the fix); Stalled names it.
  local why = ready
  if why == nil or why.status == "True" or (why.message or "") == "" then
    why = stalled
  end
  return {status = "Degraded", message = explain(why, "stalled")}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = explain(ready, "ready")}
end
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = explain(reconciling, "reconciling")}
end
return {status = "Progressing", message = explain(ready, "waiting for iam-operator")}
