-- One publish of cluster mode, atomic in Redis: the namespace's next sequence number
-- (and its epoch, begun here when Redis has none: a Redis that lost its data starts a
-- new epoch, so older ids can never be mistaken for new ones), the event appended to
-- its channel's stream under that number (bounded by count and age), and the event
-- PUBLISHed to the nodes with its number and epoch.
--
-- KEYS[1]  the namespace's hash: field `e` the epoch, field `s` the last number
-- KEYS[2]  the channel's stream (entry id `<number>-0`, fields `p` payload, `t` ms)
-- ARGV[1]  the epoch to begin if there is none
-- ARGV[2]  the pub/sub channel the nodes listen on
-- ARGV[3]  the payload (opaque here)
-- ARGV[4]  most entries the stream keeps (0: no history, the stream is not written)
-- ARGV[5]  longest an entry is kept, in ms
-- Returns { number, epoch } and publishes "<number>:<epoch>:<payload>".

local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
-- '%d' prints every integer below 2^53 exactly ('..' would switch to exponents).
local number = string.format('%d', seq)

local max_len = tonumber(ARGV[4])
if max_len > 0 then
  local max_age = tonumber(ARGV[5])
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local id = number .. '-0'
  local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', max_len, id, 'p', ARGV[3], 't', now)
  if type(added) == 'table' and added.err then
    -- The stream holds numbers of an older epoch (its hash was lost, the stream was
    -- not): those entries can never be replayed, drop them.
    redis.call('DEL', KEYS[2])
    redis.call('XADD', KEYS[2], 'MAXLEN', max_len, id, 'p', ARGV[3], 't', now)
  end
  -- Entries past the age go, a few per publish, looked at only when the oldest is
  -- past it (the key's expiry takes a stream nobody publishes to).
  local function time_of(entry)
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 't' then return tonumber(fields[i + 1]) end
    end
    return nil
  end
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  local first_at = first and time_of(first)
  if first_at and first_at < now - max_age then
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 16)
    local keep_from = nil
    for _, entry in ipairs(oldest) do
      local at = time_of(entry)
      if at and at >= now - max_age then
        keep_from = entry[1]
        break
      end
    end
    if not keep_from then
      -- All of them are past the age: drop them, the rest goes at the next publishes.
      keep_from = string.match(oldest[#oldest][1], '^(%d+)-') .. '-1'
    end
    redis.call('XTRIM', KEYS[2], 'MINID', keep_from)
  end
  redis.call('PEXPIRE', KEYS[2], max_age)
end

redis.call('PUBLISH', ARGV[2], number .. ':' .. epoch .. ':' .. ARGV[3])
return { seq, epoch }
