"""A bandwidth-limited TCP relay: a gateway's slow uplink in front of the real registry.

On loopback the test registry delivers an image faster than a person (or the
status page's one-second poll) can watch. Pulling through this relay keeps every
byte real (dockerd -> relay -> registry, the registry's own password check) but
spreads the download over a few seconds, so the browser sees the bar move.
"""

from __future__ import annotations

import socket
import threading
import time


class _Limiter:
    """One shared budget of ``rate`` bytes per second for every connection through the relay."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, size: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + size / self.rate
        if start > now:
            time.sleep(start - now)


class SlowLink:
    """Listen on 127.0.0.1:<free port>; relay to ``upstream`` ("host:port"), registry-to-client limited."""

    CHUNK = 32 * 1024

    def __init__(self, upstream: str, bytes_per_second: float) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.limiter = _Limiter(bytes_per_second)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="slowlink-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, limited: bool) -> None:
        try:
            while True:
                data = source.recv(self.CHUNK)
                if not data:
                    break
                if limited:
                    self.limiter.take(len(data))
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.server.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
