"""Fault injection for the end-to-end fault tests: a cutting, throttling TCP proxy and a 429 registry.

Both listen on 127.0.0.1 (the Docker daemon talks plain HTTP to loopback
registries), run in threads of the test process, and record what they saw so
the tests can assert on it.

* :class:`TcpProxy` forwards to a real service (the stack's registry). It can
  throttle the bytes it sends back (``rate``, bytes per second over all
  connections, changeable at any time), reset every live connection at once
  (:meth:`TcpProxy.cut_all`), and counts live connections so a test can see the
  daemon let go of a pull.
* :class:`FakeRegistry` speaks just enough of the registry API v2: ``/v2/``
  answers 200, and every repository request gets ``429 TOOMANYREQUESTS`` with
  the JSON error body Docker Hub sends (``answer="429"``), or no answer at all
  until the fake is closed (``answer="hang"``: a registry that accepts and then
  goes silent). Every request is recorded with its time.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 16 * 1024


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), waking up a thread blocked in recv first."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Throttle:
    """Spaces out chunks so the sum over all connections stays at ``rate`` bytes per second."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self._next = 0.0
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        rate = self.rate
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + size / rate
            wait = self._next - now
        if wait > 0:
            time.sleep(min(wait, 5.0))


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Pair:
    client: socket.socket
    upstream: socket.socket
    cut: bool = False


class TcpProxy:
    """A loopback TCP proxy in front of ``upstream`` ("127.0.0.1:PORT")."""

    def __init__(self, upstream: str, rate: float | None = None) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.throttle = _Throttle()
        self.throttle.rate = rate
        self.connections = 0
        self.refused = 0
        self.bytes_down = 0
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def rate(self) -> float | None:
        return self.throttle.rate

    @rate.setter
    def rate(self, value: float | None) -> None:
        self.throttle.rate = value

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._pairs)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        _close(self._listener)
        self.cut_all()
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def cut_all(self) -> int:
        """Reset every live connection (the client sees 'connection reset by peer'). Returns how many."""
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.cut = True
            _reset(pair.client)
            _close(pair.upstream)
        return len(pairs)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is open (the daemon let go); False after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.active == 0:
                return True
            time.sleep(0.1)
        return self.active == 0

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            # The service behind is down: the client gets a reset, as from a dead port behind a balancer.
            self.refused += 1
            _reset(client)
            return
        upstream.settimeout(None)
        pair = _Pair(client, upstream)
        with self._lock:
            self._pairs.add(pair)
            self.connections += 1
        up = threading.Thread(target=self._pump, args=(client, upstream, False), name="proxy-up", daemon=True)
        up.start()
        self._pump(upstream, client, True)
        up.join(timeout=30)
        with self._lock:
            self._pairs.discard(pair)

    def _pump(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if downstream:
                    self.throttle.take(len(data))
                    self.bytes_down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


TOO_MANY = {
    "errors": [
        {
            "code": "TOOMANYREQUESTS",
            "message": "You have reached your pull rate limit. You may increase the limit by authenticating and "
            "upgrading: https://www.docker.com/increase-rate-limit",
        }
    ]
}


@dataclass
class _Seen:
    at: float
    method: str
    path: str


@dataclass
class FakeRegistry:
    """A registry whose repository requests get 429 TOOMANYREQUESTS (as from Docker Hub), or hang."""

    answer: str = "429"
    requests: list[_Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        registry = self
        self._closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _handle(self) -> None:
                registry.requests.append(_Seen(time.monotonic(), self.command, self.path))
                if self.path in ("/v2", "/v2/"):
                    self._answer(200, {})
                elif self.path.startswith("/v2/") and registry.answer == "hang":
                    registry._closing.wait(120)
                    self.close_connection = True
                elif self.path.startswith("/v2/"):
                    self._answer(429, TOO_MANY)
                else:
                    self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

            do_GET = do_HEAD = _handle  # noqa: N815 - http.server's naming

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="registry-429", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def repository_requests(self) -> list[_Seen]:
        """Requests for manifests or blobs (not the /v2/ ping)."""
        return [seen for seen in self.requests if seen.path.rstrip("/") != "/v2"]

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
