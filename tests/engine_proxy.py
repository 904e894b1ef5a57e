"""A unix-socket proxy in front of the real Docker engine that records who asked what: a second address for
the same engine, so a test can tell which engine address each client (the toolkit, the docker CLI, compose)
really used."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

ENGINE = "/var/run/docker.sock"
REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")
AGENT = re.compile(rb"\r\nUser-Agent: ([^\r\n]*)", re.IGNORECASE)


class EngineProxy:
    def __init__(self, path: Path):
        self.path = path
        self.requests: list[tuple[str, str, str]] = []  # (user agent, method, path)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(64)
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def agents(self) -> set[str]:
        with self._lock:
            return {agent.split("/")[0] for agent, _, _ in self.requests}

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(ENGINE)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    for m in REQUEST.finditer(data):
                        head = data[m.start():data.find(b"\r\n\r\n", m.start())]
                        found = AGENT.search(head)
                        agent = found.group(1).decode(errors="replace") if found else "-"
                        with self._lock:
                            self.requests.append((agent, m.group(1).decode(), m.group(2).decode()))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()
