-- wrk script of bench/run: every request a new lead whose idempotency key is unique, the body
-- being args[1] .. "<thread>-<counter>" .. args[2], the Accept header args[3]
-- (bench/workload.py's wrk_arguments).

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local before, after
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  before = args[1] .. thread_id .. "-"
  after = args[2]
  headers["Accept"] = args[3]
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, headers, before .. counter .. after)
end
