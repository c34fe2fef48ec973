"""A TCP proxy in front of vcsim that can stop answering: every connection (``stall``), or the one request
that follows a given SOAP method on a connection (``drop_after``), as a vCenter that stops responding does."""

from __future__ import annotations

import socket
import threading
import time


class StallingProxy:
    def __init__(self, port: int) -> None:
        self.target, self.stall = port, threading.Event()
        self.drop_after: bytes | None = None  # drop the request that follows the one naming this, once
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        marked = False
        try:
            while data := source.recv(65536):
                while self.stall.is_set():
                    time.sleep(0.05)
                if requests and marked:
                    self.drop_after = None
                    return  # this request never reaches vcsim; the client's read times out
                if requests and self.drop_after is not None and self.drop_after in data:
                    marked = True
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for s in self.sockets:
            s.close()
