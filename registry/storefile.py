"""The data dir on disk: private modes, a data file as long as it says, a full disk told apart."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import resource
import stat
import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

import metrics
from registry.errors import StoreError, StoreOutOfSpace

log = logging.getLogger("registry.store")  # the store's own logger: one name for operators
DATA_FILE = "data.mdb"
LOCK_FILE = "lock.mdb"
DIR_MODE = 0o700
FILE_MODE = 0o600

# LMDB 0.9 on a 64-bit host (data version 1): a 16-byte page header, then on the two meta
# pages an MDB_meta whose fields are read here. Integers are in host byte order.
_ORDER = "<" if sys.byteorder == "little" else ">"
_PAGE_HEADER = struct.Struct(_ORDER + "QHHHH")  # pgno, pad, flags, lower, upper
_META = struct.Struct(_ORDER + "II8xQI4x32xQ48xQQ")  # magic..mapsize, free tree, last page, txn
_META_OFFSET = _PAGE_HEADER.size
_META_BYTES = _META_OFFSET + _META.size
_NODE = struct.Struct(_ORDER + "HHHH")  # lo, hi, flags, key size
_U16 = struct.Struct(_ORDER + "H")
_U64 = struct.Struct(_ORDER + "Q")
_OVERFLOW_PAGES = struct.Struct(_ORDER + "I")
_MAGIC = 0xBEEFC0DE
_DATA_VERSION = 1
_P_BRANCH = 0x01
_F_BIGDATA = 0x01
_MAX_FREE_PAGES_READ = 100_000  # a free-page tree larger than this is not walked
_MAX_FREE_TAIL_PAGES = 1 << 16  # more pages missing than this is never a legal free tail
_ATTEMPTS = 3
# The C library is already in the process: its symbols, without looking for the file.
_LIBC = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None
# After a write cut short by a full disk, less than this is left (LMDB wrote what fitted).
LOW_SPACE_BYTES = 4 << 20
_LIMIT_SLACK_BYTES = 1 << 16
_SPACE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "the data file reached the process's file-size limit",
}


def prepare(path: str, create: bool) -> None:
    """Make sure `path` can hold a store, before LMDB opens it.

    A data dir this call creates is private (0700) whatever the umask; a data file
    that claims more pages than it holds is refused (mapping it would end the process
    with SIGBUS). Raises StoreError naming the path and the cause.
    """
    try:
        if create:
            make_data_dir(path)
        elif not os.path.isdir(path):
            what = "does not exist" if not os.path.lexists(path) else "is not a directory"
            raise StoreError(f"data dir {path} {what}")
        if create and not os.path.exists(os.path.join(path, DATA_FILE)):
            # A new store in a dir made by someone else (a deploy script, `mkdir`): the
            # files are private below, the dir is made so too, as far as we may.
            _tighten(path, DIR_MODE)
        check_data_file(os.path.join(path, DATA_FILE))
    except OSError as error:
        raise StoreError(f"data dir {path}: {_cause(error, path)}") from error


def make_data_dir(path: str) -> None:
    """Create the data dir `path` private (0700, whatever the umask) unless it exists.
    Raises StoreError naming it and the cause (a file in the way, no permission…)."""
    try:
        if not os.path.lexists(path):
            os.makedirs(path, mode=DIR_MODE)
            os.chmod(path, DIR_MODE)
        elif not os.path.isdir(path):
            raise StoreError(f"data dir {path} is not a directory")
    except OSError as error:
        raise StoreError(f"data dir {path}: {_cause(error, path)}") from error


def make_private(path: str) -> None:
    """Take group and other permissions from the store's files (LMDB creates them with the
    mode it is given, less the umask; an existing file keeps whatever it had)."""
    for name in (DATA_FILE, LOCK_FILE):
        _tighten(os.path.join(path, name), FILE_MODE)


def reserve_lock_file(path: str) -> None:
    """Give LMDB's lock file, which this process has open, real disk blocks now.

    LMDB makes the file by extending it (a sparse file) and writes reader slots through a
    mapping of it: on a full disk the first slot on a page never written before kills the
    process with SIGBUS. This works on LMDB's own descriptor: opening the file again and
    closing that descriptor would drop the process's fcntl lock on it, and the next process
    to open the store would then take itself for the only one and reset the lock table
    under the others. Raises StoreError when the disk has no room for it.
    """
    lock = os.path.realpath(os.path.join(path, LOCK_FILE))
    descriptor = _descriptor_of(lock)
    if descriptor is None:
        return
    try:
        _fallocate(descriptor, os.fstat(descriptor).st_size)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise StoreError(
                f"data dir {path}: no disk space for {LOCK_FILE}: {_cause(error, lock)}"
            ) from error
        # A filesystem that cannot reserve blocks: LMDB works as before on it.


def _descriptor_of(target: str) -> int | None:
    """A descriptor this process already has open on `target` (Linux: /proc/self/fd)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == target:
                return int(name)
    return None


def _fallocate(descriptor: int, length: int) -> None:
    """fallocate(2) itself: glibc's posix_fallocate falls back, where the filesystem cannot
    reserve blocks, to writing a byte into every block, which would race LMDB's readers."""
    if _LIBC is None or not hasattr(_LIBC, "fallocate"):
        return
    if _LIBC.fallocate(descriptor, 0, ctypes.c_longlong(0), ctypes.c_longlong(length)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _tighten(path: str, mode: int) -> None:
    try:
        found = os.stat(path)
        if stat.S_IMODE(found.st_mode) & ~mode and found.st_uid == os.geteuid():
            os.chmod(path, stat.S_IMODE(found.st_mode) & mode)
    except FileNotFoundError:
        return


def check_data_file(path: str) -> None:
    """Raise StoreError when the LMDB data file at `path` is shorter than its own meta pages
    say it is (a truncated copy, a disk that filled during a restore, a partial rsync).

    A missing or empty file is a new store, and a layout this check does not know is left
    to LMDB: only a file known to be short is refused. Another process may be writing:
    a finding is confirmed by reading again before it counts.
    """
    problem = ""
    for _attempt in range(_ATTEMPTS):
        try:
            with open(path, "rb") as handle:
                problem = _problem(handle)
        except FileNotFoundError:
            return
        except OSError as error:
            raise StoreError(f"{path}: cannot read: {_cause(error, path)}") from error
        if not problem:
            return
    raise StoreError(f"{path}: {problem}; restore the data dir from a backup")


def _problem(handle: BinaryIO) -> str:
    # The meta pages before the size: a writer writes a transaction's pages before its
    # meta page and never shortens the file, so the size read after covers the meta read.
    first = _read_meta(handle, 0)
    size = os.fstat(handle.fileno()).st_size
    if size == 0:
        return ""
    if first is None:
        return f"the file is {size} bytes, shorter than LMDB's header: it is truncated"
    magic, version, _map_size, page_bytes, _root, _last_page, _txn_id = first
    if magic != _MAGIC or version != _DATA_VERSION:
        return ""  # not a layout this check reads; LMDB says what it makes of it
    if page_bytes < 512 or page_bytes & (page_bytes - 1) or page_bytes > 1 << 16:
        return f"the header gives an impossible page size {page_bytes}: the file is damaged"
    second = _read_meta(handle, page_bytes)
    size = os.fstat(handle.fileno()).st_size
    if second is None or second[0] != _MAGIC:
        return f"the file is {size} bytes and ends inside its second header page: it is truncated"
    newest = max(first, second, key=lambda meta: meta[6])  # LMDB uses the newer meta page
    last_page = newest[5]
    needed = (last_page + 1) * page_bytes
    if size >= needed:
        return ""
    pages = size // page_bytes
    if _only_free_pages_missing(handle, page_bytes, newest[4], pages, last_page):
        return ""
    return (
        f"the file is {size} bytes but its newest transaction (id {newest[6]}) uses pages up to "
        f"{last_page} of {page_bytes} bytes, {needed} bytes: it is truncated"
    )


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _read_meta(handle: BinaryIO, offset: int) -> tuple[int, int, int, int, int, int, int] | None:
    raw = _read_at(handle, offset, _META_BYTES)
    if len(raw) < _META_BYTES:
        return None
    fields: tuple[int, int, int, int, int, int, int] = _META.unpack_from(raw, _META_OFFSET)
    return fields


def _only_free_pages_missing(
    handle: BinaryIO, page_bytes: int, free_root: int, pages: int, last_page: int
) -> bool:
    """True when every page past the end of the file is free: LMDB does not write a page
    that a transaction took and gave back (a loose page), so a short tail of free pages is
    legal. The free-page tree is read from the file itself."""
    if last_page + 1 - pages > _MAX_FREE_TAIL_PAGES:
        return False
    missing = set(range(max(pages, 2), last_page + 1))
    try:
        for page in _free_pages(handle, page_bytes, free_root, pages):
            missing.discard(page)
            if not missing:
                return True
    except (_Unreadable, struct.error):  # a page out of the file, or one that does not parse
        return False
    return not missing


class _Unreadable(Exception):
    """A page the free-page tree needs lies outside the file or does not parse."""


def _free_pages(handle: BinaryIO, page_bytes: int, root: int, pages: int) -> Iterator[int]:
    """Page numbers listed in LMDB's free-page tree (txn id -> list of page numbers)."""
    if root == (1 << 64) - 1:  # P_INVALID: an empty tree
        return
    pending = [root]
    read = 0
    while pending:
        read += 1
        if read > _MAX_FREE_PAGES_READ:
            raise _Unreadable
        page = _page(handle, page_bytes, pending.pop(), pages)
        flags, lower = _PAGE_HEADER.unpack_from(page)[2:4]
        for slot in range(_PAGE_HEADER.size, lower, 2):
            node = _U16.unpack_from(page, slot)[0]
            lo, hi, node_flags, key_bytes = _NODE.unpack_from(page, node)
            if flags & _P_BRANCH:
                pending.append(lo | hi << 16 | node_flags << 32)
                continue
            data = node + _NODE.size + key_bytes
            data_bytes = lo | hi << 16
            if node_flags & _F_BIGDATA:
                first = _U64.unpack_from(page, data)[0]
                count = _OVERFLOW_PAGES.unpack_from(_page(handle, page_bytes, first, pages), 12)[0]
                if first + count > pages or data_bytes > count * page_bytes:
                    raise _Unreadable
                ids = _read_at(handle, first * page_bytes + _PAGE_HEADER.size, data_bytes)
            else:
                ids = page[data : data + data_bytes]
            listed = _U64.unpack_from(ids)[0]
            yield from (_U64.unpack_from(ids, 8 * i)[0] for i in range(1, listed + 1))


def _page(handle: BinaryIO, page_bytes: int, number: int, pages: int) -> bytes:
    if number >= pages:
        raise _Unreadable
    raw = _read_at(handle, number * page_bytes, page_bytes)
    if len(raw) < page_bytes:
        raise _Unreadable
    return raw


def out_of_space(path: str, error: Exception) -> str:
    """Why LMDB's `error` means the store's disk is full, or "" when it means something else.

    LMDB reports ENOSPC as such only when nothing at all could be written; a write cut
    short by a full disk (or by the process's file-size limit) comes back as EIO
    ("Input/output error"). For EIO the disk's free space and the file-size limit decide.
    """
    text = str(error)  # LMDB's messages end in strerror(errno)
    for code, reason in _SPACE_ERRNOS.items():
        if text.endswith(os.strerror(code)):
            return reason
    if not text.endswith(os.strerror(errno.EIO)):
        return ""
    return low_space(path)


def low_space(path: str) -> str:
    """Why a write to the store in `path` would fail for lack of space now (the disk nearly
    full, or the data file at the process's file-size limit), or "" when it would not."""
    try:
        found = os.statvfs(path)
        free = (found.f_bfree if os.geteuid() == 0 else found.f_bavail) * found.f_frsize
        size = os.path.getsize(os.path.join(path, DATA_FILE))
    except OSError:
        return ""
    if free < LOW_SPACE_BYTES:
        return f"the filesystem has {free} bytes free"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size + _LIMIT_SLACK_BYTES > limit:
        return f"the data file reached the process's file-size limit of {limit} bytes"
    return ""


def _cause(error: OSError, path: str) -> str:
    """An OSError as a short cause: its strerror, and the file it concerns unless that is `path`."""
    text = error.strerror or str(error)
    return f"{text} ({error.filename})" if error.filename and error.filename != path else text


class SpaceAlarm:
    """Tells a full disk from other write failures; logs once when the disk fills and once
    when writes succeed again, and counts every write refused meanwhile."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._full = False

    def failed(self, error: Exception) -> StoreError:
        """The domain error for a write that LMDB refused with `error`."""
        reason = out_of_space(self._path, error)
        if not reason:
            return StoreError(f"store error: {type(error).__name__}: {error}")
        metrics.STORE_OUT_OF_SPACE.inc()
        if not self._full:
            self._full = True
            log.error(
                "store is out of disk space: writes fail until space is freed; reads still work",
                extra={"data_dir": self._path, "reason": reason, "error": str(error)},
            )
        return StoreOutOfSpace("store is out of disk space")

    def committed(self) -> None:
        if self._full:
            self._full = False
            log.warning("store writes succeed again", extra={"data_dir": self._path})
