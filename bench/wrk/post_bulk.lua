-- POST {"items": [...]} with `batch` unique leads per request (the bulk endpoint).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(here .. "common.lua")
C.setup_threads()

function init(args) C.init(args, "POST") end

function request()
  local parts = {}
  for i = 1, batch do
    parts[i] = C.lead_json(C.next_n())
  end
  return wrk.format(nil, nil, nil, '{"items":[' .. table.concat(parts, ",") .. "]}")
end

done = C.done
