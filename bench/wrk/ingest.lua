-- POST /ingest/study/attempts: 100 attempts on random published questions, a fresh session uuid each time.
package.path = package.path .. ";" .. os.getenv("BENCH_WRK_DIR") .. "/?.lua"
local common = require("common")
local headers, pub_ids
local counter = 0
local tag
local per_request = tonumber(os.getenv("BENCH_ATTEMPTS") or "100")

init = function(args)
  headers = common.headers()
  pub_ids = common.read_lines(os.getenv("BENCH_IDS"))
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  tag = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

request = function()
  counter = counter + 1
  local parts = {}
  for i = 1, per_request do
    local choice = math.random(1, 5)
    if choice == 5 then
      parts[i] = string.format('{"question_pub_id":"%s","is_unsure":true}', pub_ids[math.random(#pub_ids)])
    else
      parts[i] = string.format('{"question_pub_id":"%s","selected_choice":%d}', pub_ids[math.random(#pub_ids)], choice)
    end
  end
  local body = string.format('{"client_session_uuid":"bench-%s-%d","attempts":[%s]}', tag, counter,
    table.concat(parts, ","))
  return wrk.format("POST", "/ingest/study/attempts", headers, body)
end

done = common.done
