"""A real HTTP(S) file server on loopback that supports Range, redirects, and can break
transfers on purpose. With `tls=True` it serves HTTPS with a certificate of its own for
127.0.0.1, written to `ca_file` (point SSL_CERT_FILE at it to trust it)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class FileServer:
    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    break_once: set[str] = field(default_factory=set)  # cut the first transfer halfway
    always_short: set[str] = field(default_factory=set)  # announce more than is sent, every time
    ignore_range: bool = False
    statuses: dict[str, int] = field(default_factory=dict)  # path → an error status to answer
    redirects: dict[str, str] = field(default_factory=dict)  # path → where a 302 sends it
    ca_file: Path | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    # The Authorization header every request must carry (401 otherwise); None: none asked.
    authorization: str | None = None
    authorizations: list[str | None] = field(default_factory=list)  # as each request sent it


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@contextmanager
def serve_files(*, tls: bool = False) -> Iterator[FileServer]:
    state = FileServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            range_header = self.headers.get("range")
            state.requests.append((path, range_header))
            state.authorizations.append(self.headers.get("authorization"))
            if state.authorization is not None and (
                self.headers.get("authorization") != state.authorization
            ):
                self.send_error(401)
                return
            if path in state.redirects:
                self.send_response(302)
                self.send_header("location", state.redirects[path])
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if path in state.statuses:
                self.send_error(state.statuses[path])
                return
            data = state.files.get(path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if range_header and not state.ignore_range:
                start = int(range_header.removeprefix("bytes=").split("-", 1)[0])
                self.send_response(206)
                self.send_header("content-range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("content-length", str(len(body)))
            self.send_header("accept-ranges", "bytes")
            self.end_headers()
            if path in state.always_short or path in state.break_once:
                state.break_once.discard(path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    scratch = tempfile.TemporaryDirectory()
    if tls:
        key_file, state.ca_file = _self_signed(Path(scratch.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(state.ca_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        state.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        scratch.cleanup()
