"""The referral follower reads its TLS files at start and on renewal, never while resolving."""

from __future__ import annotations

import logging
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
