#!/usr/bin/env python3
"""A fake of the Google APIs idplan calls, for the tests (Python 3 standard library only).

No emulator covers GCP IAM policies, service-account IAM, etags and GKE, so this server
behaves like Google on the paths idplan uses, as the discovery documents in
shared/reference/gcp/ describe them:

  Resource Manager v3  GET  /v3/projects/{p}
                       POST /v3/projects/{p}:getIamPolicy   {"options": {"requestedPolicyVersion"}}
                       POST /v3/projects/{p}:setIamPolicy   {"policy", "updateMask"}
  GKE v1               GET  /v1/projects/{p}/locations/{l}/clusters/{c}
                       GET  /v1/projects/{p}/locations/{l}/clusters  (l "-": every location)
  Storage JSON v1      GET  /storage/v1/b?project=  (project id or number; paged: maxResults,
                            pageToken, nextPageToken)
                       GET  /storage/v1/b/{bucket}
                       GET  /storage/v1/b/{bucket}/iam?optionsRequestedPolicyVersion=
                       PUT  /storage/v1/b/{bucket}/iam      (body: the Policy)
                       GET  /storage/v1/b/{bucket}/o/{object}[?alt=media]
                       POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart|media
                       DELETE /storage/v1/b/{bucket}/o/{object}
                       (objects: `ifGenerationMatch` on each, 0 meaning "only if absent")
  Secret Manager v1    GET  /v1/projects/{p}/secrets  (paged: pageSize, pageToken, nextPageToken)
                       GET  /v1/projects/{p}/secrets/{s}
                       GET  /v1/projects/{p}/secrets/{s}:getIamPolicy?options.requestedPolicyVersion=
                       POST /v1/projects/{p}/secrets/{s}:setIamPolicy
  IAM v1               POST/GET /v1/projects/{p}/serviceAccounts (create, list with pageToken)
                       GET/PATCH/DELETE /v1/projects/{p}/serviceAccounts/{email}
                       POST /v1/projects/{p}/serviceAccounts/{email}:getIamPolicy?options.requestedPolicyVersion=
                       POST /v1/projects/{p}/serviceAccounts/{email}:setIamPolicy

Like Google: error bodies {"error": {"code", "message", "status"}} (Storage: {"error": {"code",
"message", "errors": [...]}}); a setIamPolicy with a stale etag fails with 409 ABORTED (Storage:
412 conditionNotMet); policies over 1,500 principals are refused; conditional bindings need
version 3 (a lower requested version renames their role `<role>_withcond_<hash>`); members must
be well formed, and a `serviceAccount:` member of a project must exist; 404 for what is missing
(403 for a project, as Resource Manager does); a bearer token is required, and only the test's
own is accepted (401 otherwise; `--token`). Lists answer at most PAGE items a page (Google's
pages are larger: a small one makes every test page). Storage objects: every write gives the
object a new, greater generation; an `ifGenerationMatch` that does not hold (on a get, an
upload of either kind, or a delete) fails with 412 conditionNotMet and changes nothing, which
is what fake-gcs-server does not check on media uploads and deletes.

Test-only endpoints under /_fake/: health, seed (projects, clusters, buckets, secrets),
policy (read or replace a policy as someone else would), race (the next N setIamPolicy calls
find the policy changed just before they apply: their etag is stale), object (read, or write
as someone else would, an object: GET/POST ?bucket=&name=), object-race (right after the next
read of an object, someone else replaces it: the reader's generation is stale), fail (the next Google
calls answer with the given codes, 429 or 503), deny (permissions the caller lacks; only
container.clusters.list is checked), calls (what was called).

Faults on request: `--faults RATE` answers that share of Google calls with 429, 503, or a 500
after the write was done (see tests/support/faults.py). A call is described as "METHOD path",
an upload with the name of its object after it ("POST /upload/storage/v1/b/B/o state.json").

Usage: fake_google.py --port PORT [--exit-with-parent] [--faults RATE] [--fault-seed N]
       [--fault-log FILE]
"""

import argparse
import base64
import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlparse

import faults

# Injected faults (tests/support/faults.py), from the command line.
FAULTS = faults.Faults()
# The one bearer token accepted (`--token`); the tests' own.
TOKEN = "fake-token"
MAX_PRINCIPALS = 1500
MEMBER = re.compile(
    r"^(allUsers|allAuthenticatedUsers|(user|group|domain|serviceAccount|deleted:user|"
    r"deleted:serviceAccount):.+|principal://iam\.googleapis\.com/projects/\d+/locations/global/"
    r"workloadIdentityPools/[^/]+/subject/.+|principalSet://.+)$"
)
# Items per page of buckets.list and secrets.list (fewer when the caller asks for fewer).
PAGE = 2
ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
STATUS_OF = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
             404: "NOT_FOUND", 409: "ABORTED", 412: "FAILED_PRECONDITION"}


class Failure(Exception):
    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.status = status or STATUS_OF.get(code, "UNKNOWN")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.projects = {}   # id -> {"number"}
        self.clusters = {}   # "projects/p/locations/l/clusters/c" -> workloadPool or None
        self.buckets = {}    # name -> {"uniform", "project"}
        self.secrets = {}    # "projects/p/secrets/s" -> {}
        self.accounts = {}   # email -> {"project", "accountId", "displayName", ...}
        self.policies = {}   # target -> {"version", "etag", "bindings"}
        self.objects = {}    # (bucket, name) -> {"data", "generation", "contentType", "created", "updated"}
        self.generation = 0
        self.object_races = {}  # (bucket, name) -> the bytes someone writes after its next read
        self.serial = 0
        self.races = 0
        self.failures = []  # HTTP codes the next Google calls answer with, in order
        self.denied = set()  # IAM permissions the caller lacks (403 PERMISSION_DENIED)
        self.calls = []

    def etag(self):
        self.serial += 1
        return base64.b64encode(b"\x07\x06" + self.serial.to_bytes(6, "big")).decode()

    def policy(self, target):
        if target not in self.policies:
            self.policies[target] = {"version": 1, "etag": self.etag(), "bindings": []}
        return self.policies[target]

    def project_numbers(self):
        return {p["number"] for p in self.projects.values()}

    def put_object(self, bucket, name, data, content_type):
        """Writes an object: a new generation, greater than every one before (as Google's)."""
        self.generation = max(self.generation + 1, int(time.time() * 1_000_000))
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        old = self.objects.get((bucket, name))
        self.objects[(bucket, name)] = {"data": data, "generation": self.generation,
                                        "contentType": content_type or "application/octet-stream",
                                        "created": now, "updated": now}
        return self.objects[(bucket, name)]


STATE = State()


def conditional(bindings):
    return any(b.get("condition") for b in bindings)


def render(policy, requested, storage, target):
    """A policy as getIamPolicy returns it for `requested` version."""
    bindings = []
    for b in policy["bindings"]:
        b = json.loads(json.dumps(b))
        if b.get("condition") and requested < 3:
            digest = hashlib.sha1(json.dumps(b["condition"], sort_keys=True).encode()).hexdigest()
            b["role"] = f"{b['role']}_withcond_{digest[:20]}"
            del b["condition"]
        bindings.append(b)
    # Below version 3 a policy is shown as version 1, its conditions hidden as above.
    out = {"version": policy["version"] if requested >= 3 else 1, "etag": policy["etag"]}
    if bindings:
        out["bindings"] = bindings
    if storage:
        out = {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{target[7:]}", **out}
        out.setdefault("bindings", [])
    return out


def set_policy(target, new, storage):
    """setIamPolicy: etag check (409 ABORTED; Storage 412), validation, a fresh etag."""
    policy = STATE.policy(target)
    if STATE.races > 0:
        # Someone else writes first: add a member of theirs, so the caller's etag is stale.
        STATE.races -= 1
        policy["bindings"].append({"role": "roles/viewer", "members": [f"user:racer-{STATE.serial}@example.com"]})
        policy["etag"] = STATE.etag()
    etag = new.get("etag")
    if etag is not None and etag != policy["etag"]:
        if storage:
            raise Failure(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet")
        raise Failure(409, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.")
    bindings = new.get("bindings") or []
    version = int(new.get("version") or 1)
    if conditional(bindings) and version < 3:
        raise Failure(400, "Policy version 3 is required for a policy with conditional role bindings.")
    principals = set()
    merged = []
    for b in bindings:
        role = b.get("role", "")
        if not role.startswith(("roles/", "projects/", "organizations/")) or "_withcond_" in role:
            raise Failure(400, f"Role {role} is not supported for this resource.")
        members = []
        for m in b.get("members") or []:
            if not MEMBER.match(m):
                raise Failure(400, f"Invalid principal: {m}")
            if m.startswith("principal://"):
                number = m.split("/")[4]
                if number not in STATE.project_numbers():
                    raise Failure(400, f"Invalid principal: {m}: unknown project {number}")
            if m.startswith("serviceAccount:") and m.endswith(".iam.gserviceaccount.com"):
                if m[len("serviceAccount:"):] not in STATE.accounts:
                    raise Failure(400, f"Service account {m[len('serviceAccount:'):]} does not exist.")
            if m not in members:
                members.append(m)
            principals.add(m)
        if members:
            entry = {"role": role, "members": members}
            if b.get("condition"):
                entry["condition"] = b["condition"]
            merged.append(entry)
    if len(principals) > MAX_PRINCIPALS:
        raise Failure(400, f"The number of members in the policy ({len(principals):,}) is larger than the maximum allowed size {MAX_PRINCIPALS:,}.")
    policy["bindings"] = merged
    policy["version"] = 3 if conditional(merged) else version
    policy["etag"] = STATE.etag()
    return policy


def account_json(email):
    a = STATE.accounts[email]
    out = {"name": f"projects/{a['project']}/serviceAccounts/{email}", "projectId": a["project"],
           "uniqueId": a["uniqueId"], "email": email, "etag": "MDEwMjE5MjA=",
           "oauth2ClientId": a["uniqueId"]}
    for k in ("displayName", "description"):
        if a.get(k):
            out[k] = a[k]
    return out


def find_account(project, key):
    """A service account by email or unique id; `-` stands for any project."""
    email = key if key in STATE.accounts else next(
        (e for e, a in STATE.accounts.items() if a["uniqueId"] == key), None)
    if email is None or (project != "-" and STATE.accounts[email]["project"] != project):
        raise Failure(404, "Unknown service account")
    return email


def requested_version(query, body, key):
    raw = query.get(key, [None])[0]
    if raw is None and body:
        raw = (body.get("options") or {}).get("requestedPolicyVersion")
    return int(raw or 0)


class Media:
    """An answer that is an object's bytes (`alt=media`), not JSON."""

    def __init__(self, data, content_type, headers):
        self.data, self.content_type, self.headers = data, content_type, headers


def object_json(bucket, name, o):
    """An object resource as objects.get and objects.insert answer it."""
    quoted = quote(name, safe="")
    generation = str(o["generation"])
    return {"kind": "storage#object", "id": f"{bucket}/{name}/{generation}",
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{quoted}",
            "mediaLink": f"https://storage.googleapis.com/download/storage/v1/b/{bucket}/o/{quoted}?generation={generation}&alt=media",
            "name": name, "bucket": bucket, "generation": generation, "metageneration": "1",
            "contentType": o["contentType"], "storageClass": "STANDARD", "size": str(len(o["data"])),
            "md5Hash": base64.b64encode(hashlib.md5(o["data"]).digest()).decode(),
            "etag": base64.b64encode(o["generation"].to_bytes(8, "big")).decode(),
            "timeCreated": o["created"], "updated": o["updated"],
            "timeStorageClassUpdated": o["created"]}


def precondition(query, existing):
    """`ifGenerationMatch` as Google checks it: 0 holds only when there is no live object."""
    raw = query.get("ifGenerationMatch", [None])[0]
    if raw is None:
        return
    try:
        wanted = int(raw)
    except ValueError:
        raise Failure(400, f"Invalid argument for ifGenerationMatch: {raw}", "invalid")
    current = existing["generation"] if existing else 0
    if wanted != current:
        raise Failure(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet")


def multipart(content_type, raw):
    """The metadata and the media of a `multipart/related` upload body."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not (content_type or "").startswith("multipart/related") or not m:
        raise Failure(400, "Multipart upload needs a multipart/related body with a boundary.", "invalid")
    delimiter = b"--" + m.group(1).encode()
    parts = []
    for chunk in raw.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, body = (b"", b"", chunk[2:]) if chunk.startswith(b"\r\n") else chunk.partition(b"\r\n\r\n")
        if body.endswith(b"\r\n"):
            body = body[:-2]
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.decode().split("\r\n") if line)}
        parts.append((headers, body))
    if len(parts) != 2:
        raise Failure(400, f"Multipart upload must have 2 parts, it has {len(parts)}.", "invalid")
    try:
        metadata = json.loads(parts[0][1] or b"{}")
    except ValueError:
        raise Failure(400, "Invalid JSON payload received in the metadata part.", "invalid")
    return metadata, parts[1][1], parts[1][0].get("content-type")


def upload_name(query, content_type, raw):
    """The object an upload writes ("" when the upload is malformed)."""
    if query.get("uploadType", [""])[0] != "multipart":
        return query.get("name", [""])[0]
    try:
        return multipart(content_type, raw)[0].get("name", "")
    except Failure:
        return ""


def storage_object(method, path, query, raw, content_type):
    """Storage JSON v1 objects: get (metadata or alt=media), insert (multipart or media
    upload), delete; None when `path` is no object path."""
    upload = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", path)
    m = upload or re.fullmatch(r"/storage/v1/b/([^/]+)/o/(.+)", path)
    if not m:
        return None
    bucket = m.group(1)
    if bucket not in STATE.buckets:
        raise Failure(404, "The specified bucket does not exist.", "notFound")
    if upload and method == "POST":
        kind = query.get("uploadType", [""])[0]
        if kind == "multipart":
            metadata, data, media_type = multipart(content_type, raw)
            name = metadata.get("name") or query.get("name", [""])[0]
            media_type = metadata.get("contentType") or media_type
        elif kind == "media":
            name, data, media_type = query.get("name", [""])[0], raw, content_type
        else:
            raise Failure(400, f"Upload type {kind or '(none)'} is not supported here.", "invalid")
        if not name:
            raise Failure(400, "Required", "required")
        precondition(query, STATE.objects.get((bucket, name)))
        return 200, object_json(bucket, name, STATE.put_object(bucket, name, data, media_type))
    if upload:
        return None
    name = m.group(2)
    o = STATE.objects.get((bucket, name))
    if o is None:
        raise Failure(404, f"No such object: {bucket}/{name}", "notFound")
    precondition(query, o)
    if method == "GET":
        if query.get("alt", ["json"])[0] == "media":
            out = Media(o["data"], o["contentType"],
                        {"x-goog-generation": str(o["generation"]), "x-goog-metageneration": "1",
                         "x-goog-stored-content-length": str(len(o["data"]))})
        else:
            out = object_json(bucket, name, o)
        raced = STATE.object_races.pop((bucket, name), None)
        if raced is not None:
            # Someone else writes the object right after this read: the reader's generation is stale.
            STATE.put_object(bucket, name, raced, o["contentType"])
        return 200, out
    if method == "DELETE":
        del STATE.objects[(bucket, name)]
        return 204, None
    return None


def bucket_json(bucket):
    """A bucket as buckets.get and buckets.list answer it."""
    b = STATE.buckets[bucket]
    uniform = {"enabled": b["uniform"]}
    if b["uniform"]:
        uniform["lockedTime"] = "2099-01-01T00:00:00Z"
    return {"kind": "storage#bucket", "id": bucket, "name": bucket,
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}",
            "projectNumber": b["project_number"], "metageneration": "1",
            "location": "US", "storageClass": "STANDARD", "etag": "CAE=",
            "timeCreated": "2024-01-01T00:00:00.000Z", "updated": "2024-01-01T00:00:00.000Z",
            "iamConfiguration": {"bucketPolicyOnly": uniform,
                                 "uniformBucketLevelAccess": uniform,
                                 "publicAccessPrevention": "inherited"}}


def page(items, query, size_key):
    """One page of `items` as Google's lists page: `pageToken` in, `nextPageToken` out."""
    size = min(int(query.get(size_key, [str(PAGE)])[0] or PAGE) or PAGE, PAGE)
    start = int(query.get("pageToken", ["0"])[0] or 0)
    token = str(start + size) if start + size < len(items) else None
    return items[start:start + size], token


def secret_json(number, name):
    """A secret as secrets.get and secrets.list answer it: named with the project number."""
    return {"name": f"projects/{number}/secrets/{name.split('/')[3]}",
            "replication": {"automatic": {}}, "createTime": "2024-01-01T00:00:00Z",
            "etag": "\"1\""}


def cluster(name):
    """A GKE cluster as clusters.get and clusters.list answer it."""
    parts = name.split("/")
    out = {"name": parts[5], "location": parts[3], "status": "RUNNING",
           "selfLink": f"https://container.googleapis.com/v1/{name}"}
    if STATE.clusters[name]:
        out["workloadIdentityConfig"] = {"workloadPool": STATE.clusters[name]}
    return out


def with_policy(pattern, path, known, missing):
    """The name a path to a resource with an IAM policy names, and the IAM verb it asks
    (":getIamPolicy", ":setIamPolicy", or None); (None, None) for another path. A name not
    among `known` raises `missing(name)`."""
    m = re.fullmatch(pattern + r"(:getIamPolicy|:setIamPolicy)?", path)
    if not m:
        return None, None
    if m.group(1) not in known:
        raise missing(m.group(1))
    return m.group(1), m.group(2)


def iam_policy(method, verb, target, query, body, get_with, version_key):
    """getIamPolicy of `target` (by `get_with`, the version asked in `version_key`) and its
    setIamPolicy (POST); None for any other call."""
    if verb == ":getIamPolicy" and method == get_with:
        asked = requested_version(query, body if get_with == "POST" else None, version_key)
        return 200, render(STATE.policy(target), asked, False, target)
    if verb == ":setIamPolicy" and method == "POST":
        return 200, render(set_policy(target, (body or {}).get("policy") or {}, False), 3, False, target)
    return None


def google(method, path, query, body):
    """Routes one Google API call; returns (status, body)."""
    # Resource Manager v3
    project, verb = with_policy(r"/v3/projects/([^/:]+)", path, STATE.projects, lambda p: Failure(
        403, f"Permission 'resourcemanager.projects.get' denied on resource '//cloudresourcemanager.googleapis.com/projects/{p}' (or it may not exist)."))
    if project:
        target = f"project:{project}"
        if verb is None and method == "GET":
            number = STATE.projects[project]["number"]
            return 200, {"name": f"projects/{number}", "parent": "organizations/123456789",
                         "projectId": project, "state": "ACTIVE", "displayName": project,
                         "etag": "W/\"1\"", "createTime": "2024-01-01T00:00:00Z"}
        answer = iam_policy(method, verb, target, query, body, "POST", "-")
        if answer:
            return answer
    # GKE v1
    m = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+/clusters/[^/:]+)", path)
    if m and method == "GET":
        name = m.group(1)
        if name not in STATE.clusters:
            raise Failure(404, f"Not found: {name}.")
        return 200, cluster(name)
    # clusters.list: no paging; location "-" matches all zones and regions. The list key is
    # left out when there are none, as Google leaves out empty repeated fields.
    m = re.fullmatch(r"/v1/projects/([^/]+)/locations/([^/]+)/clusters", path)
    if m and method == "GET":
        project, location = m.group(1), m.group(2)
        if project not in STATE.projects or "container.clusters.list" in STATE.denied:
            raise Failure(403, f"Permission 'container.clusters.list' denied on resource '//container.googleapis.com/projects/{project}' (or it may not exist).")
        found = [cluster(name) for name in sorted(STATE.clusters)
                 if name.split("/")[1] == project and location in ("-", name.split("/")[3])]
        return 200, ({"clusters": found} if found else {})
    # Storage JSON v1. buckets.list: `project` is required, its id or number; the list key is
    # left out when there are none.
    if path == "/storage/v1/b" and method == "GET":
        project = query.get("project", [""])[0]
        if not project:
            raise Failure(400, "Required parameter: project", "required")
        number = STATE.projects.get(project, {}).get("number", project)
        if number not in STATE.project_numbers():
            raise Failure(404, "The requested project was not found.", "notFound")
        names = sorted(n for n, b in STATE.buckets.items() if b["project_number"] == number)
        items, token = page(names, query, "maxResults")
        out = {"kind": "storage#buckets"}
        if items:
            out["items"] = [bucket_json(n) for n in items]
        if token:
            out["nextPageToken"] = token
        return 200, out
    m = re.fullmatch(r"/storage/v1/b/([^/]+)(/iam)?", path)
    if m:
        bucket, iam = m.group(1), m.group(2)
        if bucket not in STATE.buckets:
            raise Failure(404, "The specified bucket does not exist.", "notFound")
        target = f"bucket:{bucket}"
        if not iam and method == "GET":
            return 200, bucket_json(bucket)
        if iam and method == "GET":
            return 200, render(STATE.policy(target), requested_version(query, None, "optionsRequestedPolicyVersion"), True, target)
        if iam and method == "PUT":
            return 200, render(set_policy(target, body or {}, True), 3, True, target)
    # Secret Manager v1. secrets.list: newest first, names with the project number, as Google
    # answers; `totalSize` on each page.
    m = re.fullmatch(r"/v1/projects/([^/]+)/secrets", path)
    if m and method == "GET":
        project = m.group(1)
        if project not in STATE.projects:
            raise Failure(403, f"Permission 'secretmanager.secrets.list' denied for resource 'projects/{project}' (or it may not exist).")
        names = [n for n in reversed(list(STATE.secrets)) if n.split("/")[1] == project]
        items, token = page(names, query, "pageSize")
        number = STATE.projects[project]["number"]
        out = {"totalSize": len(names)}
        if items:
            out["secrets"] = [secret_json(number, n) for n in items]
        if token:
            out["nextPageToken"] = token
        return 200, out
    name, verb = with_policy(r"/v1/(projects/[^/]+/secrets/[^/:]+)", path, STATE.secrets,
                             lambda n: Failure(404, f"Secret [{n}] not found or has no versions."))
    if name:
        target = f"secret:{name}"
        if verb is None and method == "GET":
            project = name.split("/")[1]
            return 200, secret_json(STATE.projects.get(project, {}).get("number", project), name)
        answer = iam_policy(method, verb, target, query, body, "GET", "options.requestedPolicyVersion")
        if answer:
            return answer
    # IAM v1 service accounts
    m = re.fullmatch(r"/v1/projects/([^/]+)/serviceAccounts", path)
    if m:
        project = m.group(1)
        if project not in STATE.projects:
            raise Failure(404, f"Project {project} not found.")
        if method == "POST":
            account_id = (body or {}).get("accountId", "")
            if not ACCOUNT_ID.match(account_id):
                raise Failure(400, f"Invalid account id: {account_id}: must match ^[a-z](?:[-a-z0-9]{{4,28}}[a-z0-9])$")
            email = f"{account_id}@{project}.iam.gserviceaccount.com"
            if email in STATE.accounts:
                raise Failure(409, f"Service account {account_id} already exists within project projects/{project}.", "ALREADY_EXISTS")
            sa = (body or {}).get("serviceAccount") or {}
            STATE.serial += 1
            STATE.accounts[email] = {"project": project, "uniqueId": str(100000000000000000000 + STATE.serial),
                                     "displayName": sa.get("displayName", ""), "description": sa.get("description", "")}
            return 200, account_json(email)
        if method == "GET":
            emails = sorted(e for e, a in STATE.accounts.items() if a["project"] == project)
            size = int(query.get("pageSize", ["20"])[0] or 20)
            start = int(query.get("pageToken", ["0"])[0] or 0)
            out = {"accounts": [account_json(e) for e in emails[start:start + size]]}
            if start + size < len(emails):
                out["nextPageToken"] = str(start + size)
            return 200, out
    m = re.fullmatch(r"/v1/projects/([^/]+)/serviceAccounts/([^/:]+)(:getIamPolicy|:setIamPolicy)?", path)
    if m:
        project, key, verb = m.group(1), m.group(2), m.group(3)
        email = find_account(project, key)
        target = f"sa:{email}"
        if verb is None and method == "GET":
            return 200, account_json(email)
        if verb is None and method == "PATCH":
            sa = (body or {}).get("serviceAccount") or {}
            for field in ((body or {}).get("updateMask") or "").split(","):
                if field in ("displayName", "description"):
                    STATE.accounts[email][field] = sa.get(field, "")
            return 200, account_json(email)
        if verb is None and method == "DELETE":
            del STATE.accounts[email]
            STATE.policies.pop(target, None)
            return 200, {}
        answer = iam_policy(method, verb, target, query, body, "POST", "options.requestedPolicyVersion")
        if answer:
            return answer
    raise Failure(404, f"Method not found: {method} {path}")


def admin(method, path, query, body):
    """The test-only endpoints."""
    if path == "/_fake/health":
        return 200, {"ok": True}
    if path == "/_fake/calls":
        return 200, {"calls": STATE.calls}
    if path == "/_fake/fail" and method == "POST":
        STATE.failures = list((body or {}).get("codes", []))
        return 200, {"failures": STATE.failures}
    if path == "/_fake/deny" and method == "POST":
        STATE.denied = set((body or {}).get("permissions", []))
        return 200, {"permissions": sorted(STATE.denied)}
    if path == "/_fake/race" and method == "POST":
        STATE.races = int((body or {}).get("count", 1))
        return 200, {"races": STATE.races}
    if path == "/_fake/object":
        key = (query.get("bucket", [""])[0], query.get("name", [""])[0])
        if method == "GET":
            o = STATE.objects.get(key)
            if o is None:
                raise Failure(404, f"No such object: {key[0]}/{key[1]}", "notFound")
            return 200, {"data": o["data"].decode("utf-8", "replace"), "generation": str(o["generation"])}
        if method == "POST":
            o = STATE.put_object(key[0], key[1], (body or {}).get("data", "").encode(), "application/json")
            return 200, {"generation": str(o["generation"])}
    if path == "/_fake/object-race" and method == "POST":
        body = body or {}
        STATE.object_races[(body["bucket"], body["name"])] = body.get("data", "").encode()
        return 200, {}
    if path == "/_fake/seed" and method == "POST":
        body = body or {}
        for p in body.get("projects", []):
            STATE.projects[p["id"]] = {"number": str(p["number"])}
        for c in body.get("clusters", []):
            name = f"projects/{c['project']}/locations/{c['location']}/clusters/{c['name']}"
            STATE.clusters[name] = c.get("workloadPool")
        for b in body.get("buckets", []):
            project = STATE.projects.get(b.get("project"), {"number": "0"})
            STATE.buckets[b["name"]] = {"uniform": b.get("uniform", True), "project_number": project["number"]}
        for s in body.get("secrets", []):
            STATE.secrets[f"projects/{s['project']}/secrets/{s['id']}"] = {}
        return 200, {}
    if path == "/_fake/policy":
        target = query.get("target", [""])[0]
        if method == "GET":
            return 200, STATE.policy(target)
        if method == "POST":
            policy = STATE.policy(target)
            policy["bindings"] = (body or {}).get("bindings", [])
            if conditional(policy["bindings"]):
                policy["version"] = 3
            policy["etag"] = STATE.etag()
            return 200, policy
    raise Failure(404, f"no such test endpoint: {method} {path}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_google: " + (fmt % args) + "\n")

    def handle_one(self):
        url = urlparse(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        storage = path.startswith(("/storage/", "/upload/storage/"))
        upload = path.startswith("/upload/")
        try:
            try:
                body = json.loads(raw) if raw and not upload else None
            except ValueError:
                raise Failure(400, "Invalid JSON payload received.")
            with STATE.lock:
                if path.startswith("/_fake/"):
                    status, out = admin(self.command, path, query, body)
                else:
                    authorization = self.headers.get("Authorization") or ""
                    if not authorization.startswith("Bearer "):
                        raise Failure(401, "Request is missing required authentication credential.")
                    if authorization != f"Bearer {TOKEN}":
                        raise Failure(401, "Request had invalid authentication credentials.")
                    # Object calls are recorded with their query: their preconditions show.
                    objects = "/o" in path and storage and url.query
                    STATE.calls.append(f"{self.command} {path}?{url.query}" if objects else f"{self.command} {path}")
                    if STATE.failures:
                        code = STATE.failures.pop(0)
                        raise Failure(code, "Quota exceeded." if code == 429 else "The service is currently unavailable.",
                                      "RESOURCE_EXHAUSTED" if code == 429 else "UNAVAILABLE")
                    what = f"{self.command} {path}"
                    if upload:
                        # Uploads name their object in the body: a fault can target one object.
                        what += f" {upload_name(query, self.headers.get('Content-Type'), raw)}"
                    write = self.command != "GET" and not path.endswith(":getIamPolicy")
                    injected = FAULTS.pick(write, what, raw)
                    if injected == "throttle":
                        raise Failure(429, "Quota exceeded.", "RESOURCE_EXHAUSTED")
                    if injected == "deny":
                        raise Failure(403, "Permission denied.", "PERMISSION_DENIED")
                    if injected == "error":
                        raise Failure(503, "The service is currently unavailable.", "UNAVAILABLE")
                    answer = storage_object(self.command, path, query, raw, self.headers.get("Content-Type"))
                    status, out = answer or google(self.command, path, query, body)
                    FAULTS.answered(write, what, raw, status)
                    if injected == "lost":
                        FAULTS.landed(what)
                        raise Failure(500, "Internal error encountered.", "INTERNAL")
        except Failure as f:
            status = f.code
            if storage:
                out = {"error": {"code": f.code, "message": f.message,
                                 "errors": [{"message": f.message, "domain": "global", "reason": f.status}]}}
            else:
                out = {"error": {"code": f.code, "message": f.message, "status": f.status}}
        headers = {}
        if isinstance(out, Media):
            data, content_type, headers = out.data, out.content_type, out.headers
        else:
            data = b"" if out is None else json.dumps(out).encode()
            content_type = "application/json; charset=UTF-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one


def main():
    global FAULTS, TOKEN
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--token", default=TOKEN, help="the one bearer token accepted")
    faults.add_arguments(parser)
    args = parser.parse_args()
    FAULTS = faults.Faults.from_args(args)
    TOKEN = args.token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.exit_with_parent:
        faults.exit_with_parent()
    print(f"fake_google listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
