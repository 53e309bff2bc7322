#!/usr/bin/env python3
"""Start ministack for idplan's tests, with EKS paging restored and IAM completed.

    python tests/support/ministack_launcher.py --port N     (or GATEWAY_PORT=N)

Runs ministack (https://pypi.org/project/ministack/, MIT) in the foreground on
127.0.0.1:N serving only IAM, STS, EKS and S3 (for remote state), with its log on stderr. Before it
starts, two things are changed:

* EKS ListPodIdentityAssociations pages like real EKS. ministack returns at most
  `maxResults` associations and never a `nextToken`, so past 100 associations a
  client that pages correctly silently sees only the first page. Here a page
  holds at most `maxResults` (1..100, default 100) associations, sorted by
  association id, with an opaque `nextToken` when more remain; a `maxResults`
  out of range or an invalid `nextToken` is a 400 InvalidParameterException,
  as EKS answers. The namespace/serviceAccount filters are ministack's own.
* IAM gains the OIDC provider actions ministack 1.5.33 lacks, as IAM documents
  them: Add/RemoveClientIDToOpenIDConnectProvider and Tag/UntagOpenIDConnectProvider.
* On request, AWS's bad days: `--throttle-every N` answers every Nth IAM or EKS
  request with the service's throttling error (IAM 400 Throttling, EKS 429
  ThrottlingException); `--list-lag-ms MS` leaves associations younger than MS
  out of the cluster-wide ListPodIdentityAssociations, as an eventually
  consistent index does (a lookup by namespace and service account sees them),
  and with `--list-lag-log FILE` writes one JSON line per association it left out
  ({"cluster", "associationId"}), so a test shows that the lag fired;
  `--faults RATE` (with `--fault-seed`, `--fault-log`; see tests/support/faults.py)
  answers that share of IAM, EKS and S3 requests with throttling, a 5xx, or a 5xx sent
  after the write was done (the reply was lost). S3 requests are described as
  "s3:METHOD /BUCKET/KEY" (path-style), a write being anything but GET and HEAD;
  S3 throttles with 503 SlowDown and fails with 500 InternalError, as S3 does.
* On request, a race on an S3 object: `--object-race-dir DIR`; while DIR holds a file
  named after "BUCKET/KEY" (percent-encoded, as urllib.parse.quote(..., safe="")), the
  next GET of that object is answered, and then the object is replaced by the file's
  content (the file is removed): someone else wrote it right after the reader read it,
  so the reader's ETag is stale. A test races a lock's release this way.
* `--auth` runs ministack with AUTH=true: requests are authenticated (SigV4 with the
  root credentials test/test) and STS judges AssumeRole and AssumeRoleWithWebIdentity by
  the role's trust policy (a web identity token's `iss`, `sub` and `aud` claims become the
  provider and its condition keys; ministack does not verify the token's signature).
* Docker is never used. Without it ministack's CreateCluster still records the
  cluster (ACTIVE, with identity.oidc.issuer) but starts no k3s container; this
  keeps tests hermetic on machines that do have a Docker daemon, and keeps
  ministack's boot-time container reaper away from other instances' containers.

Tests start one launcher per test on a free port (with --exit-with-parent and
TMPDIR set to a directory of their own, where ministack writes its pid file) and
stop it by pid.
"""

import argparse
import base64
import binascii
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, quote

import faults

PAGE_MAX = 100
TOKEN_PREFIX = "idplan-ministack-pia-v1:"


def parse_port():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=os.environ.get("GATEWAY_PORT"))
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when the process that started this one goes away")
    parser.add_argument("--list-lag-ms", type=int, default=0, metavar="MS",
                        help="leave associations younger than MS out of the cluster-wide "
                             "ListPodIdentityAssociations, as an eventually consistent "
                             "index does (0: never)")
    parser.add_argument("--list-lag-log", default=None, metavar="FILE",
                        help="one JSON line per association --list-lag-ms left out of a list")
    parser.add_argument("--object-race-dir", default=None, metavar="DIR",
                        help="race the S3 objects named by the files in DIR: each is "
                             "replaced by its file's content right after its next GET")
    parser.add_argument("--throttle-every", type=int, default=0, metavar="N",
                        help="answer every Nth IAM and EKS request with the service's "
                             "throttling error, as AWS does under load (0: never)")
    parser.add_argument("--auth", action="store_true",
                        help="AUTH=true: authenticate requests, and let STS judge role "
                             "assumptions by the trust policy")
    faults.add_arguments(parser)
    args = parser.parse_args()
    if not args.port:
        parser.error("give --port N or set GATEWAY_PORT")
    if not 0 < int(args.port) < 65536:
        parser.error(f"port out of range: {args.port}")
    return int(args.port), args.exit_with_parent, args.throttle_every, args.list_lag_ms, args


def configure_environment(port, auth=False):
    # ministack reads these at import time, so they are set before the import.
    os.environ["GATEWAY_PORT"] = str(port)
    # The root credentials ministack accepts under AUTH=true are these (not the caller's).
    os.environ["AUTH"] = "true" if auth else "false"
    os.environ["AWS_ACCESS_KEY_ID"] = "test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("EDGE_PORT", None)
    os.environ["BIND_HOST"] = "127.0.0.1"
    # The host the OIDC issuer URL and cluster endpoints name
    # (http://127.0.0.1:N/oidc/id/<ID>); 127.0.0.1 rather than "localhost"
    # because only the IPv4 loopback is bound.
    os.environ["MINISTACK_HOST"] = "127.0.0.1"
    os.environ["SERVICES"] = "iam,sts,eks,s3"
    # Plain HTTP, in-memory state only, whatever the caller's environment says.
    os.environ["USE_SSL"] = "0"
    os.environ["PERSIST_STATE"] = "0"
    os.environ.pop("LOCALSTACK_PERSISTENCE", None)
    os.environ["S3_PERSIST"] = "0"
    # A socket that cannot exist: ministack then never imports the docker SDK
    # nor talks to a daemon (see app._docker_socket_present).
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/idplan-tests-no-docker.sock"
    os.environ.setdefault("LOG_LEVEL", "INFO")


def _invalid(eks, message):
    return eks._error(400, "InvalidParameterException", message)


def _encode_token(cluster_name, after_id):
    raw = TOKEN_PREFIX + json.dumps({"c": cluster_name, "a": after_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(cluster_name, token):
    """The association id a page starts after, or None if the token is invalid."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(TOKEN_PREFIX):
            return None
        data = json.loads(raw[len(TOKEN_PREFIX):])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("c") != cluster_name:
        return None
    after = data.get("a")
    return after if isinstance(after, str) and after else None


def patch_eks_paging(eks, list_lag_ms=0, list_lag_log=None):
    original = eks._list_pod_identity_associations
    # associationId -> when it was created, for the list lag below.
    born = {}
    create = eks._create_pod_identity_association

    def create_pod_identity_association(cluster_name, body):
        status, headers, out = create(cluster_name, body)
        if status == 200:
            born[json.loads(out)["association"]["associationId"]] = time.monotonic()
        return status, headers, out

    eks._create_pod_identity_association = create_pod_identity_association

    def list_pod_identity_associations(cluster_name, query):
        query = dict(query or {})
        raw_max = query.pop("maxResults", None)
        token = query.pop("nextToken", None)
        if raw_max in (None, ""):
            max_results = PAGE_MAX
        else:
            try:
                max_results = int(raw_max)
            except (TypeError, ValueError):
                return _invalid(eks, f"maxResults must be an integer, got {raw_max!r}.")
            if not 1 <= max_results <= PAGE_MAX:
                return _invalid(eks, f"maxResults must be between 1 and {PAGE_MAX}.")
        # ministack's own handler does the cluster check and the filters; ask
        # it for everything and cut the page here.
        query["maxResults"] = str(sys.maxsize)
        status, headers, body = original(cluster_name, query)
        if status != 200:
            return status, headers, body
        items = sorted(json.loads(body)["associations"], key=lambda a: a["associationId"])
        if list_lag_ms and not (query.get("namespace") or query.get("serviceAccount")):
            # Eventual consistency: the cluster-wide list does not show an association for
            # a while after its create; a lookup by namespace and service account does.
            now = time.monotonic()
            lagging = [a for a in items
                       if now - born.get(a["associationId"], 0) < list_lag_ms / 1000]
            if lagging and list_lag_log:
                with open(list_lag_log, "a", encoding="utf-8") as log:
                    for a in lagging:
                        log.write(json.dumps({"cluster": cluster_name,
                                              "associationId": a["associationId"]}) + "\n")
            items = [a for a in items if a not in lagging]
        if token not in (None, ""):
            after = _decode_token(cluster_name, token)
            if after is None:
                return _invalid(eks, "The nextToken is invalid.")
            items = [a for a in items if a["associationId"] > after]
        page = items[:max_results]
        result = {"associations": page}
        if len(items) > max_results:
            result["nextToken"] = _encode_token(cluster_name, page[-1]["associationId"])
        return eks._json_resp(200, result)

    list_pod_identity_associations.__wrapped__ = original
    eks._list_pod_identity_associations = list_pod_identity_associations


def patch_iam_oidc_provider_actions(iam):
    """Adds the IAM OIDC provider actions ministack 1.5.33 lacks, as IAM documents them:
    AddClientIDToOpenIDConnectProvider (adding a present id is a no-op),
    RemoveClientIDFromOpenIDConnectProvider (removing an absent id is a no-op),
    Tag/UntagOpenIDConnectProvider; NoSuchEntity (404) for an unknown provider."""

    def provider(p, action):
        arn = iam._p(p, "OpenIDConnectProviderArn")
        prov = iam._oidc_providers.get(arn)
        if prov is None:
            return None, iam._error(404, "NoSuchEntity",
                                    f"OpenIdConnectProvider {arn} does not exist.", ns="iam")
        return prov, None

    def done(action):
        return iam._xml(200, f"{action}Response", "", ns="iam")

    def add_client_id(p):
        prov, err = provider(p, "AddClientIDToOpenIDConnectProvider")
        if err:
            return err
        client_id = iam._p(p, "ClientID")
        if client_id not in prov["ClientIDList"]:
            prov["ClientIDList"].append(client_id)
        return done("AddClientIDToOpenIDConnectProvider")

    def remove_client_id(p):
        prov, err = provider(p, "RemoveClientIDFromOpenIDConnectProvider")
        if err:
            return err
        client_id = iam._p(p, "ClientID")
        prov["ClientIDList"] = [c for c in prov["ClientIDList"] if c != client_id]
        return done("RemoveClientIDFromOpenIDConnectProvider")

    def tag(p):
        prov, err = provider(p, "TagOpenIDConnectProvider")
        if err:
            return err
        tags = {t["Key"]: t for t in prov.get("Tags", [])}
        tags.update({t["Key"]: t for t in iam._extract_tags(p)})
        prov["Tags"] = list(tags.values())
        return done("TagOpenIDConnectProvider")

    def untag(p):
        prov, err = provider(p, "UntagOpenIDConnectProvider")
        if err:
            return err
        keys, i = set(), 1
        while iam._p(p, f"TagKeys.member.{i}"):
            keys.add(iam._p(p, f"TagKeys.member.{i}"))
            i += 1
        prov["Tags"] = [t for t in prov.get("Tags", []) if t["Key"] not in keys]
        return done("UntagOpenIDConnectProvider")

    for action, handler in {
        "AddClientIDToOpenIDConnectProvider": add_client_id,
        "RemoveClientIDFromOpenIDConnectProvider": remove_client_id,
        "TagOpenIDConnectProvider": tag,
        "UntagOpenIDConnectProvider": untag,
    }.items():
        iam._IAM_HANDLERS.setdefault(action, handler)


def iam_action(headers, body, query_params):
    """The IAM action of a request (query or JSON protocol)."""
    target = headers.get("x-amz-target", "")
    if "." in target:
        return target.split(".")[-1]
    params = dict(query_params or {})
    if body:
        params.update(parse_qs(body.decode("utf-8", errors="replace")))
    action = params.get("Action", [""])
    return action[0] if isinstance(action, list) else action


def patch_s3(s3, faults=None, race_dir=None):
    """S3's bad days (`--faults`, see tests/support/faults.py): throttling (503 SlowDown), a
    5xx (500 InternalError), a 5xx after the write was done, or AccessDenied; and the object
    races of `--object-race-dir`."""
    original = s3.handle_request

    async def handle_request(method, path, headers, body, query_params, *args, **kwargs):
        what = f"s3:{method} {path}"
        kind = None
        if faults is not None:
            kind = faults.pick(method not in ("GET", "HEAD"), what, body)
        if kind == "throttle":
            return s3._error("SlowDown", "Please reduce your request rate.", 503, path)
        if kind == "error":
            return s3._error("InternalError",
                             "We encountered an internal error. Please try again.", 500, path)
        if kind == "deny":
            return s3._error("AccessDenied", "Access Denied", 403, path)
        out = await original(method, path, headers, body, query_params, *args, **kwargs)
        if kind == "lost" and out[0] < 400:
            faults.landed(what)
            return s3._error("InternalError",
                             "We encountered an internal error. Please try again.", 500, path)
        if race_dir and method == "GET" and out[0] == 200:
            raced = os.path.join(race_dir, quote(path.lstrip("/"), safe=""))
            try:
                with open(raced, "rb") as f:
                    data = f.read()
                os.remove(raced)
            except FileNotFoundError:
                data = None
            if data is not None:
                # Someone else writes the object right after this read.
                put = {k: v for k, v in headers.items()
                       if k.lower() in ("host", "authorization", "x-amz-date")}
                put["content-type"] = "application/json"
                written = await original("PUT", path, put, data, {})
                if written[0] >= 300:
                    print(f"ministack_launcher: the race on {path} failed: {written}",
                          file=sys.stderr, flush=True)
        return out

    s3.handle_request = handle_request


def patch_faults(iam, eks, throttle_every=0, faults=None):
    """AWS's bad days on IAM and EKS. `--throttle-every N` answers every Nth request the way
    AWS throttles: IAM (query protocol) 400 `Throttling` in an ErrorResponse, EKS (REST JSON)
    429 `ThrottlingException`. `--faults RATE` (tests/support/faults.py) answers that share
    of requests with throttling, a 5xx (IAM 500 ServiceFailure, EKS 500 ServerException), or
    a 5xx after the write was done."""
    seen = {"n": 0}
    lock = threading.Lock()

    def every():
        with lock:
            seen["n"] += 1
            return throttle_every > 0 and seen["n"] % throttle_every == 0

    def wrap(module, describe, throttle, failure, deny):
        original = module.handle_request

        async def handle_request(method, path, headers, body, query_params):
            if every():
                return throttle()
            kind = None
            if faults is not None:
                what, write = describe(method, path, headers, body, query_params)
                kind = faults.pick(write, what, body)
            if kind == "throttle":
                return throttle()
            if kind == "error":
                return failure()
            if kind == "deny":
                return deny()
            out = await original(method, path, headers, body, query_params)
            if faults is not None:
                faults.answered(write, what, body, out[0])
            if kind == "lost" and out[0] < 400:
                faults.landed(what)
                return failure()
            return out

        module.handle_request = handle_request

    def describe_iam(method, path, headers, body, query_params):
        action = iam_action(headers, body, query_params)
        write = not action.startswith(("Get", "List"))
        return f"iam:{action}", write

    def describe_eks(method, path, headers, body, query_params):
        return f"eks:{method} {path}", method != "GET"

    wrap(iam, describe_iam,
         lambda: iam._error(400, "Throttling", "Rate exceeded", ns="iam"),
         lambda: iam._error(500, "ServiceFailure",
                            "Request processing has failed due to some unknown error, "
                            "exception or failure.", ns="iam"),
         lambda: iam._error(403, "AccessDenied",
                            "User is not authorized to perform this action.", ns="iam"))
    wrap(eks, describe_eks,
         lambda: (429,
                  {"Content-Type": "application/json",
                   "x-amzn-ErrorType": "ThrottlingException"},
                  json.dumps({"message": "Rate exceeded"}).encode()),
         lambda: eks._error(500, "ServerException",
                            "An internal error occurred. Try again later."),
         lambda: eks._error(403, "AccessDeniedException",
                            "User is not authorized to perform this action."))


def main():
    port, with_parent, throttle_every, list_lag_ms, fault_args = parse_port()
    if with_parent:
        faults.exit_with_parent("ministack_launcher")
    configure_environment(port, fault_args.auth)

    import ministack.app as app
    import ministack.services.eks as eks

    for name in ("_list_pod_identity_associations", "_create_pod_identity_association",
                 "_get_docker", "_error", "_json_resp"):
        if not callable(getattr(eks, name, None)):
            sys.exit(f"ministack_launcher: ministack.services.eks.{name} is missing; "
                     "this launcher is written for ministack 1.5.33")
    patch_eks_paging(eks, list_lag_ms, fault_args.list_lag_log)
    eks._get_docker = lambda: None

    import ministack.services.iam as iam
    for name in ("_IAM_HANDLERS", "_oidc_providers", "_p", "_xml", "_error", "_extract_tags"):
        if getattr(iam, name, None) is None:
            sys.exit(f"ministack_launcher: ministack.services.iam.{name} is missing; "
                     "this launcher is written for ministack 1.5.33")
    patch_iam_oidc_provider_actions(iam)
    injected = faults.Faults.from_args(fault_args) if faults.Faults.active(fault_args) else None
    if throttle_every > 0 or injected is not None:
        patch_faults(iam, eks, throttle_every, injected)
    if injected is not None or fault_args.object_race_dir:
        import ministack.services.s3 as s3
        if not callable(getattr(s3, "_error", None)):
            sys.exit("ministack_launcher: ministack.services.s3._error is missing; "
                     "this launcher is written for ministack 1.5.33")
        patch_s3(s3, injected, fault_args.object_race_dir)

    # ministack's main() parses sys.argv itself (-d/--stop); give it none.
    sys.argv = [sys.argv[0]]
    # Everything on stderr; ministack logs through logging (stderr) already.
    sys.stdout = sys.stderr
    app.main()


if __name__ == "__main__":
    main()
