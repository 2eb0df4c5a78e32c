-- POST /api/v1/transfers with a fresh Idempotency-Key per request.
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = "wrk-" .. tostring(tid) .. "-" .. tostring(os.time()) .. "-"
  wrk.method = "POST"
  wrk.path = "/api/v1/transfers"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
  wrk.body = '{"from_account":"' .. os.getenv("FROM") .. '","to_account":"' .. os.getenv("TO") .. '","amount":"0.01"}'
end
function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. counter
  return wrk.format()
end
