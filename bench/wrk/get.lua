-- GET the URL given to wrk with the API token (the leads list).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(here .. "common.lua")
C.setup_threads()

function init(args) C.init(args, "GET") end

done = C.done
