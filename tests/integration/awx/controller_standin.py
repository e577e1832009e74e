# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for the AWX controller API (/api/v2/), for testing playbooks/awx.yml.

AWX itself cannot run here (it needs PostgreSQL, Redis, a receptor mesh and a container runtime), so this is a
small in-memory server that follows the AWX REST conventions the awx.awx modules rely on, not AWX: list
endpoints filtered by query fields (``name``, ``organization``, ``or__id``/``or__name``, ...) answering
``{count, results, next}``; objects with ``id``, ``url``, ``type``, ``related`` and ``summary_fields``; POST to
create (201), PATCH to update, association sub-endpoints (``credentials``, ``success_nodes``,
``failure_nodes``, ...) answering 204; ``survey_spec``; ``create_approval_template`` of a workflow node;
``unified_job_templates`` over every template type; secret credential inputs answered as ``$encrypted$``;
a Bearer token required on every request; references to missing objects and duplicate names refused (400).
It keeps what it received so that a test can read back the whole graph.
"""
import json
import threading
from urllib.parse import parse_qsl, urlsplit

from tests.integration.http_standin import HttpStandIn, QuietHandler

API = "/api/v2/"
ENCRYPTED = "$encrypted$"
ASSOCIATIONS = ("credentials", "success_nodes", "failure_nodes", "always_nodes", "labels", "instance_groups")
UNIFIED = ("job_templates", "workflow_job_templates", "projects", "inventory_sources", "workflow_approval_templates")
# reference fields that must name an existing object of that collection
REFERENCES = {
    "organization": "organizations", "credential_type": "credential_types", "project": "projects",
    "inventory": "inventories", "source_project": "projects", "execution_environment": "execution_environments",
    "default_environment": "execution_environments", "workflow_job_template": "workflow_job_templates",
    "credential": "credentials",
}
# collections whose names are unique (per organization where they have one)
NAMED = ("organizations", "credential_types", "credentials", "execution_environments", "projects", "inventories",
         "inventory_sources", "job_templates", "workflow_job_templates")
SINGULAR = {"inventories": "inventory", "workflow_job_template_nodes": "workflow_job_template_node"}


class Controller:
    """The stored objects: ``objects[collection][id] = dict`` and ``links[(collection, id, association)] = [ids]``."""

    def __init__(self, token):
        self.token = token
        self.lock = threading.Lock()
        self.objects = {}
        self.links = {}
        self.surveys = {}
        self.requests = []
        self.errors = []
        self.next_id = 1
        self.add("organizations", {"name": "Default"})
        self.add("credential_types", {"name": "Machine", "kind": "ssh", "managed": True, "inputs": {"fields": [
            {"id": "username", "type": "string"}, {"id": "password", "type": "string", "secret": True},
            {"id": "ssh_key_data", "type": "string", "secret": True, "multiline": True},
            {"id": "ssh_key_unlock", "type": "string", "secret": True}]}})
        self.add("credential_types", {"name": "Vault", "kind": "vault", "managed": True, "inputs": {"fields": [
            {"id": "vault_password", "type": "string", "secret": True}, {"id": "vault_id", "type": "string"}]}})

    # -- store -------------------------------------------------------------------------------------------------
    def add(self, collection, data):
        oid = self.next_id
        self.next_id += 1
        self.objects.setdefault(collection, {})[oid] = dict(data, id=oid)
        return oid

    def find(self, collection, **fields):
        return [o for o in self.objects.get(collection, {}).values()
                if all(o.get(k) == v for k, v in fields.items())]

    def one(self, collection, **fields):
        found = self.find(collection, **fields)
        assert len(found) == 1, "%s %s: %d found" % (collection, fields, len(found))
        return found[0]

    def linked(self, collection, oid, association):
        return list(self.links.get((collection, oid, association), []))

    def unified(self, uid):
        for collection in UNIFIED:
            if uid in self.objects.get(collection, {}):
                return collection, self.objects[collection][uid]
        return None, None

    # -- representation ----------------------------------------------------------------------------------------
    def show(self, collection, obj, peek=False):
        url = "%s%s/%d/" % (API, collection, obj["id"])
        out = dict(obj, url=url, type=SINGULAR.get(collection, collection.rstrip("s")))
        out["related"] = dict((a, url + a + "/") for a in ASSOCIATIONS)
        out["related"]["survey_spec"] = url + "survey_spec/"
        out["summary_fields"] = {}
        if collection == "credentials":
            ctype = self.objects["credential_types"][obj["credential_type"]]
            secret = set(f["id"] for f in ctype.get("inputs", {}).get("fields", []) if f.get("secret"))
            out["inputs"] = dict((k, ENCRYPTED if k in secret else v) for k, v in obj.get("inputs", {}).items())
        if collection == "projects" and not peek:
            update = self.add("project_updates", {"status": "successful", "failed": False, "finished": "now",
                                                  "scm_revision": "0" * 40})
            out.update(scm_revision="0" * 40, status="successful")
            out["summary_fields"]["current_update"] = {"id": update}
            out["related"]["update"] = url + "update/"
        if collection == "workflow_job_template_nodes" and obj.get("unified_job_template"):
            ucoll = self.unified(obj["unified_job_template"])[0]
            out["related"]["unified_job_template"] = "%s%s/%d/" % (API, ucoll, obj["unified_job_template"])
        return out

    def listing(self, collection, query):
        if collection == "unified_job_templates":
            pool = [(c, o) for c in UNIFIED for o in self.objects.get(c, {}).values()]
        else:
            pool = [(collection, o) for o in self.objects.get(collection, {}).values()]
        ors = dict((k[4:], v) for k, v in query.items() if k.startswith("or__"))
        ands = dict((k, v) for k, v in query.items() if not k.startswith("or__") and k not in ("page", "page_size"))
        out = []
        for c, o in pool:
            shown = self.show(c, o, peek=True)
            if ors and not any(str(shown.get(k)) == v for k, v in ors.items()):
                continue
            if all(str(shown.get(k)) == v for k, v in ands.items()):
                out.append(self.show(c, o))
        return {"count": len(out), "results": out, "next": None, "previous": None}

    # -- validation as AWX does it (the part that catches a playbook naming what does not exist) ------------------
    def check(self, collection, data, oid=None):
        for field, target in REFERENCES.items():
            if data.get(field) not in (None, "") and data[field] not in self.objects.get(target, {}):
                return {field: ["Invalid pk \"%s\" - object does not exist." % data[field]]}
        if collection == "workflow_job_template_nodes" and data.get("unified_job_template"):
            if self.unified(data["unified_job_template"])[0] is None:
                return {"unified_job_template": ["object does not exist"]}
        if collection in NAMED and "name" in data:
            for other in self.objects.get(collection, {}).values():
                if other["id"] != oid and other.get("name") == data["name"] and \
                        other.get("organization") == data.get("organization", other.get("organization")):
                    return {"__all__": ["%s with this Name and Organization already exists." % collection]}
        if collection == "workflow_job_template_nodes" and "identifier" in data:
            for other in self.objects.get(collection, {}).values():
                if other["id"] != oid and other["identifier"] == data["identifier"] and \
                        other["workflow_job_template"] == data.get("workflow_job_template"):
                    return {"__all__": ["identifier not unique in the workflow"]}
        return None

    # -- requests ----------------------------------------------------------------------------------------------
    def handle(self, method, path, query, body):
        parts = [p for p in path[len(API):].split("/") if p]
        if not path.startswith(API) or not parts:
            return 404, {"detail": "Not found."}
        collection = parts[0]
        if method == "GET" and len(parts) == 1:
            return 200, self.listing(collection, query)
        if method == "POST" and len(parts) == 1:
            error = self.check(collection, body)
            if error:
                return 400, error
            oid = self.add(collection, body)
            return 201, self.show(collection, self.objects[collection][oid])
        try:
            oid = int(parts[1])
        except ValueError:
            return 404, {"detail": "Not found."}
        obj = self.objects.get(collection, {}).get(oid)
        if obj is None:
            return 404, {"detail": "Not found."}
        if len(parts) == 2:
            if method == "GET":
                return 200, self.show(collection, obj)
            if method == "PATCH":
                merged = dict(obj, **body)
                error = self.check(collection, merged, oid)
                if error:
                    return 400, error
                obj.update(body)
                return 200, self.show(collection, obj)
            if method == "DELETE":
                del self.objects[collection][oid]
                return 204, None
        sub = parts[2]
        if sub == "survey_spec":
            if method == "GET":
                return 200, self.surveys.get((collection, oid), {})
            if method == "POST":
                self.surveys[(collection, oid)] = body
                return 200, {}
            if method == "DELETE":
                self.surveys.pop((collection, oid), None)
                return 200, {}
        if sub in ASSOCIATIONS:
            key = (collection, oid, sub)
            target = "workflow_job_template_nodes" if sub.endswith("_nodes") else sub
            if method == "GET":
                return 200, {"count": len(self.links.get(key, [])), "next": None,
                             "results": [self.show(target, self.objects[target][i]) for i in self.links.get(key, [])]}
            if method == "POST":
                if body.get("disassociate"):
                    self.links[key] = [i for i in self.links.get(key, []) if i != body["id"]]
                elif body["id"] not in self.objects.get(target, {}):
                    return 400, {"msg": "no %s %s" % (target, body["id"])}
                elif body["id"] not in self.links.get(key, []):
                    self.links.setdefault(key, []).append(body["id"])
                return 204, None
        if sub == "create_approval_template" and method == "POST" and collection == "workflow_job_template_nodes":
            approval = self.add("workflow_approval_templates", body)
            obj["unified_job_template"] = approval
            return 201, self.show("workflow_approval_templates", self.objects["workflow_approval_templates"][approval])
        return 405, {"detail": "Method \"%s\" not allowed." % method}


def _handler(controller):
    class Handler(QuietHandler):
        def _serve(self, method):
            url = urlsplit(self.path)
            raw = self.body()
            if self.headers.get("Authorization") != "Bearer " + controller.token:
                status, answer = 401, {"detail": "Authentication credentials were not provided."}
            else:
                body = json.loads(raw) if raw else {}
                with controller.lock:
                    controller.requests.append((method, url.path, body))
                    try:
                        status, answer = controller.handle(method, url.path, dict(parse_qsl(url.query)), body)
                    except Exception as exc:  # a stand-in bug: a 500 the module reports, not a dropped connection
                        controller.errors.append("%s %s: %r" % (method, url.path, exc))
                        status, answer = 500, {"detail": repr(exc)}
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-API-Product-Name", "AWX")
            self.send_header("X-API-Product-Version", "24.6.1")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_PATCH(self):
            self._serve("PATCH")

        def do_DELETE(self):
            self._serve("DELETE")

    return Handler


class ControllerStandIn(HttpStandIn):
    """``with ControllerStandIn(token) as s:`` serves on ``s.url`` (loopback, a free port) until the block ends;
    ``s.controller`` holds what it received."""

    def __init__(self, token):
        self.controller = Controller(token)
        HttpStandIn.__init__(self, _handler(self.controller))
        self.url = self.base_url
