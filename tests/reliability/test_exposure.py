"""Nothing exposed: no secrets in the repository, services listen on 127.0.0.1 by default."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import psutil
import pytest

from athlete_platform.config import load_settings

pytestmark = pytest.mark.reliability

HOME = Path(__file__).resolve().parents[2]
# Shapes of credentials that must never be committed (cloud keys, tokens, private keys, passwords in URLs).
SECRET_PATTERNS = {
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
    "Databricks token": re.compile(r"\bdapi[0-9a-f]{32}\b"),
    "password in a URL": re.compile(r"://[^/\s:@]+:[^/\s:@]{6,}@"),
}


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=HOME, capture_output=True, check=True).stdout
    return [HOME / name for name in listed.decode().split("\0") if name]


def test_no_secrets_in_the_repository():
    found = []
    for path in tracked_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="replace")
        hits = [kind for kind, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
        found += [f"{path.relative_to(HOME)}: {kind}" for kind in hits]
    assert found == []


def test_secret_patterns_catch_what_they_are_for():
    # Built by concatenation, so this file does not itself hold a credential-shaped string.
    samples = {
        "AWS access key": "key = AK" + "IA" + "ABCDEFGHIJKLMNOP",
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "GitHub token": "ghp_" + "a" * 36,
        "Slack token": "xox" + "b-1234567890-abcdef",
        "OpenAI-style key": "sk-" + "A1" * 20,
        "Databricks token": "dapi" + "0f" * 16,
        "password in a URL": "postgresql://airflow:" + "hunter22@db/airflow",
    }
    for kind, text in samples.items():
        assert SECRET_PATTERNS[kind].search(text), kind


@pytest.mark.integration
def test_the_catalog_server_listens_on_loopback_only(catalog_server):
    assert load_settings(HOME / "conf" / "local.yaml").catalog.host == "127.0.0.1"  # the default
    pid = catalog_server.pid()
    assert pid is not None
    listening = [c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet") if c.status == "LISTEN"]
    assert listening, "the catalog server listens on no socket"
    assert all(is_loopback(ip) for ip in listening), listening


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (::ffff:127.0.0.1, what Java reports)."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def test_the_catalog_token_is_never_printed():
    token = "uc-token-that-must-not-leak"
    settings = load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_CATALOG__UNITY_TOKEN": token})
    assert settings.catalog.unity_token.get_secret_value() == token
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert token not in shown


def test_is_loopback():
    assert all(is_loopback(ip) for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1"))
    assert not any(is_loopback(ip) for ip in ("0.0.0.0", "::", "::ffff:10.0.0.1", "192.0.2.2"))
