#!/usr/bin/env python3
"""A fake Kubernetes API server for idplan's tests (Python 3 standard library only).

A real kube-apiserver cannot run here, so `verify`, discovery, `--restart` and `watch` are
tested against this server. It behaves like the API server where idplan depends on it:

- discovery documents: /version, /api, /apis, and the resource list of every group version;
- `controlplanes.spaces.upbound.io/v1beta1` (custom resources, with a status subresource) in
  all namespaces or one; items with apiVersion and kind like the real server serves custom
  resources; POST (status dropped, generation 1), PUT (status kept, generation bumped when
  anything but metadata changes), PUT and PATCH of `.../status` (only the status), DELETE;
- `leases.coordination.k8s.io/v1` (namespaced): GET, LIST, POST (409 AlreadyExists), PUT
  (creates a missing lease like the real server, which allows create-on-update for leases),
  DELETE; `spec.leaseDurationSeconds` must be positive;
- core v1 namespaces (cluster-scoped: GET one, LIST); POST of a namespace, and of a service
  account into an existing namespace, as `kubectl create` and Helm make them;
- core v1 service accounts and pods, apps v1 replica sets and deployments: GET one, LIST a
  namespace (`labelSelector` with `=`, `==`, `!=`, `k`, `!k`; `fieldSelector` on the fields
  the real server supports for pods: metadata.name, metadata.namespace, spec.nodeName,
  spec.serviceAccountName, status.phase; any other is 400 like the real server);
- PATCH of a deployment, lease or control plane with `application/merge-patch+json` or
  `application/strategic-merge-patch+json` (a JSON merge of maps, which is what strategic
  merge does for the maps idplan patches; lists are replaced), 415 for other types;
- updates as the real registry makes them: PUT needs `metadata.resourceVersion` (422
  otherwise), 409 Conflict "Operation cannot be fulfilled on ... the object has been
  modified" when it is stale (also for a PATCH or a DELETE precondition that names one),
  name and namespace must match the URL (400); an object with finalizers is only marked
  (deletionTimestamp) by DELETE and goes when its last finalizer is removed; DELETE answers
  a Status for leases and control planes, the object for the core types;
- `metadata.resourceVersion` from one global counter (as etcd's revision) on every object and
  every list, bumped on every write (create, replace, patch, delete, /admin writes);
- lists: `limit` and `continue` (a consistent snapshot at the first page's version; 410
  Expired once that version left the history), `resourceVersion` with
  `resourceVersionMatch` (unset or "0": now; NotOlderThan; Exact: a snapshot; 410 Expired
  when too old; 504 "Too large resource version" after 3 s when ahead of the server);
- watches: `?watch=true` (or 1) on every list path, all namespaces or one, with
  `resourceVersion`, `allowWatchBookmarks`, `timeoutSeconds`, `labelSelector`,
  `fieldSelector`, `sendInitialEvents` (with `resourceVersionMatch=NotOlderThan`, ending the
  initial events with the `k8s.io/initial-events-end` bookmark): a chunked `application/json`
  stream of one `{"type", "object"}` per line. From resourceVersion N: every event after N
  from the bounded history (`--history`, default 1000 events), then live ones; N older than
  the history: 200 then an ERROR event with a 410 Expired Status "too old resource version:
  N (OLDEST)" as the watch cache answers; unset or "0": a synthetic ADDED per object, then
  live ones. An object that starts or stops matching the selectors is ADDED or DELETED to that
  watch, as the watch cache does; DELETED carries the last object with the deletion's
  resourceVersion. BOOKMARK events (kind, apiVersion, metadata.resourceVersion only) every
  `--bookmark-interval` seconds (default 1; the real server sends them about every minute)
  and 2 s before the timeout; the stream ends cleanly after `timeoutSeconds` (default 1800);
- a restart that keeps its objects: with `--data FILE` every write is appended to FILE (a log
  replayed and compacted at start), so a server stopped (SIGTERM ends every open watch
  cleanly; SIGKILL loses nothing written) and started again on the same port holds the same
  objects and the counter goes on. Like a restarted API server, whose watch cache starts
  empty and which makes writes of its own at start, the restarted server's history starts one
  version past the stored one: a watch from an earlier version gets 410 and re-lists;
- a bearer token when one is given on the command line (401 otherwise);
- errors as a `Status` body with the real reasons and codes (NotFound 404, BadRequest 400,
  Unauthorized 401, UnsupportedMediaType 415, MethodNotAllowed 405, AlreadyExists and
  Conflict 409, Expired 410, Invalid 422, Timeout 504).

Test-only endpoints (not Kubernetes): GET /health; POST /admin/objects
`{"resource": "pods", "object": {...}}` (create or replace: an ADDED or MODIFIED event),
POST /admin/delete `{"resource", "namespace", "name"}` (a DELETED event); GET /admin/state
(every object; the PATCH requests; `requests`, every API request as "METHOD /path", a watch
as "GET /path?watch", to count reads; `log`, the same with each query; `watches`, one entry
per watch request: path, query, events and bookmarks sent, the last resourceVersion sent and
how it ended; `version`, the counter; `since`, where the history starts); POST
/admin/close-watches (ends every open watch stream now, cleanly); POST /admin/hold-watches
(ends them and holds new watch requests unanswered, as a partition would, until POST
/admin/release-watches); POST /admin/compact (drops the history: a watch or a continued list
from an earlier version gets 410); POST /admin/config `{"bookmarkInterval": seconds,
"history": events}`; GET /admin/wait?requests=N&watches=N&open=N&held=N&bookmarks=N&version=N
&request=METHOD%20/path&count=N&timeout=S (blocks until every condition given holds: at least
N API requests, N watch requests, N bookmarks sent, counter at least N, `count` requests equal
to `request`; exactly N open or held watches; 200, or 408 after S seconds (default 5), with
the counts).

Usage: fake_kube.py --port PORT [--exit-with-parent] [TOKEN] [--data FILE] [--history N] [--bookmark-interval SECONDS]
"""

import argparse
import base64
import bisect
import copy
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import faults

# resource -> (group/version path prefix, apiVersion, kind)
RESOURCES = {
    "namespaces": ("/api/v1", "v1", "Namespace"),
    "controlplanes": ("/apis/spaces.upbound.io/v1beta1", "spaces.upbound.io/v1beta1", "ControlPlane"),
    "serviceaccounts": ("/api/v1", "v1", "ServiceAccount"),
    "pods": ("/api/v1", "v1", "Pod"),
    "replicasets": ("/apis/apps/v1", "apps/v1", "ReplicaSet"),
    "deployments": ("/apis/apps/v1", "apps/v1", "Deployment"),
    "leases": ("/apis/coordination.k8s.io/v1", "coordination.k8s.io/v1", "Lease"),
}
# Custom resources carry apiVersion and kind in list items; built-in types do not.
CUSTOM = {"controlplanes"}
# Cluster-scoped resources: no namespace in their path or key.
CLUSTER_SCOPED = {"namespaces"}
# What POST may create (the rest is seeded through /admin/objects).
CREATABLE = {"namespaces", "serviceaccounts", "leases", "controlplanes"}
# What PUT may replace, and DELETE delete.
REPLACEABLE = {"leases", "controlplanes"}
DELETABLE = {"leases", "controlplanes"}
PATCHABLE = {"deployments", "leases", "controlplanes"}
# Types whose PUT creates a missing object (the registry's AllowCreateOnUpdate).
CREATE_ON_UPDATE = {"leases"}
# Custom resources with a /status subresource: the main resource never writes status.
STATUS_SUBRESOURCE = {"controlplanes"}
# DELETE answers the deleted object for these, a Status for the others.
DELETE_RETURNS_OBJECT = {"namespaces", "serviceaccounts", "pods"}
POD_FIELDS = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
    "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName", ""),
    "status.phase": lambda o: o.get("status", {}).get("phase", ""),
}
OTHER_FIELDS = {k: POD_FIELDS[k] for k in ("metadata.name", "metadata.namespace")}
TRUE = {"1", "t", "T", "true", "TRUE", "True"}  # Go's strconv.ParseBool
CONFLICT = "the object has been modified; please apply your changes to the latest version and try again"

# One lock for everything; watches wait on it for writes, /admin/wait for anything.
COND = threading.Condition()
OBJECTS = {}  # (resource, namespace, name) -> object, never mutated once stored
PATCHES = []  # every PATCH: {resource, namespace, name, contentType, body}
REQUESTS = []  # every API request: "METHOD /path" (the query left out), for counting reads
LOG = []  # every API request: {"request": "METHOD /path", "query": {...}}
WATCHES = []  # every watch request: {path, query, events, bookmarks, resourceVersion, end}
HISTORY = []  # the events, oldest first: {rv, type, key, object, prev}
STATE = {
    "version": 1,  # the last resourceVersion given
    "since": 1,  # every event after this version is in HISTORY
    "epoch": 0,  # bumped to end every open watch
    "open": 0,  # watch streams open now
    "held": 0,  # watch requests held unanswered now
    "hold": False,
    "stopping": False,
    "bookmarks": 0,  # bookmarks sent, all watches
}
CONFIG = {"bookmarkInterval": 1.0, "history": 1000}
DATA = {"path": None, "file": None}
TOKEN = None


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def status_body(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def group(resource):
    api_version = RESOURCES[resource][1]
    return api_version.split("/")[0] if "/" in api_version else ""


def qualified(resource):
    """`leases.coordination.k8s.io`, `pods`: how the real server names a resource in errors."""
    return f"{resource}.{group(resource)}" if group(resource) else resource


def not_found(resource, name):
    # The real body also has details (name, kind); tests/e2e/kube.rs pins this one without.
    return ApiError(404, "NotFound", f'{qualified(resource)} "{name}" not found')


def conflict(resource, name, why=CONFLICT):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource)} "{name}": {why}',
                    {"name": name, "group": group(resource), "kind": resource})


def invalid(kind, name, field, shown_value, why):
    """422 Invalid as `apierrors.NewInvalid` words it (`shown_value` as Go prints it)."""
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {field}: Invalid value: {shown_value}: {why}',
                    {"name": name, "kind": kind.split(".")[0], "group": kind.partition(".")[2],
                     "causes": [{"reason": "FieldValueInvalid", "message": f"Invalid value: {shown_value}: {why}",
                                 "field": field}]})


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rv_of(obj):
    return obj["metadata"].get("resourceVersion")


def next_version():
    STATE["version"] += 1
    return str(STATE["version"])


def persist(entry):
    if DATA["file"] is not None:
        DATA["file"].write(json.dumps(entry) + "\n")
        DATA["file"].flush()


def commit(key, obj, delete=False):
    """Stores `obj` at `key` (deletes it with `delete`, `obj` its last state or None for the
    stored one) under COND: the next resourceVersion, an event in the history, a line in the
    data file; wakes every watch. The object as stored."""
    prev = OBJECTS.get(key)
    obj = copy.deepcopy(obj if obj is not None else prev)
    obj["metadata"]["resourceVersion"] = next_version()
    if delete:
        del OBJECTS[key]
        kind = "DELETED"
    else:
        OBJECTS[key] = obj
        kind = "ADDED" if prev is None else "MODIFIED"
    rv = STATE["version"]
    HISTORY.append({"rv": rv, "type": kind, "key": key, "object": obj, "prev": prev})
    while len(HISTORY) > CONFIG["history"]:
        STATE["since"] = HISTORY.pop(0)["rv"]
    persist({"rv": rv, "key": list(key), "object": None if delete else obj})
    COND.notify_all()
    return obj


def load(path):
    """Replays the data file (the objects and the counter of an earlier run), rewrites it
    compacted, and opens it for appending."""
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:
                    break  # a line cut short by a kill: it was never acknowledged
                raise
            STATE["version"] = max(STATE["version"], entry["rv"])
            if "key" in entry:
                key = tuple(entry["key"])
                if entry["object"] is None:
                    OBJECTS.pop(key, None)
                else:
                    OBJECTS[key] = entry["object"]
        if lines:
            # A restarted API server writes at start (its identity lease, endpoints) and its
            # watch cache begins empty: the history starts past every version a client saw.
            STATE["version"] += 1
    STATE["since"] = STATE["version"]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for key, obj in sorted(OBJECTS.items()):
            f.write(json.dumps({"rv": int(rv_of(obj)), "key": list(key), "object": obj}) + "\n")
        f.write(json.dumps({"rv": STATE["version"]}) + "\n")
    os.replace(tmp, path)
    DATA["path"], DATA["file"] = path, open(path, "a")


def merge(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def parse_labels(selector):
    rules = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        if "!=" in part:
            k, v = part.split("!=", 1)
            rules.append(lambda l, k=k.strip(), v=v.strip(): l.get(k) != v)
        elif "==" in part or "=" in part:
            k, v = re.split("==?", part, maxsplit=1)
            rules.append(lambda l, k=k.strip(), v=v.strip(): l.get(k) == v)
        elif part.startswith("!"):
            rules.append(lambda l, k=part[1:].strip(): k not in l)
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", part):
            rules.append(lambda l, k=part: k in l)
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part}")
    return lambda labels: all(r(labels) for r in rules)


def parse_fields(selector, resource):
    known = POD_FIELDS if resource == "pods" else OTHER_FIELDS
    rules = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        negate = "!=" in part
        k, v = re.split("!=|==?", part, maxsplit=1) if re.search("!=|=", part) else (part, None)
        k = k.strip()
        if v is None:
            raise ApiError(400, "BadRequest", f"invalid selector: '{selector}'; can't understand '{part}'")
        if k not in known:
            raise ApiError(400, "BadRequest", f'field label "{k}" not supported for {RESOURCES[resource][2]}')
        get = known[k]
        rules.append(lambda o, get=get, v=v.strip(), negate=negate: (get(o) == v) != negate)
    return lambda o: all(r(o) for r in rules)


def selection(resource, namespace, query):
    """What a list or watch selects: a predicate on objects (namespace, labels, fields)."""
    labels = parse_labels(query.get("labelSelector", ""))
    fields = parse_fields(query.get("fieldSelector", ""), resource)
    return lambda o: ((namespace is None or o["metadata"].get("namespace", "") == namespace)
                      and labels(o["metadata"].get("labels") or {}) and fields(o))


def etcd_key(item):
    """The order of etcd's keys (`namespace/name`), in which the real server lists; for
    sorted() of OBJECTS items or keys."""
    key = item[0] if isinstance(item[0], tuple) else item
    return f"{key[1]}/{key[2]}" if key[1] else key[2]


def shown(resource, obj, in_list):
    obj = copy.deepcopy(obj)
    if in_list and resource not in CUSTOM:
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
    return obj


def snapshot(resource, version):
    """The objects of `resource` as they were at `version` (>= since), by undoing the history
    after it; under COND."""
    objects = {k: o for k, o in OBJECTS.items() if k[0] == resource}
    for event in reversed(HISTORY):
        if event["rv"] <= version:
            break
        if event["key"][0] != resource:
            continue
        if event["prev"] is None:
            objects.pop(event["key"], None)
        else:
            objects[event["key"]] = event["prev"]
    return objects


def too_old(version):
    return ApiError(410, "Expired", f"too old resource version: {version} ({STATE['since']})")


def await_version(version):
    """Waits (under COND) up to 3 s for the counter to reach `version`, as the watch cache
    waits to catch up; the real server's 504 otherwise."""
    if not COND.wait_for(lambda: STATE["version"] >= version, timeout=3):
        raise ApiError(504, "Timeout", f"Timeout: Too large resource version: {version}, "
                                       f"current: {STATE['version']}",
                       {"causes": [{"reason": "ResourceVersionTooLarge",
                                    "message": "Too large resource version"}], "retryAfterSeconds": 1})


def parse_version(text):
    try:
        version = int(text)
    except ValueError:
        version = -1
    if version < 0:
        raise ApiError(400, "BadRequest", f"invalid resource version: {text!r}")
    return version


def whole_number(query, name):
    """A query parameter that must be a whole number (0 when absent); 400 otherwise."""
    text = query.get(name) or "0"
    if not text.isdigit():
        raise ApiError(400, "BadRequest", f"{name}: invalid value {text!r}: not a whole number")
    return int(text)


def encode_continue(version, start):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": version, "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "BadRequest", f"continue key is not valid: {token}")


def bookmark(resource, version, initial_end=False):
    _, api_version, kind = RESOURCES[resource]
    meta = {"resourceVersion": str(version), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}}


def watch_event(event, selects):
    """The event one watch sees of a write, or None: an object that starts matching its
    selectors is ADDED to it, one that stops matching DELETED (the cacher's rule)."""
    was = event["prev"] is not None and selects(event["prev"])
    if event["type"] == "DELETED":
        return {"type": "DELETED", "object": event["object"]} if was else None
    now_matches = selects(event["object"])
    if now_matches:
        return {"type": "MODIFIED" if was else "ADDED", "object": event["object"]}
    if was:
        last = copy.deepcopy(event["prev"])
        last["metadata"]["resourceVersion"] = str(event["rv"])
        return {"type": "DELETED", "object": last}
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path.split("?")[0]))

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"invalid JSON: {e}")

    streaming = False  # a watch's headers are sent: no other answer can follow

    def handle_any(self, method):
        if STATE["stopping"]:
            # A server going away answers nothing more, even on a kept-alive connection.
            self.close_connection = True
            return
        self.streaming = False
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path.startswith("/admin/") or url.path == "/health":
                code, out = self.admin(method, url.path, query)
            else:
                if TOKEN and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                watching = method == "GET" and query.get("watch") in TRUE
                request = f"{method} {url.path}" + ("?watch" if watching else "")
                with COND:
                    REQUESTS.append(request)
                    LOG.append({"request": request, "query": query})
                    COND.notify_all()
                code, out = self.api(method, url.path, query)
        except ApiError as e:
            code, out = e.code, status_body(e.code, e.reason, e.message, e.details)
        except Exception as e:  # a bug of the fake: say so rather than drop the connection
            traceback.print_exc()
            if self.streaming:
                self.close_connection = True
                return
            code, out = 500, status_body(500, "InternalError", f"fake_kube.py: {e!r}")
        if code is None:
            return  # a watch: the stream is already answered
        if code == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(code, out)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # ---- test-only endpoints ----

    def admin(self, method, path, query):
        if path == "/health":
            return 200, {"ok": True}
        if method == "GET" and path == "/admin/state":
            with COND:
                objects = {}
                for (resource, ns, name), obj in sorted(OBJECTS.items()):
                    objects.setdefault(resource, {})[f"{ns}/{name}" if ns else name] = obj
                return 200, {"objects": objects, "patches": list(PATCHES), "requests": list(REQUESTS),
                             "log": list(LOG), "watches": copy.deepcopy(WATCHES),
                             "version": STATE["version"], "since": STATE["since"]}
        if method == "GET" and path == "/admin/wait":
            return self.wait(query)
        body = self.body() or {}
        if method == "POST" and path == "/admin/objects":
            resource, obj = body["resource"], copy.deepcopy(body["object"])
            if resource not in RESOURCES:
                raise ApiError(400, "BadRequest", f"unknown resource {resource}")
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            meta.setdefault("generation", 1)
            obj["apiVersion"], obj["kind"] = RESOURCES[resource][1], RESOURCES[resource][2]
            with COND:
                commit((resource, meta.get("namespace", ""), meta["name"]), obj)
            return 204, None
        if method == "POST" and path == "/admin/delete":
            key = (body["resource"], body.get("namespace", ""), body["name"])
            with COND:
                if key in OBJECTS:
                    commit(key, None, delete=True)
            return 204, None
        if method == "POST" and path in ("/admin/close-watches", "/admin/hold-watches", "/admin/release-watches"):
            with COND:
                if path != "/admin/release-watches":
                    STATE["epoch"] += 1
                STATE["hold"] = path == "/admin/hold-watches"
                COND.notify_all()
            return 204, None
        if method == "POST" and path == "/admin/compact":
            with COND:
                HISTORY.clear()
                STATE["since"] = STATE["version"]
            return 204, None
        if method == "POST" and path == "/admin/config":
            with COND:
                if "bookmarkInterval" in body:
                    CONFIG["bookmarkInterval"] = float(body["bookmarkInterval"])
                if "history" in body:
                    CONFIG["history"] = int(body["history"])
                COND.notify_all()
            return 204, None
        raise ApiError(404, "NotFound", f"no admin endpoint {method} {path}")

    def wait(self, query):
        def counts():
            return {"requests": len(REQUESTS), "watches": len(WATCHES), "open": STATE["open"],
                    "held": STATE["held"], "bookmarks": STATE["bookmarks"], "version": STATE["version"],
                    "count": REQUESTS.count(query["request"]) if "request" in query else 0}

        def holds():
            c = counts()
            at_least = ("requests", "watches", "bookmarks", "version", "count")
            exactly = ("open", "held")
            return (all(c[k] >= int(query[k]) for k in at_least if k in query)
                    and all(c[k] == int(query[k]) for k in exactly if k in query))

        with COND:
            ok = COND.wait_for(holds, timeout=float(query.get("timeout", 5)))
            return (200 if ok else 408), counts()

    # ---- the API ----

    def api(self, method, path, query):
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups = []
            for name, version in (("apps", "v1"), ("coordination.k8s.io", "v1"), ("spaces.upbound.io", "v1beta1")):
                gv = {"groupVersion": f"{name}/{version}", "version": version}
                groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        prefixes = {prefix for prefix, _, _ in RESOURCES.values()}
        if path in prefixes:
            return 200, self.resource_list(path)
        for resource, (prefix, _, kind) in RESOURCES.items():
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:].split("/")
            if rest == [resource]:
                if method == "POST" and resource in CREATABLE:
                    return self.create(resource, None)
                return self.list(method, resource, None, query)
            if resource in CLUSTER_SCOPED:
                if len(rest) == 2 and rest[0] == resource:
                    return self.one(method, resource, "", rest[1], None)
                continue
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == resource:
                if len(rest) == 3:
                    if method == "POST" and resource in CREATABLE:
                        return self.create(resource, rest[1])
                    return self.list(method, resource, rest[1], query)
                if len(rest) == 4:
                    return self.one(method, resource, rest[1], rest[3], None)
                if len(rest) == 5 and rest[4] == "status" and resource in STATUS_SUBRESOURCE:
                    return self.one(method, resource, rest[1], rest[3], "status")
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def resource_list(self, prefix):
        resources = []
        for resource, (p, api_version, kind) in RESOURCES.items():
            if p != prefix:
                continue
            verbs = ["get", "list", "watch"]
            verbs += ["create"] if resource in CREATABLE else []
            verbs += ["update"] if resource in REPLACEABLE else []
            verbs += ["patch"] if resource in PATCHABLE else []
            verbs += ["delete"] if resource in DELETABLE else []
            resources.append({"name": resource, "singularName": kind.lower(),
                              "namespaced": resource not in CLUSTER_SCOPED, "kind": kind, "verbs": verbs})
            if resource in STATUS_SUBRESOURCE:
                resources.append({"name": f"{resource}/status", "singularName": "",
                                  "namespaced": True, "kind": kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": prefix.removeprefix("/apis/").removeprefix("/api/"), "resources": resources}

    def list(self, method, resource, namespace, query):
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a list")
        if query.get("watch") in TRUE:
            return self.watch(resource, namespace, query)
        selects = selection(resource, namespace, query)
        limit = whole_number(query, "limit") or None
        requested, match = query.get("resourceVersion", ""), query.get("resourceVersionMatch", "")
        if match and not requested:
            raise ApiError(422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                                           "unless resourceVersion is provided")
        start = ""
        with COND:
            if query.get("continue"):
                if requested:
                    raise ApiError(400, "BadRequest", "specifying resource version is not allowed when using continue")
                version, start = decode_continue(query["continue"])
                if version < STATE["since"]:
                    raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                                                   "consistent list result. You can start a new list without "
                                                   "the continue parameter.")
            elif requested in ("", "0"):
                version = STATE["version"]
            else:
                version = parse_version(requested)
                if version > STATE["version"]:
                    await_version(version)
                if match == "Exact" or (not match and limit is not None):
                    if version < STATE["since"]:
                        raise too_old(version)
                else:
                    version = STATE["version"]
            objects = snapshot(resource, version)
            keys = [k for k in sorted(objects, key=etcd_key) if selects(objects[k]) and etcd_key(k) >= start]
        page = keys if limit is None else keys[:limit]
        meta = {"resourceVersion": str(version)}
        if limit is not None and len(keys) > limit:
            last = page[-1]
            meta["continue"] = encode_continue(version, etcd_key(last) + "\x00")
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = len(keys) - limit
        _, api_version, kind = RESOURCES[resource]
        return 200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta,
                     "items": [shown(resource, objects[k], True) for k in page]}

    def watch(self, resource, namespace, query):
        """A watch stream (see the module's docstring); answered here, so (None, None)."""
        selects = selection(resource, namespace, query)
        requested = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks") in TRUE
        initial = query.get("sendInitialEvents") in TRUE
        match = query.get("resourceVersionMatch", "")
        if initial and (match != "NotOlderThan" or not bookmarks):
            raise ApiError(422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents requires setting "
                                           "resourceVersionMatch to NotOlderThan and allowWatchBookmarks")
        if match and not initial:
            raise ApiError(422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                                           "for watch unless sendInitialEvents is provided")
        version = None if requested in ("", "0") else parse_version(requested)
        timeout = whole_number(query, "timeoutSeconds") or 1800
        record = {"path": self.path.split("?")[0], "query": query, "resourceVersion": requested,
                  "events": 0, "bookmarks": 0, "lastResourceVersion": None, "end": None}
        with COND:
            WATCHES.append(record)
            if STATE["hold"]:
                STATE["held"] += 1
                COND.notify_all()
                COND.wait_for(lambda: not STATE["hold"] or STATE["stopping"])
                STATE["held"] -= 1
            STATE["open"] += 1
            epoch = STATE["epoch"]
            COND.notify_all()
        end = "client"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.streaming = True
            end = self.stream(resource, selects, version, initial, bookmarks, timeout, epoch, record)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            end = "client"
            self.close_connection = True
        finally:
            with COND:
                STATE["open"] -= 1
                record["end"] = end
                if STATE["stopping"]:
                    self.close_connection = True
                COND.notify_all()
        return None, None

    def stream(self, resource, selects, version, initial, bookmarks, timeout, epoch, record):
        """Writes the events of one watch until it ends; how it ended: "timeout", "closed"
        (/admin/close-watches, a shutdown, or a watch that fell behind the history, as the
        watch cache drops a watcher too slow to follow), "client", "expired" or "error"."""
        gone = threading.Event()
        threading.Thread(target=self.notice_hang_up, args=(gone,), daemon=True).start()
        try:
            started = time.monotonic()
            deadline = started + timeout
            # The real server sends one bookmark 2 s before the deadline, so that a client
            # resumes from a fresh version, and others about every minute (bookmarkInterval).
            last_call, last_call_sent = max(started, deadline - 2), False
            next_bookmark = started + CONFIG["bookmarkInterval"]
            with COND:
                pending, position = [], STATE["version"]
                try:
                    if version is not None and version > STATE["version"]:
                        await_version(version)
                    if version is None or initial:
                        position = STATE["version"]
                        pending = [{"type": "ADDED", "object": o} for k, o in sorted(OBJECTS.items(), key=etcd_key)
                                   if k[0] == resource and selects(o)]
                        if initial:
                            pending.append(bookmark(resource, position, initial_end=True))
                    elif version < STATE["since"]:
                        raise too_old(version)
                    else:
                        position = version
                except ApiError as e:
                    error = {"type": "ERROR", "object": status_body(e.code, e.reason, e.message, e.details)}
                    self.send_event(record, error)
                    return "expired" if e.code == 410 else "error"
            while True:
                for event in pending:
                    self.send_event(record, event)
                pending = []
                with COND:
                    while not pending:
                        if position < STATE["since"]:
                            return "closed"  # events it did not read yet left the history
                        first = bisect.bisect_right(HISTORY, position, key=lambda e: e["rv"])
                        for event in HISTORY[first:]:
                            if event["key"][0] == resource:
                                seen = watch_event(event, selects)
                                if seen is not None:
                                    pending.append(seen)
                        position = max(position, STATE["version"])
                        if pending:
                            break
                        clock = time.monotonic()
                        if STATE["epoch"] != epoch or STATE["stopping"]:
                            return "closed"
                        if gone.is_set():
                            return "client"
                        if clock >= deadline:
                            return "timeout"
                        due = next_bookmark if last_call_sent else min(next_bookmark, last_call)
                        if bookmarks and clock >= due:
                            # Nothing is pending: every event up to the counter was read.
                            pending.append(bookmark(resource, position))
                            STATE["bookmarks"] += 1
                            record["bookmarks"] += 1
                            next_bookmark = clock + CONFIG["bookmarkInterval"]
                            last_call_sent = last_call_sent or clock >= last_call
                            break
                        wake = min(deadline, due) if bookmarks else deadline
                        COND.wait(timeout=max(0.0, wake - clock))
        finally:
            gone.set()

    def send_event(self, record, event):
        data = (json.dumps(event) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        with COND:
            if event["type"] != "BOOKMARK":
                record["events"] += 1
            record["lastResourceVersion"] = event["object"].get("metadata", {}).get("resourceVersion")

    def notice_hang_up(self, gone):
        """Sets `gone` when the client closes its end (a peek sees EOF), so that a quiet
        watch does not outlive its client."""
        try:
            data = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if not data and not gone.is_set():
            gone.set()
            with COND:
                COND.notify_all()

    def create(self, resource, namespace):
        """POST: creates the object, 201; 409 AlreadyExists; 404 when its namespace is missing."""
        obj = self.body()
        if not isinstance(obj, dict) or not (obj.get("metadata") or {}).get("name"):
            raise ApiError(400, "BadRequest", "metadata.name: Required value: name or generateName is required")
        obj = self.checked(resource, namespace, obj)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        with COND:
            return 201, shown(resource, self.insert(resource, namespace, obj), False)

    def checked(self, resource, namespace, obj):
        """A copy of a body to create or replace, its kind, apiVersion and namespace checked."""
        _, api_version, kind = RESOURCES[resource]
        if obj.get("kind", kind) != kind or obj.get("apiVersion", api_version) != api_version:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not "
                                              f"match the expected API version ({api_version})")
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if namespace is not None:
            if meta.get("namespace", namespace) != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                                  "namespace sent on the request")
            meta["namespace"] = namespace
        obj["apiVersion"], obj["kind"] = api_version, kind
        if resource == "leases":
            duration = (obj.get("spec") or {}).get("leaseDurationSeconds")
            if duration is not None and duration <= 0:
                raise invalid(f"Lease.{group(resource)}", meta.get("name", ""), "spec.leaseDurationSeconds",
                              str(duration), "must be greater than 0")
        return obj

    def insert(self, resource, namespace, obj):
        """Stores a new object (under COND): 409 AlreadyExists, 404 when its namespace is missing."""
        meta = obj["metadata"]
        key = (resource, namespace or "", meta["name"])
        if namespace is not None and ("namespaces", "", namespace) not in OBJECTS:
            raise not_found("namespaces", namespace)
        if key in OBJECTS:
            raise ApiError(409, "AlreadyExists", f'{qualified(resource)} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": group(resource), "kind": resource})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now() if resource in ("leases", "controlplanes") else "2026-01-01T00:00:00Z"
        meta.pop("resourceVersion", None)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        if resource == "namespaces":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        if resource in STATUS_SUBRESOURCE:
            obj.pop("status", None)
        if resource in CUSTOM:
            meta["generation"] = 1
        return commit(key, obj)

    def one(self, method, resource, namespace, name, subresource):
        key = (resource, namespace, name)
        if method == "GET":
            with COND:
                obj = OBJECTS.get(key)
            if obj is None:
                raise not_found(resource, name)
            return 200, shown(resource, obj, False)
        if method == "PATCH" and resource in PATCHABLE:
            return self.patch(resource, namespace, name, subresource)
        if method == "PUT" and resource in REPLACEABLE:
            return self.replace(resource, namespace, name, subresource)
        if method == "DELETE" and resource in DELETABLE and subresource is None:
            return self.delete(resource, namespace, name)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {resource} by this fake")

    def patch(self, resource, namespace, name, subresource):
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json")
        patch = self.body()
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "the patch is not a JSON object")
        key = (resource, namespace, name)
        with COND:
            current = OBJECTS.get(key)
            if current is None:
                raise not_found(resource, name)
            wanted = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != rv_of(current):
                raise conflict(resource, name)
            entry = {"resource": resource, "namespace": namespace, "name": name,
                     "contentType": content_type, "body": patch}
            if subresource:
                entry["subresource"] = subresource
            PATCHES.append(entry)
            updated = self.updated(resource, current, merge(current, patch), subresource)
            return 200, shown(resource, updated, False)

    def replace(self, resource, namespace, name, subresource):
        """PUT: 200 with the object; 404 when missing (a lease is created: 201); 409 on a stale
        resourceVersion; 422 without one."""
        obj = self.body()
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
        obj = self.checked(resource, namespace, obj)
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name', '')}) does not match "
                                              f"the name on the URL ({name})")
        key = (resource, namespace, name)
        with COND:
            current = OBJECTS.get(key)
            if current is None:
                if resource in CREATE_ON_UPDATE and subresource is None:
                    return 201, shown(resource, self.insert(resource, namespace, obj), False)
                raise not_found(resource, name)
            wanted = meta.get("resourceVersion")
            if not wanted:
                raise invalid(qualified(resource), name, "metadata.resourceVersion", "0x0",
                              "must be specified for an update")
            if wanted != rv_of(current):
                raise conflict(resource, name)
            return 200, shown(resource, self.updated(resource, current, obj, subresource), False)

    def updated(self, resource, current, new, subresource):
        """Stores `new` in place of `current` (under COND) as the registry's update does: what
        a client may not change is kept, the generation follows, and an object being deleted
        whose last finalizer goes is deleted. The object as stored."""
        meta = current["metadata"]
        if subresource == "status":
            new = dict(copy.deepcopy(current), status=new.get("status"))
            if new["status"] is None:
                new.pop("status")
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = current["apiVersion"], current["kind"]
        new_meta = new.setdefault("metadata", {})
        for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
            if field in meta:
                new_meta[field] = meta[field]
            else:
                new_meta.pop(field, None)
        if resource in STATUS_SUBRESOURCE and subresource is None:
            if "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
        rest = lambda o: {k: v for k, v in o.items() if k != "metadata"}
        if resource in CUSTOM and subresource is None and rest(new) != rest(current):
            new_meta["generation"] = meta.get("generation", 1) + 1
        if resource == "deployments" and new.get("spec") != current.get("spec"):
            new_meta["generation"] = meta.get("generation", 1) + 1
        key = (resource, meta.get("namespace", ""), meta["name"])
        if "deletionTimestamp" in meta and not new_meta.get("finalizers"):
            return commit(key, new, delete=True)
        return commit(key, new)

    def delete(self, resource, namespace, name):
        """DELETE: 200 with a Status (or the object, for the core types); with finalizers only
        marks it; 409 when a precondition names another resourceVersion or uid."""
        options = self.body() or {}
        preconditions = options.get("preconditions") or {}
        key = (resource, namespace, name)
        with COND:
            current = OBJECTS.get(key)
            if current is None:
                raise not_found(resource, name)
            meta = current["metadata"]
            for field, label in (("resourceVersion", "ResourceVersion"), ("uid", "UID")):
                wanted = preconditions.get(field)
                if wanted is not None and wanted != meta.get(field):
                    raise conflict(resource, name, f"Precondition failed: {label} in precondition: {wanted}, "
                                                   f"{label} in object meta: {meta.get(field)}")
            if meta.get("finalizers"):
                if "deletionTimestamp" not in meta:
                    marked = copy.deepcopy(current)
                    marked["metadata"]["deletionTimestamp"] = now()
                    marked["metadata"]["deletionGracePeriodSeconds"] = 0
                    current = commit(key, marked)
                return 200, shown(resource, current, False)
            last = commit(key, None, delete=True)
        if resource in DELETE_RETURNS_OBJECT:
            return 200, shown(resource, last, False)
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": name, "group": group(resource), "kind": resource,
                                 "uid": meta.get("uid")}}


def main():
    global TOKEN
    parser = argparse.ArgumentParser(description="A fake Kubernetes API server for idplan's tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("token", nargs="?")
    parser.add_argument("--data", help="where the objects are kept across restarts")
    parser.add_argument("--history", type=int, default=1000, help="events kept for watches")
    parser.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds between bookmarks")
    args = parser.parse_args()
    if args.exit_with_parent:
        faults.exit_with_parent()
    TOKEN = args.token
    CONFIG["history"], CONFIG["bookmarkInterval"] = args.history, args.bookmark_interval
    if args.data:
        load(args.data)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

    def stop():
        # As the real server drains: every open watch ends cleanly, then the listener closes.
        with COND:
            STATE["stopping"] = True
            COND.notify_all()
            COND.wait_for(lambda: STATE["open"] == 0, timeout=3)
        server.shutdown()

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop, daemon=True).start())
    server.serve_forever()
    server.server_close()
    if DATA["file"] is not None:
        DATA["file"].close()


if __name__ == "__main__":
    main()
