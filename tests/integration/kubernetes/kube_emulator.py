"""A Kubernetes API emulator for the deploy_kubernetes tests, built on kmock 0.8.

No Kubernetes cluster can run here. ``kmock.KubernetesEmulator`` keeps objects
in memory and serves create / get / list / watch / merge-patch / json-patch /
delete, which is enough for ``kubernetes.core.k8s``, ``k8s_info`` and
``k8s_json_patch``. The real ``helm`` binary (used by ``kubernetes.core.helm``)
needs a little more; this module adds exactly that, and nothing that would
make a test pass where a real API server would refuse:

* ``/api/v1`` answers with ``groupVersion: v1`` (kmock says ``/v1``, which
  client-go's REST mapper does not accept, so Helm finds no core kinds).
* ``/openapi/v2`` answers 200 with an empty document. Helm downloads it for
  client-side schema validation; an empty document means "no schema known",
  so client-go skips that validation. The manifests are validated instead by
  ``kubernetes-validate`` in ``test_kubernetes_chart.py``.
* Request bodies in Kubernetes protobuf (client-go sends Secrets, ConfigMaps
  and DeleteOptions this way; Helm stores its releases in Secrets) are decoded
  to JSON. Only the fields those kinds use are decoded; anything else is
  refused with HTTP 415, not guessed.
* ``PUT`` on a named object replaces it (Helm updates its release Secret so).
* ``labelSelector`` on lists: equality (``a=b``, ``a==b``), inequality
  (``a!=b``) and existence (``a``, ``!a``). Helm finds its releases by labels.
* Strategic-merge-patch directives (``$setElementOrder/...``, ``$patch``,
  ``$retainKeys``) are dropped before kmock merges the patch; lists are then
  replaced as in a JSON merge patch, not merged by key.
* ``?dryRun=All`` (kubernetes.core uses server-side dry run in check mode)
  answers with the object the request would produce and stores nothing.
* ``metadata.generation`` of Deployments: 1 on create, +1 on every patch or
  replace that touches ``spec``.
* A stand-in for the Deployment controller: after a Deployment is created or
  its spec patched, its ``status`` is set as a real controller would once all
  pods are ready (``readyReplicas == availableReplicas == spec.replicas``,
  condition ``Available=True``, ``observedGeneration`` = ``generation``),
  after a per-Deployment delay (until then the old status, whose
  ``observedGeneration`` is behind, says "not ready"); a Deployment
  named in ``never_ready`` gets ``availableReplicas: 0`` and
  ``Available=False`` instead. No pods, ReplicaSets or probes exist: the
  status is what the test says it is.

Not emulated (so not covered by any test here): scheduling, pods, probes,
endpoints, Services routing anything, Gateway API or ingress-nginx
controllers (nothing reads the weights), admission, defaulting, RBAC,
resourceVersion conflicts, server-side apply, and strategic-merge of lists by
key.
"""
import asyncio
import base64
import contextlib
import copy
import datetime
import json
import threading

import aiohttp.web
import kmock
from kmock._internal import dicts, enums

PROTOBUF_MAGIC = b"k8s\x00"
STRATEGIC = "application/strategic-merge-patch+json"


# --- Kubernetes protobuf (only what client-go sends for the kinds Helm stores) ---

class ProtobufError(ValueError):
    pass


def _varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value = bytes(buf[i:i + size])
            if len(value) != size:
                raise ProtobufError("truncated field %d" % number)
            i += size
        elif wire == 1:
            value, i = bytes(buf[i:i + 8]), i + 8
        elif wire == 5:
            value, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise ProtobufError("wire type %d not supported" % wire)
        yield number, wire, value


def _map_entry(buf):
    key = value = b""
    for number, _wire, raw in _fields(buf):
        if number == 1:
            key = raw
        elif number == 2:
            value = raw
    return key.decode(), value


def _time(buf):
    seconds = 0
    for number, _wire, raw in _fields(buf):
        if number == 1:
            seconds = raw
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(raw):
    return raw.decode()


def _text_or_none(raw):
    """ObjectMeta's strings: an empty one is left out, as the API server leaves it out of JSON."""
    return raw.decode() if raw else None


def _base64(raw):
    return base64.b64encode(raw).decode()


def _message(name, table):
    """The decoder of one protobuf message: ``table`` maps a field number to ``(json_key, read)`` for a single
    value, ``(json_key, read, "map")`` for a map<string, ...> entry or ``(json_key, read, "list")`` for a
    repeated field. A field not in the table is refused, not guessed."""
    def decode(buf):
        obj = {}
        for number, _wire, raw in _fields(buf):
            if number not in table:
                raise ProtobufError("%s field %d is not decoded by the emulator" % (name, number))
            key, read, shape = (table[number] + (None,))[:3]
            if shape == "map":
                entry_key, entry_value = _map_entry(raw)
                obj.setdefault(key, {})[entry_key] = read(entry_value)
            elif shape == "list":
                obj.setdefault(key, []).append(read(raw))
            else:
                value = read(raw)
                if value is not None:
                    obj[key] = value
        return obj
    return decode


_object_meta = _message("ObjectMeta", {
    1: ("name", _text_or_none),
    2: ("generateName", _text_or_none),
    3: ("namespace", _text_or_none),
    4: ("selfLink", _text_or_none),
    5: ("uid", _text_or_none),
    6: ("resourceVersion", _text_or_none),
    7: ("generation", int),
    8: ("creationTimestamp", _time),
    11: ("labels", _text, "map"),
    12: ("annotations", _text, "map"),
    14: ("finalizers", _text, "list"),
})
_secret = _message("Secret", {
    1: ("metadata", _object_meta),
    2: ("data", _base64, "map"),
    3: ("type", _text),
    4: ("stringData", _text, "map"),
    5: ("immutable", bool),
})
_config_map = _message("ConfigMap", {
    1: ("metadata", _object_meta),
    2: ("data", _text, "map"),
    3: ("binaryData", _base64, "map"),
    4: ("immutable", bool),
})


def _delete_options(buf):
    obj = {}
    for number, wire, raw in _fields(buf):
        if number == 2 and wire == 0:
            obj["gracePeriodSeconds"] = raw
        elif number == 4 and wire == 0:
            obj["orphanDependents"] = bool(raw)
        elif number == 6:
            obj["propagationPolicy"] = raw.decode()
        elif number == 5:
            obj.setdefault("dryRun", []).append(raw.decode())
        # preconditions (3) are not checked by the emulator either way
    return obj


DECODERS = {"Secret": _secret, "ConfigMap": _config_map, "DeleteOptions": _delete_options}


def decode_k8s_protobuf(body):
    """Decode a client-go protobuf body (``k8s\\0`` + runtime.Unknown) to a JSON-able dict."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body")
    api_version = kind = ""
    raw = b""
    for number, _wire, value in _fields(body[len(PROTOBUF_MAGIC):]):
        if number == 1:
            for sub, _sub_wire, text in _fields(value):
                if sub == 1:
                    api_version = text.decode()
                elif sub == 2:
                    kind = text.decode()
        elif number == 2:
            raw = value
        elif number == 3 and value:
            raise ProtobufError("content encoding %r not supported" % value)
    if kind not in DECODERS:
        raise ProtobufError("protobuf body of kind %r (%s) is not decoded by the emulator" % (kind, api_version))
    obj = DECODERS[kind](raw)
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj


def strip_strategic_directives(value):
    """Drop ``$``-keys of a strategic merge patch (the emulator merges like a JSON merge patch)."""
    if isinstance(value, dict):
        return {k: strip_strategic_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_strategic_directives(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return value


# --- label selectors ---

def parse_label_selector(text):
    """``a=b,c!=d,e,!f`` -> list of (key, op, value). Set-based ``in``/``notin`` are refused."""
    terms = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if " in " in part or " notin " in part or "(" in part:
            raise ValueError("set-based label selectors are not emulated: %r" % part)
        if "!=" in part:
            key, value = part.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "==" in part:
            key, value = part.split("==", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif "=" in part:
            key, value = part.split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "absent", None))
        else:
            terms.append((part, "exists", None))
    return terms


def selector_matches(terms, labels):
    labels = labels or {}
    for key, op, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "absent" and key in labels:
            return False
    return True


def deployment_status(spec_replicas, ready):
    """The status a Deployment controller reports once its pods are (or are not) ready."""
    replicas = spec_replicas if spec_replicas is not None else 1
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if ready:
        return {
            "observedGeneration": None,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "unavailableReplicas": None,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastTransitionTime": now},
            ],
        }
    return {
        "observedGeneration": None,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "unavailableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "lastTransitionTime": now},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "lastTransitionTime": now},
        ],
    }


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus what Helm needs and a stand-in Deployment controller (see module doc)."""

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.resources.load_bundled()  # builtin kinds + gateway.networking.k8s.io/v1 (HTTPRoute)
        self.fallback["get /openapi/v2"] << b""
        self.ready_delay = {}  # deployment name -> seconds before it reports ready
        self.default_ready_delay = 0.3
        self.never_ready = set()
        self.ready_marks = {}  # deployment name -> number of requests served when it became ready
        self.refused = []  # bodies the emulator could not decode (must stay empty)
        self.dry_runs = []  # (method, path) of the dry-run writes answered without storing
        self.controller_tasks = set()

    async def __call__(self, raw_request):
        body = await raw_request.read()
        content_type = raw_request.headers.get("Content-Type", "")
        try:
            if body.startswith(PROTOBUF_MAGIC):
                raw_request._read_bytes = json.dumps(decode_k8s_protobuf(body)).encode()
            elif content_type.startswith(STRATEGIC) and body:
                raw_request._read_bytes = json.dumps(strip_strategic_directives(json.loads(body))).encode()
        except ProtobufError as exc:
            self.refused.append((raw_request.method, raw_request.path, str(exc)))
            return aiohttp.web.json_response(
                {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 415,
                 "reason": "UnsupportedMediaType", "message": str(exc)}, status=415)
        return await super().__call__(raw_request)

    async def _handle(self, request):
        writes = (enums.method.POST, enums.method.PATCH, enums.method.PUT, enums.method.DELETE)
        if request.resource is not None and request.method in writes and request.params.get("dryRun"):
            return await self._dry_run(request)
        if request.resource is not None and request.name is not None and request.method == enums.method.PUT:
            response = await self._replace(request)
        else:
            response = await super()._handle(request)
        if (request.resource is not None and request.resource.plural == "deployments"
                and request.resource.group == "apps" and request.subresource is None
                and request.method in (enums.method.POST, enums.method.PATCH, enums.method.PUT)
                and 200 <= response.status < 300):
            data = request.data if isinstance(request.data, dict) else {}
            name = request.name or data.get("metadata", {}).get("name")
            namespace = request.namespace or data.get("metadata", {}).get("namespace")
            touches_spec = (
                request.method != enums.method.PATCH or "spec" in data
                or any(str(op.get("path", "")).startswith("/spec") for op in (request.data if isinstance(request.data, list) else []))
            )
            key = (request.resource, namespace, name)
            if touches_spec and key in self._objects and not self._objects[key].deleted:
                # no await between the write above and this: nothing else sees the object in between
                obj = self._objects[key]
                generation = 1 if request.method == enums.method.POST else (obj.get("metadata", {}).get("generation") or 1) + 1
                obj.patch({"metadata": {"generation": generation}})
                task = asyncio.get_running_loop().create_task(self._reconcile_deployment(request.resource, namespace, name, generation))
                self.controller_tasks.add(task)
                task.add_done_callback(self.controller_tasks.discard)
        return response

    async def _dry_run(self, request):
        self.dry_runs.append((request.method.value, request.url.path))
        data = request.data
        name = request.name or (data.get("metadata", {}).get("name") if isinstance(data, dict) else None)
        namespace = request.namespace or (data.get("metadata", {}).get("namespace") if isinstance(data, dict) else None)
        key = (request.resource, namespace, name)
        async with self._lock:
            exists = key in self._objects and not self._objects[key].deleted
            current = copy.deepcopy(dict(self._objects[key].raw)) if exists else None
        if request.method == enums.method.POST:
            if exists:
                raise kmock.KubernetesError(status=409, reason="AlreadyExists", message="%s already exists" % name)
            return aiohttp.web.json_response(data)
        if not exists:
            raise kmock.KubernetesObjectNotFoundError()
        if request.method == enums.method.PATCH:
            return aiohttp.web.json_response(dict(dicts.patch_dict(current, data)))
        if request.method == enums.method.PUT:
            return aiohttp.web.json_response(data)
        return aiohttp.web.json_response(current)

    async def _replace(self, request):
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            self._objects[key].create(request.data)  # appends a new version: the whole object replaced
            raw = self._objects[key].raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return aiohttp.web.json_response(raw)

    async def _reconcile_deployment(self, resource, namespace, name, generation):
        ready = name not in self.never_ready
        await asyncio.sleep(self.ready_delay.get(name, self.default_ready_delay) if ready else 0)
        key = (resource, namespace, name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                return
            obj = self._objects[key]
            if obj.get("metadata", {}).get("generation") != generation:
                return  # a newer spec arrived meanwhile; its own reconcile reports it
            replicas = obj.get("spec", {}).get("replicas")
            status = deployment_status(replicas, ready)
            status["observedGeneration"] = generation
            obj.patch({"status": None})
            obj.patch({"status": status})
            await self._buses[resource].put({"type": "MODIFIED", "object": obj.raw})
            if ready:
                self.ready_marks[name] = len(self._requests)

    async def _serve_version(self, request):
        doc = await super()._serve_version(request)
        if request.resource is not None and request.resource.group == "":
            doc["groupVersion"] = request.resource.version
        return doc

    async def _serve_list(self, request):
        doc = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            terms = parse_label_selector(selector)
            doc["items"] = [item for item in doc["items"] if selector_matches(terms, item.get("metadata", {}).get("labels"))]
        return doc


class EmulatorThread:
    """Runs an :class:`Emulator` on 127.0.0.1 (free port) in a thread with its own event loop,
    so that synchronous tests can run ``ansible-playbook`` and ``helm`` against it."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kmock-emulator", daemon=True)
        self._stack = None
        self.emulator = None
        self.url = None
        self.kubeconfig = None

    def _run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self):
        self.thread.start()

        async def enter():
            self._stack = contextlib.AsyncExitStack()
            self.emulator = await self._stack.enter_async_context(Emulator())
            server = await self._stack.enter_async_context(kmock.Server(self.emulator))
            return str(server.url)

        self.url = self._run(enter())
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {"token": "emulator"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": "default"}}],
            "current-context": "kmock",
        }))
        return self

    def stop(self):
        if self._stack is not None:
            async def close():
                for task in list(self.emulator.controller_tasks):
                    task.cancel()
                await asyncio.gather(*self.emulator.controller_tasks, return_exceptions=True)
                await self._stack.aclose()
            self._run(close())
            self._stack = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    # --- thread-safe views for assertions (snapshots, deep copies) ---

    def call(self, fn):
        async def locked():
            async with self.emulator._lock:
                return fn(self.emulator)
        return self._run(locked())

    def objects(self, plural, group="", namespace=None):
        """{(namespace, name): object} of the live (not deleted) objects of one resource."""
        def pick(emu):
            out = {}
            for (resource, ns, name), obj in emu.objects.items():
                if resource.plural == plural and resource.group == group and not obj.deleted:
                    if namespace is None or ns == namespace:
                        out[(ns, name)] = copy.deepcopy(dict(obj.raw))
            return out
        return self.call(pick)

    def get(self, plural, name, group="", namespace="default"):
        return self.objects(plural, group, namespace).get((namespace, name))

    def history(self, plural, name, group="", namespace="default"):
        """Every version the emulator stored of one object (None marks a deletion)."""
        def pick(emu):
            for (resource, ns, obj_name), obj in emu.objects.items():
                if resource.plural == plural and resource.group == group and ns == namespace and obj_name == name:
                    return [None if v is None else copy.deepcopy(dict(v.raw)) for v in obj.history]
            return []
        return self.call(pick)

    def requests(self):
        """Every request served, in order: id, method, path, k8s action/resource/namespace/name, data."""
        def pick(emu):
            return [{
                "id": r.id,
                "method": r.method.value,
                "path": r.url.path,
                "params": dict(r.params),
                "content_type": r.headers.get("Content-Type", ""),
                "action": r.action.value if r.action is not None else None,
                "plural": r.resource.plural if r.resource is not None else None,
                "group": r.resource.group if r.resource is not None else None,
                "namespace": r.namespace,
                "name": r.name,
                "data": copy.deepcopy(r.data),
            } for r in list(emu)]
        return self.call(pick)

    def set_ready(self, name, delay=None, never=False):
        def apply(emu):
            if never:
                emu.never_ready.add(name)
            else:
                emu.never_ready.discard(name)
                if delay is not None:
                    emu.ready_delay[name] = delay
        return self.call(apply)

    def put(self, plural, name, obj, group="", version="v1", namespace="default"):
        """Store an object directly (as if something else had created it)."""
        def apply(emu):
            emu.objects[kmock.resource(group, version, plural), namespace, name] = obj
        return self.call(apply)
