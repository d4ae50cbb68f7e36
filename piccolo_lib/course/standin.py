"""A stand-in for an LLM server: a local OpenAI-compatible endpoint whose replies come from a Python function.

No LLM runs in quick mode, so the course and the tests point :class:`~piccolo_lib.synth_backends.HTTPBackend`
at this server on 127.0.0.1 to exercise the real client (HTTP, JSON, timeouts, retries, rate limit) and
the real parsing and filtering on replies *someone wrote*. Nothing it returns is model output.

``respond(body)`` receives the request's JSON body (``body["messages"][-1]["content"]`` is the prompt,
``body["seed"]`` the example's seed) and returns the reply text (status 200), or ``(status, text)``, or a dict
``{"content": text or None, "finish_reason": "length"}`` to play a null or cut-off completion; it may sleep to
play a slow server. The server stops itself after ``max_requests`` requests or ``max_seconds``.

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Respond = Callable[[dict], "str | tuple[int, str] | dict"]


class StandInEndpoint:
    """``with StandInEndpoint(respond) as ep: HTTPBackend(ep.url, "stand-in")``; ``ep.log`` lists
    ``(monotonic time, body, headers)`` of every request received."""

    def __init__(self, respond: Respond, *, max_requests: int = 10_000, max_seconds: float = 600.0) -> None:
        self.respond, self.max_requests, self.max_seconds = respond, max_requests, max_seconds
        self.log: list[tuple[float, dict, dict]] = []
        self._lock = threading.Lock()
        self._started = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with endpoint._lock:
                    endpoint.log.append((time.monotonic(), body, dict(self.headers)))
                    over = len(endpoint.log) >= endpoint.max_requests
                reply = endpoint.respond(body)
                choice = reply if isinstance(reply, dict) else {"content": reply}
                status, text = reply if isinstance(reply, tuple) else (200, choice["content"])
                payload = ({"object": "chat.completion", "model": body.get("model"),
                            "choices": [{"index": 0, "finish_reason": choice.get("finish_reason", "stop"),
                                         "message": {"role": "assistant", "content": text}}]}
                           if status == 200 else {"error": {"message": text}})
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass
                if over:
                    threading.Thread(target=endpoint.stop, daemon=True).start()

            def log_message(self, *args: object) -> None:  # quiet
                pass

        return Handler

    def start(self) -> StandInEndpoint:
        self._started = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        with self._lock:
            started, self._started = self._started, False
        if started:
            self._timer.cancel()
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> StandInEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
