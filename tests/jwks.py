"""A JWKS published over real loopback HTTP, keys to sign with, and tokens good and bad: for
the verifier's own tests and for servers started with AUTH_MODE=jwt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/"
AUDIENCE = "graphgate"
JWKS_PATH = "/.well-known/jwks.json"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: PrivateKey, kid: str | None, alg: str | None = None) -> dict[str, Any]:
    """The public half of `key` as a JWK, with a kid and (optionally) an alg."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def default_jwks() -> dict[str, Any]:
    return {"keys": [public_jwk(RSA_KEY, "rsa-1", "RS256"), public_jwk(EC_KEY, "ec-1", "ES256")]}


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid payload for ISSUER/AUDIENCE; pass name=None to leave a claim out."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 300}
    payload.update(overrides)
    return {name: value for name, value in payload.items() if value is not None}


def sign(key: PrivateKey, kid: str | None, alg: str = "RS256", /, **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """header.payload, base64url-encoded by hand (for tokens PyJWT refuses to make)."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"


def hmac_confusion_token() -> str:
    """HS256 keyed with the RSA public key's PEM: valid iff a verifier treats it as a secret."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims())
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


@dataclass
class JWKSServer:
    """A loopback HTTP server publishing `document` at JWKS_PATH, counting its fetches and
    noting when (time.monotonic) it last served one."""

    url: str = ""
    document: dict[str, Any] = field(default_factory=default_jwks)
    status: int = 200
    raw: bytes | None = None  # served instead of the document when set
    hits: int = 0
    served_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.document, self.status, self.raw, self.hits = default_jwks(), 200, None, 0


def handler_for(state: JWKSServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != JWKS_PATH:
                self.send_error(404)
                return
            with state.lock:
                state.hits += 1
                state.served_at = time.monotonic()
                status, body = state.status, state.raw or json.dumps(state.document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving_jwks() -> Iterator[JWKSServer]:
    """A JWKS server on a free loopback port, for as long as the block runs."""
    state = JWKSServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}{JWKS_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
