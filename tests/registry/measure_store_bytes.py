"""Bytes the store takes per identifier, by database, for records of a few shapes.

    .venv/bin/python -m tests.registry.measure_store_bytes [--identifiers N]

Each shape is registered through Registry.batch_register (1,000 per batch, as an import
does) into a fresh store; the figures are LMDB's own page counts (branch, leaf and
overflow pages of each named database) times the page size, divided by the number of
identifiers, and the size of a compacted copy (what `idnode backup` writes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from collections.abc import Callable

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions

HandleValue = handle_pb2.HandleValue
BATCH = 1000
PARTS = ("piston", "crankshaft", "injector", "turbocharger", "gasket", "camshaft", "valve")
SUPPLIERS = ("江西零部件有限公司", "Ningbo Precision Co.", "无锡动力机械厂", "Hefei Castings")


def product_2kb(rng: random.Random, n: int) -> list[HandleValue]:
    """An engine's record as a manufacturer would register it: ~2 KB, mostly text."""
    serial = f"JXDY{2106000 + n:07d}"
    spec = {
        "model": f"JX4D{rng.randint(20, 40)}",
        "power_kw": rng.randint(60, 120),
        "torque_nm": rng.randint(200, 450),
        "displacement_l": round(rng.uniform(1.8, 3.2), 2),
        "emission": "国六b",
        "parts": [
            {
                "name": rng.choice(PARTS),
                "no": f"P{rng.randint(10**7, 10**8 - 1)}",
                "supplier": rng.choice(SUPPLIERS),
                "batch": f"B{rng.randint(2000, 2600)}-{rng.randint(1, 999):03d}",
            }
            for _ in range(15)
        ],
    }
    pairs = [
        ("URL", f"https://www.jx-motors.example.cn/products/{serial}?lang=zh-CN"),
        ("product.name", "柴油发动机总成 JX4D 系列 (diesel engine assembly)"),
        ("batch", f"{rng.randint(2000, 2600)}-{rng.randint(1, 999):03d}"),
        ("cert.url", f"https://cert.example.cn/ccc/{rng.randint(10**9, 10**10 - 1)}.pdf"),
        ("manufacturer", "江西汽车动力有限公司 Jiangxi Motor Power Co., Ltd."),
        ("production.date", f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"),
        ("spec", json.dumps(spec, ensure_ascii=False)),
    ]
    return [HandleValue(index=i, type=t, data=d.encode()) for i, (t, d) in enumerate(pairs, 1)]


def random_2kb(rng: random.Random, n: int) -> list[HandleValue]:
    """2 KB that no compressor can shrink (a signature, a certificate in binary)."""
    return [HandleValue(index=1, type="cert.der", data=rng.randbytes(2000))]


def small(rng: random.Random, n: int) -> list[HandleValue]:
    """Two short values: a URL and a batch number."""
    return [
        HandleValue(index=1, type="URL", data=f"https://e.example/{n}".encode()),
        HandleValue(index=2, type="batch", data=f"{rng.randint(1, 999)}".encode()),
    ]


SHAPES: dict[str, Callable[[random.Random, int], list[HandleValue]]] = {
    "product ~2 KB": product_2kb,
    "random 2 KB": random_2kb,
    "small": small,
}


def measure(shape: Callable[[random.Random, int], list[HandleValue]], count: int) -> dict[str, int]:
    rng = random.Random(8)
    directory = tempfile.mkdtemp(prefix="idnode-bytes-")
    store = Store(directory, StoreOptions(durable=False, map_size_bytes=4 << 30))
    try:
        registry = Registry(store, "88.118")
        registry.ensure_node_prefix()
        admin = handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)
        registry.create_enterprise(admin, code="8")
        data_bytes = 0
        for start in range(0, count, BATCH):
            records = []
            for n in range(start, min(count, start + BATCH)):
                values = shape(rng, n)
                data_bytes += sum(len(v.data) + len(v.type) for v in values)
                records.append(handle_pb2.Record(identifier=f"88.118.8/ID{n:08d}", values=values))
            registry.batch_register(admin, records)
        result = {"data": data_bytes, "file": store.size_bytes()}
        page = store.env.stat()["psize"]
        with store.read() as txn:
            for name, db in (
                ("records", store.records),
                ("changelog", store.changelog),
                ("borrowed", getattr(store, "borrowed", None)),
            ):
                if db is None:
                    result[name] = 0
                    continue
                found = txn.stat(db)
                result[name] = page * sum(
                    found[k] for k in ("branch_pages", "leaf_pages", "overflow_pages")
                )
        backup = os.path.join(directory, "backup")
        store.copy_to(backup)
        result["compacted"] = os.path.getsize(os.path.join(backup, "data.mdb"))
        return result
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", type=int, default=20_000)
    args = parser.parse_args()
    count = args.identifiers
    print(f"{count:,} identifiers per shape; bytes per identifier")
    print(
        f"{'shape':<15} {'data':>6} {'records':>8} {'changelog':>10} {'borrowed':>9} "
        f"{'file':>7} {'compacted':>10}"
    )
    for name, shape in SHAPES.items():
        found = measure(shape, count)
        per = {key: value / count for key, value in found.items()}
        print(
            f"{name:<15} {per['data']:>6.0f} {per['records']:>8.0f} {per['changelog']:>10.0f} "
            f"{per['borrowed']:>9.0f} {per['file']:>7.0f} {per['compacted']:>10.0f}"
        )


if __name__ == "__main__":
    main()
