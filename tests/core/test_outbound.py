"""The outbound client against real local receivers on 127.0.0.10 and 127.0.0.11 (Linux routes all of 127/8)."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from studyshelf.core.outbound import OutboundClient, OutboundError, check_url, is_allowed_address

SECRET_BODY = b"internal-secret-do-not-echo"


@dataclass
class Receiver:
    url: str
    hits: list[str] = field(default_factory=list)


Behaviour = Callable[[BaseHTTPRequestHandler], None]


def _serve(host: str, behaviour: Behaviour, *, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            hits.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            behaviour(self)

        do_GET = do_POST = _any  # noqa: N815 - http.server's hook names

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://{host}:{server.server_address[1]}/hook", hits)
    server.shutdown()
    server.server_close()


def _answer(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Behaviour:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return behaviour


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve("127.0.0.10", _answer(200, b'{"ok": true}'))


@pytest.fixture
def other() -> Iterator[Receiver]:
    yield from _serve("127.0.0.11", _answer(200, b'{"other": true}'))


def test_by_default_nothing_reaches_a_loopback_receiver(receiver: Receiver) -> None:
    client = OutboundClient()
    for send in (
        lambda: client.get(receiver.url, what="the platform"),
        lambda: client.post_json(receiver.url, {"event": "x"}, what="the webhook"),
        lambda: client.get(receiver.url.replace("127.0.0.10", "[::ffff:127.0.0.10]"), what="the platform"),
    ):
        with pytest.raises(OutboundError, match="address not allowed"):
            send()
    assert receiver.hits == []


def test_an_allowed_network_is_reached(receiver: Receiver) -> None:
    client = OutboundClient(allowed_networks=["127.0.0.10/32"])
    response = client.post_json(receiver.url, {"event": "x"}, what="the webhook")
    assert (response.status, response.json()) == (200, {"ok": True})
    assert receiver.hits == ["POST /hook"]


def test_a_redirect_is_a_failure_and_is_not_followed(other: Receiver) -> None:
    for redirecting in _serve("127.0.0.10", _answer(302, b"", {"Location": other.url})):
        client = OutboundClient(allowed_networks=["127.0.0.10/32"])
        with pytest.raises(OutboundError, match="HTTP 302"):
            client.post_json(redirecting.url, {"event": "x"}, what="the webhook")
        assert redirecting.hits == ["POST /hook"]
    assert other.hits == []


def test_the_error_never_contains_the_remote_body() -> None:
    for failing in _serve("127.0.0.10", _answer(500, SECRET_BODY)):
        client = OutboundClient(allowed_networks=["127.0.0.10/32"])
        with pytest.raises(OutboundError) as caught:
            client.get(failing.url, what="the platform")
        assert str(caught.value) == "could not reach the platform: HTTP 500"
        assert SECRET_BODY.decode() not in repr(caught.value)


def _trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    try:
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        return  # the client hung up: what the test wants


def test_a_trickling_server_is_cut_at_the_total_deadline() -> None:
    for trickling in _serve("127.0.0.10", _trickle):
        client = OutboundClient(allowed_networks=["127.0.0.10/32"], deadline_seconds=1.0)
        started = time.monotonic()
        with pytest.raises(OutboundError, match="timed out"):
            client.get(trickling.url, what="the platform")
        assert time.monotonic() - started < 2.0  # every read came within 0.1 s: only a total deadline stops it


def test_an_answer_over_the_size_cap_is_refused() -> None:
    big = b"[" + b"1," * 2000 + b"1]"
    for large in _serve("127.0.0.10", _answer(200, big)):
        client = OutboundClient(allowed_networks=["127.0.0.10/32"], max_bytes=1024)
        with pytest.raises(OutboundError, match="too large"):
            client.get(large.url, what="the platform")
        assert len(OutboundClient(allowed_networks=["127.0.0.10/32"]).get(large.url, what="x").body) == len(big)


def _chunked_flood(handler: BaseHTTPRequestHandler) -> None:
    handler.protocol_version = "HTTP/1.1"
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    try:
        for _ in range(64):
            handler.wfile.write(b"1000\r\n" + b"y" * 4096 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")
    except OSError:
        return


def test_the_size_cap_holds_without_a_content_length() -> None:
    for flooding in _serve("127.0.0.10", _chunked_flood):
        client = OutboundClient(allowed_networks=["127.0.0.10/32"], max_bytes=16 * 1024)
        with pytest.raises(OutboundError, match="too large"):
            client.get(flooding.url, what="the platform")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.10",
        "0.0.0.0",  # noqa: S104 - an address the client must refuse, not one bound to
        "169.254.169.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert not is_allowed_address(ipaddress.ip_address(address))
    client = OutboundClient(resolver=lambda _host, _port: [address])
    with pytest.raises(OutboundError, match="address not allowed"):
        client.get("https://innocent.example.org/jwks", what="the platform")


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:93.184.215.14"])
def test_public_addresses_pass_the_check(address: str) -> None:
    assert is_allowed_address(ipaddress.ip_address(address))


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    client = OutboundClient(resolver=lambda _host, _port: ["93.184.215.14", "10.0.0.1"])
    with pytest.raises(OutboundError, match="address not allowed"):
        client.get("https://mixed.example.org/", what="the platform")


def test_plain_http_to_a_public_address_is_refused() -> None:
    client = OutboundClient(resolver=lambda _host, _port: ["93.184.215.14"])
    with pytest.raises(OutboundError, match="https is required"):
        client.get("http://public.example.org/hook", what="the webhook")


def test_the_prefix_tricks_of_the_old_check_are_refused(receiver: Receiver) -> None:
    client = OutboundClient(allowed_networks=["127.0.0.1/32"])  # as an operator who allowed only localhost
    with pytest.raises(OutboundError, match="address not allowed"):
        client.get(receiver.url, what="the webhook")  # http://127.0.0.10:… began with "http://127.0.0.1"
    resolved = OutboundClient(resolver=lambda _host, _port: ["127.0.0.1"])
    with pytest.raises(OutboundError, match="address not allowed"):
        resolved.get("http://127.0.0.1.attacker.example/hook", what="the webhook")
    assert receiver.hits == []


def test_the_checked_address_is_the_one_connected_to(receiver: Receiver) -> None:
    """A name is resolved once: a rebinding DNS answering a public address, then a private one, gets no second say."""
    answers = iter([["127.0.0.10"], ["10.0.0.1"]])
    client = OutboundClient(allowed_networks=["127.0.0.10/32"], resolver=lambda _host, _port: next(answers))
    url = receiver.url.replace("127.0.0.10", "hooks.example.org")
    assert client.post_json(url, {"a": 1}, what="the webhook").status == 200
    assert receiver.hits == ["POST /hook"]


def test_urls_are_checked_when_saved() -> None:
    assert check_url(" https://hooks.example.edu/x ") == "https://hooks.example.edu/x"
    assert check_url("http://10.20.0.5:8080/x") == "http://10.20.0.5:8080/x"
    for bad, message in [
        ("http://hooks.example.edu/x", "https://"),
        ("ftp://hooks.example.edu/x", "https://"),
        ("https://user:pw@hooks.example.edu/x", "no user name"),
        ("https://hooks.example.edu:99999/x", "not a valid URL"),
        ("https:///x", "needs a host"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_url(bad)


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name`: (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_tls_to_the_pinned_address_still_verifies_the_name(tmp_path: Path) -> None:
    cert_file, key_file = _certificate(tmp_path, "lms.example.org")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    for tls in _serve("127.0.0.10", _answer(200, b'{"keys": []}'), tls=server_tls):
        client = OutboundClient(
            allowed_networks=["127.0.0.10/32"], resolver=lambda _host, _port: ["127.0.0.10"], ssl_context=trusting
        )
        port = tls.url.rsplit(":", 1)[1].split("/", 1)[0]
        answer = client.get(f"https://lms.example.org:{port}/jwks", what="the platform")
        assert answer.json() == {"keys": []}
        with pytest.raises(OutboundError, match="connection failed"):
            client.get(f"https://wrong.example.org:{port}/jwks", what="the platform")
        assert tls.hits == ["GET /jwks"]


def test_the_allowed_networks_come_from_the_environment_and_are_checked_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from studyshelf.settings import Settings

    assert Settings().outbound_allowed_networks == []
    monkeypatch.setenv("STUDYSHELF_OUTBOUND_ALLOWED_NETWORKS", '["10.20.0.0/16", "fd00:1::/64"]')
    assert Settings().outbound_allowed_networks == ["10.20.0.0/16", "fd00:1::/64"]
    monkeypatch.setenv("STUDYSHELF_OUTBOUND_ALLOWED_NETWORKS", '["10.20.0.0/16", "intranet"]')
    with pytest.raises(ValidationError, match="'intranet' is not an IP network"):
        Settings()
