"""A TCP relay on 127.0.0.1 in front of Samba that can go silent: with ``stalled`` set it keeps every connection
open but forwards nothing more either way (a host that stops answering mid-read)."""

from __future__ import annotations

import socket
import threading


class StallingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.stalled = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()

    def start(self) -> StallingProxy:
        self._spawn(self._accept)
        return self

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.stalled.is_set():
                    self._closing.wait()  # hold the bytes: the peer hears nothing, the connection stays up
                    return
                sink.sendall(data)
        except OSError:
            pass

    def stop(self) -> None:
        self._closing.set()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()
