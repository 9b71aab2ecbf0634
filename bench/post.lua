-- wrk script: POST the signed VideoNest body, read from $BODY_FILE, with the signature from
-- $SIGNATURE (both written by `bench_server --write-request`). Used by bench/e2e.sh.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = "/webhook"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-VideoNest-Signature"] = os.getenv("SIGNATURE")
