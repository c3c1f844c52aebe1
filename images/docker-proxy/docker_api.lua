-- What Airflow may ask of the Docker API through the proxy (HAProxy runs this for every request).
--
-- Path rules alone cannot make a container create safe: the danger (Privileged,
-- host mounts, host namespaces, added capabilities) is in the JSON body, and the
-- daemon's Go decoder matches keys case-insensitively (also by Unicode folding:
-- "Bind\u017f" is Binds) and reads \u escapes. So the body is parsed here with
-- lua-cjson and judged by allowlist: a key not listed is refused, whatever its
-- spelling; a listed key whose value could reach the host must be empty.
local cjson = require("cjson")

-- Optional /v1.NN prefix: 1.24 and newer only (older versions accept a HostConfig
-- in the body of /start, which this check does not read).
local VERSION = "^/v1%.(%d+)(/.*)$"
local MIN_MINOR_VERSION = 24

-- {method, Lua pattern of the path without the version prefix}
local ROUTES = {
  {"GET", "^/_ping$"}, {"HEAD", "^/_ping$"}, {"GET", "^/version$"},
  {"GET", "^/images/json$"}, {"GET", "^/images/[^/]+/json$"},
  {"POST", "^/containers/create$"},
  {"GET", "^/containers/json$"}, {"GET", "^/containers/[%w_.-]+/json$"},
  {"POST", "^/containers/[%w_.-]+/start$"}, {"POST", "^/containers/[%w_.-]+/attach$"},
  {"POST", "^/containers/[%w_.-]+/wait$"}, {"GET", "^/containers/[%w_.-]+/logs$"},
  {"POST", "^/containers/[%w_.-]+/stop$"}, {"POST", "^/containers/[%w_.-]+/kill$"},
  {"DELETE", "^/containers/[%w_.-]+$"},
}

-- Top-level keys of a create body (lower case) that cannot reach the host.
local CREATE_KEYS = {
  hostname = true, domainname = true, user = true, attachstdin = true, attachstdout = true,
  attachstderr = true, exposedports = true, tty = true, openstdin = true, stdinonce = true,
  env = true, cmd = true, healthcheck = true, argsescaped = true, image = true, volumes = "empty",
  workingdir = true, entrypoint = true, networkdisabled = true, macaddress = true,
  onbuild = true, labels = true, stopsignal = true, stoptimeout = true, shell = true,
  hostconfig = "hostconfig", networkingconfig = true,
}

-- HostConfig keys (lower case): true = any value; "empty" = absent, null, false, "" or {};
-- a function = judged by it (returns why it is refused, or nil).
local function not_shared(value)
  if value == nil or value == cjson.null or value == "" or value == "private"
      or value == "default" or value == "none" then
    return nil
  end
  return "only a private namespace is allowed, not " .. tostring(value)
end

local function own_network(value)
  if type(value) ~= "string" then return "NetworkMode must be a string" end
  local lowered = value:lower()
  if lowered == "host" or lowered:find("^container:") then
    return "NetworkMode " .. value .. " shares another namespace"
  end
  return nil
end

local HOST_CONFIG_KEYS = {
  autoremove = true, memory = true, memoryswap = true, memoryreservation = true,
  memoryswappiness = true, nanocpus = true, cpushares = true, cpuperiod = true, cpuquota = true,
  cpusetcpus = true, pidslimit = true, shmsize = true, dns = true, dnssearch = true,
  dnsoptions = true, extrahosts = true, logconfig = true, restartpolicy = true, ulimits = true,
  readonlyrootfs = true, init = true, oomkilldisable = true, consolesize = true,
  networkmode = own_network,
  ipcmode = not_shared, pidmode = not_shared, utsmode = not_shared, usernsmode = not_shared,
  cgroupnsmode = not_shared,
  privileged = "empty", capadd = "empty", binds = "empty", mounts = "empty",
  volumesfrom = "empty", devices = "empty", devicerequests = "empty",
  devicecgrouprules = "empty", securityopt = "empty", sysctls = "empty", tmpfs = "empty",
  links = "empty", portbindings = "empty", publishallports = "empty", cgroupparent = "empty",
  cgroup = "empty", runtime = "empty", volumedriver = "empty", groupadd = "empty",
  maskedpaths = "empty", readonlypaths = "empty",
}

local function is_empty(value)
  if value == nil or value == cjson.null or value == false or value == "" then return true end
  return type(value) == "table" and next(value) == nil
end

-- Why an object is refused under a key allowlist, or nil.
local function judge(object, allowed, where)
  if type(object) ~= "table" then return where .. " must be a JSON object" end
  for key, value in pairs(object) do
    if type(key) ~= "string" then return where .. " has a key that is not a string" end
    local rule = allowed[key:lower()]
    if rule == nil then
      return where .. "." .. key .. " is not allowed"
    elseif rule == "empty" and not is_empty(value) then
      return where .. "." .. key .. " must be empty"
    elseif rule == "hostconfig" and not is_empty(value) then
      local why = judge(value, HOST_CONFIG_KEYS, where .. "." .. key)
      if why then return why end
    elseif type(rule) == "function" then
      local why = rule(value)
      if why then return where .. "." .. key .. ": " .. why end
    end
  end
  return nil
end

-- Why a create body is refused, or nil.
local function judge_create(body)
  local ok, parsed = pcall(cjson.decode, body or "")
  if not ok then return "the create request's body is not JSON HAProxy could read whole" end
  return judge(parsed, CREATE_KEYS, "create")
end

local function allowed_route(method, path)
  for _, route in ipairs(ROUTES) do
    if method == route[1] and path:find(route[2]) then return true end
  end
  return false
end

-- Why the request is refused, or nil.
local function refusal(txn)
  local method, path = txn.sf:method(), txn.sf:path()
  local minor, rest = path:match(VERSION)
  if minor then
    if tonumber(minor) < MIN_MINOR_VERSION then
      return "API version 1." .. minor .. " is older than 1." .. MIN_MINOR_VERSION
    end
    path = rest
  end
  if not allowed_route(method, path) then
    return method .. " " .. path .. " is not among the calls DockerOperator needs"
  end
  if path == "/containers/create" then
    return judge_create(txn.sf:req_body())
  end
  if method == "POST" and path:find("/start$") and (txn.sf:req_body_len() or 0) > 0 then
    return "a start request carries no body"
  end
  return nil
end

core.register_action("docker_api_check", {"http-req"}, function(txn)
  local why = refusal(txn)
  if why == nil then return end
  core.Warning("docker-proxy refused: " .. why)
  local reply = txn:reply({
    status = 403,
    headers = {["content-type"] = {"application/json"}},
    body = cjson.encode({message = "refused by the stack's Docker API proxy: " .. why}) .. "\n",
  })
  txn:done(reply)
end)
