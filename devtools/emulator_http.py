"""The emulator's HTTP layer: moto's server application over persistent (keep-alive) connections.

werkzeug's development server, which moto's ``ThreadedMotoServer`` runs, answers one request per
connection: it sends ``Connection: close``, then waits up to 10 ms for the client to hang up, reading
whatever arrives, because ``http.server`` cannot find the next request line after an unread body. So
every botocore call opened a TCP connection, and the server accepted it and started a thread for it,
where botocore's connection pool (and AWS) would keep one connection for many calls. Profiled under
``make bench`` (issue 21), that per-request set-up was a large share of the emulator's CPU per trigger.

:class:`KeepAliveHandler` keeps the connection: it reads each request's body (``Content-Length``)
before the application runs, so the stream is at the next request whatever the application read, and
writes each answer with its length in one send. The application, and so every answer's status,
headers and body, is moto's unchanged; a chunked request body is read as werkzeug reads it, and that
connection is closed after its answer. Clients that pipeline requests (send the next before the answer)
are not served: botocore, ``urllib`` and ``http.client`` never do.

:class:`ConnectionTracker` knows which connections are serving a request and which idle ones have one
waiting in the kernel, so that :meth:`devtools.emulator.LocalAws.settle` still returns only after every
request sent before it has been answered (a request on a kept connection is in no accept queue).
"""

from __future__ import annotations

import contextlib
import io
import logging
import select
import socket
import threading
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import make_server

_DROPPED = (ConnectionError, TimeoutError)
_BODILESS = frozenset({204, 304})


class ConnectionTracker:
    """Numbers every connection the server accepts, and counts the requests each has begun and answered.

    The server accepts connections one at a time, in the order the kernel queued them, so once a
    connection opened now has been accepted, every connection opened before it has been too. A kept
    connection waits for its next request in :meth:`wait_for_request`, outside the lock, and counts the
    request as begun under the lock before it reads it, so :meth:`wait_served` (under the lock) sees each
    request sent before it either as bytes waiting on an idle connection or as begun; it then waits for
    those requests alone to be answered, not for the ones the same connections carry afterwards."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._accepted = 0
        self._open: dict[int, socket.socket] = {}
        self._numbers: dict[socket.socket, int] = {}
        self._begun: dict[int, int] = {}
        self._answered: dict[int, int] = {}
        self._stopping = False

    def opened(self, connection: socket.socket) -> int:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one send per answer; no Nagle wait
        with self._cond:
            self._accepted += 1
            number = self._accepted
            self._open[number] = connection
            self._numbers[connection] = number
            self._begun[number] = 1  # its first request is on its way (it was opened to send one)
            self._answered[number] = 0
            return number

    def closed(self, number: int) -> None:
        with self._cond:
            connection = self._open.pop(number, None)
            self._numbers.pop(connection, None)  # type: ignore[arg-type]
            self._begun.pop(number, None)
            self._answered.pop(number, None)
            self._cond.notify_all()

    def wait_for_request(self, connection: socket.socket) -> bool:
        """Block until ``connection`` has bytes (or its end) to read, then count a request begun; False once
        the server stops (the caller then closes the connection)."""
        number = self._numbers.get(connection)
        if number is None:  # not tracked (accepted before the tracker was installed): serve it plainly
            return True
        with self._cond:
            if self._begun[number] > self._answered[number]:  # the first request: counted when accepted
                return not self._stopping
        poller = select.poll()
        poller.register(connection, select.POLLIN)
        while not self._stopping:
            if poller.poll(1000):
                with self._cond:
                    self._begun[number] += 1
                    self._cond.notify_all()
                return True
        return False

    def served(self, connection: socket.socket) -> None:
        with self._cond:
            number = self._numbers.get(connection)
            if number is not None:
                self._answered[number] = self._begun[number]
                self._cond.notify_all()

    def accepted(self) -> int:
        with self._cond:
            return self._accepted

    def _outstanding(self, through: int) -> dict[int, int]:
        """For each connection numbered up to ``through``, how many requests it must have answered for every
        request sent on it so far to be answered (lock held)."""
        idle = {n: c for n, c in self._open.items() if n <= through and self._begun[n] == self._answered[n]}
        idle = {n: c for n, c in idle.items() if c.fileno() >= 0}  # closed, its thread not yet done: nothing waits
        poller = select.poll()
        for connection in idle.values():
            poller.register(connection, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(0)}
        waiting = {n for n, connection in idle.items() if connection.fileno() in ready}
        return {
            n: self._begun[n] + (1 if n in waiting else 0)
            for n in self._open
            if n <= through and (n in waiting or self._begun[n] > self._answered[n])
        }

    def wait_served(self, through: int, timeout: float) -> bool:
        """Wait until every request sent before this call on a connection numbered up to ``through`` is answered."""
        with self._cond:
            targets = self._outstanding(through)
            return self._cond.wait_for(
                lambda: all(n not in self._open or self._answered[n] >= t for n, t in targets.items()), timeout
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Close the idle connections (a serving one closes after its answer) and wait for their threads."""
        with self._cond:
            self._stopping = True
            for number, connection in self._open.items():
                if self._begun[number] == self._answered[number]:
                    with contextlib.suppress(OSError):  # already closed by its client
                        connection.shutdown(socket.SHUT_RDWR)
            self._cond.wait_for(lambda: not self._open, timeout)


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler, answering over a kept connection (module docstring)."""

    protocol_version = "HTTP/1.1"

    def handle_one_request(self) -> None:
        tracker: ConnectionTracker | None = getattr(self.server, "ttp_tracker", None)
        if tracker is not None and not tracker.wait_for_request(self.connection):
            self.close_connection = True
            return
        try:
            super().handle_one_request()
        finally:
            if tracker is not None:
                tracker.served(self.connection)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as werkzeug answers it
        environ = self.environ = self.make_environ()
        if "wsgi.input_terminated" in environ:  # a chunked body: the application reads it from the stream
            self.close_connection = True
        else:
            length = environ.get("CONTENT_LENGTH", "")
            if length and not length.isdigit():  # werkzeug reads no body then; what follows is unknown
                self.close_connection = True
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)) if length.isdigit() else b"")
        try:
            answer = self._call(self.server.app, environ)
        except _DROPPED:
            self.close_connection = True
            return
        except Exception as error:
            if self.server.passthrough_errors:
                raise
            answer = self._call(InternalServerError(), environ)
            from werkzeug.debug.tbtools import DebugTraceback

            self.server.log("error", f"Error on request:\n{DebugTraceback(error).render_traceback_text()}")
        self._send(environ, *answer)

    @staticmethod
    def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return parts.append

        parts: list[bytes] = []
        iterable = app(environ, start_response)
        try:
            parts.extend(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        return started[0], started[1], b"".join(parts)

    def _send(self, environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code_text, _, message = status.partition(" ")
        code = int(code_text)
        if logging.getLogger("werkzeug").isEnabledFor(logging.INFO):
            self.log_request(code)  # werkzeug's access log line (off under the emulator: its logger is at WARNING)
        self.send_response_only(code, message.strip())
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        names = set()
        for name, value in headers:
            self.send_header(name, value)
            names.add(name.lower())
        bodiless = environ["REQUEST_METHOD"] == "HEAD" or 100 <= code < 200 or code in _BODILESS
        if "content-length" not in names and not bodiless:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        head: list[bytes] = self._headers_buffer  # send_header's buffer (http.server)
        self.wfile.write(b"".join([*head, b"\r\n", b"" if bodiless else body]))  # one send
        self._headers_buffer: list[bytes] = []


class KeepAliveMotoServer(ThreadedMotoServer):
    """moto's threaded server with :class:`KeepAliveHandler` as its request handler."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=KeepAliveHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
