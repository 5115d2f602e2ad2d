"""The lab's HTTP server: waitress, with JSON error pages and limits for a room of clients.

Every connection has a silence timeout and a deadline for its request, and the server holds at
most CONNECTION_LIMIT of them, so a slow or idle client cannot starve the others.
"""
from __future__ import annotations

import errno
import json
import socket
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask


def check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SystemExit(
                    f"Port {port} is already in use: is another lab running? Stop it, or "
                    f"choose another port with --port (0 picks a free one).") from None
            raise


class JSONErrorTask(ErrorTask):
    """Requests waitress refuses before the app sees them (a malformed header, say) are
    answered in the API's error shape too, not as text."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"error": {"type": "invalid_request_error",
                                     "message": f"{error.reason}: {error.body}",
                                     "param": None}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JSONErrorChannel(HTTPChannel):
    error_task_class = JSONErrorTask


# Sized for a class (README, "Class mode"): 60 browsers (a few connections each, kept alive),
# their notebooks and the projector fit many times over. waitress only hands a request to a
# thread once it has arrived whole, so slow senders cost a connection each, never a thread:
# the connection limit is what a slow or hostile client can use up. waitress's defaults
# (100 connections, 120 s of silence reset by every byte) let 101 slow clients lock a lab.
CONNECTION_LIMIT = 1000
SILENCE_TIMEOUT = 5  # seconds a connection may send nothing (between requests, or mid-request)
REQUEST_DEADLINE = 20  # seconds to send one request's headers and body, however it trickles
CLEANUP_INTERVAL = 1  # how often the server looks for connections to drop


def file_limit_for(connections: int) -> int:
    """Raise this process's open-file limit (soft, up to the hard one) so that the connection
    limit can be reached; returns how many connections fit (macOS starts at 256 files)."""
    try:
        import resource  # imported here: a Unix module, absent on Windows
    except ImportError:  # Windows: no such limit to raise
        return connections
    headroom = 200  # the database, the stand-in's pipes, Python's own files
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + headroom
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(50, min(connections, soft - headroom))


class HTTPServer:
    """The merchant server's HTTP server: waitress, a production WSGI server in pure Python
    with a fixed pool of threads (Flask's development server starts a thread per request and
    costs about 1 ms more per request)."""

    def __init__(self, host: str, port: int, app, threads: int = 8, *,
                 connection_limit: int = CONNECTION_LIMIT,
                 silence_timeout: int = SILENCE_TIMEOUT,
                 request_deadline: float = REQUEST_DEADLINE) -> None:
        self._server = create_server(
            app, host=host, port=port, threads=threads, ident="stripe-payments-lab",
            expose_tracebacks=False, connection_limit=file_limit_for(connection_limit),
            channel_timeout=silence_timeout, cleanup_interval=CLEANUP_INTERVAL,
            asyncore_use_poll=True)  # poll(): select() stops at 1024 open files
        self._server.channel_class = JSONErrorChannel
        self.server_port = int(self._server.effective_port)  # waitress gives a string
        self.request_deadline = request_deadline
        self._started: dict[int, tuple[object, float]] = {}
        silence_check = self._server.maintenance

        def maintenance(now: float) -> None:  # waitress calls it every CLEANUP_INTERVAL
            silence_check(now)
            self._deadline_check(now)
        self._server.maintenance = maintenance

    def _deadline_check(self, now: float) -> None:
        """Drop a connection whose request has been arriving for longer than the deadline:
        waitress's silence timeout restarts with every byte, so a client that sends one byte
        a second would otherwise hold its connection for ever (slowloris)."""
        started = {}
        for fd, channel in list(self._server.active_channels.items()):
            partial = getattr(channel, "request", None)
            if partial is None or channel.requests:
                continue  # idle between requests (the silence timeout covers it), or working
            seen, since = self._started.get(fd, (None, now))
            if seen is not partial:
                since = now
            started[fd] = (partial, since)
            if now - since > self.request_deadline:
                channel.will_close = True
        self._started = started

    def serve_forever(self) -> None:
        self._server.run()  # returns on Ctrl-C or SIGTERM (waitress stops its threads)

    def shutdown(self) -> None:
        self._server.task_dispatcher.shutdown()

    def server_close(self) -> None:
        self._server.close()


def make_server(host: str, port: int, app, **kw) -> HTTPServer:
    return HTTPServer(host, port, app, **kw)


class AppSlot:
    """A WSGI app filled in after the socket is bound (the app needs the port for webhooks)."""

    app: Any = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)
