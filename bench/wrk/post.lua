-- wrk script: POSTs unique ~1 KiB CloudEvents, signed the way each target
-- wants, optionally paced.
--   MODE=synccf   Standard Webhooks headers (webhook-id/-timestamp/-signature)
--   MODE=webhook  X-Signature: sha256=<hex HMAC of the body> (adnanh/webhook)
--   MODE=plain    the same Standard Webhooks headers, which nginx ignores
--   SECRET=whsec_...  RATE=<requests/s in total, 0 = as fast as possible>  CONNS=<wrk -c>
--   THREADS=<wrk -t>
--   IDS=seq (default: prefix-counter, ids that sort in arrival order, like
--       KSUIDs and ULIDs) or IDS=random (UUID-like: no order, every dedupe
--       index insert lands on a random page)
-- HMAC comes from libcrypto through LuaJIT's FFI, so signing costs what it
-- costs a real sender, not a Lua implementation's slowness.
local ffi = require("ffi")
ffi.cdef [[
const void *EVP_sha256(void);
unsigned char *HMAC(const void *md, const void *key, int key_len, const unsigned char *d, size_t n,
                    unsigned char *out, unsigned int *out_len);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
struct synccf_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct synccf_timespec *ts);
]]
local crypto = ffi.load("libcrypto.so.3")

local mode = os.getenv("MODE") or "synccf"
local secret = os.getenv("SECRET") or "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"
local rate = tonumber(os.getenv("RATE") or "0")
local conns = tonumber(os.getenv("CONNS") or "64")
local nthreads = tonumber(os.getenv("THREADS") or "2")
local random_ids = os.getenv("IDS") == "random"

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local key, keylen
local md = ffi.new("unsigned char[32]")
local mdlen = ffi.new("unsigned int[1]")
local b64 = ffi.new("unsigned char[64]")

function init(args)
  if mode ~= "webhook" then
    local enc = (mode == "synccf" and secret or "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"):sub(7)
    local buf = ffi.new("unsigned char[?]", #enc)
    local n = crypto.EVP_DecodeBlock(buf, enc, #enc)
    local pad = select(2, enc:gsub("=", ""))
    key, keylen = buf, n - pad
  else
    key, keylen = secret, #secret
  end
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("bench-%d-%d-%d", os.time(), tid, math.random(1, 1e9))
end

local pad = string.rep("x", 700)

local function hmac(msg)
  crypto.HMAC(crypto.EVP_sha256(), key, keylen, msg, #msg, md, mdlen)
end

function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  if random_ids then
    id = string.format("%08x-%04x-4%03x-%04x-%06x%06x", math.random(0, 0x7fffffff), math.random(0, 0xffff),
      math.random(0, 0xfff), math.random(0, 0xffff), math.random(0, 0xffffff), counter % 0x1000000)
  end
  local body = '[{"specversion":"1.0","id":"' .. id .. '","source":"/bench","type":"dev.synccf.bench",' ..
    '"subject":"marketing-site","time":"2026-11-20T10:00:00Z","datacontenttype":"application/json",' ..
    '"synccfvia":"worker","data":{"n":' .. counter .. ',"pad":"' .. pad .. '"}}]'
  local headers = { ["Content-Type"] = "application/cloudevents-batch+json" }
  -- Every target gets the same signed request, so the client costs the same
  -- whichever server it measures; nginx ignores the headers.
  local ts = tostring(os.time())
  hmac(id .. "." .. ts .. "." .. body)
  crypto.EVP_EncodeBlock(b64, md, 32)
  headers["webhook-id"] = id
  headers["webhook-timestamp"] = ts
  headers["webhook-signature"] = "v1," .. ffi.string(b64)
  if mode == "webhook" then
    hmac(body)
    local hex = {}
    for i = 0, 31 do hex[#hex + 1] = string.format("%02x", md[i]) end
    headers["X-Signature"] = "sha256=" .. table.concat(hex)
  end
  return wrk.format("POST", nil, headers, body)
end

-- Pacing. wrk asks delay() how long a connection waits before its next
-- request, after the previous answer. A fixed delay of conns/rate would add
-- the server's latency to every cycle and send fewer requests than asked
-- (at 2 ms latency and a 5 ms delay, 30% fewer). Instead each thread keeps a
-- schedule of send times, one every THREADS/RATE seconds, and a connection
-- waits for the next free slot: the rate sent is the rate asked as long as a
-- connection is free at each slot. A slot missed during a stall is sent at
-- once, up to 100 ms of backlog, so a stall shows in the latencies instead
-- of quietly lowering the load.
local ts = ffi.new("struct synccf_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local slot

if rate > 0 then
  local interval = nthreads * 1000 / rate
  function delay()
    local now = now_ms()
    if not slot or slot < now - 100 then slot = now end
    slot = slot + interval
    -- wrk takes whole milliseconds; the schedule keeps the fractions.
    return math.max(0, math.floor(slot - now + 0.5))
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(99), latency.max))
end
