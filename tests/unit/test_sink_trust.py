"""The CA files the sinks trust for PagerDuty and SMTP (sinks/trust.py): each way a file can be
unusable is refused at start with the setting and the file named, never a bare exception."""

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from sinks.email_client import SmtpSender
from sinks.pagerduty_client import PagerDutySender
from sinks.trust import TrustError, trusting
from testkit.fakes.http import make_certificate

SETTING = "SEVFLOW_PAGERDUTY_CA_FILE"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificate(tmp_path_factory.mktemp("tls"))[0]


def test_a_pem_certificate_is_trusted_with_names_checked(certificate: Path) -> None:
    context = trusting(certificate, SETTING)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.pem", "cannot be read (No such file or directory)"),
        (lambda d: d, "cannot be read (Is a directory)"),
        (lambda d: _write(d / "binary.pem", b"\xff\xfe\x00garbage"), "not UTF-8 text (byte 0)"),
        (lambda d: _write(d / "words.pem", b"not a certificate\n"), "no PEM certificate in it"),
        (
            lambda d: _write(
                d / "broken.pem",
                b"-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n",
            ),
            "its certificates cannot be used",
        ),
    ],
    ids=["missing", "directory", "binary", "no-certificate", "broken-certificate"],
)
def test_an_unusable_ca_file_is_named_with_its_setting(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(TrustError) as refused:
        trusting(path, SETTING)
    assert str(refused.value).startswith(f"{SETTING}: {path}: ")
    assert problem in str(refused.value)


def test_both_senders_refuse_a_missing_ca_file_by_setting(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(TrustError, match=f"SEVFLOW_PAGERDUTY_CA_FILE: {missing}: cannot be read"):
        PagerDutySender(SecretStr("R" * 32), "https://127.0.0.1:1", timeout=1.0, ca_file=missing)
    with pytest.raises(TrustError, match=f"SEVFLOW_SMTP_CA_FILE: {missing}: cannot be read"):
        SmtpSender("127.0.0.1", 465, tls_mode="implicit", sender="s@example.com", ca_file=str(missing))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
