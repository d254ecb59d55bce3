-- wrk script for bench/http_load.py: POST the body in the file named by W1_BODY.
local file = io.open(os.getenv("W1_BODY"), "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
