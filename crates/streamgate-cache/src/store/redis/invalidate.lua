-- Invalidates a path: gives it a new generation. KEYS[1]: the path's generation. ARGV[1]: the
-- new generation; ARGV[2]: the least it lives, in milliseconds (so that a response fetched
-- before the invalidation, whose lookup saw no generation, is refused when it comes back).
-- Entries tagged with the old generation are never served again and expire on their own.
local ttl = redis.call('PTTL', KEYS[1])
local least = tonumber(ARGV[2])
if ttl < least then
  ttl = least
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1
