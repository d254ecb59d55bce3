-- wrk script for bench/ehr.py: POST the body in the file BENCH_BODY names. With BENCH_TOKENS (a file of
-- bearer tokens, one a line), each request carries a token of its own, as a fresh token per call would:
-- the BENCH_THREADS threads take the lines in turn, so no token is sent twice (the service refuses a
-- replayed jti, and wrk counts the refusal as a non-2xx answer).
local body_file = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = body_file:read("*a")
body_file:close()
wrk.headers["Content-Type"] = "application/json"

local tokens = {}
local tokens_file = os.getenv("BENCH_TOKENS")
if tokens_file and tokens_file ~= "" then
  for line in io.lines(tokens_file) do
    tokens[#tokens + 1] = line
  end
end

local started = 0
function setup(thread)
  thread:set("offset", started)
  started = started + 1
end

if #tokens > 0 then
  function init(args)
    step = tonumber(os.getenv("BENCH_THREADS") or "1")
    following = offset + 1
  end

  function request()
    local token = tokens[following] or "all-tokens-used"
    following = following + step
    local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
    return wrk.format(nil, nil, headers, nil)
  end
end
