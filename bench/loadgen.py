"""A bounded, open-loop HTTP load generator on asyncio streams (no third-party client).

Why not a closed loop: a client that sends the next request only after the previous answer
slows down with the server and hides its stalls ("coordinated omission"). Here request i is
due at `start + i / rate_per_s` whatever happened before; its latency is measured from that
due time to the last byte of its response, so a stall shows up in every request it delayed.

Light on the CPU the server needs (the machine has 2 cores): requests are pre-encoded bytes,
responses are parsed only as far as the status line and Content-Length, over a fixed pool of
keep-alive HTTP/1.1 connections on 127.0.0.1. Bounded: `count` requests, each with a timeout;
a request that finds no free connection waits for one (and that wait counts in its latency).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, host: str, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
        if self.body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadResult:
    rate_per_s: float
    sent: int
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # transport errors and timeouts, by kind
    wall_s: float = 0.0

    def quantile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def achieved_per_s(self) -> float:
        return self.sent / self.wall_s if self.wall_s else float("nan")

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> dict[str, float]:
        return {
            "p50_ms": statistics.median(self.latencies_ms) if self.latencies_ms else float("nan"),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "errors": float(sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s >= 400)),
        }


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, payload: bytes) -> int:
        self.writer.write(payload)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                await self._read_chunked()
                return status
        if length:
            await self.reader.readexactly(length)
        return status

    async def _read_chunked(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return


async def run_load(
    host: str,
    port: int,
    requests: list[Request],
    rate_per_s: float,
    count: int,
    connections: int = 32,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Send `count` requests (cycling through `requests`) at `rate_per_s`, open loop."""
    encoded = [r.encode(host, port) for r in requests]
    idle: asyncio.Queue[_Connection | None] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(None)  # opened on first use
    result = LoadResult(rate_per_s, count)

    async def one(index: int, due: float) -> None:
        conn = await idle.get()
        try:
            if conn is None:
                conn = _Connection(*await asyncio.open_connection(host, port))
            status = await asyncio.wait_for(conn.exchange(encoded[index % len(encoded)]), timeout_s)
            result.statuses[status] += 1
            result.latencies_ms.append((time.perf_counter() - due) * 1000)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            result.errors[type(exc).__name__] += 1
            if conn is not None:
                conn.writer.close()
            conn = None  # a broken or timed-out connection is replaced
        finally:
            idle.put_nowait(conn)

    start = time.perf_counter() + 0.05
    tasks = []
    for index in range(count):
        due = start + index / rate_per_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    result.wall_s = time.perf_counter() - start
    while not idle.empty():
        conn = idle.get_nowait()
        if conn is not None:
            conn.writer.close()
    return result
