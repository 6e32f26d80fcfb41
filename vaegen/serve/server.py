"""The explorer's HTTP server: the standard library's ThreadingHTTPServer
over vaegen.serve.app.Explorer, and the page's own static files.

A local tool's server, so it is small and strict: it serves the files of
static/ that were read at start-up and nothing else (a request path is
looked up exactly, never joined onto a folder, so no encoding of '..' can
reach another file); it answers JSON only to JSON POSTs with a declared,
capped length; it refuses Host headers that are not its own (a web page
cannot reach it through DNS rebinding); and every failure, a bad request or
a bug, is a JSON error with a 4xx or 500 status, never a traceback or a
dead server. Imports the standard library and vaegen's torch-free modules.
"""

from __future__ import annotations

import errno
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from vaegen.errors import ArgumentError, VaegenError

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 2 * 1024 * 1024  # a 512x512 drawing as JSON numbers is about 1.6 MB; a 1.5 MB file in base64, 2.0 MB
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
# The page's scripts and styles come from this server alone; images may be data: URLs.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
ROUTES = {"/api/decode": "decode", "/api/encode": "encode", "/api/sample": "sample",
          "/api/interpolate": "interpolate"}
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def load_assets(folder: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) for each regular file directly in
    `folder` with a known suffix; symbolic links are left out. Read once, so
    what is served cannot change while the server runs."""
    assets = {}
    for path in sorted(folder.iterdir()):
        if path.is_symlink() or not path.is_file() or path.suffix not in CONTENT_TYPES:
            continue
        assets[f"/static/{path.name}"] = (path.read_bytes(), CONTENT_TYPES[path.suffix])
    if "/static/index.html" not in assets:
        raise VaegenError(f"The explorer's page is missing from {folder}; reinstall vaegen.")
    assets["/"] = assets["/static/index.html"]
    return assets


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes):
    """A request body as JSON; NaN and Infinity (which Python's json reads by
    default), deep nesting and over-long integers are refused as bad requests."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ArgumentError("the request body is not UTF-8 text.") from None
    except RecursionError:
        raise ArgumentError("the request body is nested too deeply.") from None
    except ValueError as exc:  # json.JSONDecodeError, NaN, an integer of thousands of digits
        raise ArgumentError(f"the request body is not valid JSON: {exc}.") from None


class ExplorerServer(ThreadingHTTPServer):
    """One Explorer and the page's files, served on a thread per request."""

    daemon_threads = True  # Ctrl-C does not wait for a slow client
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], assets: dict[str, tuple[bytes, str]]):
        self.explorer = None
        self.info_body = b""
        self.assets = assets
        super().__init__(address, ExplorerHandler)
        host, port = self.server_address[:2]
        self.allowed_hosts = None if host not in LOOPBACK else {
            f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")} | {"127.0.0.1", "localhost", "[::1]"}

    def attach(self, explorer) -> None:
        """The Explorer to answer with; set before serve_forever (the port is
        bound first, so a port in use is reported before the map is made)."""
        self.explorer = explorer
        self.info_body = json.dumps(explorer.info()).encode()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up mid-answer is not news; anything else gets one line, not a traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            print(f"vaegen serve: {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)


class ExplorerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the page's requests reuse one connection
    # The headers and the body go out as two writes; on a kept-alive
    # connection Nagle's algorithm holds the body until the client ACKs the
    # headers, which it delays by up to 40 ms: every decode paid that wait.
    disable_nagle_algorithm = True
    server_version = "vaegen"
    sys_version = ""
    timeout = 30  # a client that stops sending mid-request frees its thread

    def log_message(self, format, *args) -> None:
        """Quiet: the terminal shows the URL and errors, not every pointer move."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's errors (bad request line, unknown method, long
        headers) as JSON too, and the connection closed after them. Always
        with a status line: no client of this page speaks HTTP/0.9."""
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self._send_json(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = urlsplit(self.path).path
        if path == "/api/info":
            self._send(200, self.server.info_body, "application/json")
            return
        asset = self.server.assets.get(path)
        if asset is None:
            self._send_json(404, {"error": f"nothing at {path[:200]}"})
            return
        self._send(200, *asset)

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        endpoint = ROUTES.get(urlsplit(self.path).path)
        if endpoint is None:
            self._discard_body()
            self._send_json(404, {"error": "no such endpoint"})
            return
        body = self._read_body()
        if body is None:
            return
        try:
            answer = getattr(self.server.explorer, endpoint)(parse_json(body))
        except ArgumentError as exc:
            self._send_json(400, {"error": str(exc)})
        except MemoryError:
            self._send_json(503, {"error": "out of memory"})
        except Exception as exc:  # the boundary: a bug answers 500 and the server keeps serving
            print(f"vaegen serve: {endpoint}: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._send_json(500, {"error": "internal error"})
        else:
            self._send_json(200, answer)

    # ------------------------------------------------------------ helpers

    def _host_allowed(self) -> bool:
        allowed = self.server.allowed_hosts
        if allowed is None or self.headers.get("Host", "").lower() in allowed:
            return True
        self.close_connection = True
        self._send_json(403, {"error": "unexpected Host header: this server answers to its own address only"})
        return False

    def _read_body(self) -> bytes | None:
        """The request's JSON body, or None after an error answer."""
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "send a Content-Length, not a chunked body")
            return None
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or len(length) > 12:
            self.send_error(411, "a Content-Length is required")
            return None
        if int(length) > MAX_BODY:
            self.send_error(413, f"the body is over {MAX_BODY} bytes")
            return None
        body = self.rfile.read(int(length))
        if self.headers.get_content_type() != "application/json":
            self._send_json(415, {"error": "send Content-Type: application/json"})
            return None
        return body

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _send_json(self, code: int, data: dict) -> None:
        self._send(code, json.dumps(data).encode(), "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", PAGE_POLICY)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_server(host: str = "127.0.0.1", port: int = 8000, explorer=None) -> ExplorerServer:
    """Bind the explorer's server (port 0: any free port), answering with
    `explorer` (or the one attached later); a port in use or an unknown host
    is a VaegenError."""
    try:
        server = ExplorerServer((host, port), load_assets())
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise VaegenError(f"Port {port} on {host} is in use; choose another (port=0 picks a free one).",
                              argument="port") from None
        raise VaegenError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    if explorer is not None:
        server.attach(explorer)
    return server
