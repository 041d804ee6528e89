-- wrk script for the sustained phase: every request is a new lead with a unique idempotency key
-- "<nonce>-t<thread>-<counter>". Arguments after `--`: nonce, source_key, and the rest of the
-- JSON body after the key (bench/workload.py's lead_body_tail(): `,"email":…}`), so the lead's
-- fields are written once, in bench/workload.py.
-- `done` prints one line "WRK_JSON {...}" that bench/phases/sustained.py parses (latencies in µs).

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

local counter = 0
local prefix, suffix
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

function init(args)
  local nonce = args[1] or "wrk"
  local source_key = args[2] or "bench-source"
  prefix = '{"source_key":"' .. source_key .. '","idempotency_key":"' .. nonce .. '-t'
    .. thread_id .. '-'
  suffix = '"' .. (args[3] or '}')
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, headers, prefix .. counter .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,'
      .. '"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9)))
end
