"""The referral follower reads its TLS files at start and on renewal, never while resolving."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from resolver.tls import ClientTls
from sync.referrer import UpstreamReferrer


def test_an_unusable_ca_file_is_said_once_and_each_miss_answers_unknown_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with caplog.at_level(logging.ERROR, logger="sync.referrer"):
        referrer = UpstreamReferrer("127.0.0.1:9", tls=ClientTls(ca_file=str(bad)))
        answers = [referrer(f"88.{n}") for n in range(20)]
    assert answers == [None] * 20
    assert len([r for r in caplog.records if "ca.pem" in r.getMessage()]) == 1


def test_renewal_reads_the_files_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    referrer = UpstreamReferrer("127.0.0.1:9", tls=ClientTls(ca_file=str(ca)))
    ca.unlink()
    with caplog.at_level(logging.ERROR, logger="sync.referrer"):
        referrer.renew_channel()
    assert [r for r in caplog.records if "ca.pem" in r.getMessage()]
    referrer.close()


def test_renewals_while_resolving_never_crash_the_process() -> None:
    # grpcio crashes the process (SIGSEGV) when a stub is made on a channel that another
    # thread has just closed: a renewal (SIGHUP) must not race the resolving threads so.
    script = """
import sys, threading, time
sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race window is short
from sync.referrer import UpstreamReferrer
referrer = UpstreamReferrer("127.0.0.1:1", timeout_seconds=0.2)
stop = time.monotonic() + 2.0
def ask(worker):
    n = 0
    while time.monotonic() < stop:
        n += 1
        assert referrer(f"88.{worker}.{n}") is None
threads = [threading.Thread(target=ask, args=(w,)) for w in range(4)]
for thread in threads:
    thread.start()
while time.monotonic() < stop:
    referrer.renew_channel()
for thread in threads:
    thread.join()
referrer.close()
print("done")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
