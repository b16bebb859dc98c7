-- GCRA for a batch of checks, atomically, on the Redis clock (TIME, in microseconds).
--
-- KEYS[i]: the bucket of check i (its value is the theoretical arrival time, TAT).
-- ARGV[1]: "check" (all-or-nothing: consume checks take their cost only when no check of the
--          batch is limited) or "record" (charge every check, at most down to an empty bucket).
-- ARGV[2 + 4*(i-1) ..]: interval_us, burst, cost, peek (1: only say whether it would fit).
-- Returns 4 integers per check: allowed (1/0), remaining, reset_us, retry_after_us.
-- A bucket's key expires when the bucket is full again (its state is then the fresh state).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local n = #KEYS
local tats, nexts, out = {}, {}, {}
local all_ok = true

for i = 1, n do
  local base = 2 + (i - 1) * 4
  local interval = tonumber(ARGV[base])
  local burst = tonumber(ARGV[base + 1])
  local cost = tonumber(ARGV[base + 2])
  local peek = ARGV[base + 3] == '1'
  local limit = now + interval * burst
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  tats[i] = tat
  local next_tat = tat + interval * cost
  local row = (i - 1) * 4
  if mode == 'record' then
    next_tat = math.min(next_tat, limit)
    nexts[i] = next_tat
    out[row + 1], out[row + 2], out[row + 3], out[row + 4] =
      1, math.floor((limit - next_tat) / interval), next_tat - now, 0
  elseif next_tat <= limit then
    if peek then
      out[row + 1], out[row + 2], out[row + 3], out[row + 4] =
        1, math.floor((limit - tat) / interval), tat - now, 0
    else
      nexts[i] = next_tat
      out[row + 1], out[row + 2], out[row + 3], out[row + 4] =
        1, math.floor((limit - next_tat) / interval), next_tat - now, 0
    end
  else
    all_ok = false
    out[row + 1], out[row + 2], out[row + 3], out[row + 4] =
      0, math.floor((limit - tat) / interval), tat - now, next_tat - limit
  end
end

for i = 1, n do
  if nexts[i] then
    if all_ok or mode == 'record' then
      local ttl_ms = math.max(1, math.ceil((nexts[i] - now) / 1000))
      redis.call('SET', KEYS[i], string.format('%.0f', nexts[i]), 'PX', ttl_ms)
    else
      -- Another check limited the batch: nothing taken, report what is left now.
      local base = 2 + (i - 1) * 4
      local interval = tonumber(ARGV[base])
      local limit = now + interval * tonumber(ARGV[base + 1])
      local row = (i - 1) * 4
      out[row + 2] = math.floor((limit - tats[i]) / interval)
      out[row + 3] = tats[i] - now
    end
  end
end

return out
