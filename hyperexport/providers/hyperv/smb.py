"""VHDX files on an SMB share (smbprotocol), as ``ByteRangeSource``s, and the UNC paths that name them.

Every path comes from the host (Get-VMHardDiskDrive, Get-ChildItem) and is hostile until checked: a drive
path or a UNC path of plain components only (no ``..``, no separators or control characters inside one).
A disk's location is ``smb://SERVER/SHARE/DIR/FILE`` (components joined with ``/``); ``open_disk`` parses it
back. Each ranged read opens the file, reads its range at its offset and closes it, from as many threads as the
engine runs, over connections kept per source; the size the host reported is checked before a byte moves.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ... import cancel
from ...errors import AccessDeniedError, HyperExportError, InvalidInputError, SourceNotFoundError, TransferError, UnsafeImageError
from ...transfer import SourceChangedError, SourceInfo, TransferOptions
from .credentials import HypervLogin, smbclient_module
from .vhdx import has_parent

SCHEME = "smb://"
#: Largest VHDX Hyper-V makes (64 TiB), plus its metadata.
MAX_VHDX_BYTES = 64 * 2**40 + 2**30
_BAD_COMPONENT = re.compile(r'[\x00-\x1f/\\:*?"<>|]')
_DRIVE_PATH = re.compile(r"^([A-Za-z]):\\(.*)$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")


def components(path: str, what: str) -> list[str]:
    """The plain components of a backslash-separated path (empty ones dropped); refuses ``..`` and odd characters."""
    parts = [p for p in path.split("\\") if p]
    for part in parts:
        if part in (".", "..") or _BAD_COMPONENT.search(part) or part != part.strip() and part.strip() == "":
            raise UnsafeImageError(f"{what} {path!r} has the component {part!r}, which hyperexport does not follow")
    return parts


@dataclass(frozen=True)
class SmbPath:
    server: str
    share: str
    parts: tuple[str, ...] = ()

    @classmethod
    def from_unc(cls, unc: str, what: str = "SMB path") -> SmbPath:
        """``\\\\server\\share\\dir`` as an SmbPath (InvalidInputError when it is not one)."""
        if not unc.startswith("\\\\"):
            raise InvalidInputError(f"{what} {unc!r} is not a UNC path like \\\\host\\share", field="source.share")
        try:
            server, share, *rest = components(unc[2:], what)
        except ValueError:
            raise InvalidInputError(f"{what} {unc!r} names no share: give it as \\\\host\\share", field="source.share") from None
        except UnsafeImageError as error:
            raise InvalidInputError(str(error), field="source.share") from None
        if not _HOST.match(server):
            raise InvalidInputError(f"{what} {unc!r}: {server!r} is not a host name or address", field="source.share")
        return cls(server, share, tuple(rest))

    @classmethod
    def from_location(cls, location: str) -> SmbPath:
        if not location.startswith(SCHEME):
            raise InvalidInputError(f"the hyperv provider reads smb://server/share/path locations, not {location!r}")
        server, _, path = location[len(SCHEME):].partition("/")
        share, *rest = path.split("/")
        if not _HOST.match(server):
            raise UnsafeImageError(f"disk location {location!r} names the server {server!r}, which is no host name; refusing it")
        if not rest:
            raise UnsafeImageError(f"disk location {location!r} names no file on the share; refusing it")
        for part in [share, *rest]:
            if not part or part in (".", "..") or _BAD_COMPONENT.search(part):
                raise UnsafeImageError(f"disk location {location!r} has the component {part!r}; refusing it")
        return cls(server, share, tuple(rest))

    def child(self, *parts: str) -> SmbPath:
        return SmbPath(self.server, self.share, (*self.parts, *parts))

    @property
    def unc(self) -> str:
        return "\\\\" + "\\".join((self.server, self.share, *self.parts))

    @property
    def location(self) -> str:
        return SCHEME + "/".join((self.server, self.share, *self.parts))


def host_path_on_share(host_path: str, share: SmbPath | None, share_local: str | None, admin_server: str) -> SmbPath:
    """Where a host-local file (``D:\\VMs\\a.vhdx``) is read over SMB: below ``share`` when it is under the share's
    local directory, else on the admin share of its drive (``\\\\host\\D$\\VMs\\a.vhdx``)."""
    match = _DRIVE_PATH.match(host_path or "")
    if not match:
        raise UnsafeImageError(f"the host reported the disk path {host_path!r}, which is not a local drive path")
    parts = components(match.group(2), "disk path")
    if not parts:
        raise UnsafeImageError(f"the host reported the disk path {host_path!r}, which names no file")
    if share is not None and share_local:
        local = _DRIVE_PATH.match(share_local)
        if local and local.group(1).lower() == match.group(1).lower():
            base = [p.lower() for p in components(local.group(2), "share path")]
            if [p.lower() for p in parts[: len(base)]] == base:
                if len(parts) == len(base):
                    raise UnsafeImageError(f"the host reported the disk path {host_path!r}, which is the share's directory, not a file")
                return share.child(*parts[len(base):])
    return SmbPath(admin_server, f"{match.group(1).upper()}$", tuple(parts))


@contextmanager
def smb_errors(action: str, path: SmbPath, login: HypervLogin) -> Iterator[None]:
    """smbprotocol's errors while doing ``action`` on ``path`` as hyperexport's (never quoting a password)."""
    try:
        yield
    except HyperExportError:
        raise
    except Exception as error:  # noqa: BLE001 - translated below, the rest re-raised as TransferError
        raise _translate(error, action, path, login) from None


_DIRECTORY, _REPARSE_POINT = 0x10, 0x400  # FILE_ATTRIBUTE_*
#: Logon and access refusals: no retry fixes them, and retries count against an account's lock-out threshold.
_DENIED = {0xC000006D, 0xC0000022, 0xC000006E, 0xC0000072, 0xC0000071, 0xC0000064, 0xC000015B,
           0xC0000234, 0xC0000193, 0xC0000224, 0xC000006F, 0xC0000070}  # locked out, expired, must change, hours, workstation
_NOT_FOUND = {0xC0000034, 0xC000003A, 0xC0000225}


def _translate(error: Exception, action: str, path: SmbPath, login: HypervLogin) -> HyperExportError:
    status = getattr(error, "ntstatus", None) or getattr(error, "status", None)
    name = type(error).__name__
    where = f"{action} {path.unc}"
    if status in _DENIED or name in ("LogonFailure", "AccessDenied", "SpnegoError", "BadSignature"):
        return AccessDeniedError(
            f"the SMB server {path.server} denied {login.smb_username!r} {where} (NTSTATUS {status or 0:#x}). Check "
            "the SMB user and password (the credentials block's smb_user/smb_password, else its WinRM login) and that "
            f"the user may read the share {path.share} (on the host: Grant-SmbShareAccess, and the folder's NTFS "
            "permissions).",
            field="credentials_block",
        )
    if status == 0xC00000CC or (status in _NOT_FOUND and not path.parts):
        return SourceNotFoundError(
            f"the SMB server {path.server} has no share named {path.share!r} ({where}). Check the share name "
            "(Get-SmbShare on the host); an admin share such as C$ needs an administrator.",
            field="source.share",
        )
    if status in _NOT_FOUND or isinstance(error, FileNotFoundError):
        return SourceNotFoundError(f"{path.unc} does not exist on the SMB server ({where}); was it moved or deleted?")
    unreachable = isinstance(error, ValueError) and str(error).startswith("Failed to connect to")  # smbprotocol's Tcp
    if isinstance(error, (ConnectionError, TimeoutError, OSError)) or unreachable or "Connection" in name:
        return TransferError(
            f"cannot reach the SMB server {path.server} on port {login.smb_port} while {where} ({name}). Check the "
            "host name, that SMB (port 445, or the credentials block's smb_port) is open to this worker, and the "
            "firewall."
        )
    return TransferError(f"SMB failed while {where}: {name}")


def checked_tree(path: SmbPath, kwargs: dict[str, Any]) -> None:
    """Connect to ``path``'s share ourselves and refuse a DFS one: smbclient's own connect follows a share's DFS
    referrals to any server with the same login and caches them process-wide; once this tree is connected its
    later calls reuse it."""
    from smbclient._pool import ClientConfig, register_session
    from smbprotocol.tree import TreeConnect

    ClientConfig()._referral_cache.clear()  # noqa: SLF001 - no cached referral may rewrite our paths
    session = register_session(path.server, **kwargs)
    name = f"\\\\{path.server}\\{path.share}"
    tree = next((t for t in session.tree_connect_table.values() if t.share_name == name), None)
    if tree is None:
        tree = TreeConnect(session, name)
        tree.connect(require_secure_negotiate=True)
    if tree.is_dfs_share:
        raise UnsafeImageError(
            f"{name} is a DFS share (its paths refer to other servers): hyperexport sends its login only to the host "
            "itself. Export to a plain share on the Hyper-V host."
        )


class StallWatch:
    """smbprotocol waits for an answer forever: while an operation runs, a watcher thread cuts the connections in
    ``cache`` once no answer came for ``timeout`` seconds or a cancel is requested, which wakes every waiting read."""

    def __init__(self, cache: dict[str, Any]) -> None:
        self.cache, self.timeout = cache, 60.0
        self._active: dict[int, float] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self.fired: str | None = None

    @contextmanager
    def operation(self) -> Iterator[Callable[[], None]]:
        """Yields ``alive()``, to call whenever an answer arrives."""
        key = id(object())
        alive = lambda: self._active.__setitem__(key, time.monotonic())  # noqa: E731
        with self._lock:
            alive()
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="smb-stall-watch", daemon=True)
                self._watcher.start()
        try:
            yield alive
        finally:
            with self._lock:
                self._active.pop(key, None)
        if self.fired:
            cancel.raise_if_cancelled()

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.2, self.timeout / 4))
            with self._lock:
                if not self._active:
                    self._watcher = None
                    return
                stalled = time.monotonic() - min(self._active.values()) > self.timeout
            if stalled or cancel.cancelled():
                self.fired = "cancel" if cancel.cancelled() else "stall"
                for connection in list(self.cache.values()):
                    try:
                        connection.disconnect(False)
                    except Exception:  # noqa: BLE001, S110 - already gone is what we want
                        pass
                self.cache.clear()

    def translate(self, error: HyperExportError, what: str) -> HyperExportError:
        if self.fired == "stall":
            self.fired = None
            return TransferError(f"the SMB server sent no answer within {self.timeout:g}s while {what}; cut the "
                                 "connection (the transfer options' read_timeout)")  # fmt: skip
        return error


class SmbFileSource:
    """Ranged reads of one file on a share. Thread-safe; see the module docstring."""

    def __init__(self, login: HypervLogin, path: SmbPath, *, expected_size: int | None) -> None:
        self.login, self.path, self.expected_size = login, path, expected_size
        self.name = path.unc
        self._read_size = 1024 * 1024
        self._connect_timeout = 60
        self._cache: dict[str, Any] = {}
        self._watch = StallWatch(self._cache)
        self._lock = threading.Lock()
        self._size: int | None = None

    def configure(self, options: TransferOptions) -> None:
        self._read_size = options.read_size
        self._connect_timeout = max(1, int(options.connect_timeout))
        self._watch.timeout = options.read_timeout

    def _kwargs(self) -> dict[str, Any]:
        return {**self.login.smb_kwargs(), "connection_cache": self._cache, "connection_timeout": self._connect_timeout}

    def describe(self) -> SourceInfo:
        smbclient = smbclient_module()
        try:
            with self._watch.operation(), smb_errors("reading the attributes of", self.path, self.login), self._lock:
                checked_tree(self.path, self._kwargs())
                st = smbclient.stat(self.path.unc, **self._kwargs())
        except (TransferError, SourceNotFoundError) as error:
            raise self._watch.translate(error, f"reading the attributes of {self.name}") from None
        size = int(st.st_size)
        if size > MAX_VHDX_BYTES:
            raise UnsafeImageError(f"{self.name} is {size} bytes, more than any VHDX can be; refusing it")
        if self.expected_size is not None and size != self.expected_size:
            raise SourceChangedError(
                f"{self.name} is {size} bytes on the share but the host reported {self.expected_size}: it changed "
                "since the export. Run again."
            )
        if self.path.parts[-1].lower().endswith((".vhdx", ".avhdx")) and has_parent(self._read, size, self.name):
            raise InvalidInputError(
                f"{self.name} is a differencing VHDX (it has a parent): read alone it is not the disk, and qemu-img "
                "does not read VHDX chains. Merge the VM's checkpoints (Remove-VMCheckpoint) and run again."
            )
        self._size = size
        return SourceInfo(size=size, identity=f"smb:{self.path.location}:{size}:{st.st_mtime_ns}:{st.st_ino}")

    def _read(self, offset: int, length: int) -> bytes:
        return b"".join(self.read_range(offset, length))

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        smbclient = smbclient_module()
        what = f"reading bytes {offset}-{offset + length - 1} of"
        try:
            with self._watch.operation() as alive, smb_errors(what, self.path, self.login):
                checked_tree(self.path, self._kwargs())
                with smbclient.open_file(self.path.unc, mode="rb", buffering=0, share_access="r", **self._kwargs()) as handle:
                    handle.seek(offset)
                    remaining = length
                    while remaining:
                        chunk = handle.read(min(self._read_size, remaining))
                        alive()
                        if not chunk:
                            raise SourceChangedError(f"{self.name} shrank while being read: nothing at offset {offset + length - remaining}")
                        remaining -= len(chunk)
                        yield chunk
        except (TransferError, SourceNotFoundError) as error:
            raise self._watch.translate(error, f"{what} {self.name}") from None

    def close(self) -> None:
        smbclient = smbclient_module()
        with self._lock:
            try:
                smbclient.reset_connection_cache(connection_cache=self._cache)
            except Exception:  # noqa: BLE001 - a connection already gone needs no closing
                self._cache.clear()


class SmbShare:
    """Directory operations on the export share: does it answer, what is under the run's directory, remove it."""

    def __init__(self, login: HypervLogin) -> None:
        self.login = login
        self._cache: dict[str, Any] = {}

    def _kwargs(self) -> dict[str, Any]:
        return {**self.login.smb_kwargs(), "connection_cache": self._cache}

    def check_readable(self, path: SmbPath) -> None:
        smbclient = smbclient_module()
        with smb_errors("listing", path, self.login):
            checked_tree(path, self._kwargs())
            smbclient.listdir(path.unc, **self._kwargs())

    def exists(self, path: SmbPath) -> bool:
        smbclient = smbclient_module()
        with smb_errors("looking for", path, self.login):
            checked_tree(path, self._kwargs())
            return bool(smbclient.path.isdir(path.unc, **self._kwargs()))

    def remove_tree(self, path: SmbPath) -> None:
        """Remove ``path`` and what is under it; a reparse point (a junction, a symbolic link) anywhere, ``path``
        itself included, is removed as the link it is, never entered: it may lead anywhere on the host."""
        smbclient = smbclient_module()
        kwargs = self._kwargs()
        with smb_errors("removing", path, self.login):
            checked_tree(path, kwargs)
            if not smbclient.path.lexists(path.unc, **kwargs):
                return
            attributes = int(smbclient.lstat(path.unc, **kwargs).st_file_attributes)
            if attributes & _REPARSE_POINT:
                smbclient.rmdir(path.unc, **kwargs) if attributes & _DIRECTORY else smbclient.remove(path.unc, **kwargs)
                return
            self._remove_below(smbclient, path.unc, kwargs)

    def _remove_below(self, smbclient: Any, unc: str, kwargs: dict[str, Any]) -> None:
        for entry in list(smbclient.scandir(unc, **kwargs)):
            attributes = int(entry.smb_info.file_attributes)
            if attributes & _DIRECTORY and not attributes & _REPARSE_POINT:
                self._remove_below(smbclient, entry.path, kwargs)
            elif attributes & _DIRECTORY:
                smbclient.rmdir(entry.path, **kwargs)
            else:
                smbclient.remove(entry.path, **kwargs)
        smbclient.rmdir(unc, **kwargs)

    def close(self) -> None:
        smbclient = smbclient_module()
        try:
            smbclient.reset_connection_cache(connection_cache=self._cache)
        except Exception:  # noqa: BLE001
            self._cache.clear()
