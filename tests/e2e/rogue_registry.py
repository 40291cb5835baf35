"""A rogue registry on loopback: every request gets 401 with a Basic challenge, and every Authorization is kept.

What a server of an attacker's choosing would learn if the console sent it a stored secret.
"""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RogueRegistry:
    def __init__(self) -> None:
        self.authorizations: list[str] = []
        self.requests = 0
        rogue = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _challenge(self) -> None:
                rogue.requests += 1
                if self.headers.get("Authorization"):
                    rogue.authorizations.append(self.headers["Authorization"])
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="rogue"')
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = _challenge  # noqa: N815 - http.server's naming

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rogue-registry", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def received(self, secret: str) -> bool:
        """True if any Authorization header held ``secret``, plainly or inside Basic's base64."""
        for header in self.authorizations:
            scheme, _, value = header.partition(" ")
            decoded = ""
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(value).decode(errors="replace")
                except ValueError:
                    decoded = ""
            if secret in header or secret in decoded:
                return True
        return False

    def __enter__(self) -> RogueRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
