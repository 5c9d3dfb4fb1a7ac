-- wrk script of the peer benchmark: sends one fixed request and prints wrk's exact latency percentiles.
--
-- The request comes from files the harness writes before each run (environment variables):
--   WRK_METHOD   the HTTP method
--   WRK_BODY     a file holding the body
--   WRK_HEADERS  a file of "Name: value" lines (for Strait, a SigV4 signature made for this run)
-- At the end one line "WRKJSON {...}" reports requests, duration, errors and latency percentiles in µs.

local function read_file(path)
    local file = assert(io.open(path, "rb"))
    local content = file:read("*a")
    file:close()
    return content
end

wrk.method = os.getenv("WRK_METHOD")
wrk.body = read_file(os.getenv("WRK_BODY"))
for line in read_file(os.getenv("WRK_HEADERS")):gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
        '"write_errors": %d, "status_errors": %d, "timeouts": %d, "mean": %.1f, "p50": %d, "p90": %d, ' ..
        '"p99": %d, "p999": %d, "max": %d}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency.mean,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
        latency.max))
end
