"""A TCP proxy on loopback that a test can cut and restore: a broker outage on demand.

The broker advertises the proxy's port, so every client connection (bootstrap and the
per-broker ones from metadata) goes through it. ``cut()`` aborts live connections and stops
listening (clients get "connection refused", as when a broker is down); ``restore()``
listens again on the same port.
"""

from __future__ import annotations

import asyncio
import threading


class Proxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> Proxy:
        self.thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def _call(self, coro) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def restore(self) -> None:
        async def listen() -> None:
            self.server = await asyncio.start_server(
                self._handle, self.host, self.listen_port, reuse_address=True
            )

        self._call(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                self.server = None
            for writer in list(self.writers):
                writer.transport.abort()
            self.writers.clear()

        self._call(close())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}
