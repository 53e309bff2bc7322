#!/usr/bin/env python3
"""A fault-and-race proxy in front of Azurite's blob service, for idplan's tests (Python 3
standard library only). Azurite has no fault hook; this proxy gives it the shared ones
(tests/support/faults.py) and one race.

    azurite_proxy.py --port N --upstream PORT [--exit-with-parent] [fault arguments]

Every request is forwarded to Azurite on 127.0.0.1:PORT as it came (path, query, headers and
body: the Shared Key signature stays valid), and Azurite's answer is sent back as it came.

* Faults (`--faults RATE` and the rest, see tests/support/faults.py) on the blob API. A
  request is described as "blob:METHOD /ACCOUNT/CONTAINER/BLOB", with "?comp=COMP" for a
  lease or metadata call and the lease action after it ("blob:PUT /devstoreaccount1/c/s.json
  ?comp=lease release"); a write is anything but GET and HEAD. Throttling is Azure's 503
  ServerBusy, a 5xx its 500 InternalError, a lost reply a 500 sent after Azurite did the
  write, a denial its 403 AuthorizationPermissionMismatch.
* A race: `POST /_proxy/lease-race` {"blob": "/ACCOUNT/CONTAINER/BLOB", "lease": ID,
  "holder": TEXT}. Right before the next lease release of that blob, another run breaks the
  lease, acquires one with the id ID and sets its holder metadata (`idplanlock`, base64 of
  TEXT), as `idplan state unlock` and another idplan would: the release comes after that.
  The proxy signs these calls with the account's key (`--account`, `--key`; Azurite's
  published development account by default).
* `GET /_proxy/health`: 200 once the proxy listens.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse, unquote

import faults

VERSION = "2021-08-06"
ACCOUNT = "devstoreaccount1"
# Azurite's development key, published in its documentation (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Proxy:
    def __init__(self, upstream, account, key, injected):
        self.upstream = upstream
        self.account = account
        self.key = base64.b64decode(key)
        self.faults = injected
        self.lock = threading.Lock()
        self.races = {}  # blob path -> (lease id, holder text)

    def forward(self, method, target, headers, body):
        """`method target` on Azurite with `headers` and `body`: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                if k.lower() not in HOP:
                    conn.putheader(k, v)
            conn.endheaders(body or None)
            answer = conn.getresponse()
            data = answer.read()
            return answer.status, answer.getheaders(), data
        finally:
            conn.close()

    def signed(self, method, path, query, extra):
        """A call of the proxy's own (the racing run) on `path`, signed with the shared key."""
        headers = [("x-ms-version", VERSION), ("x-ms-date", formatdate(usegmt=True)),
                   ("content-length", "0")] + extra
        ms = sorted((k.lower(), v.strip()) for k, v in headers if k.lower().startswith("x-ms-"))
        text = f"{method}\n\n\n\n\n\n\n\n\n\n\n\n"
        text += "".join(f"{k}:{v}\n" for k, v in ms)
        text += f"/{self.account}{path}"
        text += "".join(f"\n{k.lower()}:{v}" for k, v in sorted(query))
        signature = base64.b64encode(hmac.new(self.key, text.encode(), hashlib.sha256).digest())
        headers.append(("authorization", f"SharedKey {self.account}:{signature.decode()}"))
        headers.append(("host", f"127.0.0.1:{self.upstream}"))
        target = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
        status, _, data = self.forward(method, target, headers, b"")
        if status >= 300:
            raise RuntimeError(f"{method} {target}: {status} {data[:300]!r}")

    def race(self, path, lease, holder):
        """Another run breaks the lease of `path` and takes it as `lease`, holder `holder`."""
        self.signed("PUT", path, [("comp", "lease")],
                    [("x-ms-lease-action", "break"), ("x-ms-lease-break-period", "0")])
        self.signed("PUT", path, [("comp", "lease")],
                    [("x-ms-lease-action", "acquire"), ("x-ms-lease-duration", "-1"),
                     ("x-ms-proposed-lease-id", lease)])
        self.signed("PUT", path, [("comp", "metadata")],
                    [("x-ms-lease-id", lease),
                     ("x-ms-meta-idplanlock", base64.b64encode(holder.encode()).decode())])


def error(status, code, message):
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}\nRequestId:00000000-0000-0000-0000-000000000000\n"
            f"Time:{time.strftime('%Y-%m-%dT%H:%M:%S.0000000Z', time.gmtime())}</Message>"
            f"</Error>").encode()
    return status, [("Content-Type", "application/xml"), ("x-ms-error-code", code)], body


def make_handler(proxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("azurite_proxy: " + (fmt % args) + "\n")

        def answer(self, status, headers, body):
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_one(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlparse(self.path)
            if url.path.startswith("/_proxy/"):
                return self.answer(*self.admin(url.path, body))
            self.answer(*self.blob(url, body))

        def admin(self, path, body):
            ok = (200, [("Content-Type", "application/json")], b"{}")
            if path == "/_proxy/health":
                return ok
            if path == "/_proxy/lease-race" and self.command == "POST":
                race = json.loads(body or b"{}")
                with proxy.lock:
                    proxy.races[race["blob"]] = (race["lease"], race["holder"])
                return ok
            return 404, [("Content-Type", "application/json")], b'{"error": "no such endpoint"}'

        def blob(self, url, body):
            query = dict(parse_qsl(url.query))
            path = unquote(url.path)
            action = self.headers.get("x-ms-lease-action") or ""
            what = f"blob:{self.command} {path}"
            if "comp" in query:
                what += f"?comp={query['comp']}"
            if action:
                what += f" {action}"
            write = self.command not in ("GET", "HEAD")
            # A lease call's identity is in its headers: each run's is faulted once.
            key = body + "".join(self.headers.get(h) or "" for h in
                                 ("x-ms-proposed-lease-id", "x-ms-lease-id")).encode()
            kind = proxy.faults.pick(write, what, key) if proxy.faults else None
            if kind == "throttle":
                return error(503, "ServerBusy", "The server is busy.")
            if kind == "error":
                return error(500, "InternalError", "The server encountered an internal error. "
                                                   "Please retry the request.")
            if kind == "deny":
                return error(403, "AuthorizationPermissionMismatch",
                             "This request is not authorized to perform this operation using "
                             "this permission.")
            if action == "release":
                with proxy.lock:
                    race = proxy.races.pop(path, None)
                if race is not None:
                    try:
                        proxy.race(path, *race)
                    except (OSError, RuntimeError) as e:
                        sys.stderr.write(f"azurite_proxy: the lease race on {path} failed: {e}\n")
            out = proxy.forward(self.command, self.path, self.headers.items(), body)
            if kind == "lost" and out[0] < 400:
                proxy.faults.landed(what)
                return error(500, "InternalError", "The server encountered an internal error. "
                                                   "Please retry the request.")
            return out

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = handle_one

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True, metavar="PORT",
                        help="Azurite's blob port on 127.0.0.1")
    parser.add_argument("--account", default=ACCOUNT)
    parser.add_argument("--key", default=KEY)
    parser.add_argument("--exit-with-parent", action="store_true")
    faults.add_arguments(parser)
    args = parser.parse_args()
    injected = faults.Faults.from_args(args) if faults.Faults.active(args) else None
    proxy = Proxy(args.upstream, args.account, args.key, injected)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(proxy))
    server.daemon_threads = True
    if args.exit_with_parent:
        faults.exit_with_parent()
    print(f"azurite_proxy listening on 127.0.0.1:{args.port}, Azurite on {args.upstream}",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
