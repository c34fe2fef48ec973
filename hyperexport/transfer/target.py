"""Where a download's bytes go: the partial file itself (raw), or an image written through NBD (``qcow2_target``).

The engine fetches ranges and hands each piece to a ``Target``; it never touches the partial file's bytes
itself. A target is used from many threads at once (``write``, ``write_zeroes``, ``read_into``, ``sync``).
"""

from __future__ import annotations

import errno
import os
from typing import Literal, Protocol

from ..errors import InsufficientSpaceError, InvalidInputError
from .source import Buffer

#: How the partial file holds the bytes: as they are (a sparse raw file), or inside a qcow2 image.
Layout = Literal["raw", "qcow2"]

_ZEROS = bytes(1024 * 1024)


class Target(Protocol):
    layout: Layout

    def resumable_size(self) -> int | None:
        """The guest-visible size of what a previous run left, or None when nothing there can be resumed."""

    def reset(self, size: int) -> None:
        """Empty: ``size`` bytes of holes."""

    def begin(self) -> None:
        """Ready for writes and reads (after ``reset`` or on resume)."""

    def write(self, data: Buffer, offset: int) -> None: ...

    def write_zeroes(self, offset: int, length: int) -> None: ...

    def read_into(self, view: memoryview, offset: int) -> int: ...

    def settle(self) -> None:
        """Everything written so far survives the death of any process of ours (it may still be only in the
        page cache): a range is settled before the resume record may say it is done."""

    def sync(self) -> None:
        """Everything written so far is on disk (survives the host's crash)."""

    def finish(self) -> None:
        """Synced and closed for writing: the partial file may be renamed into place."""

    def close(self) -> None:
        """Release what ``begin`` took; safe to call twice, and after ``finish``."""


def full_disk_error(partial_name: str) -> InsufficientSpaceError:
    return InsufficientSpaceError(
        f"the disk holding {partial_name} is full. Free some space or choose another output "
        "directory, then run again: the download resumes where it stopped."
    )


class FileTarget:
    """The partial file, written in place with positional writes; holes are never written."""

    layout: Layout = "raw"

    def __init__(self, fd: int, partial_name: str) -> None:
        self.fd = fd
        self.partial_name = partial_name

    def resumable_size(self) -> int | None:
        return os.fstat(self.fd).st_size

    def reset(self, size: int) -> None:
        os.ftruncate(self.fd, 0)  # every byte becomes a hole again
        os.ftruncate(self.fd, size)

    def begin(self) -> None:
        pass

    def write(self, data: Buffer, offset: int) -> None:
        view = memoryview(data).cast("B")
        try:
            while len(view):
                written = os.pwrite(self.fd, view, offset)
                view = view[written:]
                offset += written
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise full_disk_error(self.partial_name) from None
            raise InvalidInputError(f"cannot write {self.partial_name}: {exc.strerror}") from None

    def write_zeroes(self, offset: int, length: int) -> None:
        while length:
            n = min(length, len(_ZEROS))
            self.write(memoryview(_ZEROS)[:n], offset)
            offset, length = offset + n, length - n

    def read_into(self, view: memoryview, offset: int) -> int:
        return os.preadv(self.fd, [view], offset)

    def settle(self) -> None:
        pass  # written with pwrite: already in the page cache, whatever happens to this process

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def finish(self) -> None:
        pass  # fsutil.commit fsyncs the file before the rename

    def close(self) -> None:
        pass
