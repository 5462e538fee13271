"""ClusterLimits in Redis: one Lua script per admission, so a check and its mark are one atomic step."""

from __future__ import annotations

from typing import Final

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from studyshelf.limits.interface import LimitsUnavailable, Verdict

# KEYS: the seen set, the window counter; ARGV: item, limit, seen ttl, window ttl.
_ADMIT: Final = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 2 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"""
# KEYS: the seen set, the window counter; ARGV: item. Only an item still marked gives its count back.
_WITHDRAW: Final = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""
_VERDICTS: Final = {0: Verdict.ADMITTED, 1: Verdict.REPEATED, 2: Verdict.OVER_LIMIT}


class RedisClusterLimits:
    """Keys are `{prefix}{key}`; callers put a hash tag (`{…}`) in keys one script uses together."""

    def __init__(self, url: str, *, prefix: str, timeout: float = 2.0) -> None:
        # No retries: a command whose answer was lost may have run, and running it again would count twice.
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self.prefix = prefix
        self._admit = self.client.register_script(_ADMIT)
        self._withdraw = self.client.register_script(_WITHDRAW)

    def admit(self, *, seen: str, item: str, window: str, limit: int, seen_ttl: int, window_ttl: int) -> Verdict:
        keys = [self.prefix + seen, self.prefix + window]
        try:
            answer = self._admit(keys=keys, args=[item, limit, seen_ttl, window_ttl])
        except redis.RedisError as exc:
            raise LimitsUnavailable(str(exc)) from exc
        return _VERDICTS[int(answer)]

    def withdraw(self, *, seen: str, item: str, window: str) -> None:
        try:
            self._withdraw(keys=[self.prefix + seen, self.prefix + window], args=[item])
        except redis.RedisError as exc:
            raise LimitsUnavailable(str(exc)) from exc

    def close(self) -> None:
        self.client.close()
