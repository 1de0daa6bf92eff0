"""A machine in the middle: a TLS server that poses as the BSLS server and records what
a client that trusts it sends.

It speaks just enough HTTP/2 (kopia's gRPC) and HTTP/1.1 (kopia's control API) to read
the first request's headers, where kopia puts its credentials: `kopia-password` (gRPC
metadata) or `Authorization: Basic ...` (control API). A client that refuses the
certificate sends nothing after the handshake fails, so `leaked` stays empty; a client
that accepts it hands over its password, which `leaked` shows in clear.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import ipaddress
import pathlib
import socket
import ssl
import threading

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem(*certs: x509.Certificate) -> bytes:
    """Certificates as one PEM file, in order."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def issue(
    subject: str,
    *,
    dns: list[str] = (),  # type: ignore[assignment]
    ca: bool = False,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate valid now (self-signed without `issuer`) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    if ca:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        sans: list[x509.GeneralName] = []
        for d in dns:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(d)))
            except ValueError:
                sans.append(x509.DNSName(d))
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


@dataclasses.dataclass
class Captured:
    """What a client sent the fake after trusting it."""

    protocol: str  # "h2" or "http/1.1"
    headers: dict[str, str]

    @property
    def password(self) -> str | None:
        """The password in the request: gRPC metadata, or HTTP basic auth."""
        if "kopia-password" in self.headers:
            return self.headers["kopia-password"]
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            return base64.b64decode(auth[6:]).decode().split(":", 1)[1]
        return None


class FakeServer:
    """A TLS server presenting `chain` (PEM, leaf first) with `key`, on `address:port`."""

    def __init__(
        self, folder: pathlib.Path, chain: bytes, key: ec.EllipticCurvePrivateKey, address: str,
        port: int,
    ) -> None:  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chain.pem").write_bytes(chain)
        (folder / "key.pem").write_bytes(_key_pem(key))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(folder / "chain.pem", folder / "key.pem")
        self.context.set_alpn_protocols(["h2", "http/1.1"])
        self.address, self.port = address, port
        self.handshakes = 0  # connections whose client accepted the certificate
        self.refusals: list[str] = []  # why handshakes failed, as the server saw it
        self.captured: list[Captured] = []
        self._sock = socket.create_server((address, port), reuse_port=False)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sock.close()

    @property
    def leaked(self) -> list[str]:
        """Every password a client handed over."""
        return [c.password for c in self.captured if c.password]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            # TLS 1.3: the client checks the certificate before its Finished message, so
            # a refusal fails our side of the handshake; nothing else was sent.
            self.refusals.append(str(e))
            raw.close()
            return
        self.handshakes += 1
        with contextlib.closing(tls):
            try:
                if tls.selected_alpn_protocol() == "h2":
                    self._h2(tls)
                else:
                    self._http1(tls)
            except (ssl.SSLError, OSError, ValueError):
                return

    def _h2(self, tls: ssl.SSLSocket) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        while data := tls.recv(65535):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {str(k): str(v) for k, v in event.headers}
                    self.captured.append(Captured("h2", headers))
                    conn.send_headers(event.stream_id, [(":status", "403")], end_stream=True)
            tls.sendall(conn.data_to_send())
            if self.captured:
                return

    def _http1(self, tls: ssl.SSLSocket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(65535)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.captured.append(Captured("http/1.1", headers))
        tls.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
