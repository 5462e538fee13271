"""The one safe client for requests to URLs that a user or a platform supplied (webhooks, OIDC, JWKS).

Every such URL is a way into the server's own network (SSRF). So the host is resolved once and every
address it resolves to must be public (not loopback, private, link-local, multicast, unspecified or
reserved, IPv4-mapped and 6to4/NAT64/Teredo-embedded IPv4 included) unless it lies in an operator's
allowed network; the connection goes to the address that was checked (the network backend below never
resolves a name, so a rebinding DNS server gets no second say), while the URL keeps its name for the
Host header and for TLS, which still verifies the certificate against that name. Redirects are never
followed (a 3xx is a failure), plain http is accepted only inside an allowed network, one deadline
covers resolving, connecting, sending and every read, and the body is streamed and cut at a size cap.
Failures raise `OutboundError`, whose message is general and never contains what the remote sent.

httpcore is the transport layer of httpx (same maintainers, a dependency of it); it is used directly
because it lets us supply the network backend, which is where the pinning and the deadline live.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpcore
import httpx

DEFAULT_DEADLINE_SECONDS = 10.0
DEFAULT_MAX_BYTES = 256 * 1024
USER_AGENT = "StudyShelf/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class OutboundError(Exception):
    """A request could not be made or was not answered with a 2xx; `reason` is short and general."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"could not reach {what}: {reason}")


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.body)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs as networks; ValueError naming the first that is not one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network (e.g. 10.20.0.0/16 or fd00:1::/64)") from exc
    return tuple(networks)


def check_url(value: str, *, what: str = "The webhook URL") -> str:
    """A URL as saved in settings: https, or http to an IP address (a receiver on an operator's allowed network).

    Only its form is checked here (ValueError with a message for the user); where it may lead is decided
    when it is called, with the address its name resolves to then."""
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"{what} is not a valid URL.") from exc
    if not parts.hostname or parts.username or parts.password or any(c.isspace() for c in url) or len(url) > 500:
        raise ValueError(f"{what} needs a host, and no user name, password or spaces.")
    if parts.scheme == "https":
        return url
    try:
        literal = parts.scheme == "http" and bool(ipaddress.ip_address(parts.hostname))
    except ValueError:
        literal = False
    if not literal:
        raise ValueError(f"{what} must use https:// (plain http:// only to an IP address on an allowed network).")
    return url


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _in(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def is_allowed_address(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    """True for a public unicast address, or any address inside an allowed network."""
    if _in(address, allowed):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_allowed_address(embedded, allowed)
    refused = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )
    return address.is_global and not refused


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation waits at most until the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the deadline has passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the address that was checked, whatever host name the connection pool asks for."""

    def __init__(self, address: str, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the deadline has passed")
        stream = self._inner.connect_tcp(
            self._address, port, min(timeout or left, left), local_address=local_address, socket_options=socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from here")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class OutboundClient:
    """Built once from settings (Services.outbound); thread-safe, one short-lived connection per request."""

    def __init__(
        self,
        *,
        allowed_networks: Iterable[str] = (),
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        resolver: Resolver = _system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allowed = parse_networks(allowed_networks)
        self.deadline_seconds = deadline_seconds
        self.max_bytes = max_bytes
        self._resolver = resolver
        self._ssl = ssl_context or ssl.create_default_context(cafile=certifi.where())
        # getaddrinfo cannot be given a timeout; a few threads let the deadline cover a hanging resolver.
        self._resolving = ThreadPoolExecutor(max_workers=4, thread_name_prefix="studyshelf-resolve")

    def get(self, url: str, *, what: str, headers: Mapping[str, str] | None = None) -> OutboundResponse:
        return self.request("GET", url, what=what, headers=headers)

    def post_json(
        self, url: str, payload: object, *, what: str, headers: Mapping[str, str] | None = None
    ) -> OutboundResponse:
        body = json.dumps(payload).encode()
        return self.request(
            "POST", url, what=what, content=body, headers={"Content-Type": "application/json", **(headers or {})}
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> OutboundResponse:
        """Send one request within the deadline; a 2xx answer (body at most max_bytes) or OutboundError."""
        deadline = time.monotonic() + self.deadline_seconds
        target = self._target(url, what)
        address = self._resolve(target, what, deadline)
        port = target.port or (443 if target.scheme == "https" else 80)
        sent_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        sent_headers["Host"] = target.netloc.decode("ascii")  # the name, not the address: virtual hosts, TLS
        if content or method in {"POST", "PUT", "PATCH"}:
            sent_headers["Content-Length"] = str(len(content))
        core_url = httpcore.URL(scheme=target.raw_scheme, host=target.raw_host, port=port, target=target.raw_path)
        left = deadline - time.monotonic()
        extensions = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), left)}
        backend = _PinnedBackend(address, deadline)
        try:
            with (
                httpcore.ConnectionPool(ssl_context=self._ssl, network_backend=backend, retries=0) as pool,
                pool.stream(
                    method, core_url, headers=list(sent_headers.items()), content=content, extensions=extensions
                ) as response,
            ):
                if not 200 <= response.status < 300:
                    raise OutboundError(what, f"HTTP {response.status}")
                body = self._read(response, what)
                answer_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        except httpcore.TimeoutException as exc:
            raise OutboundError(what, "timed out") from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, ssl.SSLError) as exc:
            raise OutboundError(what, "connection failed") from exc
        return OutboundResponse(response.status, answer_headers, body)

    def _read(self, response: httpcore.Response, what: str) -> bytes:
        declared = next((v for k, v in response.headers if k.lower() == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise OutboundError(what, "answer too large")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise OutboundError(what, "answer too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _target(self, url: str, what: str) -> httpx.URL:
        try:
            target = httpx.URL(url.strip())
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise OutboundError(what, "not a valid URL") from exc
        if target.scheme not in {"https", "http"} or not target.host:
            raise OutboundError(what, "not an http(s) URL")
        if target.userinfo:
            raise OutboundError(what, "a URL cannot carry a user name or password")
        return target

    def _resolve(self, target: httpx.URL, what: str, deadline: float) -> str:
        """The checked address to connect to: every address the name resolves to must be allowed."""
        host = target.raw_host.decode("ascii")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            found = [str(literal)]
        else:
            future = self._resolving.submit(self._resolver, host, target.port or 443)
            try:
                found = future.result(timeout=max(deadline - time.monotonic(), 0.001))
            except FutureTimeout as exc:
                raise OutboundError(what, "timed out") from exc
            except (OSError, UnicodeError) as exc:
                raise OutboundError(what, "name not found") from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses or not all(is_allowed_address(a, self.allowed) for a in addresses):
            raise OutboundError(what, "address not allowed")
        if target.scheme == "http" and not all(_in(a, self.allowed) or self._embedded_in(a) for a in addresses):
            raise OutboundError(what, "https is required")
        return str(addresses[0])

    def _embedded_in(self, address: IPAddress) -> bool:
        embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        return embedded is not None and _in(embedded, self.allowed)
