-- POST /api/study-cards/{id}/rate on a random approved card; ids come from the file in BENCH_IDS.
package.path = package.path .. ";" .. os.getenv("BENCH_WRK_DIR") .. "/?.lua"
local common = require("common")
local headers, ids
local outcomes = {'{"outcome":"correct"}', '{"outcome":"unsure"}', '{"outcome":"wrong"}', '{"outcome":"암"}'}

init = function(args)
  headers = common.headers()
  ids = common.read_lines(os.getenv("BENCH_IDS"))
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("POST", "/api/study-cards/" .. id .. "/rate", headers, outcomes[math.random(#outcomes)])
end

done = common.done
