"""Redis connections from a URL, including a primary found through Redis Sentinel.

`redis://`, `rediss://` and `unix://` URLs go to redis-py as they are. A
Sentinel address names the sentinels and the monitored service, in the form
the `limits` library (RATELIMIT_STORAGE_URI) also reads:

    redis+sentinel://[:password@]host:port,host:port,host:port/service_name

Every new connection asks the sentinels which server is the primary now, so
after a failover the next connection goes to the promoted replica; a
connection to the old primary fails and is replaced, never reused.
"""
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_SCHEME = "redis+sentinel://"


def is_sentinel(url):
    return url.startswith(SENTINEL_SCHEME)


def parse_sentinel(url):
    """(sentinels as [(host, port)], service name, password or None) of a redis+sentinel:// URL.

    Raises ValueError when a part is missing.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    password = unquote(parts.password) if parts.password else None
    sentinels = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a sentinel must be host:port, got {item!r}")
        sentinels.append((host.strip("[]"), int(port)))
    service = parts.path.strip("/")
    if not service or "/" in service:
        raise ValueError("the URL must end with /<service name> of the monitored primary")
    return sentinels, service, password


def connection_pool(url, **options):
    """A redis-py ConnectionPool for `url`; `options` are connection options (timeouts, retry, client_name)."""
    if not is_sentinel(url):
        return redis.ConnectionPool.from_url(url, **options)
    sentinels, service, password = parse_sentinel(url)
    timeouts = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options}
    if password:
        options = dict(options, password=password)
    # The sentinels themselves answer quickly or are skipped for the next one.
    manager = Sentinel(sentinels, sentinel_kwargs=dict(timeouts, **({"password": password} if password else {})),
                       **options)
    return SentinelConnectionPool(service, manager, **options)


def client(url, **options):
    """A redis.Redis for `url` (see connection_pool)."""
    return redis.Redis(connection_pool=connection_pool(url, **options))
