"""Helpers for driving real Bitrix24 client libraries against the live test server.

``tls_proxy`` puts TLS (a self-signed certificate made here with the ``openssl`` tool, SAN IP:127.0.0.1)
in front of the live server, for b24pysdk which always speaks https.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import subprocess
import threading
from pathlib import Path


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _pump(client: socket.socket, backend: socket.socket) -> None:
    sockets = [client, backend]
    try:
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 30)
            if broken or not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (backend if sock is client else client).sendall(data)
    except (OSError, ssl.SSLError):
        return
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def tls_proxy(backend_port: int, cert: Path, key: Path):
    """Yields the port of a TLS listener on 127.0.0.1 that forwards every connection to ``backend_port``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                raw.settimeout(10)
                client = context.wrap_socket(raw, server_side=True)
                client.settimeout(None)
                backend = socket.create_connection(("127.0.0.1", backend_port))
            except (OSError, ssl.SSLError):
                with contextlib.suppress(OSError):
                    raw.close()
                continue
            threading.Thread(target=_pump, args=(client, backend), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()
