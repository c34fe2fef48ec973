"""A local regular file (also on an SMB/NFS mount) as a ``ByteRangeSource``.

Only regular files are disks: a device (``/dev/zero`` never ends), a FIFO (an
open blocks until a writer comes, reads never end), a directory or a socket is
refused before a byte is read. The file is opened non-blocking, so that a FIFO
cannot hang the open, and checked on the descriptor it will be read from.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import AccessDeniedError, InvalidInputError, SourceNotFoundError, TransferError
from ..paths import file_kind
from .options import TransferOptions
from .source import DataRange, SourceChangedError, SourceInfo


class FileRangeSource:
    """Reads ranges of ``path`` with ``pread`` (thread-safe, one shared descriptor).

    ``data_ranges``: give the ranges that hold data explicitly, or leave None to
    let ``detect_holes`` ask the filesystem (SEEK_DATA/SEEK_HOLE), so a sparse
    image copies as a sparse image. ``checksums``: whole-file checksums known
    from elsewhere (e.g. an OVF manifest), checked after the copy.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        data_ranges: list[DataRange] | list[tuple[int, int]] | None = None,
        detect_holes: bool = True,
        checksums: dict[str, str] | None = None,
        read_size: int | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or str(self.path)
        self._data_ranges = [DataRange(*r) for r in data_ranges] if data_ranges is not None else None
        self._detect_holes = detect_holes
        self._checksums = dict(checksums or {})
        self._read_size = read_size or 256 * 1024
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._size = 0

    def configure(self, options: TransferOptions) -> None:
        self._read_size = options.read_size

    def _open(self) -> int:
        with self._lock:
            if self._fd is None:
                fd = self._open_regular()
                os.set_blocking(fd, True)
                self._fd = fd
            return self._fd

    def _open_regular(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise SourceNotFoundError(f"{self.name} does not exist") from None
        except PermissionError:
            raise AccessDeniedError(f"{self.name}: permission denied; check the file's owner and mode") from None
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a socket, or a device without its driver
                raise InvalidInputError(f"{self.name} is not a regular file, so it is not a disk image") from None
            raise TransferError(f"cannot open {self.name}: {exc.strerror}") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise InvalidInputError(
                f"{self.name} is {file_kind(mode)}, not a regular file, so it is not a disk image. "
                "Give the path of the image file itself."
            )
        return fd

    def describe(self) -> SourceInfo:
        fd = self._open()
        st = os.fstat(fd)
        size = st.st_size
        self._size = size
        ranges = self._data_ranges
        if ranges is None and self._detect_holes:
            ranges = _scan_data(fd, size)
        return SourceInfo(
            size=size,
            identity=f"file:{st.st_dev}:{st.st_ino}:{size}:{st.st_mtime_ns}",
            checksums=self._checksums,
            data_ranges=ranges,
        )

    def read_range(self, offset: int, length: int) -> Iterator[memoryview]:
        fd = self._open()
        buffer = bytearray(min(self._read_size, length))
        view = memoryview(buffer)
        position, end = offset, offset + length
        while position < end:
            want = min(len(buffer), end - position)
            try:
                got = os.preadv(fd, [view[:want]], position)
            except OSError as exc:
                raise TransferError(f"reading {self.name} at offset {position} failed: {exc.strerror}") from None
            if got == 0:
                raise SourceChangedError(f"{self.name} shrank while being copied: nothing to read at offset {position}")
            yield view[:got]
            position += got

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None



def _scan_data(fd: int, size: int) -> list[DataRange] | None:
    """Data extents from SEEK_DATA/SEEK_HOLE; None when the filesystem cannot tell or there is no hole."""
    ranges: list[DataRange] = []
    position = 0
    try:
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole remains
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            ranges.append(DataRange(start, end - start))
            position = end
    except (OSError, AttributeError):
        return None
    if len(ranges) == 1 and ranges[0] == DataRange(0, size):
        return None
    return ranges
