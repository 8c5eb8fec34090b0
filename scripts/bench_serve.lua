-- wrk script for scripts/bench_serve.sh: POSTs the body in $BENCH_BODY with $BENCH_TOKEN,
-- optionally pausing $BENCH_DELAY_MS between a connection's requests (a paced load), and
-- prints one JSON line with the figures at the end.
local f = assert(io.open(os.getenv("BENCH_BODY"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "rps": %.1f, "p50_us": %d, "p99_us": %d, "max_us": %d, "errors": %d}\n',
    summary.requests, summary.requests / secs, latency:percentile(50), latency:percentile(99),
    latency.max, bad))
end
