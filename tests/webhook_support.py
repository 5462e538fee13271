"""A local webhook receiver on 127.0.0.10 (outbound tests allow that network): it keeps each call's body and
headers, answers the queued statuses (then 204), and can hold requests to play a slow receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    body: bytes
    headers: dict[str, str]  # names in lower case


@dataclass
class Receiver:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    hold: threading.Event | None = None  # while set to an unset event, requests wait for it
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def bodies(self) -> list[bytes]:
        return [call.body for call in self.calls]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.calls.append(Call(body, {name.lower(): value for name, value in self.headers.items()}))
            state.arrived.set()
            if state.hold is not None:
                state.hold.wait(timeout=15)
            self.send_response(state.answers.pop(0) if state.answers else 204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.10", 0), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.10:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()
