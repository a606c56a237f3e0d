-- wrk script: PUT the items of a prepared file ("form-encoded documentId<TAB>item JSON" per line) in turn from
-- every connection; prints throughput and latency percentiles as JSON at the end (run.sh adds MB/s).
--   wrk -t2 -c64 -d10s -s bench/put.lua http://127.0.0.1:8080 -- items.tsv KEY SOURCE_ID
local requests = {}
local counter = 0

function init(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[2]}
  local prefix = "/push/v1/organizations/default/sources/" .. args[3] .. "/documents?documentId="
  for line in io.lines(args[1]) do
    local id, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("PUT", prefix .. id, headers, body)
  end
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests_)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"benchmark":"put","requests":%d,"seconds":%.2f,"requests_per_s":%.1f,"errors":%d,"p50_ms":%.2f,"p99_ms":%.2f,"p999_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, seconds, summary.requests / seconds, errors,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
