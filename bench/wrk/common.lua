-- Shared by every wrk script: auth header from the environment, one JSON line of figures at the end.
local M = {}

function M.headers()
  local h = {}
  h["Authorization"] = os.getenv("BENCH_AUTH") or ""
  h["Content-Type"] = "application/json"
  h["Accept"] = "application/json"
  return h
end

function M.read_lines(path)
  local items = {}
  for line in io.lines(path) do
    if line ~= "" then items[#items + 1] = line end
  end
  return items
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end

return M
