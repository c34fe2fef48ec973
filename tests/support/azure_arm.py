"""A local Azure Resource Manager and Azure AD token endpoint for the azure provider's tests, over TLS.

No emulator of Resource Manager exists, so this one speaks its wire format for exactly the calls the
provider makes, with azure-mgmt-compute, azure-mgmt-network and azure-identity unchanged on the other side:

* Azure AD: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and the client-credentials ``POST
  /{tenant}/oauth2/v2.0/token`` (a wrong tenant, client id or secret answers AADSTS errors, as Azure AD).
* VM, disk and snapshot GET, the subscription's snapshot list, VM sizes of a region, network interfaces.
* Snapshot PUT, beginGetAccess, endGetAccess and DELETE as long-running operations: 202 with
  ``Azure-AsyncOperation`` and ``Location``, one "InProgress" poll, then "Succeeded"; ``Retry-After: 0`` so
  that azure-core's poller does not wait its default 30 s. A snapshot's data is a real page blob in Azurite
  (copied from the disk's blob), its grant a real SAS URL for it; endGetAccess revokes that SAS.
* Faults on cue: ``deny(action)`` (403 AuthorizationFailed naming the action), ``throttle(action, n)``
  (429 with Retry-After), and a snapshot with an open grant cannot be deleted (409), as at Azure.

TLS comes from a CA made per session (trustme): azure-core sends bearer tokens over https only and
azure-identity accepts only an https authority. ``ca_path`` is the CA's PEM file.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

from .azure_storage import Azurite

SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"
TENANT = "00000000-0000-0000-0000-000000000000"
CLIENT_ID = "11111111-1111-1111-1111-111111111111"
CLIENT_SECRET = "fake~azure~arm~secret~never-log-this"
LOCATION = "westeurope"
RG = "rg-web"
GiB = 2**30

_BASE = r"^/subscriptions/(?P<sub>[^/]+)"
_RG = _BASE + r"/resourceGroups/(?P<rg>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(_RG + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)$", re.I), "Microsoft.Compute/virtualMachines/read"),
    ("GET", re.compile(_RG + r"/providers/Microsoft\.Compute/disks/(?P<name>[^/]+)$", re.I), "Microsoft.Compute/disks/read"),
    ("GET", re.compile(_RG + r"/providers/Microsoft\.Compute/snapshots/(?P<name>[^/]+)$", re.I), "Microsoft.Compute/snapshots/read"),
    ("PUT", re.compile(_RG + r"/providers/Microsoft\.Compute/snapshots/(?P<name>[^/]+)$", re.I), "Microsoft.Compute/snapshots/write"),
    ("DELETE", re.compile(_RG + r"/providers/Microsoft\.Compute/snapshots/(?P<name>[^/]+)$", re.I), "Microsoft.Compute/snapshots/delete"),
    ("POST", re.compile(_RG + r"/providers/Microsoft\.Compute/snapshots/(?P<name>[^/]+)/beginGetAccess$", re.I), "Microsoft.Compute/snapshots/beginGetAccess/action"),
    ("POST", re.compile(_RG + r"/providers/Microsoft\.Compute/snapshots/(?P<name>[^/]+)/endGetAccess$", re.I), "Microsoft.Compute/snapshots/endGetAccess/action"),
    ("GET", re.compile(_BASE + r"/providers/Microsoft\.Compute/snapshots$", re.I), "Microsoft.Compute/snapshots/read"),
    ("GET", re.compile(_BASE + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/vmSizes$", re.I), "Microsoft.Compute/locations/vmSizes/read"),
    ("GET", re.compile(_BASE + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)$", re.I), "operation"),
    ("GET", re.compile(_RG + r"/providers/Microsoft\.Network/networkInterfaces/(?P<name>[^/]+)$", re.I), "Microsoft.Network/networkInterfaces/read"),
]
SIZES = [
    {"name": "Standard_D2s_v3", "numberOfCores": 2, "memoryInMB": 8192, "maxDataDiskCount": 4, "osDiskSizeInMB": 1047552, "resourceDiskSizeInMB": 16384},
    {"name": "Standard_D4s_v3", "numberOfCores": 4, "memoryInMB": 16384, "maxDataDiskCount": 8, "osDiskSizeInMB": 1047552, "resourceDiskSizeInMB": 32768},
]


def rid(rg: str, kind: str, name: str, provider: str = "Microsoft.Compute") -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/{provider}/{kind}/{name}"


@dataclass
class Operation:
    polls_left: int
    result: dict[str, Any] | None = None  # the GET of its Location answers this (AccessUri for a grant)
    done: Any = None  # called once when it succeeds


@dataclass
class Grant:
    sas: str


@dataclass
class FakeArm:
    azurite: Azurite
    home: Path
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)  # rg/name (lower) -> VM JSON
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)  # rg/name -> disk JSON (+ "_blob")
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    nics: dict[str, dict[str, Any]] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # snapshot key -> open grant
    operations: dict[str, Operation] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (action, resource name)
    denied: set[str] = field(default_factory=set)
    throttled: dict[str, int] = field(default_factory=dict)  # action -> 429 answers still to give
    grants_made: int = 0
    token_requests: int = 0
    grant_seconds: list[int] = field(default_factory=list)
    sas_host: str | None = None  # the host the grant's SAS URL names (default: Azurite's)
    fail_after_create: bool = False  # a snapshot PUT creates the snapshot, then answers 500
    operations_base: str | None = None  # where Azure-AsyncOperation/Location point (default: this server)
    port: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- lifecycle --------------------------------------------------------------------------------------
    def __enter__(self) -> FakeArm:
        ca = self.ca = trustme.CA()
        self.home.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.home / "arm-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._server = _tls_server(ca, "127.0.0.1", self._handler(), "localhost")
        self.port = self._server.server_address[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            for store in (self.vms, self.disks, self.snapshots, self.nics, self.grants, self.operations):
                store.clear()
            self.calls.clear()
            self.denied.clear()
            self.throttled.clear()
            self.grant_seconds.clear()
            self.grants_made = self.token_requests = 0
            self.operations_base = None
            self.fail_after_create = False
            self.sas_host = None

    def login(self, **overrides: Any) -> Any:
        from hyperexport.providers.azure import AzureLogin

        values = {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "subscription_id": SUBSCRIPTION,
                  "resource_manager_endpoint": self.url, "authority_host": self.url, "ca_bundle": str(self.ca_path)}
        return AzureLogin(**{**values, **overrides})

    # -- inventory ----------------------------------------------------------------------------------------
    def add_disk(self, rg: str, name: str, raw: Path, *, sku: str = "Premium_LRS", os_type: str | None = None,
                 footer: bytes | None = None, generation: str = "V2", reported_size: int | None = None) -> str:
        from .azure_vhd import footer as vhd_footer

        size = raw.stat().st_size
        blob = f"{rg}-{name}".lower()
        self.azurite.publish_vhd(raw, blob, footer if footer is not None else vhd_footer(size))
        disk_size = reported_size if reported_size is not None else size
        properties: dict[str, Any] = {
            "diskSizeGB": -(-disk_size // GiB), "diskSizeBytes": disk_size, "hyperVGeneration": generation,
            "creationData": {"createOption": "Empty"}, "provisioningState": "Succeeded", "diskState": "Attached",
            "uniqueId": str(uuid.uuid4()),
        }
        if os_type:
            properties["osType"] = os_type
        disk = {"name": name, "id": rid(rg, "disks", name), "location": LOCATION, "type": "Microsoft.Compute/disks",
                "sku": {"name": sku, "tier": "Premium"}, "properties": properties, "_blob": ("disks", blob)}
        with self._lock:
            self.disks[f"{rg}/{name}".lower()] = disk
        return disk["id"]

    def add_snapshot(self, rg: str, name: str, raw: Path, tags: dict[str, str] | None = None) -> str:
        """A snapshot that exists before the run (not the run's: no run tag unless given)."""
        disk_id = self.add_disk(rg, f"{name}-source", raw)
        disk = self.disks[f"{rg}/{name}-source".lower()]
        self._make_snapshot(rg, name, {"location": LOCATION, "tags": tags or {}, "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": disk_id}, "incremental": False}}, disk)
        return rid(rg, "snapshots", name)

    def add_vm(self, rg: str, name: str, os_disk: str, data_disks: list[tuple[int, str]], *, size: str = "Standard_D2s_v3",
               trusted_launch: bool = True, macs: tuple[str, ...] = ("00-0D-3A-AA-BB-01",)) -> dict[str, Any]:
        nics = []
        for i, mac in enumerate(macs):
            nic_name = f"{name}-nic{i}"
            nic = {"name": nic_name, "id": rid(rg, "networkInterfaces", nic_name, "Microsoft.Network"), "location": LOCATION,
                   "properties": {"macAddress": mac, "primary": i == 0, "ipConfigurations": [{"name": "ipconfig1", "properties": {
                       "subnet": {"id": rid(rg, "virtualNetworks", "vnet1", "Microsoft.Network") + "/subnets/default"}}}]}}
            self.nics[f"{rg}/{nic_name}".lower()] = nic
            nics.append({"id": nic["id"], "properties": {"primary": i == 0}})
        def disk_ref(disk_id: str) -> dict[str, Any]:
            disk = self.disks[_key_of(disk_id)]
            return {"name": disk["name"], "managedDisk": {"id": disk_id, "storageAccountType": disk["sku"]["name"]},
                    "diskSizeGB": disk["properties"]["diskSizeGB"]}
        os_ref = {**disk_ref(os_disk), "osType": "Linux", "createOption": "FromImage", "caching": "ReadWrite"}
        properties: dict[str, Any] = {
            "vmId": str(uuid.uuid4()), "hardwareProfile": {"vmSize": size}, "provisioningState": "Succeeded",
            "storageProfile": {
                "imageReference": {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"},
                "osDisk": os_ref,
                "dataDisks": [{**disk_ref(d), "lun": lun, "createOption": "Attach"} for lun, d in data_disks],
            },
            "networkProfile": {"networkInterfaces": nics},
        }
        if trusted_launch:
            properties["securityProfile"] = {"securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
        vm = {"name": name, "id": rid(rg, "virtualMachines", name), "location": LOCATION,
              "type": "Microsoft.Compute/virtualMachines", "properties": properties}
        with self._lock:
            self.vms[f"{rg}/{name}".lower()] = vm
        return vm

    def deny(self, action: str) -> None:
        self.denied.add(action)

    def throttle(self, action: str, times: int = 1) -> None:
        self.throttled[action] = times

    def tagged_snapshots(self) -> set[str]:
        with self._lock:
            return {s["id"] for s in self.snapshots.values() if "hyperexport:run-id" in (s.get("tags") or {})}

    def snapshot_ids(self) -> set[str]:
        with self._lock:
            return {s["id"] for s in self.snapshots.values()}

    def open_grants(self) -> set[str]:
        with self._lock:
            return set(self.grants)

    def count(self, action: str) -> int:
        return sum(1 for a, _ in self.calls if a == action)

    # -- the snapshot's data ------------------------------------------------------------------------------
    def _make_snapshot(self, rg: str, name: str, body: dict[str, Any], disk: dict[str, Any]) -> dict[str, Any]:
        blob = f"{rg}-{name}".lower()
        self.azurite.copy_pages(disk["_blob"], ("snapshots", blob))
        props = body.get("properties") or {}
        incremental = bool(props.get("incremental"))
        snapshot = {
            "name": name, "id": rid(rg, "snapshots", name), "location": body.get("location", LOCATION),
            "type": "Microsoft.Compute/snapshots", "tags": body.get("tags") or {}, "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "properties": {
                "creationData": props.get("creationData") or {}, "incremental": incremental,
                "diskSizeGB": disk["properties"]["diskSizeGB"], "diskSizeBytes": disk["properties"]["diskSizeBytes"],
                "hyperVGeneration": disk["properties"].get("hyperVGeneration"), "provisioningState": "Succeeded",
                "diskState": "Unattached", "uniqueId": str(uuid.uuid4()), "timeCreated": "2026-01-01T00:00:00Z",
                **({"osType": disk["properties"]["osType"]} if "osType" in disk["properties"] else {}),
                **({"completionPercent": 100.0} if incremental else {}),
            },
            "_blob": ("snapshots", blob),
        }
        with self._lock:
            self.snapshots[f"{rg}/{name}".lower()] = snapshot
        return snapshot

    # -- HTTP -----------------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        arm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-ms-request-id", str(uuid.uuid4()))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
                self._send(status, {"error": {"code": code, "message": message}}, headers)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _dispatch(self) -> None:
                parts = urlsplit(self.path)
                try:
                    if parts.path.endswith("/.well-known/openid-configuration") or "/oauth2/" in parts.path:
                        arm._identity(self, parts.path, self._body())
                        return
                    body = self._body()
                    token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    if token not in arm.tokens:
                        self._error(401, "InvalidAuthenticationToken", "The access token is invalid.",
                                    {"WWW-Authenticate": 'Bearer authorization_uri="x", error="invalid_token"'})
                        return
                    arm._arm(self, self.command, parts.path, parse_qs(parts.query), body)
                except Exception as error:  # noqa: BLE001 - the fake's own bug, shown to the test as a 500
                    self._error(500, "InternalServerError", f"fake ARM: {type(error).__name__}: {error}")

            do_GET = do_PUT = do_POST = do_DELETE = _dispatch

        return Handler

    def _identity(self, h: Any, path: str, body: bytes) -> None:
        match = re.match(r"^/([^/]+)/", path)
        tenant = match.group(1) if match else ""
        if tenant != TENANT:
            h._send(400, {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                          "error_codes": [90002]})
            return
        authority = f"{self.url}/{TENANT}"
        if path.endswith("openid-configuration"):
            h._send(200, {
                "token_endpoint": f"{authority}/oauth2/v2.0/token", "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "issuer": f"{authority}/v2.0", "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "token"], "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
            })
            return
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self._lock:
            self.token_requests += 1
        if form.get("client_id") != CLIENT_ID:
            h._send(400, {"error": "unauthorized_client", "error_codes": [700016],
                          "error_description": "AADSTS700016: Application not found in the directory."})
            return
        if form.get("client_secret") != self.secret:
            h._send(401, {"error": "invalid_client", "error_codes": [7000215],
                          "error_description": "AADSTS7000215: Invalid client secret provided."})
            return
        if form.get("scope") != f"{self.url}/.default":
            h._send(400, {"error": "invalid_scope", "error_description": f"AADSTS70011: The scope {form.get('scope')} is not valid."})
            return
        token = uuid.uuid4().hex
        with self._lock:
            self.tokens.add(token)
            self.calls.append(("token", CLIENT_ID))
        h._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    secret: str = CLIENT_SECRET

    def _arm(self, h: Any, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        if not query.get("api-version"):
            h._error(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required.")
            return
        for verb, pattern, action in ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                break
        else:
            h._error(404, "NotFound", f"fake ARM has no route {method} {path}")
            return
        groups = match.groupdict()
        name = groups.get("name") or groups.get("op") or ""
        with self._lock:
            self.calls.append((action, name))
            throttled = self.throttled.get(action, 0)
            if throttled:
                self.throttled[action] = throttled - 1
        if groups.get("sub") != SUBSCRIPTION:
            h._error(404, "SubscriptionNotFound", f"The subscription '{groups.get('sub')}' could not be found.")
            return
        if throttled:
            h._error(429, "TooManyRequests", "The request is being throttled.", {"Retry-After": "1"})
            return
        if action in self.denied:
            h._error(403, "AuthorizationFailed", (
                f"The client '{CLIENT_ID}' with object id '{CLIENT_ID}' does not have authorization to perform action "
                f"'{action}' over scope '{path}' or the scope is invalid. If access was recently granted, please refresh your credentials."))
            return
        rg = groups.get("rg", "")
        key = f"{rg}/{name}".lower()
        if rg and not any(k.startswith(f"{rg.lower()}/") for store in (self.vms, self.disks, self.snapshots, self.nics) for k in store):
            h._error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            return
        handler = getattr(self, "_" + re.sub(r"[^a-z]", "_", f"{method} {action}".lower()).strip("_"))
        handler(h, key, groups, json.loads(body) if body else {})

    def _not_found(self, h: Any, kind: str, rg: str, name: str) -> None:
        h._error(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/{kind}/{name}' under resource group '{rg}' was not found.")

    def _public(self, resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    def _get_one(self, h: Any, store: dict[str, dict[str, Any]], kind: str, key: str, groups: dict[str, str]) -> None:
        with self._lock:
            found = store.get(key)
        if found is None:
            self._not_found(h, kind, groups["rg"], groups["name"])
        else:
            h._send(200, self._public(found))

    def _get_microsoft_compute_virtualmachines_read(self, h, key, groups, body):
        self._get_one(h, self.vms, "virtualMachines", key, groups)

    def _get_microsoft_compute_disks_read(self, h, key, groups, body):
        self._get_one(h, self.disks, "disks", key, groups)

    def _get_microsoft_compute_snapshots_read(self, h, key, groups, body):
        if "name" not in groups:
            with self._lock:
                h._send(200, {"value": [self._public(s) for s in self.snapshots.values()]})
            return
        self._get_one(h, self.snapshots, "snapshots", key, groups)

    def _get_microsoft_network_networkinterfaces_read(self, h, key, groups, body):
        with self._lock:
            found = self.nics.get(key)
        if found is None:
            h._error(404, "NotFound", f"Resource {groups['name']} not found.")
        else:
            h._send(200, found)

    def _get_microsoft_compute_locations_vmsizes_read(self, h, key, groups, body):
        h._send(200, {"value": SIZES})

    def _lro(self, h: Any, status: int, body: Any, *, result: dict[str, Any] | None = None, done: Any = None) -> None:
        op = uuid.uuid4().hex
        with self._lock:
            self.operations[op] = Operation(polls_left=1, result=result, done=done)
        url = f"{self.operations_base or self.url}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/locations/{LOCATION}/operations/{op}?api-version=2024-03-02"
        h._send(status, body, {"Azure-AsyncOperation": url, "Location": url + "&monitor=true", "Retry-After": "0"})

    def _get_operation(self, h, key, groups, body):
        with self._lock:
            op = self.operations.get(groups["op"])
            if op is None:
                h._error(404, "NotFound", "operation not found")
                return
            if op.polls_left > 0:
                op.polls_left -= 1
                status: dict[str, Any] = {"name": groups["op"], "status": "InProgress", "startTime": "2026-01-01T00:00:00Z"}
            else:
                if op.done is not None:
                    op.done()
                    op.done = None
                status = {"name": groups["op"], "status": "Succeeded", "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-01T00:00:01Z"}
                if op.result is not None:
                    status["properties"] = {"output": op.result}
        if "monitor=true" in h.path and status["status"] == "Succeeded":
            h._send(200, op.result)
        else:
            h._send(200 if status["status"] == "Succeeded" or "monitor=true" not in h.path else 202, status, {"Retry-After": "0"})

    def _put_microsoft_compute_snapshots_write(self, h, key, groups, body):
        source = ((body.get("properties") or {}).get("creationData") or {}).get("sourceResourceId") or ""
        with self._lock:
            disk = self.disks.get(_key_of(source)) if source else None
        if disk is None:
            h._error(404, "NotFound", f"Source resource {source} was not found.")
            return
        if disk["sku"]["name"] in ("UltraSSD_LRS", "PremiumV2_LRS") and not (body.get("properties") or {}).get("incremental"):
            h._error(400, "BadRequest", "Only incremental snapshots are supported for Ultra and Premium SSD v2 disks.")
            return
        snapshot = self._make_snapshot(groups["rg"], groups["name"], body, disk)
        if self.fail_after_create:
            h._error(500, "InternalServerError", "An internal error occurred.", {"Retry-After": "0.01"})
            return
        accepted = {**self._public(snapshot), "properties": {**snapshot["properties"], "provisioningState": "Creating"}}
        self._lro(h, 202, accepted)

    def _post_microsoft_compute_snapshots_begingetaccess_action(self, h, key, groups, body):
        with self._lock:
            snapshot = self.snapshots.get(key)
        if snapshot is None:
            self._not_found(h, "snapshots", groups["rg"], groups["name"])
            return
        seconds = int(body.get("durationInSeconds") or 3600)
        with self._lock:
            old = self.grants.get(key)
            sas = self.azurite.sas_url(*snapshot["_blob"], seconds)
            if self.sas_host:
                sas = sas.replace("127.0.0.1", self.sas_host, 1)
            if old is not None:
                self.azurite.revoke(old.sas)  # as at Azure: a new grant ends the old SAS
            self.grants[key] = Grant(sas)
            self.grants_made += 1
            self.grant_seconds.append(seconds)
        self._lro(h, 202, None, result={"accessSAS": sas})

    def _post_microsoft_compute_snapshots_endgetaccess_action(self, h, key, groups, body):
        with self._lock:
            if key not in self.snapshots:
                self._not_found(h, "snapshots", groups["rg"], groups["name"])
                return
            grant = self.grants.pop(key, None)
        if grant is not None:
            self.azurite.revoke(grant.sas)
        self._lro(h, 202, None)

    def _delete_microsoft_compute_snapshots_delete(self, h, key, groups, body):
        with self._lock:
            if key not in self.snapshots:
                h._send(204)
                return
            if key in self.grants:
                h._error(409, "OperationNotAllowed", f"Snapshot {groups['name']} has an active SAS URI; revoke access to it first.")
                return
            snapshot = self.snapshots.pop(key)
        self.azurite.blob(*snapshot["_blob"]).delete_blob()
        self._lro(h, 202, None)


class ForeignHost:
    """An https server on another loopback address, trusted by the same CA, that records what reaches it."""

    def __init__(self, ca: trustme.CA, host: str = "127.0.0.2") -> None:
        self.ca, self.host = ca, host
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)

    def __enter__(self) -> ForeignHost:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> None:
                recorder.requests.append((self.command, self.path, self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_PUT = do_POST = do_DELETE = _record

        self._server = _tls_server(self.ca, self.host, Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self._server.server_address[1]}"


def _tls_server(ca: trustme.CA, host: str, handler: type[BaseHTTPRequestHandler], *names: str) -> ThreadingHTTPServer:
    """A threaded https server on ``host`` (a free port), its certificate from ``ca``, serving already."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host, *names).configure_cert(context)
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _key_of(resource_id: str) -> str:
    match = re.match(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/[^/]+/[^/]+/([^/]+)$", resource_id, re.I)
    return f"{match.group(1)}/{match.group(2)}".lower() if match else ""
