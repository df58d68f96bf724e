"""Google-signed OIDC ID tokens, verified against a local certificate endpoint."""

import time

import pytest

from shared.errors import AuthError, Forbidden

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def google_keys():
    """An RSA key, its self-signed X.509 cert served as Google serves /oauth2/v1/certs."""
    import datetime as dt
    import http.server
    import json
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google-signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    certs = {"kid-1": cert.public_bytes(serialization.Encoding.PEM).decode()}
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            body = json.dumps(certs).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    yield private_pem, f"http://127.0.0.1:{server.server_address[1]}/oauth2/v1/certs", hits
    server.shutdown()
    server.server_close()


def google_token(private_pem, **claims):
    from google.auth import crypt
    from google.auth import jwt as google_jwt

    now = int(time.time())
    payload = {"iss": "https://accounts.google.com", "aud": "https://fn.example/", "iat": now,
               "exp": now + 300, "email": "push@proj.iam.gserviceaccount.com", "email_verified": True,
               "sub": "1234"}
    payload.update(claims)
    signer = crypt.RSASigner.from_string(private_pem, key_id="kid-1")
    return "Bearer " + google_jwt.encode(signer, payload).decode()


def test_google_id_tokens_are_verified_with_cached_certs(google_keys):
    from shared.auth import GoogleIdTokenVerifier

    pem, url, hits = google_keys
    verifier = GoogleIdTokenVerifier("https://fn.example/", ("push@proj.iam.gserviceaccount.com",),
                                     certs_url=url)
    assert verifier.verify(google_token(pem)).email == "push@proj.iam.gserviceaccount.com"
    verifier.verify(google_token(pem))
    assert len(hits) == 1  # the certificates are fetched once, then cached

    for claims, error in [
        ({"aud": "https://other.example/"}, AuthError),
        ({"iss": "https://evil.example"}, AuthError),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, AuthError),
        ({"email": "someone@else.iam.gserviceaccount.com"}, Forbidden),
        ({"email_verified": False}, Forbidden),
    ]:
        with pytest.raises(error):
            verifier.verify(google_token(pem, **claims))


def test_a_token_signed_by_another_key_is_refused(google_keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from shared.auth import GoogleIdTokenVerifier

    _, url, _ = google_keys
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    verifier = GoogleIdTokenVerifier(None, ("push@proj.iam.gserviceaccount.com",), certs_url=url)
    with pytest.raises(AuthError, match="signature"):
        verifier.verify(google_token(other))


def test_unreachable_certificates_are_transient():
    from shared.auth import GoogleIdTokenVerifier
    from shared.errors import TransientError

    verifier = GoogleIdTokenVerifier(None, ("a@b",), certs_url="http://127.0.0.1:9/certs")
    with pytest.raises(TransientError, match="certificates"):
        verifier.verify("Bearer a.b.c")
