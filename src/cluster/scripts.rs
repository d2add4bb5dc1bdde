//! The Lua scripts that make each step on a robot's shared state atomic in Redis.
//!
//! Every time is the Redis server's (`TIME`, milliseconds), never a replica's clock. The
//! keys of one robot share the robot's name as their hash tag, so a script's keys sit in
//! one Redis Cluster slot. A robot's keys:
//!
//! - `sends`: sorted set of the sends started in the current window, scored by start
//!   time, named `REPLICA:NANOS` after the replica and its own clock, so that a replica
//!   uploading its sends again overwrites rather than adds them;
//! - `members`: sorted set of the replicas that reached Redis lately, scored by when;
//! - `pause`: present while DingTalk's rate-limit answer pauses the robot;
//! - `epoch`: present as long as Redis has kept its data; when a script finds it missing
//!   (first use, or Redis restarted empty or was flushed) it sets `resync`;
//! - `resync`: for one membership lifetime after that, sends wait unless every replica
//!   has uploaded its recent sends again.

use redis::Script;

/// Shared by every robot script: KEYS are sends, members, pause, epoch, resync.
const PRELUDE: &str = r"
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function check_epoch(member_ttl)
  if redis.call('SET', KEYS[4], now, 'NX') then
    redis.call('SET', KEYS[5], '1', 'PX', member_ttl)
  end
end
";

/// ARGV: replica, membership lifetime ms, window ms, then (age ms, name) of each send the
/// replica started within the window. Uploads them, renews the membership; returns how
/// many replicas are members.
const REGISTER: &str = r"
local replica, member_ttl, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
check_epoch(member_ttl)
for i = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'GT', now - tonumber(ARGV[i]), ARGV[i + 1])
end
if #ARGV >= 4 then redis.call('PEXPIRE', KEYS[1], window * 2) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - member_ttl)
redis.call('ZADD', KEYS[2], now, replica)
redis.call('PEXPIRE', KEYS[2], member_ttl * 2)
return redis.call('ZCARD', KEYS[2])
";

/// ARGV: replica, membership lifetime ms, window ms, count, replicas, share, send name.
/// Records a send now if the shared window has room for it. Each member missing from the
/// expected `replicas` may be sending on its own share while it cannot reach Redis, so
/// the window keeps that share free for it.
///
/// Returns {status, wait ms, room, members, paused ms}: status 0 recorded, 1 wait, 2 the
/// replica is no member (it must register first).
const RESERVE: &str = r"
local replica, member_ttl, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local count, replicas, share = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
check_epoch(member_ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - member_ttl)
if not redis.call('ZSCORE', KEYS[2], replica) then return {2, 0, 0, 0, 0} end
redis.call('ZADD', KEYS[2], now, replica)
local members = redis.call('ZCARD', KEYS[2])
if members < replicas then
  local hold = redis.call('PTTL', KEYS[5])
  if hold > 0 then return {1, hold, 0, members, 0} end
end
local limit = math.max(count - math.max(replicas - members, 0) * share, 1)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local paused = math.max(redis.call('PTTL', KEYS[3]), 0)
local ready = now + paused
if n >= limit then
  local blocking = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  ready = math.max(ready, tonumber(blocking[2]) + window)
end
if n > 0 and limit - n <= math.max(math.floor(limit / 4), 1) then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  ready = math.max(ready, tonumber(last[2]) + math.floor(window / limit))
end
if ready > now then return {1, ready - now, math.max(limit - n, 0), members, paused} end
redis.call('ZADD', KEYS[1], now, ARGV[7])
redis.call('PEXPIRE', KEYS[1], window * 2)
return {0, 0, limit - n - 1, members, 0}
";

/// KEYS: pause. ARGV: pause ms. Pauses the robot for every replica, unless it is already
/// paused for longer.
const PAUSE: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
";

/// KEYS: claim. ARGV: this replica's pending value, pending lifetime ms. Returns 0 when
/// this replica now holds the claim, 1 when the notification is queued already, 2 when
/// another replica is queueing it.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if redis.call('GET', KEYS[1]) == 'queued' then return 1 end
return 2
";

/// KEYS: claim. ARGV: this replica's pending value. Drops the claim if it is still this
/// replica's pending one.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS: claim, the last claim of its group. ARGV: window ms. Marks the notification
/// queued, as its group's last; the group's claim before, if another, is dropped: it is no
/// duplicate any more. (The dropped key is not in KEYS: standalone Redis only.)
const CONFIRM: &str = r"
redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[1])
local previous = redis.call('SET', KEYS[2], KEYS[1], 'PX', ARGV[1], 'GET')
if previous and previous ~= KEYS[1] then redis.call('DEL', previous) end
return 0
";

/// The compiled scripts; each is sent by its SHA1 and loaded again when Redis lost it.
pub(super) struct Scripts {
    pub(super) register: Script,
    pub(super) reserve: Script,
    pub(super) pause: Script,
    pub(super) claim: Script,
    pub(super) confirm: Script,
    pub(super) release: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            register: Script::new(&format!("{PRELUDE}{REGISTER}")),
            reserve: Script::new(&format!("{PRELUDE}{RESERVE}")),
            pause: Script::new(PAUSE),
            claim: Script::new(CLAIM),
            confirm: Script::new(CONFIRM),
            release: Script::new(RELEASE),
        }
    }
}
