-- The global upstream budget of one provider kind: a token bucket with an AIMD rate,
-- atomic in one round trip (worker/budget.py explains the rules; Redis TIME is the clock,
-- so workers' clocks never matter).
--
-- KEYS[1]  the bucket hash: tokens, ts (last refill, s), rate (effective calls/s),
--          shrunk (time of the last decrease, s)
-- KEYS[2]  a booking key (a poll's "task:attempt"), or the bucket key itself for none
-- ARGV     mode ("take" | "shrink"), ceiling (configured calls/s), burst (capacity in
--          seconds of the effective rate), then for "take": reserve (the share of the
--          bucket's capacity that must stay after this call), horizon (how far ahead,
--          s, the call may book a slot; 0: never), booking TTL (s)
-- Returns  {status, wait, rate} as strings: status 1 = take now, 2 = booked (call in
--          `wait` s, already paid), 0 = denied (ask again in `wait` s); for "shrink",
--          {1, 0, rate}.
local DECREASE = 0.5       -- a rate-limit answer halves the rate ...
local FLOOR = 0.05         -- ... down to this share of the ceiling
local SHRINK_GAP = 1.0     -- one halving per second, whatever the number of 429s in it
local QUIET = 5.0          -- seconds without a rate-limit answer before the rate regrows
local INCREASE = 0.05      -- regrowth per quiet second, as a share of the ceiling
local EARLY = 0.05         -- a booked call may come this much before its slot (timers)
local LATE = 0.5           -- ... and this much after it

local mode = ARGV[1]
local ceiling = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'rate', 'shrunk')
local rate = math.min(tonumber(h[3]) or ceiling, ceiling)
local shrunk = tonumber(h[4]) or 0
local tokens = tonumber(h[1])
local ts = tonumber(h[2]) or now
if tokens == nil then tokens = math.max(1, ceiling * burst) end
local dt = math.max(0, now - ts)

local quiet_for = math.min(dt, now - shrunk - QUIET)
if quiet_for > 0 and rate < ceiling then
  rate = math.min(ceiling, rate + INCREASE * ceiling * quiet_for)
end
local capacity = math.max(1, rate * burst)
tokens = math.min(capacity, tokens + dt * rate)

local status, wait = 1, 0
if mode == 'shrink' then
  if now - shrunk >= SHRINK_GAP then
    rate = math.max(FLOOR * ceiling, rate * DECREASE)
    shrunk = now
    tokens = math.min(tokens, math.max(1, rate * burst))
  end
else
  local reserve = tonumber(ARGV[4]) * capacity
  local horizon = tonumber(ARGV[5])
  local slot = nil
  if KEYS[2] ~= KEYS[1] then slot = tonumber(redis.call('GET', KEYS[2])) end
  if slot ~= nil and now >= slot - EARLY then
    -- Paid when it was booked; a hop later than LATE lost its slot (calls bunched up
    -- behind a busy worker would exceed the rate) and asks afresh.
    redis.call('DEL', KEYS[2])
    if now > slot + LATE then slot = nil end
  end
  if slot ~= nil and now < slot - EARLY then
    status, wait = 2, slot - now  -- booked and paid, but not due yet (a duplicate hop)
  elseif slot ~= nil then
    status = 1
  elseif tokens - 1 >= reserve then
    tokens = tokens - 1
  elseif reserve <= 0 and tokens - 1 >= -rate * horizon then
    tokens = tokens - 1
    status, wait = 2, -tokens / rate
    if KEYS[2] ~= KEYS[1] then
      redis.call('SET', KEYS[2], tostring(now + wait), 'PX', math.floor((wait + tonumber(ARGV[6])) * 1000))
    end
  else
    local floor = reserve
    if reserve <= 0 then floor = -rate * horizon end
    status, wait = 0, (floor + 1 - tokens) / rate
  end
end

redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now),
  'rate', tostring(rate), 'shrunk', tostring(shrunk))
-- An idle provider's bucket goes away (it would be full again anyway).
redis.call('EXPIRE', KEYS[1], 3600)
return {tostring(status), tostring(wait), tostring(rate)}
