"""Surgery on an LMDB data file in tests: altering stored bytes behind the store's back."""

from __future__ import annotations

from pathlib import Path


def edit(data_dir: str | Path, old: bytes, new: bytes) -> int:
    """Replace every `old` by `new` (as long, so the file keeps its layout) in the data
    file of `data_dir`; returns how many there were. LMDB copies a page to change it, so
    freed older copies of a page may hold `old` too: all are altered, the page in use
    among them."""
    assert len(old) == len(new)
    path = Path(data_dir) / "data.mdb"
    content = path.read_bytes()
    path.write_bytes(content.replace(old, new))
    return content.count(old)
