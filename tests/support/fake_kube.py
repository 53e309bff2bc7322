#!/usr/bin/env python3
"""A fake Kubernetes API server for idplan's tests (Python 3 standard library only).

A real kube-apiserver cannot run here, so `verify`, discovery and `--restart` are tested
against this server. It behaves like the API server where idplan depends on it:

- discovery documents: /version, /api, /apis;
- `controlplanes.spaces.upbound.io/v1beta1` (custom resources) listed in all namespaces or
  one, items with apiVersion and kind like the real server serves custom resources;
- core v1 namespaces (cluster-scoped: GET one, LIST); POST of a namespace, and of a service
  account into an existing namespace, as `kubectl create` and Helm make them (201, 409
  AlreadyExists, 404 when the namespace is missing);
- core v1 service accounts and pods, apps v1 replica sets and deployments: GET one, LIST a
  namespace (`labelSelector` with `=`, `==`, `!=`, `k`, `!k`; `fieldSelector` on the fields
  the real server supports for pods: metadata.name, metadata.namespace, spec.nodeName,
  spec.serviceAccountName, status.phase; any other is 400 like the real server);
- PATCH of a deployment with `application/merge-patch+json` or
  `application/strategic-merge-patch+json` (a JSON merge of maps, which is what strategic
  merge does for the maps idplan patches; lists are replaced), 415 for other types; every
  write bumps `metadata.resourceVersion` and `metadata.generation`;
- a bearer token when one is given on the command line (401 otherwise);
- errors as a `Status` body with the real reasons and codes (NotFound 404, BadRequest 400,
  Unauthorized 401, UnsupportedMediaType 415, MethodNotAllowed 405, AlreadyExists 409).

Test-only endpoints (not Kubernetes): GET /health; POST /admin/objects
`{"resource": "pods", "object": {...}}` (create or replace), POST /admin/delete
`{"resource", "namespace", "name"}`, GET /admin/state (every object, the PATCH requests, and
  every API request as "METHOD /path", to count reads).

Usage: fake_kube.py PORT [TOKEN]
"""

import copy
import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# resource -> (group/version path prefix, kind, namespaced list kind)
RESOURCES = {
    "namespaces": ("/api/v1", "v1", "Namespace"),
    "controlplanes": ("/apis/spaces.upbound.io/v1beta1", "spaces.upbound.io/v1beta1", "ControlPlane"),
    "serviceaccounts": ("/api/v1", "v1", "ServiceAccount"),
    "pods": ("/api/v1", "v1", "Pod"),
    "replicasets": ("/apis/apps/v1", "apps/v1", "ReplicaSet"),
    "deployments": ("/apis/apps/v1", "apps/v1", "Deployment"),
}
# Custom resources carry apiVersion and kind in list items; built-in types do not.
CUSTOM = {"controlplanes"}
# Cluster-scoped resources: no namespace in their path or key.
CLUSTER_SCOPED = {"namespaces"}
# What POST may create (the rest is seeded through /admin/objects).
CREATABLE = {"namespaces", "serviceaccounts"}
POD_FIELDS = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
    "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName", ""),
    "status.phase": lambda o: o.get("status", {}).get("phase", ""),
}
OTHER_FIELDS = {k: POD_FIELDS[k] for k in ("metadata.name", "metadata.namespace")}

LOCK = threading.Lock()
OBJECTS = {}  # (resource, namespace, name) -> object
PATCHES = []  # every PATCH: {resource, namespace, name, contentType, body}
REQUESTS = []  # every API request: "METHOD /path" (the query left out), for counting reads
VERSION = [1]
TOKEN = None


class ApiError(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def not_found(resource, name):
    group = RESOURCES[resource][1].split("/")[0] if "/" in RESOURCES[resource][1] else ""
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found')


def next_version():
    VERSION[0] += 1
    return str(VERSION[0])


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


def shown(resource, obj, in_list):
    obj = copy.deepcopy(obj)
    if in_list and resource not in CUSTOM:
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
    return obj


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

    def handle_any(self, method):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path.startswith("/admin/") or url.path == "/health":
                code, out = self.admin(method, url.path)
            else:
                if TOKEN and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                with LOCK:
                    REQUESTS.append(f"{method} {url.path}")
                code, out = self.api(method, url.path, query)
        except ApiError as e:
            code, out = e.code, status_body(e.code, e.reason, e.message)
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

    def admin(self, method, path):
        if path == "/health":
            return 200, {"ok": True}
        if method == "GET" and path == "/admin/state":
            with LOCK:
                objects = {}
                for (resource, ns, name), obj in sorted(OBJECTS.items()):
                    objects.setdefault(resource, {})[f"{ns}/{name}" if ns else name] = obj
                return 200, {"objects": objects, "patches": list(PATCHES), "requests": list(REQUESTS)}
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
            with LOCK:
                meta["resourceVersion"] = next_version()
                OBJECTS[(resource, meta.get("namespace", ""), meta["name"])] = obj
            return 204, None
        if method == "POST" and path == "/admin/delete":
            with LOCK:
                OBJECTS.pop((body["resource"], body.get("namespace", ""), body["name"]), None)
            return 204, None
        raise ApiError(404, "NotFound", f"no admin endpoint {method} {path}")

    def api(self, method, path, query):
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups = []
            for name, version in (("apps", "v1"), ("spaces.upbound.io", "v1beta1")):
                gv = {"groupVersion": f"{name}/{version}", "version": version}
                groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
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
                    return self.one(method, resource, "", rest[1])
                continue
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == resource:
                if len(rest) == 3:
                    if method == "POST" and resource in CREATABLE:
                        return self.create(resource, rest[1])
                    return self.list(method, resource, rest[1], query)
                if len(rest) == 4:
                    return self.one(method, resource, rest[1], rest[3])
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def list(self, method, resource, namespace, query):
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a list")
        labels = parse_labels(query.get("labelSelector", ""))
        fields = parse_fields(query.get("fieldSelector", ""), resource)
        with LOCK:
            items = [shown(resource, o, True) for (r, ns, _), o in sorted(OBJECTS.items())
                     if r == resource and (namespace is None or ns == namespace)
                     and labels(o["metadata"].get("labels") or {}) and fields(o)]
            version = str(VERSION[0])
        _, api_version, kind = RESOURCES[resource]
        return 200, {"kind": f"{kind}List", "apiVersion": api_version,
                     "metadata": {"resourceVersion": version}, "items": items}

    def create(self, resource, namespace):
        """POST: creates the object, 201; 409 AlreadyExists; 404 when its namespace is missing."""
        obj = self.body()
        if not isinstance(obj, dict) or not (obj.get("metadata") or {}).get("name"):
            raise ApiError(400, "BadRequest", "metadata.name: Required value: name or generateName is required")
        _, api_version, kind = RESOURCES[resource]
        if obj.get("kind", kind) != kind or obj.get("apiVersion", api_version) != api_version:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not "
                                              f"match the expected API version ({api_version})")
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if namespace is not None:
            if meta.get("namespace", namespace) != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                                  "namespace sent on the request")
            meta["namespace"] = namespace
        key = (resource, namespace or "", meta["name"])
        with LOCK:
            if namespace is not None and ("namespaces", "", namespace) not in OBJECTS:
                raise not_found("namespaces", namespace)
            if key in OBJECTS:
                raise ApiError(409, "AlreadyExists", f'{resource} "{meta["name"]}" already exists')
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
            meta["resourceVersion"] = next_version()
            if resource == "namespaces":
                obj["spec"] = {"finalizers": ["kubernetes"]}
                obj["status"] = {"phase": "Active"}
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["apiVersion"], obj["kind"] = api_version, kind
            OBJECTS[key] = obj
        return 201, shown(resource, obj, False)

    def one(self, method, resource, namespace, name):
        key = (resource, namespace, name)
        if method == "GET":
            with LOCK:
                obj = OBJECTS.get(key)
            if obj is None:
                raise not_found(resource, name)
            return 200, shown(resource, obj, False)
        if method == "PATCH" and resource == "deployments":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json")
            patch = self.body()
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "the patch is not a JSON object")
            with LOCK:
                obj = OBJECTS.get(key)
                if obj is None:
                    raise not_found(resource, name)
                PATCHES.append({"resource": resource, "namespace": namespace, "name": name,
                                "contentType": content_type, "body": patch})
                patched = merge(obj, patch)
                patched["metadata"]["resourceVersion"] = next_version()
                if patched.get("spec") != obj.get("spec"):
                    patched["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
                OBJECTS[key] = patched
            return 200, shown(resource, patched, False)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {resource} by this fake")


def main():
    global TOKEN
    port = int(sys.argv[1])
    TOKEN = sys.argv[2] if len(sys.argv) > 2 else None
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
