"""The webhook destination policy (core/notifications/destinations.py) and delivery classifications (outcomes.py)."""

from __future__ import annotations

import ipaddress
import smtplib
import ssl

import httpx
import pytest
from pydantic import SecretStr

from core.config import load_settings
from core.notifications.destinations import (
    MAX_URL_CHARS,
    DestinationPolicy,
    DestinationRefused,
    address_class,
    literal_address,
    system_resolver,
)
from core.notifications.outcomes import DeliveryFailed, classify, public_error
from tests.support.notifications import FakeDns

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),
        ("64:ff9b:1::1", "private"),
        ("169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.5", "documentation"),
        ("2001:db8::1", "documentation"),
        ("198.18.0.1", "benchmark"),
        ("0.1.2.3", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "reserved"),
        ("192.88.99.1", "reserved"),
        ("100::1", "reserved"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated): refused whatever it embeds
        ("::8.8.8.8", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link_local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:a9fe:a9fe::1", "link_local"),  # 6to4 of 169.254.169.254
        ("2002:7f00:1::1", "loopback"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation"),  # Teredo, client 192.0.2.45
        ("2001:0:4136:e378::1", "reserved"),  # Teredo with a public server and client
    ],
)
def test_non_public_addresses_are_classified(address: str, reason: str) -> None:
    assert address_class(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        PUBLIC,
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_public(address: str) -> None:
    assert address_class(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_numeric_host_forms_are_read_as_their_address(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "deadbeef", "1e100.net", "cafe", "localhost"])
def test_names_are_not_literals(host: str) -> None:
    assert literal_address(host) is None


async def refusal(policy: DestinationPolicy, target: str) -> str:
    with pytest.raises(DestinationRefused) as info:
        await policy.check(target)
    return info.value.reason


async def test_numeric_forms_are_refused_without_asking_the_resolver() -> None:
    dns = FakeDns({"0x7f000001": [PUBLIC], "2130706433": [PUBLIC]})  # a resolver that would lie
    policy = DestinationPolicy(require_https=False, resolver=dns)
    for target in ("http://0x7f000001/", "http://2130706433/", "http://127.1/", "http://0177.0.0.1/"):
        assert await refusal(policy, target) in {"loopback", "no_host"}, target
    assert dns.lookups == []


async def test_every_address_of_a_name_must_be_public() -> None:
    dns = FakeDns({"one.test": [PUBLIC], "both.test": [PUBLIC, "10.9.8.7"], "v6.test": [PUBLIC, "::1"]})
    policy = DestinationPolicy(require_https=False, resolver=dns)
    destination = await policy.check("http://one.test/x")
    assert destination.addresses == (ipaddress.ip_address(PUBLIC),)
    assert await refusal(policy, "http://both.test/x") == "private"
    assert await refusal(policy, "http://v6.test/x") == "loopback"
    assert await refusal(policy, "http://missing.test/x") == "unresolvable"
    empty = DestinationPolicy(require_https=False, resolver=FakeDns({"empty.test": []}))
    assert await refusal(empty, "http://empty.test/") == "unresolvable"  # no address at all


async def test_localhost_through_the_system_resolver_is_loopback() -> None:
    policy = DestinationPolicy(require_https=False, resolver=system_resolver)
    assert await refusal(policy, "http://localhost:8000/") == "loopback"


async def test_url_rules() -> None:
    policy = DestinationPolicy(require_https=True, resolver=FakeDns({"hooks.test": [PUBLIC]}))
    assert await refusal(policy, "http://hooks.test/") == "scheme"
    assert await refusal(policy, "ftp://hooks.test/") == "bad_scheme"
    assert await refusal(policy, "https://user:pass@hooks.test/") == "credentials"
    assert await refusal(policy, "https://user@hooks.test/") == "credentials"
    assert await refusal(policy, "https://hooks.test/" + "a" * MAX_URL_CHARS) == "too_long"
    assert (await policy.check("https://hooks.test/x?token=1")).host == "hooks.test"
    lenient = DestinationPolicy(require_https=False, resolver=FakeDns({"hooks.test": [PUBLIC]}))
    assert (await lenient.check("http://hooks.test/")).url.scheme == "http"


async def test_refusals_name_the_rule_and_never_echo_the_target() -> None:
    policy = DestinationPolicy(require_https=False)
    with pytest.raises(DestinationRefused) as info:
        await policy.check("http://127.0.0.1:9/hook?token=s3cret")
    error = info.value
    assert error.status_code == 422 and error.reason == "loopback"
    assert error.detail.startswith("targets on loopback addresses are refused")
    assert "SM_WEBHOOK_ALLOW_PRIVATE=true" in error.detail and "SM_WEBHOOK_ALLOWED_HOSTS" in error.detail
    problem = error.to_problem()
    assert "s3cret" not in str(problem) and "127.0.0.1" not in str(problem)
    with pytest.raises(DestinationRefused) as info:
        await policy.check("http://admin:hunter2@example.test/")
    assert "hunter2" not in str(info.value.to_problem())


async def test_allowed_hosts_and_allow_private() -> None:
    dns = FakeDns({"intranet.test": ["10.1.1.1"], "other.test": ["10.1.1.1"], "lab.test": ["192.168.5.5"]})
    settings = load_settings(
        env="test", webhook_allowed_hosts=["intranet.test", "192.168.0.0/16", "fd00::1", "127.0.0.1"]
    )
    policy = DestinationPolicy.from_settings(settings, resolver=dns)
    assert policy.require_https is False  # test environment
    await policy.check("http://intranet.test/")  # by name
    await policy.check("http://INTRANET.test./")  # names compare case-insensitively, trailing dot ignored
    await policy.check("http://lab.test/")  # by network
    await policy.check("http://192.168.200.1/")
    await policy.check("http://[fd00::1]/")
    await policy.check("http://127.0.0.1:8080/")
    assert await refusal(policy, "http://other.test/") == "private"  # same address, name not listed
    assert await refusal(policy, "http://127.0.0.2/") == "loopback"
    assert await refusal(policy, "http://[fd00::2]/") == "private"
    assert await refusal(policy, "http://169.254.169.254/") == "link_local"

    anything = DestinationPolicy.from_settings(
        load_settings(env="test", webhook_allow_private=True), resolver=dns
    )
    for target in ("http://169.254.169.254/", "http://127.0.0.1/", "http://other.test/", "http://[::1]/"):
        await anything.check(target)
    assert await refusal(anything, "http://u:p@127.0.0.1/") == "credentials"


def test_https_is_required_by_default_in_production() -> None:
    strong = "Zq8v!Lr2#Xn5@Tb9$Wm4^Hk7&Pd3*Fs6(Jc1)Gy0"
    production = load_settings(
        env="production",
        api_key=SecretStr(strong + "a"),
        webhook_signing_secret=SecretStr(strong + "b"),
        console_api_key=SecretStr(strong + "c"),
        simulator_api_key=SecretStr(strong + "d"),
    )
    assert DestinationPolicy.from_settings(production).require_https is True
    assert DestinationPolicy.from_settings(load_settings(env="development")).require_https is False
    relaxed = load_settings(env="development", webhook_require_https=True)
    assert DestinationPolicy.from_settings(relaxed).require_https is True


async def test_pinned_request_connects_to_the_vetted_address_with_the_original_name() -> None:
    dns = FakeDns({"hooks.test": [PUBLIC, "2606:4700:4700::1111"]})
    destination = await DestinationPolicy(resolver=dns).check("https://hooks.test:8443/in?x=1")
    url, headers, extensions = destination.pinned_request(ipaddress.ip_address(PUBLIC))
    assert str(url) == f"https://{PUBLIC}:8443/in?x=1"
    assert headers == {"Host": "hooks.test:8443"}
    assert extensions == {"sni_hostname": "hooks.test"}  # TLS SNI and certificate checked for the name
    url6, _, _ = destination.pinned_request(ipaddress.ip_address("2606:4700:4700::1111"))
    assert url6.host == "2606:4700:4700::1111" and str(url6).startswith(
        "https://[2606:4700:4700::1111]:8443/"
    )
    with pytest.raises(ValueError):
        destination.pinned_request(ipaddress.ip_address("127.0.0.1"))  # only a vetted address
    literal = await DestinationPolicy(require_https=False).check(f"http://{PUBLIC}/x")
    url, headers, extensions = literal.pinned_request(ipaddress.ip_address(PUBLIC))
    assert (str(url), headers, extensions) == (f"http://{PUBLIC}/x", {"Host": PUBLIC}, {})


def test_failures_are_classified_without_their_text() -> None:
    request = httpx.Request("POST", "https://hooks.test/")
    cases = [
        (DeliveryFailed("http_503", 503), "http_503"),
        (httpx.ConnectTimeout("slow", request=request), "timeout"),
        (httpx.ReadTimeout("slow", request=request), "timeout"),
        (httpx.ConnectError("[Errno 111] Connection refused", request=request), "connect_error"),
        (
            httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", request=request),
            "tls_error",
        ),
        (httpx.RemoteProtocolError("Server disconnected", request=request), "protocol_error"),
        (DestinationRefused("loopback"), "refused_destination:loopback"),
        (DestinationRefused("unresolvable"), "dns_error"),
        (ssl.SSLError("bad handshake"), "tls_error"),
        (smtplib.SMTPRecipientsRefused({}), "smtp_error"),
        (smtplib.SMTPResponseException(550, b"no such user"), "smtp_550"),
        (ConnectionRefusedError(111, "refused"), "connect_error"),
        (ValueError("anything with secret text"), "error"),
    ]
    for exc, expected in cases:
        assert classify(exc) == expected, exc


def test_stored_errors_reach_the_api_as_classifications_only() -> None:
    assert public_error(None) is None
    assert public_error("http_503") == "http_503"
    assert public_error("refused_destination:link_local") == "refused_destination:link_local"
    assert public_error("RuntimeError: HTTP 503: <html>internal token=abc</html>") == "http_503"
    assert public_error("ConnectError: [Errno 111] Connection refused") == "connect_error"
    assert public_error("ReadTimeout: ") == "timeout"
    assert public_error("SMTPRecipientsRefused: {'a@b': (550, b'x')}") == "smtp_error"
    assert public_error("something else entirely: secret") == "error"
    assert public_error("http_503 but then text") == "error"
