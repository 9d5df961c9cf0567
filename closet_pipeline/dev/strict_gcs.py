"""A strict front for fake-gcs-server: what real GCS refuses, refused here too.

fake-gcs-server accepts anything from anyone, as fast as it comes, and never checks a signed URL.
This HTTP proxy sits in front of it and refuses, with GCS's status codes and JSON error bodies:

- access a caller was not granted (403): each function gets its own listening port, and may read
  and write only the buckets topology.json declares for it (`reads`, `writes`; Terraform grants
  exactly those; each area is its own bucket, so the area is the bucket). Bucket administration
  (create, list buckets) is refused to every function.
- too many writes to one object (429 rateLimitExceeded): GCS sustains about one write per second to
  the same object name. A token bucket per object name allows a burst of `burst` writes and then
  `writes_per_s`; uploads, deletes, metadata updates and copy/rewrite/compose destinations count.
- signed URLs (path-style `/{bucket}/{object}?X-Goog-Algorithm=...`) that are malformed (400),
  expired (400 ExpiredToken), from an unknown signer or with a wrong signature (403
  SignatureDoesNotMatch), and a body outside the signed `x-goog-content-length-range` (400, nothing
  stored: GCS refuses such a PUT instead of storing it). The signature is checked against the public key of the signer's key file
  (the dev topology generates one per function), over the same canonical request GCS builds. A
  signed URL carries its signer's rights, as in GCS.

Listeners (each its own port): `admin` (every right: the test harness and `closet-pipeline upload`
act as the project owner), `public` (signed URLs only; anything else is 401 like an anonymous caller)
and one per function. Started by closet_pipeline/dev/topology.py as
`python -m closet_pipeline.dev.strict_gcs CONFIG.json`; refusals are logged to its log file.
"""

from __future__ import annotations

import binascii
import datetime
import hashlib
import http.client
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("closet.dev.strict_gcs")

ADMIN = "admin"
PUBLIC = "public"
MAX_SIGNED_URL_EXPIRES_S = 604800  # GCS refuses a V4 URL valid for more than 7 days
SIGNED_PARAMS = ("X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires",
                 "X-Goog-SignedHeaders", "X-Goog-Signature")
RATE_MESSAGE = ("The object {bucket}/{name} exceeded the rate limit for object mutation operations (create, "
                "update, and delete). Please reduce your request rate. See https://cloud.google.com/storage/docs/gcs429.")


@dataclass(frozen=True)
class Rights:
    """Bucket names a principal may read and write. Writing includes reading (Terraform grants
    objectUser) unless `create_only` (an HTTP function signing uploads gets objectCreator)."""

    read: frozenset[str]
    write: frozenset[str]
    everything: bool = False
    create_only: bool = False

    def allows(self, bucket: str, write: bool) -> bool:
        if self.everything:
            return True
        if write:
            return bucket in self.write
        return bucket in self.read or (bucket in self.write and not self.create_only)


@dataclass
class Refusal(Exception):
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"


def json_error(status: int, reason: str, message: str, domain: str = "global") -> Refusal:
    body = {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}
    return Refusal(status, json.dumps(body).encode())


def xml_error(status: int, code: str, details: str) -> Refusal:
    body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{code}</Message><Details>{details}</Details></Error>")
    return Refusal(status, body.encode(), "application/xml; charset=UTF-8")


@dataclass
class WriteRate:
    """A token bucket per object name: `burst` writes at once, then `per_s` each second."""

    per_s: float = 1.0
    burst: float = 2.0
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, bucket: str, name: str) -> bool:
        key, now = f"{bucket}/{name}", time.monotonic()
        with self._lock:
            tokens, since = self._tokens.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.per_s)
            if tokens < 1:
                self._tokens[key] = (tokens, now)
                return False
            self._tokens[key] = (tokens - 1, now)
            return True


@dataclass(frozen=True)
class Operation:
    """What one JSON API request does: reads of buckets and writes of (bucket, object) pairs."""

    reads: tuple[str, ...] = ()
    writes: tuple[tuple[str, str | None], ...] = ()
    admin_only: bool = False


_OBJECT = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+?)"
                     r"(?:/(?P<verb>copyTo|rewriteTo)/b/(?P<dbucket>[^/]+)/o/(?P<dobject>.+)|/(?P<compose>compose))?$")


def classify(method: str, path: str, query: dict[str, str], body: bytes) -> Operation:
    """The reads and writes of a JSON API request (fake-gcs-server's and the Python client's paths)."""
    unquote = urllib.parse.unquote
    if path in ("/storage/v1/b", "/storage/v1/b/") or path.startswith("/batch/"):
        return Operation(admin_only=True)
    m = re.match(r"^/upload/storage/v1/b/([^/]+)/o/?$", path)
    if m:
        return Operation(writes=((unquote(m[1]), query.get("name") or _name_in_upload(body)),))
    if path.startswith("/upload/"):  # a resumable session's chunks: counted when the session began
        return Operation()
    m = re.match(r"^/download/storage/v1/b/([^/]+)/o/.+$", path)
    if m:
        return Operation(reads=(unquote(m[1]),))
    m = _OBJECT.match(path)
    if m:
        bucket, name = unquote(m["bucket"]), unquote(m["object"])
        if m["verb"]:
            return Operation(reads=(bucket,), writes=((unquote(m["dbucket"]), unquote(m["dobject"])),))
        if m["compose"]:
            return Operation(writes=((bucket, name),))
        if method in ("GET", "HEAD"):
            return Operation(reads=(bucket,))
        return Operation(writes=((bucket, name),))
    m = re.match(r"^/storage/v1/b/([^/]+)(/o/?)?$", path)
    if m:
        bucket = unquote(m[1])
        if method in ("GET", "HEAD"):
            return Operation(reads=(bucket,))
        if m[2]:  # an insert through the metadata endpoint
            return Operation(writes=((bucket, query.get("name")),))
        return Operation(admin_only=True)  # bucket metadata changes, deletion
    return Operation(admin_only=True)


def _name_in_upload(body: bytes) -> str | None:
    """The object name of a multipart or resumable upload: the JSON metadata at the body's start."""
    match = re.search(rb'\{.*?"name"\s*:\s*"((?:[^"\\]|\\.)*)"', body[:65536], re.DOTALL)
    return json.loads(b'"' + match[1] + b'"') if match else None


# -- signed URLs ---------------------------------------------------------------------------------
def check_signed_url(method: str, raw_path: str, query_pairs: list[tuple[str, str]], headers,
                     signers: dict[str, object], now: float | None = None) -> str:
    """The signer's email of a valid V4 signed URL; raises Refusal as GCS's XML API answers."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from google.cloud.storage._signing import _url_encode, get_canonical_headers

    params = dict(query_pairs)
    missing = [p for p in SIGNED_PARAMS if not params.get(p)]
    if missing:
        raise xml_error(400, "AuthorizationQueryParametersError", f"Missing {', '.join(missing)}.")
    if params["X-Goog-Algorithm"] != "GOOG4-RSA-SHA256":
        raise xml_error(400, "AuthorizationQueryParametersError", "Unsupported X-Goog-Algorithm.")
    try:
        signed_at = datetime.datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC).timestamp()
        expires = int(params["X-Goog-Expires"])
        email, _date, _location, _service, _request = params["X-Goog-Credential"].split("/")
        signature = binascii.unhexlify(params["X-Goog-Signature"])
    except (ValueError, binascii.Error):
        raise xml_error(400, "AuthorizationQueryParametersError", "Malformed X-Goog-* query parameter.") from None
    if not 1 <= expires <= MAX_SIGNED_URL_EXPIRES_S:
        raise xml_error(400, "AuthorizationQueryParametersError",
                        f"X-Goog-Expires must be between 1 and {MAX_SIGNED_URL_EXPIRES_S}.")
    now = time.time() if now is None else now
    if signed_at > now + 60:
        raise xml_error(400, "AuthorizationQueryParametersError", "X-Goog-Date is in the future.")
    if now > signed_at + expires:
        expired_at = datetime.datetime.fromtimestamp(signed_at + expires, datetime.UTC)
        raise xml_error(400, "ExpiredToken", f"Request signature expired at: {expired_at.isoformat()}")
    public_key = signers.get(email)
    if public_key is None:
        raise xml_error(403, "SignatureDoesNotMatch", f"Unknown signer {email}.")
    unsigned = {k: v for k, v in params.items() if k != "X-Goog-Signature"}
    signed_names = params["X-Goog-SignedHeaders"].split(";")
    request_headers = {name: headers.get(name, "") for name in signed_names}
    canonical, ordered = get_canonical_headers(request_headers)
    payload = dict(ordered).get("x-goog-content-sha256", "UNSIGNED-PAYLOAD")
    canonical_request = "\n".join([method, raw_path, _url_encode(unsigned), "\n".join(canonical) + "\n",
                                   ";".join(k for k, _ in ordered), payload])
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    try:
        public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise xml_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                        "the signature you provided.") from None
    return email


def check_length_range(signed_headers: str, headers, length: int) -> None:
    """A signed `x-goog-content-length-range: min,max` binds the body's size: GCS refuses a body
    outside it (400) and stores nothing. The header's value itself is covered by the signature."""
    if "x-goog-content-length-range" not in signed_headers.split(";"):
        return
    try:
        low, high = (int(part) for part in headers.get("x-goog-content-length-range", "").split(","))
    except ValueError:
        raise xml_error(400, "InvalidArgument", "Malformed x-goog-content-length-range.") from None
    if length > high:
        raise xml_error(400, "EntityTooLarge", f"Your proposed upload is larger than the maximum object size "
                        f"specified in your Policy Document ({length} > {high} bytes).")
    if length < low:
        raise xml_error(400, "EntityTooSmall", f"Your proposed upload is smaller than the minimum object size "
                        f"specified in your Policy Document ({length} < {low} bytes).")


# -- the proxy -----------------------------------------------------------------------------------
class StrictGcs:
    """`principals` maps a listener name to its Rights; `signers` maps a key's email to the listener
    whose rights its signed URLs carry, `public_keys` the email to its RSA public key."""

    def __init__(self, upstream: str, principals: dict[str, Rights], *, signers: dict[str, str] | None = None,
                 public_keys: dict[str, object] | None = None, rate: WriteRate | None = None) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.principals = principals
        self.signers = signers or {}
        self.public_keys = public_keys or {}
        self.rate = rate or WriteRate()
        self.servers: dict[str, ThreadingHTTPServer] = {}

    def listen(self, name: str, port: int = 0, host: str = "127.0.0.1") -> int:
        server = ThreadingHTTPServer((host, port), _handler(self, name))
        server.daemon_threads = True
        self.servers[name] = server
        threading.Thread(target=server.serve_forever, name=f"strict-gcs-{name}", daemon=True).start()
        return server.server_address[1]

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()

    def authorize(self, listener: str, method: str, raw_path: str, query_pairs: list[tuple[str, str]],
                  headers, body: bytes) -> None:
        query = dict(query_pairs)
        if "X-Goog-Signature" in query or "X-Goog-Algorithm" in query:
            email = check_signed_url(method, raw_path, query_pairs, headers, self.public_keys)
            check_length_range(query.get("X-Goog-SignedHeaders", ""), headers, len(body))
            principal = self.signers[email]
            bucket, _, name = raw_path.lstrip("/").partition("/")
            bucket, name = urllib.parse.unquote(bucket), urllib.parse.unquote(name)
            write = method not in ("GET", "HEAD")
            operation = Operation(writes=((bucket, name),)) if write else Operation(reads=(bucket,))
            who = email
        elif listener == PUBLIC:
            raise json_error(401, "required", "Anonymous caller does not have storage.objects.get access.")
        else:
            principal, who = listener, f"{listener}@local"
            operation = classify(method, raw_path, query, body)
        rights = self.principals[principal]
        if operation.admin_only and not rights.everything:
            raise json_error(403, "forbidden", f"{who} does not have storage.buckets access to this project.")
        for bucket in operation.reads:
            if not rights.allows(bucket, write=False):
                raise json_error(403, "forbidden", f"{who} does not have storage.objects.get access to the Google "
                                 f"Cloud Storage bucket {bucket}. Permission 'storage.objects.get' denied.")
        for bucket, name in operation.writes:
            if not rights.allows(bucket, write=True):
                raise json_error(403, "forbidden", f"{who} does not have storage.objects.create access to the "
                                 f"Google Cloud Storage object {bucket}/{name}. Permission 'storage.objects.create' "
                                 "denied.")
        for bucket, name in operation.writes:
            if name and not self.rate.take(bucket, name):
                raise json_error(429, "rateLimitExceeded", RATE_MESSAGE.format(bucket=bucket, name=name),
                                 domain="usageLimits")

    def forward(self, method: str, target: str, headers, body: bytes, listener_base: str):
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "content-length",
                                                                          "transfer-encoding")}
            connection.request(method, target, body=body if body or method in ("POST", "PUT", "PATCH") else None,
                               headers={**sent, "Content-Length": str(len(body))} if body or method in (
                                   "POST", "PUT", "PATCH") else sent)
            response = connection.getresponse()
            data = response.read()
            upstream_base = f"{self.upstream.scheme}://{self.upstream.netloc}"
            out = [(k, v.replace(upstream_base, listener_base)) for k, v in response.getheaders()
                   if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive")]
            return response.status, out, data
        finally:
            connection.close()


def _handler(front: StrictGcs, listener: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: with Nagle on, each response waits for the
        # client's delayed ACK (40 ms), a cost no cloud endpoint adds.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urllib.parse.urlsplit(self.path)
            pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
            try:
                front.authorize(listener, self.command, split.path, pairs, self.headers, body)
            except Refusal as refusal:
                log.warning("%s %s %s -> %d %s", listener, self.command, split.path, refusal.status,
                            refusal.body[:300].decode(errors="replace"))
                self._send(refusal.status, [("Content-Type", refusal.content_type)], refusal.body)
                return
            host, port = self.server.server_address[:2]
            try:
                status, headers, data = front.forward(self.command, self.path, self.headers, body,
                                                      f"http://{host}:{port}")
            except OSError as exc:
                self._send(502, [("Content-Type", "text/plain")], f"fake-gcs-server unreachable: {exc}".encode())
                return
            self._send(status, headers, data)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _any

    return Handler


# -- run as its own process by the dev topology ------------------------------------------------
def from_config(config: dict) -> tuple[StrictGcs, dict[str, int]]:
    """Config: upstream, listeners {name: port}, rights {name: {read: [...], write: [...]}} (admin and
    public need none; createOnly for an upload signer), signers {email: {"principal": name, "keyFile": path}}, rate {perSecond, burst}."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    principals = {ADMIN: Rights(frozenset(), frozenset(), everything=True), PUBLIC: Rights(frozenset(), frozenset())}
    for name, grant in config.get("rights", {}).items():
        principals[name] = Rights(frozenset(grant.get("read", ())), frozenset(grant.get("write", ())),
                                  create_only=bool(grant.get("createOnly")))
    signers, keys = {}, {}
    for email, signer in config.get("signers", {}).items():
        signers[email] = signer["principal"]
        pem = json.loads(Path(signer["keyFile"]).read_text())["private_key"].encode()
        keys[email] = load_pem_private_key(pem, password=None).public_key()
    rate = config.get("rate", {})
    front = StrictGcs(config["upstream"], principals, signers=signers, public_keys=keys,
                      rate=WriteRate(float(rate.get("perSecond", 1.0)), float(rate.get("burst", 2.0))))
    ports = {name: front.listen(name, int(port)) for name, port in config["listeners"].items()}
    return front, ports


def main(argv: list[str] | None = None) -> int:
    """One process for both strict fronts: this one, and the push front (strict_push.py) when the
    config has a "push" section."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    config = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    _front, ports = from_config(config)
    log.info("strict GCS front on %s -> %s", ports, config["upstream"])
    if config.get("push"):
        from closet_pipeline.dev.strict_push import PushFront

        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient()  # PUBSUB_EMULATOR_HOST is set by the dev topology

        def publish(topic: str, data: bytes, attributes: dict[str, str]) -> None:
            publisher.publish(topic, data, **attributes).result(timeout=30)

        push = PushFront(config["push"]["functions"], config["push"].get("subscriptions", {}),
                         timeouts=config["push"].get("timeouts", {}), publish=publish)
        log.info("push front on %d", push.listen(int(config["push"]["port"])))
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
