"""A download written straight into a qcow2 image: the ranges go through NBD to qemu-storage-daemon.

There is no raw copy to convert afterwards: the partial file is the qcow2 output being built, and a piece
that is all zeros is never sent, so it stays an unallocated cluster. Each worker thread has its own NBD
connection. The daemon keeps qcow2 metadata (L2 tables, refcounts) in memory, so a range is settled (an NBD
flush) before the resume record may count it: a killed daemon then loses only ranges in flight. That flush
writes the metadata to the file without an fdatasync (the daemon runs with ``cache.no-flush``): fdatasync per
range cost three times the CPU of the writes themselves. ``sync`` -- the checkpoints, the end -- fdatasyncs
the file from here, after the flush.

Resuming trusts a partial image only if it is a qcow2 of the source's size with no backing file and no
external data file, and qemu-img finds no corruption in it (the leaked clusters a kill leaves are repaired);
anything else is emptied and written again.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .. import qemu
from ..errors import HyperExportError, InsufficientSpaceError, TransferError
from .nbd_client import ENOSPC, NbdCommandError, NbdConnection
from .nbd_export import EXPORT_NAME, ImageServer
from .source import Buffer
from .target import Layout, full_disk_error

log = logging.getLogger(__name__)
QCOW2_MAGIC = b"QFI\xfb"


class Qcow2Target:
    layout: Layout = "qcow2"

    def __init__(self, fd: int, path: Path, *, connections: int) -> None:
        self.fd, self.path = fd, path
        self._server = ImageServer(path, "qcow2", writable=True, connections=connections + 4, flush_to_disk=False)
        self._socket = ""
        self._local = threading.local()
        self._connections: list[NbdConnection] = []
        self._lock = threading.Lock()

    def resumable_size(self) -> int | None:
        if os.pread(self.fd, 4, 0) != QCOW2_MAGIC:
            return None
        try:
            info = qemu.info(self.path, "qcow2")
            if info.backing_filename or info.data_file:
                log.warning("%s names another file (backing or data file); writing it again", self.path.name)
                return None
            checked = qemu.check(self.path, "qcow2")
            if checked.errors:
                log.warning("%s is damaged (%s); writing it again", self.path.name, checked.evidence)
                return None
            if checked.leaks:
                qemu.repair_leaks(self.path)
        except HyperExportError as exc:
            log.warning("cannot resume into %s (%s); writing it again", self.path.name, exc)
            return None
        return info.virtual_size

    def reset(self, size: int) -> None:
        os.ftruncate(self.fd, 0)
        qemu.create_qcow2(self.path, size)

    def begin(self) -> None:
        self._socket = self._server.start()

    def _connection(self) -> NbdConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = NbdConnection(self._socket, EXPORT_NAME)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def write(self, data: Buffer, offset: int) -> None:
        try:
            self._connection().pwrite(memoryview(data), offset)
        except NbdCommandError as exc:
            raise self._translated(exc) from None

    def write_zeroes(self, offset: int, length: int) -> None:
        try:
            self._connection().write_zeroes(offset, length)
        except NbdCommandError as exc:
            raise self._translated(exc) from None

    def _translated(self, exc: NbdCommandError) -> TransferError | InsufficientSpaceError:
        return full_disk_error(self.path.name) if exc.code == ENOSPC else exc

    def read_into(self, view: memoryview, offset: int) -> int:
        return self._connection().pread_into(view, offset)

    def settle(self) -> None:
        self._connection().flush()

    def sync(self) -> None:
        self._connection().flush()
        os.fdatasync(self.fd)

    def _close_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def finish(self) -> None:
        self.sync()
        self._close_connections()
        self._server.stop(graceful=True)

    def close(self) -> None:
        self._close_connections()
        try:
            self._server.stop(graceful=True)
        except TransferError as exc:  # already failing: the first error is the one to report
            log.warning("%s", exc)
