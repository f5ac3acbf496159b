-- Shared by every scenario: print one machine-readable line at the end of a run.
-- Fields: requests/s, p50 ms, p99 ms, non-2xx/3xx answers, socket errors.
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.status,
    errors))
end
