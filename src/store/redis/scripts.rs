//! The Redis store's Lua scripts: every operation that reads and writes in one step
//! (single use, counters, compare-and-set), so that it is atomic across replicas. Each
//! takes the store clock's `now` as an argument; values are framed as `super` says.

use ::redis::Script;

/// Lua helpers every script starts with, for a framed value in either frame (`old`:
/// the 16-byte one of earlier releases, whose first byte is a digit): its expiry,
/// whether it is live, whether it is used, marking it used in place (`SETRANGE`, which
/// keeps the TTL), its payload; and `head`, the frame of an unused value expiring at
/// `exp` (clamped to six bytes), for the values the scripts write.
const PRELUDE: &str = r"
local function old(v) return string.byte(v, 1) < 128 end
local function exp_of(v)
  if old(v) then return tonumber(string.sub(v, 1, 15)) end
  local e = 0
  for i = 2, 7 do e = e * 256 + string.byte(v, i) end
  return e
end
local function live(v, now) return v and exp_of(v) > now end
local function used(v)
  if old(v) then return string.sub(v, 16, 16) == '1' end
  return string.byte(v, 1) == 129
end
local function use(k, v)
  if old(v) then redis.call('SETRANGE', k, 15, '1') else redis.call('SETRANGE', k, 0, '\129') end
end
local function body(v) return string.sub(v, old(v) and 17 or 8) end
local function head(exp)
  exp = math.min(math.max(exp, 0), 281474976710655)
  local b = {}
  for i = 6, 1, -1 do b[i] = exp % 256; exp = math.floor(exp / 256) end
  return string.char(128, b[1], b[2], b[3], b[4], b[5], b[6])
end
";

/// `KEYS[1]` a code, `KEYS[2]` where its first redemption's ids go, `KEYS[3]` (when
/// given) where its first refresh token goes; `ARGV[1]` now, `ARGV[2]` the ids,
/// `ARGV[3]` and `ARGV[4]` that token's framed value and ttl (ms). Nil when unknown,
/// else `{used_before, value, ids}`; the refresh token is stored by the first use only.
const REDEEM_CODE: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if not live(v, now) then return false end
if used(v) then
  return {1, v, redis.call('GET', KEYS[2]) or ''}
end
use(KEYS[1], v)
redis.call('SET', KEYS[2], ARGV[2], 'PX', math.max(1, exp_of(v) - now))
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
return {0, v, ARGV[2]}
";

/// `KEYS[1]` a single-use value, `ARGV[1]` now. Nil when unknown, else
/// `{used_before, value}`; marks it used.
const USE_ONCE: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if not live(v, now) then return false end
local was = used(v)
if not was then use(KEYS[1], v) end
return {was and 1 or 0, v}
";

/// `KEYS[1]` a refresh token, `KEYS[2]` its successor's key; `ARGV[1]` now, `ARGV[2]`
/// the successor's framed value, `ARGV[3]` its ttl (ms). As `USE_ONCE`; the successor
/// is stored only by the first use.
const ROTATE: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if not live(v, now) then return false end
local was = used(v)
if not was then
  use(KEYS[1], v)
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return {was and 1 or 0, v}
";

/// `KEYS[1]` a client's not-before; `ARGV` now, the time, the ttl (ms). The later time
/// and the later expiry win.
const SET_NOT_BEFORE: &str = r"
local now = tonumber(ARGV[1])
local at = tonumber(ARGV[2])
local exp = now + tonumber(ARGV[3])
local v = redis.call('GET', KEYS[1])
if live(v, now) then
  exp = math.max(exp, exp_of(v))
  at = math.max(at, tonumber(body(v)))
end
redis.call('SET', KEYS[1], head(exp) .. string.format('%.0f', at), 'PX', math.max(1, exp - now))
";

/// `KEYS[1]` a counter; `ARGV` now, the window (ms). Returns `{count, ms left}`.
const ADD_FAILURE: &str = r"
local now = tonumber(ARGV[1])
local exp = now + tonumber(ARGV[2])
local count = 1
local v = redis.call('GET', KEYS[1])
if live(v, now) then
  exp = exp_of(v)
  count = tonumber(body(v)) + 1
end
redis.call('SET', KEYS[1], head(exp) .. string.format('%.0f', count), 'PX', math.max(1, exp - now))
return {count, exp - now}
";

/// `KEYS[1]` a counter, `ARGV[1]` now: one less, never below zero, same window.
const TAKE_BACK: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if not live(v, now) then return 0 end
local count = tonumber(body(v))
if count > 0 then
  redis.call('SET', KEYS[1], head(exp_of(v)) .. string.format('%.0f', count - 1), 'KEEPTTL')
end
return 0
";

/// `KEYS[1]` a user code, `KEYS[2]` its device code; `ARGV` now, the ttl (ms), the two
/// values. Stores both only when the user code is free: 1, else 0.
const PUT_DEVICE: &str = r"
local now = tonumber(ARGV[1])
if live(redis.call('GET', KEYS[1]), now) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2])
return 1
";

/// `KEYS[1]` a user code; `ARGV` now, the device key's prefix. Nil, or
/// `{device id, device value}`.
const DEVICE_BY_USER: &str = r"
local now = tonumber(ARGV[1])
local u = redis.call('GET', KEYS[1])
if not live(u, now) then return false end
local id = body(u)
local d = redis.call('GET', ARGV[2] .. id)
if not live(d, now) then return false end
return {id, d}
";

/// `KEYS[1]`; `ARGV` the value read, the value to write. Writes (keeping the TTL) only
/// when the key still holds what was read: 1, else 0.
const COMPARE_AND_SET: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
";

/// `KEYS[1]` a name; `ARGV` now, until (both ms). 1 when nothing live held it (and
/// it is now held until then), else 0.
const REMEMBER_ONCE: &str = r"
local now = tonumber(ARGV[1])
local untl = tonumber(ARGV[2])
if live(redis.call('GET', KEYS[1]), now) then return 0 end
if untl <= now then return 1 end
redis.call('SET', KEYS[1], head(untl), 'PX', untl - now)
return 1
";

/// `KEYS[1]` a session index (a sorted set of sids scored by expiry, ms); `ARGV` now,
/// the sid, its expiry, the cap. Drops the expired, adds the sid (a later expiry
/// replaces an earlier one), drops those that expire first past the cap, and makes
/// the set expire with its latest member.
const INDEX_SESSION: &str = r"
local now = tonumber(ARGV[1])
local untl = tonumber(ARGV[3])
if untl <= now then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not held or tonumber(held) < untl then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
end
local cap = math.max(1, tonumber(ARGV[4]))
local n = redis.call('ZCARD', KEYS[1])
if n > cap then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1) end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.max(1, tonumber(top[2]) - now)))
return 1
";

/// `KEYS[1]` a shared secret, `ARGV[1]` a fresh one: the one stored, storing the fresh
/// one if there was none.
const SHARED_SECRET: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// The store's scripts, hashed once (`EVALSHA`, loaded on first use).
pub(super) struct Scripts {
    pub(super) redeem_code: Script,
    pub(super) use_once: Script,
    pub(super) rotate: Script,
    pub(super) set_not_before: Script,
    pub(super) add_failure: Script,
    pub(super) take_back: Script,
    pub(super) put_device: Script,
    pub(super) device_by_user: Script,
    pub(super) compare_and_set: Script,
    pub(super) shared_secret: Script,
    pub(super) remember_once: Script,
    pub(super) index_session: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            redeem_code: script(REDEEM_CODE),
            use_once: script(USE_ONCE),
            rotate: script(ROTATE),
            set_not_before: script(SET_NOT_BEFORE),
            add_failure: script(ADD_FAILURE),
            take_back: script(TAKE_BACK),
            put_device: script(PUT_DEVICE),
            device_by_user: script(DEVICE_BY_USER),
            compare_and_set: script(COMPARE_AND_SET),
            shared_secret: script(SHARED_SECRET),
            remember_once: script(REMEMBER_ONCE),
            index_session: script(INDEX_SESSION),
        }
    }
}
