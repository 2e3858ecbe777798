-- wrk script of bench/api/run.sh. Environment:
--   RAGD_BENCH_MODE  health | search | search-keyword   (default health)
--   RAGD_BENCH_KEY   API key, sent as "Authorization: Bearer KEY" when set
-- Prints one "RESULT ..." line that run.sh turns into the table.

local mode = os.getenv("RAGD_BENCH_MODE") or "health"
local key = os.getenv("RAGD_BENCH_KEY")

-- Questions about the demo corpus (corpus/), rotated so caches do not see one query.
local queries = {
    "termination for convenience notice",
    "interest on late payments",
    "confidentiality obligations after termination",
    "metformin dose with kidney impairment",
    "infusion pump occlusion alarm",
    "discharge medications and follow-up",
    "how long is personal data retained",
    "serious adverse events reporting deadline",
}
local n = 0

request = function()
    local headers = {}
    if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
    if mode == "health" then return wrk.format("GET", "/health", headers) end
    n = n + 1
    local q = queries[(n % #queries) + 1]
    local m = mode == "search-keyword" and "keyword" or "hybrid"
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/v1/search", headers,
                      '{"query": "' .. q .. '", "k": 5, "mode": "' .. m .. '"}')
end

done = function(summary, latency, requests)
    local e = summary.errors
    local seconds = summary.duration / 1e6
    io.write(string.format(
        "RESULT mode=%s requests=%d seconds=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f " ..
        "max_ms=%.3f errors=%d non_2xx=%d socket_errors=%d\n",
        mode, summary.requests, seconds, summary.requests / seconds,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000,
        e.status + e.connect + e.read + e.write + e.timeout, e.status,
        e.connect + e.read + e.write + e.timeout))
end
