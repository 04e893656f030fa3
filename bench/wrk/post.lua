-- wrk script: POSTs unique ~1 KiB CloudEvents, signed the way each target
-- wants, optionally paced.
--   MODE=synccf   Standard Webhooks headers (webhook-id/-timestamp/-signature)
--   MODE=webhook  X-Signature: sha256=<hex HMAC of the body> (adnanh/webhook)
--   MODE=plain    the same Standard Webhooks headers, which nginx ignores
--   SECRET=whsec_...  RATE=<requests/s in total, 0 = as fast as possible>  CONNS=<wrk -c>
-- HMAC comes from libcrypto through LuaJIT's FFI, so signing costs what it
-- costs a real sender, not a Lua implementation's slowness.
local ffi = require("ffi")
ffi.cdef [[
const void *EVP_sha256(void);
unsigned char *HMAC(const void *md, const void *key, int key_len, const unsigned char *d, size_t n,
                    unsigned char *out, unsigned int *out_len);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
]]
local crypto = ffi.load("libcrypto.so.3")

local mode = os.getenv("MODE") or "synccf"
local secret = os.getenv("SECRET") or "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"
local rate = tonumber(os.getenv("RATE") or "0")
local conns = tonumber(os.getenv("CONNS") or "64")

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

if rate > 0 then
  function delay()
    return conns * 1000 / rate
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(99), latency.max))
end
