#!/usr/bin/env python3
"""A fake Azure Resource Manager for idplan's tests (Python 3 standard library only).

No emulator covers ARM managed identities, role assignments or key vault access policies, so
the tests run against this server. It behaves like ARM where idplan depends on it (checked
against the official examples in ../shared/reference/azure/ by tests/e2e/azure.rs):

- paths of resource group scoped resources, matched case-insensitively like ARM;
- `api-version` required (400 MissingApiVersionParameter / InvalidApiVersionParameter);
- a bearer token required (401 AuthenticationFailed), and only the test's own accepted (401
  InvalidAuthenticationToken; `--token`); never logged;
- status codes 200 / 201 / 202 / 204 / 404 / 409 and the ARM error body
  `{"error": {"code", "message"}}`;
- generated `clientId` / `principalId` (uuid4) on identity creation;
- at most 20 federated identity credentials per identity (400 with Azure's message), and
  409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity when two writes on
  one identity overlap (each write holds the identity for a short while);
- role assignments: 409 RoleAssignmentExists for the same principal, role and scope under
  another name, or under the same name again (a retried create); 400 PrincipalNotFound for a principal created seconds ago without
  `principalType` (directory replication);
- identity DELETE is a long-running operation: 202 + Azure-AsyncOperation, polled;
- list calls page with `nextLink` (2 items a page): federated credentials, role assignments,
  and the identities and key vaults of a resource group (`idplan init`);
- the built-in role definitions `az role assignment create --role NAME` looks up
  (GET `{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName eq '...'`
  and by id), in the subscription-scoped id form Azure answers;
- `Vaults_CreateOrUpdate` (PUT of a whole vault), which `az keyvault set-policy` sends after
  reading the vault: location, tenantId and sku required, the access policies as sent.

Test-only endpoints (not ARM): GET /health, POST /admin/clusters, /admin/storage,
/admin/vaults (seeding), POST /admin/faults (inject errors), GET /admin/state (everything).

Faults on request: `--faults RATE` answers that share of ARM requests with 429 (Retry-After),
503, or a 500 after the write was done (see tests/support/faults.py).

Usage: fake_arm.py --port PORT [--exit-with-parent] [--faults RATE] [--fault-seed N] [--fault-log FILE]
"""

import argparse
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import faults

API_VERSIONS = {
    "microsoft.managedidentity": {"2023-01-31", "2024-11-30", "2025-01-31-preview", "2026-05-31"},
    "microsoft.authorization": {"2022-04-01"},
    "microsoft.keyvault": {"2023-07-01", "2024-11-01", "2026-02-01"},
    "microsoft.containerservice": {"2025-10-01", "2026-08-01"},
    "microsoft.storage": {"2023-05-01", "2025-01-01"},
}
# The one bearer token accepted (`--token`); the tests' own.
TOKEN = "test-token"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FIC_LIMIT = 20
FIC_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$")
PAGE = 2
# How long a credential write holds its identity: long enough that overlapping writes on
# one identity are seen, as Azure sees them.
WRITE_HOLD = 0.05
# A principal younger than this is not yet in every directory replica.
REPLICATION = 5.0

# The built-in roles the Spaces guides and idplan name: GUID -> (roleName, description).
BUILT_IN_ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": (
        "Storage Blob Data Contributor",
        "Allows for read, write and delete access to Azure Storage blob containers and data"),
    "4633458b-17de-408a-b874-0445c86b69e6": (
        "Key Vault Secrets User", "Read secret contents."),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": (
        "Reader", "View all resources, but does not allow you to make any changes."),
}

LOCK = threading.Lock()
STATE = {
    "clusters": {},  # id (lower) -> body
    "storage": {},  # id (lower) -> body
    "vaults": {},  # id (lower) -> body
    "identities": {},  # id (lower) -> body
    "created": {},  # principalId -> time.monotonic() at creation
    "fics": {},  # identity id (lower) -> {name (lower) -> body}
    "assignments": {},  # id (lower) -> body
    "operations": {},  # operation id -> {"polls": n, "status": ...}
    "faults": [],  # {"method", "contains", "status", "code", "message", "times"}
}
# Injected faults (tests/support/faults.py), from the command line.
FAULTS = faults.Faults()
BUSY = set()  # identity ids (lower) with a credential write under way


class ArmError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def not_found(kind, name):
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{kind}/{name}' under resource group was not found.")


RG = r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
ROUTES = [
    ("identities", re.compile(RG + r"/providers/microsoft\.managedidentity/userassignedidentities$")),
    ("identity", re.compile(RG + r"/providers/microsoft\.managedidentity/userassignedidentities/(?P<name>[^/]+)$")),
    ("fics", re.compile(RG + r"/providers/microsoft\.managedidentity/userassignedidentities/(?P<name>[^/]+)/federatedidentitycredentials$")),
    ("fic", re.compile(RG + r"/providers/microsoft\.managedidentity/userassignedidentities/(?P<name>[^/]+)/federatedidentitycredentials/(?P<fic>[^/]+)$")),
    ("assignment", re.compile(r"(?P<scope>.*)/providers/microsoft\.authorization/roleassignments/(?P<name>[^/]+)$")),
    ("assignments", re.compile(r"(?P<scope>.*)/providers/microsoft\.authorization/roleassignments$")),
    ("definition", re.compile(r"(?P<scope>.*)/providers/microsoft\.authorization/roledefinitions/(?P<name>[^/]+)$")),
    ("definitions", re.compile(r"(?P<scope>.*)/providers/microsoft\.authorization/roledefinitions$")),
    ("access", re.compile(RG + r"/providers/microsoft\.keyvault/vaults/(?P<name>[^/]+)/accesspolicies/(?P<op>add|remove|replace)$")),
    ("vaults", re.compile(RG + r"/providers/microsoft\.keyvault/vaults$")),
    ("vault", re.compile(RG + r"/providers/microsoft\.keyvault/vaults/(?P<name>[^/]+)$")),
    ("storage", re.compile(RG + r"/providers/microsoft\.storage/storageaccounts/(?P<name>[^/]+)$")),
    ("cluster", re.compile(RG + r"/providers/microsoft\.containerservice/managedclusters/(?P<name>[^/]+)$")),
    ("operation", re.compile(r"/providers/microsoft\.managedidentity/locations/[^/]+/operationresults/(?P<op>[^/]+)$")),
]


def provider_of(path):
    # The last one: a role assignment at a storage account scope is Microsoft.Authorization's.
    found = re.findall(r"/providers/(microsoft\.[a-z]+)", path.lower())
    return found[-1] if found else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: and never a token in a log
        pass

    def reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        try:
            return json.loads(self.rfile.read(n))
        except ValueError:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")

    def base(self):
        return f"http://{self.headers.get('Host')}"

    def handle_any(self, method):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path.startswith("/admin/") or url.path == "/health":
                return self.admin(method, url.path)
            body = self.body() if method in ("PUT", "PATCH", "POST") else {}
            authorization = self.headers.get("Authorization") or ""
            if not authorization.startswith("Bearer "):
                raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            if authorization != f"Bearer {TOKEN}":
                raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")
            version = query.get("api-version")
            if not version:
                raise ArmError(400, "MissingApiVersionParameter",
                               "The api-version query parameter (?api-version=) is required for all requests.")
            provider = provider_of(url.path)
            if provider in API_VERSIONS and version not in API_VERSIONS[provider]:
                raise ArmError(400, "InvalidApiVersionParameter",
                               f"The api-version '{version}' is invalid. The supported versions are '{', '.join(sorted(API_VERSIONS[provider]))}'.")
            self.fault(method, url.path)
            injected = FAULTS.pick(method != "GET", f"{method} {url.path}",
                                   json.dumps(body, sort_keys=True).encode())
            if injected == "throttle":
                raise ArmError(429, "TooManyRequests",
                               "The request is being throttled as the limit has been reached for operation type.",
                               {"Retry-After": "1"})
            if injected == "deny":
                raise ArmError(403, "AuthorizationFailed",
                               "The client does not have authorization to perform action over scope.")
            if injected == "error":
                raise ArmError(503, "ServiceUnavailable", "The server is currently unable to handle the request.")
            path = url.path.lower()
            for name, pattern in ROUTES:
                m = pattern.match(path)
                if m:
                    status, out, headers = getattr(self, f"{name}_{method.lower()}", self.no_method)(
                        m.groupdict(), url.path, body, query)
                    FAULTS.answered(method != "GET", f"{method} {url.path}",
                                    json.dumps(body, sort_keys=True).encode(), status)
                    if injected == "lost":
                        FAULTS.landed(f"{method} {url.path}")
                        raise ArmError(500, "InternalServerError",
                                       "The server encountered an internal error. Please retry the request.")
                    return self.reply(status, out, headers)
            raise ArmError(404, "InvalidResourceType", f"The resource type could not be found for path '{url.path}'.")
        except ArmError as e:
            self.reply(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)

    def no_method(self, *_):
        raise ArmError(405, "MethodNotAllowed", f"The method '{self.command}' is not allowed.")

    def fault(self, method, path):
        with LOCK:
            for f in STATE["faults"]:
                if f["times"] > 0 and f.get("method", method) == method and f["contains"].lower() in path.lower():
                    f["times"] -= 1
                    headers = {"Retry-After": "0"} if f["status"] == 429 else {}
                    raise ArmError(f["status"], f["code"], f["message"], headers)

    do_GET = lambda self: self.handle_any("GET")  # noqa: E731
    do_PUT = lambda self: self.handle_any("PUT")  # noqa: E731
    do_DELETE = lambda self: self.handle_any("DELETE")  # noqa: E731
    do_POST = lambda self: self.handle_any("POST")  # noqa: E731
    do_PATCH = lambda self: self.handle_any("PATCH")  # noqa: E731

    # -- test-only endpoints ------------------------------------------------------------

    def admin(self, method, path):
        if path == "/health":
            return self.reply(200, {"status": "ok"})
        body = self.body() if method == "POST" else {}
        with LOCK:
            if path == "/admin/state" and method == "GET":
                out = {k: v for k, v in STATE.items() if k in ("identities", "fics", "assignments", "vaults")}
                return self.reply(200, out)
            if path == "/admin/clusters":
                cid = body["id"]
                STATE["clusters"][cid.lower()] = {
                    "id": cid, "name": cid.rsplit("/", 1)[1], "location": body.get("location", "eastus"),
                    "type": "Microsoft.ContainerService/ManagedClusters",
                    "properties": {
                        "provisioningState": "Succeeded", "kubernetesVersion": "1.33",
                        "oidcIssuerProfile": ({"enabled": True, "issuerURL": body["issuer"]}
                                              if body.get("oidc", True) else {"enabled": False}),
                        "securityProfile": {"workloadIdentity": {"enabled": body.get("workloadIdentity", True)}},
                    },
                }
            elif path == "/admin/storage":
                sid = body["id"]
                STATE["storage"][sid.lower()] = {
                    "id": sid, "name": sid.rsplit("/", 1)[1], "location": "eastus",
                    "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2",
                    "sku": {"name": "Standard_LRS", "tier": "Standard"},
                    "properties": {"provisioningState": "Succeeded"},
                }
            elif path == "/admin/vaults":
                vid = body["id"]
                old = STATE["vaults"].get(vid.lower())
                vault = old or {
                    "id": vid, "name": vid.rsplit("/", 1)[1], "location": "eastus",
                    "type": "Microsoft.KeyVault/vaults", "tags": {},
                    "properties": {
                        "tenantId": TENANT, "sku": {"family": "A", "name": "standard"},
                        "accessPolicies": [], "vaultUri": f"https://{vid.rsplit('/', 1)[1]}.vault.azure.net",
                        "provisioningState": "Succeeded",
                    },
                }
                vault["properties"]["enableRbacAuthorization"] = bool(body.get("rbac", False))
                STATE["vaults"][vid.lower()] = vault
            elif path == "/admin/faults":
                STATE["faults"].append(body)
            else:
                raise ArmError(404, "NotFound", path)
        return self.reply(204)

    # -- managed identities -------------------------------------------------------------

    def identity_get(self, m, path, body, query):
        with LOCK:
            found = STATE["identities"].get(path.lower())
        if not found:
            raise not_found("Microsoft.ManagedIdentity/userAssignedIdentities", m["name"])
        return 200, found, None

    def identity_put(self, m, path, body, query):
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        with LOCK:
            old = STATE["identities"].get(path.lower())
            if old and old["location"] != body["location"]:
                raise ArmError(400, "InvalidResourceLocation",
                               f"The resource '{m['name']}' already exists in location '{old['location']}'.")
            props = old["properties"] if old else {
                "tenantId": TENANT, "principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4()),
                "isolationScope": "None",
            }
            ident = {
                "id": path, "name": path.rsplit("/", 1)[1], "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "location": body["location"], "tags": body.get("tags") or {}, "properties": props,
            }
            STATE["identities"][path.lower()] = ident
            if not old:
                STATE["created"][props["principalId"]] = time.monotonic()
        return (200 if old else 201), ident, None

    def identity_delete(self, m, path, body, query):
        with LOCK:
            if path.lower() not in STATE["identities"]:
                return 204, None, None
            del STATE["identities"][path.lower()]
            STATE["fics"].pop(path.lower(), None)
            op = str(uuid.uuid4())
            STATE["operations"][op] = {"polls": 0}
        url = (f"{self.base()}/subscriptions/{m['sub']}/providers/Microsoft.ManagedIdentity/locations/eastus/"
               f"operationResults/{op}?api-version={query['api-version']}")
        return 202, None, {"Azure-AsyncOperation": url, "Retry-After": "0"}

    def operation_get(self, m, path, body, query):
        with LOCK:
            op = STATE["operations"].get(m["op"])
            if op is None:
                raise ArmError(404, "OperationNotFound", "The operation was not found.")
            op["polls"] += 1
            status = "InProgress" if op["polls"] < 2 else "Succeeded"
        return 200, {"id": path, "name": m["op"], "status": status}, {"Retry-After": "0"}

    # -- federated identity credentials ------------------------------------------------

    def identity_id(self, path):
        return path.lower().split("/federatedidentitycredentials")[0]

    def page(self, path, query, items):
        """One page of a list, with the `nextLink` to the next one."""
        start = int(query.get("$skiptoken", "0"))
        out = {"value": items[start:start + PAGE]}
        if start + PAGE < len(items):
            # The next page keeps the query ($filter too), as ARM's nextLink does.
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            rest["$skiptoken"] = str(start + PAGE)
            out["nextLink"] = f"{self.base()}{path}?{urlencode(rest, quote_via=quote)}"
        return 200, out, None

    def in_group(self, kind, path):
        """Every resource of `kind` in the resource group of list `path`, sorted by name."""
        group = path.lower().rsplit("/providers/", 1)[0] + "/providers/"
        with LOCK:
            items = [v for k, v in STATE[kind].items() if k.startswith(group)]
        return sorted(items, key=lambda v: v["name"].lower())

    def identities_get(self, m, path, body, query):
        # UserAssignedIdentities_ListByResourceGroup
        return self.page(path, query, self.in_group("identities", path))

    def vaults_get(self, m, path, body, query):
        # Vaults_ListByResourceGroup: whole vaults, access policies included.
        return self.page(path, query, self.in_group("vaults", path))

    def fics_get(self, m, path, body, query):
        ident = self.identity_id(path)
        with LOCK:
            if ident not in STATE["identities"]:
                raise not_found("Microsoft.ManagedIdentity/userAssignedIdentities", m["name"])
            items = sorted(STATE["fics"].get(ident, {}).values(), key=lambda f: f["name"].lower())
        return self.page(path, query, items)

    def fic_get(self, m, path, body, query):
        ident = self.identity_id(path)
        with LOCK:
            found = STATE["fics"].get(ident, {}).get(m["fic"])
        if not found:
            raise not_found("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials", m["fic"])
        return 200, found, None

    def hold(self, ident, name):
        with LOCK:
            if ident in BUSY:
                raise ArmError(409, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
                               f"Too many Federated Identity Credentials are written concurrently for the managed "
                               f"identity '{name}'. Concurrent Federated Identity Credentials writes under the same "
                               f"managed identity are not supported.")
            BUSY.add(ident)

    def fic_put(self, m, path, body, query):
        ident = self.identity_id(path)
        name = path.rsplit("/", 1)[1]
        if not FIC_NAME.match(name):
            raise ArmError(400, "BadRequest", f"The federated identity credential name '{name}' is invalid. "
                                              "It must match ^[a-zA-Z0-9]{1}[a-zA-Z0-9-_]{2,119}$.")
        props = body.get("properties") or {}
        for key in ("issuer", "subject", "audiences"):
            if not props.get(key):
                raise ArmError(400, "BadRequest", f"The property '{key}' is required.")
        with LOCK:
            if ident not in STATE["identities"]:
                raise ArmError(404, "ParentResourceNotFound",
                               f"Can not perform requested operation on nested resource. Parent resource "
                               f"'{m['name']}' not found.")
        self.hold(ident, m["name"])
        try:
            time.sleep(WRITE_HOLD)
            with LOCK:
                fics = STATE["fics"].setdefault(ident, {})
                old = fics.get(name.lower())
                for other in fics.values():
                    if (other["name"].lower() != name.lower() and other["properties"]["issuer"] == props["issuer"]
                            and other["properties"]["subject"] == props["subject"]):
                        raise ArmError(400, "BadRequest",
                                       "FederatedIdentityCredential with the same issuer and subject already exists.")
                if not old and len(fics) >= FIC_LIMIT:
                    raise ArmError(400, "BadRequest",
                                   f"Too many Federated Identity Credentials are written to Managed Identity "
                                   f"'{m['name']}'. The maximum number of Federated Identity Credentials per "
                                   f"Managed Identity is {FIC_LIMIT}.")
                fic = {
                    "id": path, "name": name,
                    "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                    "properties": {"issuer": props["issuer"], "subject": props["subject"],
                                   "audiences": list(props["audiences"])},
                }
                fics[name.lower()] = fic
        finally:
            with LOCK:
                BUSY.discard(ident)
        return (200 if old else 201), fic, None

    def fic_delete(self, m, path, body, query):
        ident = self.identity_id(path)
        self.hold(ident, m["name"])
        try:
            time.sleep(WRITE_HOLD)
            with LOCK:
                gone = STATE["fics"].get(ident, {}).pop(m["fic"], None)
        finally:
            with LOCK:
                BUSY.discard(ident)
        return (200 if gone else 204), None, None

    # -- role assignments -------------------------------------------------------------

    def assignment_get(self, m, path, body, query):
        with LOCK:
            found = STATE["assignments"].get(path.lower())
        if not found:
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{m['name']}' is not found.")
        return 200, found, None

    def assignment_put(self, m, path, body, query):
        props = body.get("properties") or {}
        role, principal = props.get("roleDefinitionId"), props.get("principalId")
        if not role or not principal:
            raise ArmError(400, "InvalidRoleAssignmentRequest", "roleDefinitionId and principalId are required.")
        try:
            uuid.UUID(m["name"])
        except ValueError:
            raise ArmError(400, "InvalidRoleAssignmentId",
                           f"The role assignment ID '{m['name']}' is not valid. The role assignment ID must be a GUID.")
        guid = role.rsplit("/", 1)[1].lower()
        scope = path[: path.lower().index("/providers/microsoft.authorization/")]
        with LOCK:
            known = {i["properties"]["principalId"] for i in STATE["identities"].values()}
            created = STATE["created"].get(principal)
            if principal not in known or (
                    props.get("principalType") is None and created and time.monotonic() - created < REPLICATION):
                raise ArmError(400, "PrincipalNotFound",
                               f"Principal {principal.replace('-', '')} does not exist in the directory {TENANT}. "
                               f"Check that you have the correct principal ID.")
            old = STATE["assignments"].get(path.lower())
            for key, other in STATE["assignments"].items():
                p = other["properties"]
                if (key != path.lower() and p["principalId"] == principal and p["scope"].lower() == scope.lower()
                        and p["roleDefinitionId"].rsplit("/", 1)[1].lower() == guid):
                    raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
            if old:
                p = old["properties"]
                if p["principalId"] != principal or p["roleDefinitionId"].rsplit("/", 1)[1].lower() != guid:
                    raise ArmError(400, "RoleAssignmentUpdateNotPermitted",
                                   "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
                # As Azure answers a second PUT of an assignment (a retried create whose
                # reply was lost): it is there already.
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
            a = {
                "id": path, "name": m["name"], "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    # The tenant form, as the published examples answer.
                    "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                    # As sent: an assertion on it must be able to fail.
                    "principalId": principal, "principalType": props.get("principalType"),
                    "scope": scope,
                },
            }
            STATE["assignments"][path.lower()] = a
        return 201, a, None

    def assignment_delete(self, m, path, body, query):
        with LOCK:
            gone = STATE["assignments"].pop(path.lower(), None)
        return (200, gone, None) if gone else (204, None, None)

    def assignments_get(self, m, path, body, query):
        scope = path[: path.lower().index("/providers/microsoft.authorization/")].lower()
        flt = query.get("$filter", "")
        principal = None
        if flt:
            pm = re.match(r"^principalId eq '([0-9a-fA-F-]+)'$", flt)
            if not pm:
                raise ArmError(400, "InvalidFilter", f"The filter '{flt}' is not supported.")
            principal = pm.group(1)
        with LOCK:
            items = [a for a in STATE["assignments"].values()
                     if (principal is None or a["properties"]["principalId"] == principal)
                     and (a["properties"]["scope"].lower().startswith(scope) or scope.startswith(a["properties"]["scope"].lower()))]
        return self.page(path, query, sorted(items, key=lambda a: a["name"]))

    # -- role definitions (built-in only) --------------------------------------------

    def definition_json(self, scope, guid):
        name, description = BUILT_IN_ROLES[guid]
        sub = re.match(r"^/subscriptions/([^/]+)", scope, re.IGNORECASE)
        # Azure answers the subscription-scoped id below a subscription, the tenant form above.
        prefix = f"/subscriptions/{sub.group(1)}" if sub else ""
        return {
            "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": name, "type": "BuiltInRole", "description": description,
                "assignableScopes": ["/"],
                "permissions": [{"actions": [], "notActions": [], "dataActions": [], "notDataActions": []}],
            },
        }

    def definition_get(self, m, path, body, query):
        scope = path[: path.lower().index("/providers/microsoft.authorization/")]
        guid = m["name"].lower()
        if guid not in BUILT_IN_ROLES:
            raise ArmError(404, "RoleDefinitionDoesNotExist", "The specified role definition with ID "
                                                               f"'{m['name']}' does not exist.")
        return 200, self.definition_json(scope, guid), None

    def definitions_get(self, m, path, body, query):
        scope = path[: path.lower().index("/providers/microsoft.authorization/")]
        flt = query.get("$filter", "")
        wanted = None
        if flt:
            fm = re.match(r"^roleName eq '(.+)'$", flt)
            if not fm:
                raise ArmError(400, "InvalidFilter", f"The filter '{flt}' is not supported.")
            wanted = fm.group(1)
        items = [self.definition_json(scope, guid) for guid, (name, _) in sorted(BUILT_IN_ROLES.items())
                 if wanted is None or name == wanted]
        return 200, {"value": items}, None

    # -- key vaults, storage, clusters ------------------------------------------------

    def vault_key(self, path):
        return path.lower().split("/accesspolicies")[0]

    def vault_get(self, m, path, body, query):
        with LOCK:
            found = STATE["vaults"].get(path.lower())
        if not found:
            raise not_found("Microsoft.KeyVault/vaults", m["name"])
        return 200, found, None

    def vault_put(self, m, path, body, query):
        """Vaults_CreateOrUpdate: the whole vault, as `az keyvault set-policy` sends it."""
        props = body.get("properties") or {}
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if not props.get("tenantId") or not (props.get("sku") or {}).get("name"):
            raise ArmError(400, "BadRequest", "properties.tenantId and properties.sku are required.")
        for e in props.get("accessPolicies") or []:
            if not e.get("tenantId") or not e.get("objectId") or not isinstance(e.get("permissions"), dict):
                raise ArmError(400, "BadRequest", "An access policy needs a tenantId, an objectId and permissions.")
        with LOCK:
            old = STATE["vaults"].get(path.lower())
            name = path.rsplit("/", 1)[1]
            vault = {
                "id": old["id"] if old else path, "name": old["name"] if old else name,
                "location": body["location"], "type": "Microsoft.KeyVault/vaults",
                "tags": body.get("tags") or {},
                "properties": {
                    "tenantId": props["tenantId"], "sku": props["sku"],
                    "accessPolicies": list(props.get("accessPolicies") or []),
                    "enableRbacAuthorization": bool(props.get("enableRbacAuthorization", False)),
                    "vaultUri": f"https://{name}.vault.azure.net", "provisioningState": "Succeeded",
                },
            }
            STATE["vaults"][path.lower()] = vault
        return (200 if old else 201), vault, None

    def access_put(self, m, path, body, query):
        key = self.vault_key(path)
        entries = (body.get("properties") or {}).get("accessPolicies")
        if not isinstance(entries, list) or not entries:
            raise ArmError(400, "BadRequest", "properties.accessPolicies is required.")
        with LOCK:
            vault = STATE["vaults"].get(key)
            if not vault:
                raise not_found("Microsoft.KeyVault/vaults", m["name"])
            policies = vault["properties"]["accessPolicies"]
            for e in entries:
                if e.get("tenantId") != vault["properties"]["tenantId"] or not e.get("objectId"):
                    raise ArmError(400, "BadRequest", "An access policy needs the vault's tenantId and an objectId.")
                mine = next((p for p in policies if p["objectId"] == e["objectId"]), None)
                perms = e.get("permissions") or {}
                if m["op"] == "add":
                    if not mine:
                        mine = {"tenantId": e["tenantId"], "objectId": e["objectId"],
                                "permissions": {"keys": [], "secrets": [], "certificates": []}}
                        policies.append(mine)
                    for kind, values in perms.items():
                        have = mine["permissions"].setdefault(kind, [])
                        have.extend(v for v in values if v.lower() not in [h.lower() for h in have])
                elif m["op"] == "remove" and mine:
                    for kind, values in perms.items():
                        lower = [v.lower() for v in values]
                        mine["permissions"][kind] = [h for h in mine["permissions"].get(kind, []) if h.lower() not in lower]
                    if not any(mine["permissions"].values()):
                        policies.remove(mine)
                elif m["op"] == "replace":
                    if mine:
                        policies.remove(mine)
                    policies.append({"tenantId": e["tenantId"], "objectId": e["objectId"], "permissions": perms})
            out = {"id": vault["id"] + "/accessPolicies/", "type": "Microsoft.KeyVault/vaults/accessPolicies",
                   "properties": {"accessPolicies": policies}}
        return 200, out, None

    def storage_get(self, m, path, body, query):
        with LOCK:
            found = STATE["storage"].get(path.lower())
        if not found:
            raise not_found("Microsoft.Storage/storageAccounts", m["name"])
        return 200, found, None

    def cluster_get(self, m, path, body, query):
        with LOCK:
            found = STATE["clusters"].get(path.lower())
        if not found:
            raise not_found("Microsoft.ContainerService/managedClusters", m["name"])
        return 200, found, None


def main():
    global FAULTS, TOKEN
    parser = argparse.ArgumentParser(description="A fake Azure Resource Manager for idplan's tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--token", default=TOKEN, help="the one bearer token accepted")
    faults.add_arguments(parser)
    args = parser.parse_args()
    if args.exit_with_parent:
        faults.exit_with_parent()
    TOKEN = args.token
    FAULTS = faults.Faults.from_args(args)
    port = args.port
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
