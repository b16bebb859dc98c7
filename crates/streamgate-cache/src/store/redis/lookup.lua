-- Looks an entry up. KEYS[1]: the path's generation; KEYS[2]: the entry.
-- Returns {} when the path has no generation (nothing of it is stored), {generation} on a miss
-- (no entry, or one tagged with an older generation: invalidated), and
-- {generation, entry, milliseconds left} on a hit.
local generation = redis.call('GET', KEYS[1])
if not generation then
  return {}
end
local entry = redis.call('GET', KEYS[2])
if not entry or string.sub(entry, 1, 16) ~= generation then
  return {generation}
end
return {generation, entry, redis.call('PTTL', KEYS[2])}
