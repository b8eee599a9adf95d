-- POST one JSON object per request: a lead {"title", "phones"} (the baseline view reads only "title").
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(here .. "common.lua")
C.setup_threads()

function init(args) C.init(args, "POST") end

function request()
  return wrk.format(nil, nil, nil, C.lead_json(C.next_n()))
end

done = C.done
