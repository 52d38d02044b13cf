"""redis_client: Sentinel addresses in REDIS_URL, read the way `limits` reads RATELIMIT_STORAGE_URI."""
import pytest
from redis.sentinel import SentinelConnectionPool

import app as app_module
import config
import redis_client
from support import app_config


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_password():
    url = "redis+sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380,redis-3:26381/mymaster"
    assert redis_client.parse_sentinel(url) == (
        [("10.0.0.1", 26379), ("::1", 26380), ("redis-3", 26381)], "mymaster", "s@cret")


@pytest.mark.parametrize("url", [
    "redis+sentinel://h1:26379,h2:26380",          # no service
    "redis+sentinel://h1:26379/mymaster/0",        # limits would read "mymaster0"
    "redis+sentinel://h1/mymaster",                # no port
])
def test_a_malformed_sentinel_url_is_refused_at_startup(database, url):
    with pytest.raises(config.ConfigError) as caught:
        app_module.create_app(app_config(database, REDIS_URL=url), env={})
    assert "REDIS_URL" in str(caught.value) and "service_name" in str(caught.value)


def test_a_sentinel_url_gives_a_pool_that_asks_the_sentinels():
    pool = redis_client.connection_pool("redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster",
                                        socket_connect_timeout=0.2)
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"


def test_a_plain_url_is_left_to_redis_py():
    pool = redis_client.connection_pool("redis://127.0.0.1:6379/3")
    assert pool.connection_kwargs["db"] == 3
