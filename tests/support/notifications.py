"""Helpers of the notification tests: a signature-verifying webhook receiver, a stub SMTP server, a fake clock,
a fake DNS (the destination policy's resolver) and settings that allow the loopback receiver explicitly."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.config import Settings
from core.notifications import signing

#: What the tests' loopback receiver needs: the destination policy refuses loopback targets by default.
LOOPBACK_ALLOWED = {"webhook_allowed_hosts": ["127.0.0.1"]}


async def delete_test_webhooks(client: Any, headers: dict[str, str], prefix: str) -> None:
    """Delete the webhook subscriptions whose names start with ``prefix`` (the database is shared between tests:
    no subscription may be left for other tests' events to reach)."""
    listed = await client.get("/api/v1/webhooks", params={"limit": 1000}, headers=headers)
    assert listed.status_code == 200, listed.text
    for item in listed.json()["items"]:
        if item["name"].startswith(prefix):
            deleted = await client.delete(f"/api/v1/webhooks/{item['id']}", headers=headers)
            assert deleted.status_code == 200, deleted.text


def allow_loopback(settings: Settings, **update: Any) -> Settings:
    """``settings`` that allow webhook targets on 127.0.0.1 (only there), plus ``update``."""
    return settings.model_copy(update={**LOOPBACK_ALLOWED, **update})


class FakeDns:
    """A resolver for ``DestinationPolicy`` / ``DeliveryWorker``: ``answers[name]`` are the addresses a name resolves
    to (changeable between calls: DNS rebinding); unknown names fail like a failed lookup. Records every lookup."""

    def __init__(
        self,
        answers: dict[str, list[str]] | None = None,
        *,
        fallback: Callable[[str, int], list[str]] | None = None,
    ) -> None:
        self.answers: dict[str, list[str]] = dict(answers or {})
        self.fallback = fallback  # e.g. the system resolver, for ``localhost``
        self.lookups: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.lookups.append(host)
            answer = self.answers.get(host.lower().rstrip("."))
        if answer is not None:
            return list(answer)
        if self.fallback is not None:
            return self.fallback(host, port)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class FakeClock:
    """A datetime clock for the delivery worker (backoff without sleeping)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def timestamp(self) -> float:
        return self.now.timestamp()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    error: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """State of the webhook receiver: verifies every request with ``signing.verify`` and can fail N times."""

    secret: str
    url: str = ""
    fail_times: int = 0
    fail_always: bool = False
    failure_body: bytes = b"planned failure"
    tolerance_s: float = signing.DEFAULT_TOLERANCE_S
    now: Callable[[], float] | None = None
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.status == 200]

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            planned_failure = self.fail_always or sum(1 for r in self.requests if r.error == "planned") < (
                self.fail_times
            )
            error: str | None = None
            status = 200
            try:
                kwargs: dict[str, Any] = {"now": self.now} if self.now is not None else {}
                signing.verify(
                    self.secret, body, headers.get(signing.SIGNATURE_HEADER, ""), self.tolerance_s, **kwargs
                )
            except signing.SignatureError as exc:
                status, error = 401, str(exc)
            if status == 200 and planned_failure:
                status, error = 500, "planned"
            self.requests.append(Received(path, headers, body, status, error))
            return status


@dataclass
class TlsPair:
    """A self-signed certificate for ``name``: the server's context (records the SNI it is asked for) and a client
    context that trusts only that certificate and checks the host name."""

    name: str
    server: ssl.SSLContext
    client: ssl.SSLContext
    sni: list[str | None] = field(default_factory=list)


def tls_pair(name: str) -> TlsPair:
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
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
    pair = TlsPair(name, server, client)
    server.sni_callback = lambda _sock, server_name, _ctx: pair.sni.append(server_name)  # type: ignore[assignment,misc]
    return pair


@contextmanager
def webhook_receiver(secret: str, *, tls: TlsPair | None = None, **options: Any) -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 (free port) that checks signatures; yields its ``Receiver`` state.
    With ``tls`` it speaks https with that certificate (``url`` still names 127.0.0.1)."""
    state = Receiver(secret=secret, **options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status = state.handle(self.path, dict(self.headers.items()), body)
            reply = b"ok" if status == 200 else state.failure_body if status == 500 else b"bad signature"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:  # the handshake runs on accept; a failed one drops the connection (no request)
        server.socket = tls.server.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    state.url = f"{'https' if tls else 'http'}://{host}:{port}/hooks/sm"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class SmtpStub:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)


@asynccontextmanager
async def smtp_stub() -> AsyncIterator[SmtpStub]:
    """A minimal SMTP server (asyncio) good enough for ``smtplib.SMTP.send_message``; records every message."""
    stub = SmtpStub()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        sender, recipients = "", []
        reply("220 stub ESMTP")
        await writer.drain()
        try:
            while raw := await reader.readline():
                command = raw.decode(errors="replace").strip()
                verb = command[:4].upper()
                if verb in {"EHLO", "HELO"}:
                    reply("250 stub")
                elif verb == "MAIL":
                    sender, recipients = command.split(":", 1)[1].strip().strip("<>"), []
                    reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                    reply("250 OK")
                elif verb == "DATA":
                    reply("354 end with <CRLF>.<CRLF>")
                    await writer.drain()
                    data = await reader.readuntil(b"\r\n.\r\n")
                    content = data[: -len(b"\r\n.\r\n")].replace(b"\r\n..", b"\r\n.")
                    stub.messages.append(
                        (sender, list(recipients), message_from_bytes(content, policy=policy.default))
                    )
                    reply("250 OK queued")
                elif verb == "QUIT":
                    reply("221 bye")
                    await writer.drain()
                    break
                else:  # RSET, NOOP, …
                    reply("250 OK")
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(session, stub.host, 0)
    stub.port = server.sockets[0].getsockname()[1]
    try:
        yield stub
    finally:
        server.close()
        await server.wait_closed()
