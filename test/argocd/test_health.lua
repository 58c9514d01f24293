-- Tests of manifests/argocd/health.lua under Lua 5.1, the dialect Argo CD
-- embeds, against PullPolicy objects as the controller writes them.
-- Run: lua5.1 test/argocd/test_health.lua   (from the repository root)
-- Prints cmocka-style result lines so that hack/run-tests.sh adds them up.

local script_path = (os.getenv("PULLPOLICY_ROOT") or ".") .. "/manifests/argocd/health.lua"
local f = assert(io.open(script_path, "r"))
local source = f:read("*a")
f:close()

-- Argo CD runs the script with the object in the global "obj".
local function health(o)
  local chunk = assert(loadstring(source, "health.lua"))
  local env = { obj = o, ipairs = ipairs, tostring = tostring, pairs = pairs }
  setfenv(chunk, env)
  return chunk()
end

local function policy(generation, status, deleting)
  local o = {
    apiVersion = "pullpolicy.io/v1alpha1",
    kind = "PullPolicy",
    metadata = { name = "team-a", namespace = "project-b", generation = generation },
    status = status,
  }
  if deleting then o.metadata.deletionTimestamp = "2026-11-29T03:00:00Z" end
  return o
end

local function ready(status, reason, message, observed)
  return { type = "Ready", status = status, reason = reason, message = message,
           observedGeneration = observed, lastTransitionTime = "2026-11-29T03:00:00Z" }
end

local cases = {
  { name = "applied_is_healthy", want = "Healthy",
    obj = policy(2, { observedGeneration = 2, namespaces = 1, roleBindings = 1,
      linkedServiceAccounts = 3, waitingServiceAccounts = 0,
      conditions = { ready("True", "Applied", "3 service accounts linked, 1 RoleBinding", 2) } }) },
  { name = "waiting_is_progressing", want = "Progressing",
    obj = policy(1, { observedGeneration = 1, waitingServiceAccounts = 2,
      conditions = { ready("False", "Waiting",
        "2 service accounts wait for their dockercfg secret (project-a/builder, ...)", 1) } }) },
  { name = "generation_ahead_is_progressing", want = "Progressing",
    obj = policy(5, { observedGeneration = 4,
      conditions = { ready("True", "Applied", "ok", 4) } }) },
  { name = "condition_generation_behind_is_progressing", want = "Progressing",
    obj = policy(5, { observedGeneration = 5,
      conditions = { ready("True", "Applied", "ok", 4) } }) },
  { name = "no_status_is_progressing", want = "Progressing", obj = policy(1, nil) },
  { name = "no_ready_condition_is_progressing", want = "Progressing",
    obj = policy(1, { observedGeneration = 1, conditions = {} }) },
  { name = "deleting_is_progressing", want = "Progressing",
    obj = policy(3, { observedGeneration = 3,
      conditions = { ready("True", "Applied", "ok", 3) } }, true) },
  { name = "unknown_is_progressing", want = "Progressing",
    obj = policy(1, { observedGeneration = 1,
      conditions = { ready("Unknown", "Reconciling", "", 1) } }) },
}
-- CredentialsVerified (issue 11): a registry refused a linked secret, or cannot be reached, on
-- an otherwise applied policy: Degraded, naming the reason and what the condition says.
local function creds(status, reason, message)
  return { type = "CredentialsVerified", status = status, reason = reason, message = message,
           observedGeneration = 2, lastTransitionTime = "2026-11-29T03:00:00Z" }
end
table.insert(cases, { name = "credentials_verified_is_healthy", want = "Healthy",
  obj = policy(2, { observedGeneration = 2,
    conditions = { ready("True", "Applied", "ok", 2), creds("True", "Verified", "quay.io") } }) })
for _, reason in ipairs({ "CredentialsRejected", "RegistryUnreachable" }) do
  table.insert(cases, { name = "credentials_" .. reason .. "_is_degraded", want = "Degraded",
    want_message = "ns/creds",
    obj = policy(2, { observedGeneration = 2,
      conditions = { ready("True", "Applied", "ok", 2),
        creds("False", reason, reason .. ": secret ns/creds at quay.io") } }) })
end
-- Stale pods (R13) are the workload's trouble, not the policy's: it applied what it declares,
-- and the pods' own health shows in Argo CD. Healthy, with Ready's message saying so.
table.insert(cases, { name = "stale_pods_are_healthy_with_message", want = "Healthy",
  want_message = "2 stale pods must be recreated",
  obj = policy(2, { observedGeneration = 2, stalePods = 2,
    conditions = { ready("True", "Applied",
      "1 namespaces, 0 role bindings, 1 service accounts linked; 2 stale pods must be recreated",
      2) } }) })
-- Unknown (not checked yet) does not degrade a policy.
table.insert(cases, { name = "credentials_unknown_is_healthy", want = "Healthy",
  obj = policy(2, { observedGeneration = 2,
    conditions = { ready("True", "Applied", "ok", 2), creds("Unknown", "Verifying", "") } }) })

-- Every other reason of API.md is Degraded, and says why.
for _, reason in ipairs({ "SecretNotFound", "InvalidSecret", "RoleNotAllowed",
                          "ServiceAccountSecret", "DistributionNotAllowed", "Conflict",
                          "Forbidden", "WriteFailed", "InvalidSpec" }) do
  table.insert(cases, { name = "reason_" .. reason .. "_is_degraded", want = "Degraded",
    want_message = reason,
    obj = policy(1, { observedGeneration = 1,
      conditions = { { type = "Other", status = "True" }, ready("False", reason, "why", 1) } }) })
end

local passed, failed, failures = 0, 0, {}
print(string.format("[==========] Running %d test(s).", #cases))
for _, c in ipairs(cases) do
  print("[ RUN      ] " .. c.name)
  local ok, hs = pcall(health, c.obj)
  local good = ok and type(hs) == "table" and hs.status == c.want and type(hs.message) == "string"
  if good and c.want_message then good = string.find(hs.message, c.want_message, 1, true) ~= nil end
  if good then
    passed = passed + 1
    print("[       OK ] " .. c.name)
  else
    failed = failed + 1
    table.insert(failures, c.name)
    print(string.format("    want %s, got %s (%s)", c.want, ok and tostring(hs and hs.status) or "error",
      ok and tostring(hs and hs.message) or tostring(hs)))
    print("[  FAILED  ] " .. c.name)
  end
end
print(string.format("[==========] %d test(s) run.", #cases))
print(string.format("[  PASSED  ] %d test(s).", passed))
if failed > 0 then
  print(string.format("[  FAILED  ] %d test(s), listed below:", failed))
  for _, n in ipairs(failures) do print("[  FAILED  ] " .. n) end
  os.exit(1)
end
