"""A local Compute Engine: compute v1's REST wire format for exactly the calls the gcp provider makes.

    with FakeCompute(gcs) as gce:              # ThreadingHTTPServer on 127.0.0.1, ephemeral port
        gce.add_disk("web01", raw_image, boot=True, licenses=[...])
        gce.add_instance("web01", ["web01", "web01-data"], machine_type="n2-standard-4")
        login = gce.login()                    # GcpLogin with its endpoints; a service account key's
                                               # token_uri may point at gce.token_uri

google-cloud-compute (REST transport, ``client_options`` api_endpoint) talks to it as to
compute.googleapis.com: JSON bodies in the API's camelCase, zone and global operations, Google's error
envelope ({"error": {"code", "message", "errors": [{"reason"}]}}), list filters on labels. There is no
Compute Engine emulator; this fills exactly the holes the tests need and nothing of hyperexport:

* the worker: when an instance whose metadata holds ``hyperexport-exports`` is inserted, the fake plays
  the VM running the startup script: it follows each attached disk back (temporary disk → snapshot →
  disk) to the test's image file, runs the script's data step on it (qemu-img convert to qcow2, or the
  raw bytes) through a bounded subprocess, writes the object into the GCS emulator, and sets the guest
  attributes the script sets (crc32c per device, then the status), its progress on the serial console;
* failures on cue (``faults``): the script fails, the worker never signals, a quota is exceeded on
  insert, a permission is missing (403 naming it), an operation never finishes; unknown projects, zones and resources answer 404.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

PROJECT = "hx-test-project"
ZONE = "europe-west1-b"
MACHINE_TYPES = {"e2-small": (2, 2048), "n2-standard-4": (4, 16384), "e2-medium": (2, 4096)}
DEBIAN_LICENSE = "https://www.googleapis.com/compute/v1/projects/debian-cloud/global/licenses/debian-12-bookworm"
PLAN_KEY = "hyperexport-exports"  # what the worker's startup script reads (hyperexport/providers/gcp/startup_script.py)
GiB = 2**30
DELETE_SECONDS = 0.2  # how long an instance takes to go once its deletion is asked for


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


@dataclass
class Faults:
    script_fails: bool = False  # the worker's script exits 1, its console says why
    never_signal: bool = False  # the worker boots and never writes its guest attributes
    quota: str | None = None  # the worker's insert operation fails: Quota '<quota>' exceeded
    denied: set[str] = field(default_factory=set)  # IAM permissions the credentials lack
    stuck: str | None = None  # operations of this type (createSnapshot, insert...) never finish
    object_replaced: bool = False  # another object lands where the worker wrote, after it reported its crc32c
    token_refused: bool = False  # the token endpoint refuses the service account's signed assertion
    answer_lost: str | None = None  # once: the call ("POST zones/z/instances", a regex) is done, its answer a 503
    answered_conflict: str | None = None  # once: the call is done, its answer a 409 (as to a retried request)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


class FakeCompute:
    def __init__(self, gcs, work_dir: Path, project: str = PROJECT, zone: str = ZONE) -> None:
        self.gcs, self.work_dir = gcs, work_dir
        self.project, self.zone = project, zone
        self.faults = Faults()
        self.calls: list[Call] = []
        self.instances: dict[str, dict] = {}
        self.disks: dict[str, dict] = {}
        self.snapshots: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.files: dict[str, Path] = {}  # disk or snapshot name -> the image file that holds its bytes
        self.guest_attributes: dict[str, dict[str, str]] = {}
        self.serial: dict[str, list[str]] = {}
        self.workers: list[threading.Thread] = []
        self.worker_done = threading.Event()
        self._ids = itertools.count(4000000000000000000)
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.token_uri = f"{self.endpoint}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-compute", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.join_workers()

    def join_workers(self, timeout: float = 60) -> None:
        for worker in list(self.workers):
            worker.join(timeout)

    def reset(self) -> None:
        self.join_workers()
        with self._lock:
            self.faults = Faults()
            self.calls.clear()
            for store in (self.instances, self.disks, self.snapshots, self.operations, self.files,
                          self.guest_attributes, self.serial):  # fmt: skip
                store.clear()
            self.workers.clear()

    def login(self, credentials: Any = None):
        from google.auth.credentials import AnonymousCredentials

        from hyperexport.providers.gcp import GcpLogin

        return GcpLogin(credentials=credentials or AnonymousCredentials(), project=self.project,
                        compute_endpoint=self.endpoint, storage_endpoint=self.gcs.endpoint)  # fmt: skip

    # What the tests set up.

    def link(self, *parts: str) -> str:
        return f"{self.endpoint}/compute/v1/projects/{self.project}/" + "/".join(parts)

    def add_disk(self, name: str, image: Path, *, licenses: list[str] | None = None, uefi: bool = False,
                 labels: dict[str, str] | None = None) -> dict:  # fmt: skip
        size_gb = max(1, -(-image.stat().st_size // GiB))
        disk = {
            "kind": "compute#disk", "id": str(next(self._ids)), "name": name, "sizeGb": str(size_gb), "status": "READY",
            "zone": self.link("zones", self.zone), "selfLink": self.link("zones", self.zone, "disks", name),
            "type": self.link("zones", self.zone, "diskTypes", "pd-balanced"), "licenses": licenses or [],
            "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}] if uefi else [], "labels": labels or {}, "users": [],
        }  # fmt: skip
        with self._lock:
            self.disks[name] = disk
            self.files[name] = image
        return disk

    def add_instance(self, name: str, disks: list[str], *, machine_type: str = "n2-standard-4", networks=("default",),
                     secure_boot: bool = False) -> dict:  # fmt: skip
        instance = {
            "kind": "compute#instance", "id": str(next(self._ids)), "name": name, "status": "RUNNING",
            "zone": self.link("zones", self.zone), "selfLink": self.link("zones", self.zone, "instances", name),
            "machineType": self.link("zones", self.zone, "machineTypes", machine_type), "labels": {},
            "disks": [self._attached(self.disks[d], i, boot=i == 0) for i, d in enumerate(disks)],
            "networkInterfaces": [
                {"name": f"nic{i}", "network": self.link("global", "networks", n), "networkIP": f"10.132.0.{10 + i}"}
                for i, n in enumerate(networks)
            ],
            "shieldedInstanceConfig": {"enableSecureBoot": secure_boot, "enableVtpm": secure_boot,
                                       "enableIntegrityMonitoring": secure_boot},
        }  # fmt: skip
        # The data disk is listed first, as an instance's disks may be: the boot flag and index decide the order.
        instance["disks"].reverse()
        with self._lock:
            self.instances[name] = instance
            for d in disks:
                self.disks[d]["users"].append(instance["selfLink"])
        return instance

    def add_snapshot(self, name: str, disk: str, labels: dict[str, str] | None = None) -> dict:
        with self._lock:
            return self._snapshot(self.disks[disk], {"name": name, "labels": labels or {}}, ready=True)

    def inventory(self) -> set[tuple[str, str]]:
        """Every instance, disk and snapshot, and every object of every bucket."""
        with self._lock:
            found = {("instance", n) for n in self.instances} | {("disk", n) for n in self.disks}
            found |= {("snapshot", n) for n in self.snapshots}
        client = self.gcs.client(self.project)
        for bucket in client.list_buckets():
            found |= {("object", f"{bucket.name}/{b.name}") for b in client.list_blobs(bucket.name)}
        return found

    def labelled(self, run_id: str | None = None) -> set[tuple[str, str]]:
        """Instances, disks and snapshots that carry the run label (of ``run_id``, or of any run)."""
        with self._lock:
            stores = (("instance", self.instances), ("disk", self.disks), ("snapshot", self.snapshots))
            return {(kind, name) for kind, store in stores for name, item in store.items()
                    if "hyperexport-run-id" in item.get("labels", {})
                    and run_id in (None, item["labels"]["hyperexport-run-id"])}  # fmt: skip

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for c in self.calls if c.method == method and re.search(pattern, c.path))

    # The API.

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        self.calls.append(Call(method, path, query, body))
        if path == "/token" and method == "POST":
            if self.faults.token_refused:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            return 200, {"access_token": "ya29.fake-access-token", "expires_in": 3600, "token_type": "Bearer"}
        match = re.fullmatch(r"/compute/v1/projects/([^/]+)/(.*)", path)
        if not match:
            raise ApiError(404, f"no such API path {path}", "notFound")
        project, rest = match.groups()
        if project not in (self.project, "debian-cloud"):
            raise ApiError(404, f"The resource 'projects/{project}' was not found", "notFound")
        with self._lock:
            for route, action in self._routes():
                found = re.fullmatch(route, f"{method} {rest}")
                if found:
                    answer = action(query, body, *found.groups())
                    return 200, self._lose_answer(f"{method} {rest}", answer)
        raise ApiError(404, f"The resource 'projects/{project}/{rest}' was not found", "notFound")

    def _lose_answer(self, call: str, answer: Any) -> Any:
        if self.faults.answer_lost and re.fullmatch(self.faults.answer_lost, call):
            self.faults.answer_lost = None
            raise ApiError(503, "Backend Error", "backendError")
        if self.faults.answered_conflict and re.fullmatch(self.faults.answered_conflict, call):
            self.faults.answered_conflict = None
            raise ApiError(409, f"The resource 'projects/{self.project}/{call.split(' ', 1)[1]}' already exists", "alreadyExists")
        return answer

    def _routes(self):
        z = r"zones/([^/]+)"
        return (
            (rf"GET {z}", self._get_zone),
            (rf"GET {z}/machineTypes/([^/]+)", self._get_machine_type),
            (rf"GET {z}/instances", lambda q, b, zone: self._list(zone, self.instances, q, "instance")),
            (rf"POST {z}/instances", self._insert_instance),
            (rf"GET {z}/instances/([^/]+)", lambda q, b, zone, n: self._get(zone, self.instances, n, "instances")),
            (rf"DELETE {z}/instances/([^/]+)", self._delete_instance),
            (rf"GET {z}/instances/([^/]+)/getGuestAttributes", self._guest_attributes),
            (rf"GET {z}/instances/([^/]+)/serialPort", self._serial_port),
            (rf"GET {z}/disks", lambda q, b, zone: self._list(zone, self.disks, q, "disk")),
            (rf"POST {z}/disks", self._insert_disk),
            (rf"GET {z}/disks/([^/]+)", lambda q, b, zone, n: self._get(zone, self.disks, n, "disks")),
            (rf"DELETE {z}/disks/([^/]+)", self._delete_disk),
            (rf"POST {z}/disks/([^/]+)/createSnapshot", self._create_snapshot),
            (rf"GET {z}/operations/([^/]+)", lambda q, b, zone, op: self._get_operation(op)),
            (rf"POST {z}/operations/([^/]+)/wait", lambda q, b, zone, op: self._get_operation(op)),
            (r"GET global/operations/([^/]+)", lambda q, b, op: self._get_operation(op)),
            (r"GET global/snapshots", lambda q, b: self._list(None, self.snapshots, q, "snapshot")),
            (r"GET global/snapshots/([^/]+)", self._get_snapshot),
            (r"DELETE global/snapshots/([^/]+)", self._delete_snapshot),
            (r"GET global/images/family/([^/]+)", self._image),
            (r"GET global/images/([^/]+)", self._image),
        )

    def _deny(self, permission: str, resource: str) -> None:
        if permission in self.faults.denied:
            raise ApiError(403, f"Required '{permission}' permission for '{resource}'", "forbidden")

    def _zone(self, zone: str) -> None:
        if zone != self.zone:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}' was not found", "notFound")

    def _get_zone(self, query, body, zone):
        self._zone(zone)
        return {"kind": "compute#zone", "name": zone, "status": "UP", "region": self.link("regions", zone[:-2])}

    def _get_machine_type(self, query, body, zone, name):
        self._zone(zone)
        if name not in MACHINE_TYPES:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/machineTypes/{name}' was not found", "notFound")
        cpus, memory = MACHINE_TYPES[name]
        return {"kind": "compute#machineType", "name": name, "guestCpus": cpus, "memoryMb": memory, "zone": zone}

    def _image(self, query, body, name):
        return {"kind": "compute#image", "name": "debian-12-bookworm-v20260101", "family": "debian-12", "status": "READY",
                "selfLink": f"{self.endpoint}/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20260101",
                "licenses": [DEBIAN_LICENSE], "diskSizeGb": "10"}  # fmt: skip

    def _get(self, zone, store, name, plural):
        self._zone(zone)
        self._deny(f"compute.{plural}.get", f"projects/{self.project}/zones/{zone}/{plural}/{name}")
        if name not in store:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/{plural}/{name}' was not found", "notFound")
        return {k: v for k, v in store[name].items() if not k.startswith("_")}

    def _list(self, zone, store, query, kind):
        if zone is not None:
            self._zone(zone)
        wanted = None
        text = (query.get("filter") or [""])[0]
        if text:
            found = re.fullmatch(r'\s*labels\.([a-z0-9_-]+)\s*=\s*"?([a-z0-9_-]*)"?\s*', text)
            if not found:
                raise ApiError(400, f"Invalid value for field 'filter': '{text}'. Invalid list filter expression.", "invalid")
            wanted = found.groups()
        items = [{k: v for k, v in item.items() if not k.startswith("_")} for item in store.values()
                 if wanted is None or item.get("labels", {}).get(wanted[0]) == wanted[1]]  # fmt: skip
        return {"kind": f"compute#{kind}List", "id": kind, "items": items}

    def _operation(self, kind: str, target: str, zone: str | None, error: dict | None = None) -> dict:
        name = f"operation-{next(self._ids)}"
        operation = {
            "kind": "compute#operation", "id": str(next(self._ids)), "name": name, "operationType": kind,
            "targetLink": target, "status": "RUNNING" if kind == self.faults.stuck else "DONE", "progress": 100,
            "selfLink": self.link(*(("zones", zone) if zone else ("global",)), "operations", name),
        }  # fmt: skip
        if zone:
            operation["zone"] = self.link("zones", zone)
        if error:
            operation.update(error)
        self.operations[name] = operation
        # The first answer says RUNNING: the provider must poll the operations client to see it finish.
        return {**operation, "status": "RUNNING", "progress": 0}

    def _get_operation(self, name):
        if name not in self.operations:
            raise ApiError(404, f"The resource 'projects/{self.project}/global/operations/{name}' was not found", "notFound")
        operation = self.operations[name]
        operation["_polls"] = operation.get("_polls", 0) + 1
        answer = {k: v for k, v in operation.items() if not k.startswith("_")}
        # Still RUNNING at the first poll: the provider waits between polls, as it must on Compute Engine.
        return answer if operation["_polls"] > 1 else {**answer, "status": "RUNNING", "progress": 50}

    # Disks and snapshots.

    def _create_snapshot(self, query, body, zone, disk):
        self._zone(zone)
        self._deny("compute.disks.createSnapshot", f"projects/{self.project}/zones/{zone}/disks/{disk}")
        if disk not in self.disks:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/disks/{disk}' was not found", "notFound")
        snapshot = self._snapshot(self.disks[disk], body, ready=False)
        snapshot["_guest_flush"] = query.get("guestFlush") == ["true"]
        return self._operation("createSnapshot", self.disks[disk]["selfLink"], zone)

    def _snapshot(self, disk: dict, body: dict, *, ready: bool) -> dict:
        name = body["name"]
        if name in self.snapshots:
            raise ApiError(409, f"The resource 'projects/{self.project}/global/snapshots/{name}' already exists", "alreadyExists")
        snapshot = {
            "kind": "compute#snapshot", "id": str(next(self._ids)), "name": name, "labels": body.get("labels") or {},
            "status": "READY" if ready else "CREATING", "sourceDisk": disk["selfLink"], "diskSizeGb": disk["sizeGb"],
            "licenses": disk["licenses"], "guestOsFeatures": disk["guestOsFeatures"],
            "selfLink": self.link("global", "snapshots", name), "description": body.get("description", ""),
        }  # fmt: skip
        self.snapshots[name] = snapshot
        self.files[name] = self.files[disk["name"]]
        return snapshot

    def _get_snapshot(self, query, body, name):
        if name not in self.snapshots:
            raise ApiError(404, f"The resource 'projects/{self.project}/global/snapshots/{name}' was not found", "notFound")
        snapshot = self.snapshots[name]
        answer = {k: v for k, v in snapshot.items() if not k.startswith("_")}
        snapshot["status"] = "READY"  # CREATING at the first look, READY from the next one
        return answer

    def _delete_snapshot(self, query, body, name):
        self._deny("compute.snapshots.delete", f"projects/{self.project}/global/snapshots/{name}")
        if self.snapshots.pop(name, None) is None:
            raise ApiError(404, f"The resource 'projects/{self.project}/global/snapshots/{name}' was not found", "notFound")
        return self._operation("delete", self.link("global", "snapshots", name), None)

    def _insert_disk(self, query, body, zone):
        self._zone(zone)
        self._deny("compute.disks.create", f"projects/{self.project}/zones/{zone}/disks/{body['name']}")
        source = (body.get("sourceSnapshot") or "").rsplit("/", 1)[-1]
        if source not in self.snapshots:
            raise ApiError(404, f"The resource 'projects/{self.project}/global/snapshots/{source}' was not found", "notFound")
        if body["name"] in self.disks:
            raise ApiError(409, f"The resource 'projects/{self.project}/zones/{zone}/disks/{body['name']}' already exists", "alreadyExists")
        snapshot = self.snapshots[source]
        disk = self.add_disk(body["name"], self.files[source], labels=body.get("labels"))
        disk.update({"sourceSnapshot": snapshot["selfLink"], "licenses": snapshot["licenses"],
                     "guestOsFeatures": snapshot["guestOsFeatures"]})  # fmt: skip
        return self._operation("insert", disk["selfLink"], zone)

    def _delete_disk(self, query, body, zone, name):
        self._zone(zone)
        if name not in self.disks:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/disks/{name}' was not found", "notFound")
        if self.disks[name]["users"]:
            raise ApiError(400, f"The disk resource 'projects/{self.project}/zones/{zone}/disks/{name}' is already being "
                                f"used by '{self.disks[name]['users'][0]}'", "resourceInUseByAnotherResource")  # fmt: skip
        del self.disks[name]
        self.files.pop(name, None)
        return self._operation("delete", self.link("zones", zone, "disks", name), zone)

    # Instances, and the worker.

    def _attached(self, disk: dict, index: int, *, boot: bool, mode: str = "READ_WRITE", device: str | None = None) -> dict:
        return {"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": mode, "source": disk["selfLink"],
                "deviceName": device or disk["name"], "index": index, "boot": boot, "autoDelete": boot,
                "diskSizeGb": disk["sizeGb"], "interface": "SCSI"}  # fmt: skip

    def _insert_instance(self, query, body, zone):
        self._zone(zone)
        name = body["name"]
        self._deny("compute.instances.create", f"projects/{self.project}/zones/{zone}/instances/{name}")
        machine_type = body["machineType"].rsplit("/", 1)[-1]
        if machine_type not in MACHINE_TYPES:
            raise ApiError(400, f"Invalid value for field 'resource.machineType': '{body['machineType']}'. Machine type "
                                "does not exist.", "invalid")  # fmt: skip
        if name in self.instances:
            raise ApiError(409, f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' already exists", "alreadyExists")
        target = self.link("zones", zone, "instances", name)
        if self.faults.quota:
            region = zone[:-2]
            message = f"Quota '{self.faults.quota}' exceeded.  Limit: 8.0 in region {region}."
            return self._operation("insert", target, zone, {
                "error": {"errors": [{"code": "QUOTA_EXCEEDED", "message": message}]},
                "httpErrorStatusCode": 403, "httpErrorMessage": "FORBIDDEN",
            })  # fmt: skip
        attached = []
        for i, spec in enumerate(body.get("disks", [])):
            if spec.get("boot"):
                boot = self.add_disk(name, self.files.get("_worker_image") or _empty_image(self.work_dir))
                attached.append(self._attached(boot, i, boot=True))
                continue
            disk_name = spec["source"].rsplit("/", 1)[-1]
            if disk_name not in self.disks:
                raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/disks/{disk_name}' was not found", "notFound")
            if self.disks[disk_name]["users"] and spec.get("mode") != "READ_ONLY":
                raise ApiError(400, f"The disk resource '{disk_name}' is already being used", "resourceInUseByAnotherResource")
            attached.append({**self._attached(self.disks[disk_name], i, boot=False, mode=spec.get("mode", "READ_WRITE"),
                                              device=spec.get("deviceName")), "autoDelete": bool(spec.get("autoDelete"))})  # fmt: skip
        metadata = {item["key"]: item.get("value", "") for item in (body.get("metadata") or {}).get("items", [])}
        instance = {
            "kind": "compute#instance", "id": str(next(self._ids)), "name": name, "status": "RUNNING", "zone": self.link("zones", zone),
            "selfLink": target, "machineType": self.link("zones", zone, "machineTypes", machine_type),
            "labels": body.get("labels") or {}, "disks": attached, "networkInterfaces": body.get("networkInterfaces", []),
            "metadata": body.get("metadata") or {}, "scheduling": body.get("scheduling") or {},
            "serviceAccounts": body.get("serviceAccounts") or [],
        }  # fmt: skip
        self.instances[name] = instance
        for disk in attached:
            self.disks[disk["source"].rsplit("/", 1)[-1]]["users"].append(target)
        self.serial[name] = ["SeaBIOS (version 1.8.2-google)", "Booting from Hard Disk 0...", f"{name} login:"]
        if PLAN_KEY in metadata:
            worker = threading.Thread(target=self._play_worker, args=(name, json.loads(metadata[PLAN_KEY])), daemon=True)
            self.workers.append(worker)
            worker.start()
        return self._operation("insert", target, zone)

    def _delete_instance(self, query, body, zone, name):
        self._zone(zone)
        self._deny("compute.instances.delete", f"projects/{self.project}/zones/{zone}/instances/{name}")
        instance = self.instances.get(name)
        if instance is None or instance["status"] == "STOPPING":
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found", "notFound")
        instance["status"] = "STOPPING"
        answer = self._operation("delete", instance["selfLink"], zone)
        operation = self.operations[answer["name"]]
        operation["status"] = "RUNNING"
        # As on Compute Engine, the instance goes (and its disks are free) a while after the request, polled or not.
        timer = threading.Timer(DELETE_SECONDS, self._deleted, args=(name, operation))
        timer.daemon = True
        self.workers.append(timer)
        timer.start()
        return answer

    def _deleted(self, name: str, operation: dict) -> None:
        with self._lock:
            instance = self.instances.pop(name, None)
            operation["status"] = "DONE"
            if instance is None:
                return
            for attached in instance["disks"]:
                disk = self.disks.get(attached["source"].rsplit("/", 1)[-1])
                if disk is None:
                    continue
                disk["users"].remove(instance["selfLink"])
                if attached.get("autoDelete"):
                    del self.disks[disk["name"]]
            self.guest_attributes.pop(name, None)

    def _guest_attributes(self, query, body, zone, name):
        self._get(zone, self.instances, name, "instances")
        prefix = (query.get("queryPath") or [""])[0]
        namespace = prefix.split("/", 1)[0]
        values = self.guest_attributes.get(name) or {}
        if not values:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}/guestAttributes/"
                                f"{prefix}' was not found", "notFound")  # fmt: skip
        items = [{"namespace": namespace, "key": k, "value": v} for k, v in values.items()]
        return {"kind": "compute#guestAttributes", "queryPath": prefix, "queryValue": {"items": items}}

    def _serial_port(self, query, body, zone, name):
        self._get(zone, self.instances, name, "instances")
        contents = "\r\n".join(self.serial.get(name, [])) + "\r\n"
        return {"kind": "compute#serialPortOutput", "contents": contents, "start": "0", "next": str(len(contents))}

    def _play_worker(self, name: str, plan: list[dict]) -> None:
        """What the startup script does on a real worker, on the test's image files."""
        console = self.serial[name]
        try:
            if self.faults.never_signal:
                console.append("hyperexport: installing qemu-utils")
                return
            client = self.gcs.client(self.project)
            attributes: dict[str, str] = {}
            for step in plan:
                with self._lock:
                    instance = self.instances.get(name)
                    if instance is None:
                        return
                    source = next(d for d in instance["disks"] if d["deviceName"] == step["device"])
                    image = self.files[source["source"].rsplit("/", 1)[-1]]
                console.append(f"hyperexport: exporting {step['device']} to {step['object']} as {step['format']}")
                if self.faults.script_fails:
                    console.append(f"qemu-img: Could not open '/dev/disk/by-id/google-{step['device']}': Permission denied")
                    console.append("hyperexport: failed with exit status 1")
                    attributes["status"] = "failed:1"
                    return
                bucket, _, key = step["object"].removeprefix("gs://").partition("/")
                with tempfile.TemporaryDirectory(dir=self.work_dir) as scratch:
                    if step["format"] == "qcow2":
                        output = Path(scratch) / "export.qcow2"
                        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", str(image), str(output)],
                                       check=True, timeout=120, capture_output=True)  # fmt: skip
                    else:
                        output = image
                    blob = client.bucket(bucket).blob(key)
                    blob.upload_from_filename(str(output))
                blob.reload()
                attributes[f"crc32c-{step['device']}"] = blob.crc32c
                if self.faults.object_replaced:
                    blob.upload_from_string(b"not the disk")
                console.append(f"hyperexport: exported {step['device']} (crc32c {blob.crc32c})")
            attributes["status"] = "done"
            console.append("hyperexport: done")
        except Exception as error:  # the worker's failure is what its console and status show
            log.exception("fake worker %s failed", name)
            console.append(f"hyperexport: failed: {error}")
            attributes = {"status": "failed:2"}
        finally:
            with self._lock:
                if name in self.instances and not self.faults.never_signal:
                    self.guest_attributes[name] = attributes
            self.worker_done.set()


def _empty_image(work_dir: Path) -> Path:
    path = work_dir / "worker-boot.raw"
    if not path.exists():
        with open(path, "wb") as handle:
            handle.truncate(GiB)
    return path


def _handler(fake: FakeCompute):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            log.debug("fake compute: " + format, *args)

        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw and self.headers.get("Content-Type", "").startswith("application/json") else (
                    parse_qs(raw.decode()) if raw else None)  # fmt: skip
                status, answer = fake.handle(self.command, parts.path, parse_qs(parts.query), body)
            except ApiError as error:
                status, answer = error.code, {"error": {"code": error.code, "message": error.message, "errors": [
                    {"message": error.message, "domain": "global", "reason": error.reason}]}}  # fmt: skip
            except Exception as error:  # noqa: BLE001 - a bug of the fake shows as a 500 with its text
                log.exception("fake compute failed on %s %s", self.command, self.path)
                status, answer = 500, {"error": {"code": 500, "message": f"fake compute: {error!r}", "errors": []}}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer

    return Handler
