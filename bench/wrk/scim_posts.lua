-- POST /scim/v2/Users with wrk: each request a new user (TAG and a number in its
-- userName). Once USERS are answered, writes "answered N created C seconds S" (S from
-- the first request to that answer) and stops; wrk itself runs to its -d, so the bench
-- ends it on that line. Run with -t1 (one thread: one count). Arguments: TAG USERS.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_usec; } timeval;
  int gettimeofday(timeval *tv, void *tz);
]]
local now_tv = ffi.new("timeval")

local function now()
  ffi.C.gettimeofday(now_tv, nil)
  return tonumber(now_tv.tv_sec) + tonumber(now_tv.tv_usec) / 1e6
end

local tag, wanted = "wrk", 10000
local sent, answered, created, started = 0, 0, 0, nil

function init(args)
  tag, wanted = args[1], tonumber(args[2])
end

function request()
  started = started or now()
  sent = sent + 1
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
      .. '"userName":"scim-%s-%d@bench-scim.example","externalId":"%s-%d",'
      .. '"name":{"givenName":"Given%d","familyName":"Family%d"}}',
    tag, sent, tag, sent, sent, sent % 997)
  return wrk.format("POST", "/scim/v2/Users", nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status == 201 then
    created = created + 1
  else
    io.write("first-error " .. status .. " " .. body .. "\n")
    io.flush()
    wrk.thread:stop()
  end
  if answered == wanted then
    io.write(string.format("answered %d created %d seconds %.3f\n",
      answered, created, now() - started))
    io.flush()
    wrk.thread:stop()
  end
end
