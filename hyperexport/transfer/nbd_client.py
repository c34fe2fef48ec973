"""A minimal NBD client (fixed newstyle handshake, NBD_OPT_GO, simple replies) for a local unix socket.

Only what streaming into an image needs: READ, WRITE, WRITE_ZEROES, FLUSH, DISC.
Spec: https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md
"""

from __future__ import annotations

import socket
import struct

from ..errors import TransferError

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC_OPT = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
OPT_GO = 7
REP_ACK, REP_INFO = 1, 3
INFO_EXPORT = 0
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_WRITE_ZEROES = 0, 1, 2, 3, 6
TRANSMISSION_READ_ONLY = 1 << 1
#: Largest single request we send; qemu accepts 32 MiB.
MAX_REQUEST = 32 * 1024 * 1024
ENOSPC = 28


class NbdCommandError(TransferError):
    """The server refused or failed one command; ``code`` is the NBD error (errno values)."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class NbdConnection:
    """One connection to one export. Not thread-safe: one per worker thread."""

    def __init__(self, socket_path: str, export: str, *, timeout: float = 60.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._cookie = 0
        try:
            self._sock.connect(socket_path)
            self.size, self.flags = self._handshake(export)
        except BaseException:
            self._sock.close()
            raise

    def _recv(self, n: int) -> bytes:
        buf = bytearray(n)
        self._recv_into(memoryview(buf))
        return bytes(buf)

    def _recv_into(self, view: memoryview) -> None:
        got, n = 0, len(view)
        while got < n:
            k = self._sock.recv_into(view[got:])
            if k == 0:
                raise TransferError("the NBD server closed the connection (the image export stopped)")
            got += k

    def _handshake(self, export: str) -> tuple[int, int]:
        magic, opt_magic, flags = struct.unpack(">8sQH", self._recv(18))
        if magic != NBDMAGIC or opt_magic != IHAVEOPT or not flags & FLAG_FIXED_NEWSTYLE:
            raise TransferError("the NBD server does not speak the fixed newstyle handshake")
        self._sock.sendall(struct.pack(">I", FLAG_FIXED_NEWSTYLE | (flags & FLAG_NO_ZEROES)))
        name = export.encode()
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
        self._sock.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data)
        size = tflags = None
        while True:
            magic2, _opt, rtype, length = struct.unpack(">QIII", self._recv(20))
            payload = self._recv(length) if length else b""
            if magic2 != REPLY_MAGIC_OPT:
                raise TransferError("the NBD server answered NBD_OPT_GO with a bad magic")
            if rtype & 0x80000000:
                raise TransferError(f"the NBD server refused export {export!r}: {payload[4:].decode(errors='replace')}")
            if rtype == REP_INFO and len(payload) >= 12 and struct.unpack(">H", payload[:2])[0] == INFO_EXPORT:
                size, tflags = struct.unpack(">QH", payload[2:12])
            elif rtype == REP_ACK:
                break
        if size is None or tflags is None:
            raise TransferError("the NBD server did not say the export's size")
        return size, tflags

    def _request(
        self, cmd: int, offset: int, length: int, data: memoryview | bytes | None = None,
        into: memoryview | None = None,
    ) -> None:  # fmt: skip
        self._cookie += 1
        self._sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, cmd, self._cookie, offset, length))
        if data is not None:
            self._sock.sendall(data)
        magic, error, cookie = struct.unpack(">IIQ", self._recv(16))
        if magic != SIMPLE_REPLY_MAGIC or cookie != self._cookie:
            raise TransferError("the NBD server sent a reply out of sequence")
        if error:
            what = "ENOSPC: the disk is full" if error == ENOSPC else f"error {error}"
            raise NbdCommandError(f"NBD command {cmd} at offset {offset} (+{length}) failed: {what}", code=error)
        if into is not None:
            self._recv_into(into)

    def pwrite(self, data: memoryview | bytes, offset: int) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            n = min(len(view), MAX_REQUEST)
            self._request(CMD_WRITE, offset, n, view[:n])
            view, offset = view[n:], offset + n

    def write_zeroes(self, offset: int, length: int) -> None:
        while length:
            n = min(length, MAX_REQUEST)
            self._request(CMD_WRITE_ZEROES, offset, n)
            offset, length = offset + n, length - n

    def pread_into(self, view: memoryview, offset: int) -> int:
        """Fill ``view`` with the bytes at ``offset``; returns its length."""
        view = view.cast("B") if view.format != "B" else view
        done = 0
        while done < len(view):
            n = min(len(view) - done, MAX_REQUEST)
            self._request(CMD_READ, offset + done, n, into=view[done : done + n])
            done += n
        return done

    def pread(self, length: int, offset: int) -> bytes:
        buf = bytearray(length)
        self.pread_into(memoryview(buf), offset)
        return bytes(buf)

    def flush(self) -> None:
        self._request(CMD_FLUSH, 0, 0)

    def close(self) -> None:
        try:
            self._cookie += 1
            self._sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_DISC, self._cookie, 0, 0))
        except OSError:
            pass
        finally:
            self._sock.close()

    def __enter__(self) -> "NbdConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
