-- Stores an entry, tagged with its path's generation. KEYS[1]: the path's generation;
-- KEYS[2]: the entry. ARGV[1]: the generation the lookup saw ('' when the path had none, '*'
-- when no lookup was made); ARGV[2]: a new generation, for a path that has none; ARGV[3]: the
-- TTL in milliseconds; ARGV[4]: the entry, without its tag.
-- Returns 1 when stored, 0 when the path's generation changed since the lookup (invalidated:
-- the response may predate the change).
local ttl = tonumber(ARGV[3])
local generation = redis.call('GET', KEYS[1])
if not generation then
  if ARGV[1] ~= '' and ARGV[1] ~= '*' then
    return 0
  end
  generation = ARGV[2]
  redis.call('SET', KEYS[1], generation, 'PX', ttl)
elseif ARGV[1] ~= '*' and ARGV[1] ~= generation then
  return 0
elseif redis.call('PTTL', KEYS[1]) < ttl then
  -- The generation outlives every entry tagged with it.
  redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('SET', KEYS[2], generation .. ARGV[4], 'PX', ttl)
return 1
