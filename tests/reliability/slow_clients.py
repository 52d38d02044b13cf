"""A slow-client attacker: sockets that trickle headers or bodies, reconnecting when the server hangs up.

Run as a process of its own (`python slow_clients.py PORT HEADERS BODIES SECONDS INTERVAL`),
so its event loop does not share a GIL with the client being measured. It
prints one JSON object: how many connections each kind opened, how many the
server closed, and the longest any of them was kept open.
"""
import asyncio
import json
import sys
import time

HEADER_START = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
BODY_START = (b"POST /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n")


class Tally:
    def __init__(self):
        self.opened = 0
        self.closed_by_server = 0
        self.longest = 0.0
        self.answers = {}  # first bytes of what the server said before closing -> count

    def as_dict(self):
        return {"opened": self.opened, "closed_by_server": self.closed_by_server,
                "longest_s": round(self.longest, 2), "answers": self.answers}


async def trickle(port, start, drip, interval, deadline, tally):
    """Open, send `start`, then one `drip` every `interval` s; reconnect when the server closes."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        opened = time.monotonic()
        tally.opened += 1
        closed = await _hold(reader, writer, start, drip, interval, deadline)
        if closed is not None:
            tally.closed_by_server += 1
            tally.longest = max(tally.longest, time.monotonic() - opened)
            status = closed[:12].decode("latin-1") or "<no answer>"
            tally.answers[status] = tally.answers.get(status, 0) + 1
        else:  # still open at the end: it counts as held that long
            tally.longest = max(tally.longest, time.monotonic() - opened)
        writer.close()


async def _hold(reader, writer, start, drip, interval, deadline):
    """What the server sent before closing (b"" for nothing), or None if it never closed."""
    try:
        writer.write(start)
        await writer.drain()
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(512), interval)
            except asyncio.TimeoutError:
                writer.write(drip)
                await writer.drain()
                continue
            if not data:
                return b""
            rest = data
            while rest:  # the answer, then the close
                rest = await asyncio.wait_for(reader.read(512), 5)
            return data
        return None
    except (ConnectionError, asyncio.TimeoutError, OSError):
        return b""


async def main(port, headers, bodies, seconds, interval):
    deadline = time.monotonic() + seconds
    header_tally, body_tally = Tally(), Tally()
    tasks = []
    for i in range(max(headers, bodies)):
        if i < headers:
            tasks.append(trickle(port, HEADER_START, b"X-Slow: a\r\n", interval, deadline, header_tally))
        if i < bodies:
            tasks.append(trickle(port, BODY_START, b"x", interval, deadline, body_tally))
    await asyncio.gather(*tasks)
    print(json.dumps({"headers": header_tally.as_dict(), "bodies": body_tally.as_dict()}))


if __name__ == "__main__":
    port, headers, bodies, seconds, interval = sys.argv[1:6]
    asyncio.run(main(int(port), int(headers), int(bodies), float(seconds), float(interval)))
