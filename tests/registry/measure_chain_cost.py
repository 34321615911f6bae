"""What the national algorithms cost: writes with the SM3 chain and SM2 signing against
writes without them, and the price of signing a checkpoint and of making and checking a
proof.

    .venv/bin/python -m tests.registry.measure_chain_cost [--rounds 5] [--seconds 3]

Writes: two durable stores side by side, one kept chained and signed as a node keeps
it (a signer in another process, as the node's master, every second) and one whose
chain is switched off; single creates from --threads threads (group commit, as served)
and batch register (1,000 records a call) alternate between the two in every round, and
the ratio is taken round by round. The writers' CPU is this process's; the signer's is
its own process's, given per entry it chained and signed. Crypto: medians over many
repetitions of one SM2 signature and verification, one checkpoint of 1,024 entries (its
Merkle tree and signature), one chain link (an SM3 over an entry), one proof built from
the store and checked as `idnode resolve --verify` checks it. No gRPC: for the node's
figures see `make bench`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from registry import accounts, chain, chainlog, proofs
from registry.accounts import Account
from registry.crypto import sm2
from registry.registry import Registry
from registry.signer import Signer
from registry.store import Store, StoreOptions
from tests.registry.measure_writes import batches, cpu_seconds, creates, spread

SIGN_INTERVAL_SECONDS = 1.0  # the node's default (sign_interval_seconds)


def open_node(data_dir: str, chained: bool) -> tuple[Store, Registry, Account]:
    store = Store(data_dir, StoreOptions(durable=True))
    if not chained:
        store.write(lambda batch: batch.put_meta(chainlog.STATE_KEY.decode(), chainlog.OFF))
    registry = Registry(store, "88.118")
    registry.ensure_node_prefix()
    token = accounts.ensure_admin(store, None)
    assert token is not None
    admin = accounts.authenticate(store, token)
    registry.create_enterprise(admin, code="7")
    return store, registry, admin


def per_call_us(call: Callable[[], object], seconds: float = 0.5) -> float:
    """Median microseconds of `call` over batches of repetitions lasting `seconds`."""
    timings: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(timings) < 5:
        started = time.perf_counter()
        for _ in range(10):
            call()
        timings.append((time.perf_counter() - started) / 10 * 1e6)
    return statistics.median(timings)


def crypto_costs(store: Store, key: sm2.PrivateKey) -> None:
    message = os.urandom(200)  # about a checkpoint's signed bytes
    signature = key.sign(message)
    leaves = [os.urandom(32) for _ in range(chain.MAX_RANGE_ENTRIES)]
    with store.read() as txn:
        entry = next(iter(store.changes_since(txn, store.last_sequence(txn) - 1)))
    canonical = chain.entry_bytes(entry)
    identifier = entry.identifier
    proof = proofs.prove(store, identifier)
    rows = [
        ("SM2 signature (200 bytes)", per_call_us(lambda: key.sign(message))),
        (
            "SM2 verification",
            per_call_us(lambda: key.public_key.verify(message, signature)),
        ),
        (
            f"checkpoint of {chain.MAX_RANGE_ENTRIES} entries (Merkle tree + signature)",
            per_call_us(lambda: chain.make_checkpoint("l", 1, chain.GENESIS, leaves, key, 0)),
        ),
        (
            f"chain link: SM3 of a {len(canonical)}-byte entry",
            per_call_us(lambda: chain.link(chain.GENESIS, canonical)),
        ),
        ("proof made from the store", per_call_us(lambda: proofs.prove(store, identifier))),
        (
            f"proof checked ({proof.ByteSize()} bytes)",
            per_call_us(lambda: chain.verify_proof(proof, key.public_key)),
        ),
    ]
    for label, micros in rows:
        print(f"{label}: {micros:,.1f} us")


def sign(data_dir: str, key_file: str) -> None:
    """The signer's process: chain and sign every SIGN_INTERVAL_SECONDS until SIGTERM, then
    print its CPU per entry."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    store = Store(data_dir, StoreOptions(durable=True))
    signer = Signer(store, sm2.read_key_file(key_file))
    with store.read() as txn:
        start = store.last_sequence(txn)
    cpu, runs = cpu_seconds(), 0
    while not stopping.wait(SIGN_INTERVAL_SECONDS):
        signer.sign_pending()
        runs += 1
    used = cpu_seconds() - cpu
    with store.read() as txn:
        done = store.last_sequence(txn) - start
    print(
        f"signer process (every {SIGN_INTERVAL_SECONDS:g} s, {runs} runs): {done:,} entries "
        f"chained and signed, {used / max(done, 1) * 1e6:.2f} us CPU per entry"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign", nargs=2, metavar=("DATA_DIR", "KEY_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    if args.sign:
        sign(*args.sign)
        return
    with tempfile.TemporaryDirectory(prefix="measure-chain-") as scratch:
        chained_dir = os.path.join(scratch, "on")
        chained_store, chained, chained_admin = open_node(chained_dir, True)
        plain_store, plain, plain_admin = open_node(os.path.join(scratch, "off"), False)
        key_file = os.path.join(scratch, "sm2-key.pem")
        key, _made = sm2.ensure_key_file(key_file)
        signing = subprocess.Popen(
            [sys.executable, "-m", "tests.registry.measure_chain_cost", "--sign", chained_dir,
             key_file],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        rows: dict[str, list[float]] = {}
        try:
            for number in range(1, args.rounds + 1):
                off, off_cpu = creates(plain, plain_admin, args.threads, args.seconds)
                on, on_cpu = creates(chained, chained_admin, args.threads, args.seconds)
                off_batch, off_batch_cpu = batches(plain, plain_admin, args.seconds)
                on_batch, on_batch_cpu = batches(chained, chained_admin, args.seconds)
                figures = {
                    "creates_on": on, "creates_off": off, "creates_ratio": on / off,
                    "cpu_on": on_cpu, "cpu_off": off_cpu,
                    "batch_on": on_batch, "batch_off": off_batch,
                    "batch_ratio": on_batch / off_batch,
                    "batch_cpu_on": on_batch_cpu, "batch_cpu_off": off_batch_cpu,
                }  # fmt: skip
                for name, value in figures.items():
                    rows.setdefault(name, []).append(value)
                print(
                    f"round {number}: creates {on:,.0f}/s chained, {off:,.0f}/s not "
                    f"({on_cpu:.0f} / {off_cpu:.0f} us CPU); batch register "
                    f"{on_batch:,.0f}/s chained, {off_batch:,.0f}/s not",
                    flush=True,
                )
        finally:
            signing.send_signal(signal.SIGTERM)
            signer_output, _ = signing.communicate(timeout=60)
        Signer(chained_store, key).sign_pending()  # what the signer left, for the proof
        print(spread(f"single creates, {args.threads} threads, chained", rows["creates_on"], "/s"))
        print(spread("  the same, without the chain", rows["creates_off"], "/s"))
        print(spread("  ratio chained / not, round by round", rows["creates_ratio"], "x"))
        print(spread("  CPU per create, chained", rows["cpu_on"], " us"))
        print(spread("  CPU per create, not", rows["cpu_off"], " us"))
        print(spread("batch register, chained", rows["batch_on"], "/s"))
        print(spread("  the same, without the chain", rows["batch_off"], "/s"))
        print(spread("  ratio chained / not, round by round", rows["batch_ratio"], "x"))
        print(spread("  CPU per identifier, chained", rows["batch_cpu_on"], " us"))
        print(spread("  CPU per identifier, not", rows["batch_cpu_off"], " us"))
        print(signer_output.strip())
        crypto_costs(chained_store, key)
        chained_store.close()
        plain_store.close()


if __name__ == "__main__":
    main()
