"""LMDB's last committed transaction id, read straight from the data file's two meta pages.

`Store.last_txn_id()` asks py-lmdb for `env.info()`, which builds a dict each
time (~0.7 us); a hot path that asks on every request ("did any process commit
since I last looked?") reads the same number from the meta pages here for ~0.1
us. LMDB reads it from the same place (mdb_env_info picks the meta page with
the larger transaction id), and a commit writes its meta page last, so the
answer is the same one `env.info()` gives at that instant.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys

from registry.errors import StoreError

# LMDB 0.9, data version 1, 64-bit host: a 16-byte page header, then MDB_meta:
# magic (u32), version (u32), address (ptr), map size (u64), two 48-byte MDB_db
# (the first begins with the page size, u32), last page (u64), transaction id (u64).
_ORDER = "<" if sys.byteorder == "little" else ">"
_U32 = struct.Struct(_ORDER + "I")
_MAGIC_OFFSET = 16
_PAGE_SIZE_OFFSET = 40
_TXN_ID_OFFSET = 144
_MAGIC = 0xBEEFC0DE
_DATA_VERSION = 1


class TxnProbe:
    """Reads the last committed transaction id of the LMDB environment in `data_dir`.

    Raises StoreError when the data file cannot be mapped or is not an LMDB file
    of the layout read here (the caller then falls back to `Store.last_txn_id`).
    """

    def __init__(self, data_dir: str) -> None:
        if sys.maxsize <= 2**32:
            raise StoreError("the meta-page probe reads the 64-bit LMDB layout only")
        path = os.path.join(data_dir, "data.mdb")
        try:
            with open(path, "rb") as file:
                head = file.read(_PAGE_SIZE_OFFSET + 4)
                if len(head) < _PAGE_SIZE_OFFSET + 4:
                    raise StoreError(f"{path} is shorter than an LMDB meta page")
                page_bytes = _U32.unpack_from(head, _PAGE_SIZE_OFFSET)[0]
                if not 512 <= page_bytes <= 65536 or page_bytes & (page_bytes - 1):
                    raise StoreError(f"{path}: no LMDB page size in its meta page")
                self._map = mmap.mmap(file.fileno(), 2 * page_bytes, prot=mmap.PROT_READ)
        except (OSError, ValueError) as error:
            raise StoreError(f"cannot map the meta pages of {path}: {error}") from error
        for page in (0, page_bytes):
            magic = _U32.unpack_from(self._map, page + _MAGIC_OFFSET)[0]
            version = _U32.unpack_from(self._map, page + _MAGIC_OFFSET + 4)[0]
            if magic != _MAGIC or version != _DATA_VERSION:
                self._map.close()
                raise StoreError(f"{path} is not an LMDB data file of version {_DATA_VERSION}")
        # Native 64-bit words: indexing one costs less than unpacking (no tuple).
        self._words = memoryview(self._map).cast("Q")
        self._first = _TXN_ID_OFFSET // 8
        self._second = (page_bytes + _TXN_ID_OFFSET) // 8

    def last_txn_id(self) -> int:
        """The id of the newest committed write transaction (what `env.info()` reports)."""
        first = self._words[self._first]
        second = self._words[self._second]
        return first if first > second else second

    def close(self) -> None:
        self._words.release()
        self._map.close()
