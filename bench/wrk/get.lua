-- GET wrk.path (the URL given on the command line) with the auth header.
package.path = package.path .. ";" .. os.getenv("BENCH_WRK_DIR") .. "/?.lua"
local common = require("common")
local headers

init = function(args)
  headers = common.headers()
end

request = function()
  return wrk.format("GET", nil, headers)
end

done = common.done
