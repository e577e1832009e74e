# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator's own additions to kmock, checked directly: what it decodes, what it refuses,
how it filters by labels, dry runs and the stand-in Deployment controller. The role tests rely
on these; a wrong emulator would make them prove nothing."""

import base64
import json
import time
import urllib.error
import urllib.request

import pytest

from kube_emulator import ProtobufError, decode_k8s_protobuf, parse_label_selector, selector_matches, strip_strategic_directives

pytestmark = pytest.mark.emulator


def _varint(value):
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field(number, payload):
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    payload = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _entry(key, value):
    return _field(1, key) + _field(2, value)


def _envelope(api_version, kind, raw):
    return b"k8s\x00" + _field(1, _field(1, api_version) + _field(2, kind)) + _field(2, raw)


def test_emulator_decodes_a_protobuf_secret_like_helm_sends():
    meta = _field(1, "sh.helm.release.v1.web.v1") + _field(3, "rollout") + _field(11, _entry("owner", "helm")) \
        + _field(11, _entry("status", "deployed")) + _field(8, _field(1, 1700000000))
    secret = _field(1, meta) + _field(2, _entry("release", b"\x1f\x8b binary")) + _field(3, "helm.sh/release.v1")
    obj = decode_k8s_protobuf(_envelope("v1", "Secret", secret))
    assert obj == {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": "sh.helm.release.v1.web.v1", "namespace": "rollout",
                     "labels": {"owner": "helm", "status": "deployed"}, "creationTimestamp": "2023-11-14T22:13:20Z"},
        "data": {"release": base64.b64encode(b"\x1f\x8b binary").decode()},
    }


def test_emulator_refuses_protobuf_it_cannot_decode():
    with pytest.raises(ProtobufError, match="kind 'Pod'"):
        decode_k8s_protobuf(_envelope("v1", "Pod", _field(1, _field(1, "p"))))
    with pytest.raises(ProtobufError, match="ObjectMeta field 13"):
        decode_k8s_protobuf(_envelope("v1", "ConfigMap", _field(1, _field(13, b"owner"))))


def test_emulator_label_selectors():
    labels = {"owner": "helm", "name": "web-canary", "status": "deployed"}
    assert selector_matches(parse_label_selector("owner=helm,name=web-canary"), labels)
    assert not selector_matches(parse_label_selector("owner=helm,name=web"), labels)
    assert selector_matches(parse_label_selector("status!=superseded,owner"), labels)
    assert not selector_matches(parse_label_selector("!owner"), labels)
    with pytest.raises(ValueError, match="set-based"):
        parse_label_selector("env in (a,b)")


def test_emulator_strategic_merge_directives_are_dropped():
    patch = {"$setElementOrder/containers": [{"name": "a"}], "spec": {"containers": [{"name": "a", "image": "x"}, {"$patch": "delete", "name": "b"}]}}
    assert strip_strategic_directives(patch) == {"spec": {"containers": [{"name": "a", "image": "x"}]}}


def _request(url, method="GET", body=None, content_type="application/json"):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_emulator_dry_run_list_filter_and_deployment_controller(emulator):
    base = emulator.url
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default", "labels": {"app": "x"}},
              "spec": {"replicas": 3}}
    # a dry run answers with the object and stores nothing
    status, body = _request(base + "/apis/apps/v1/namespaces/default/deployments?dryRun=All", "POST", deploy)
    assert status == 200 and body["metadata"]["name"] == "d"
    assert emulator.get("deployments", "d", group="apps") is None
    # a real create: generation 1, not ready until the stand-in controller reports it
    emulator.set_ready("d", delay=0.5)
    assert _request(base + "/apis/apps/v1/namespaces/default/deployments", "POST", deploy)[0] == 200
    assert emulator.get("deployments", "d", group="apps")["metadata"]["generation"] == 1
    deadline = time.time() + 10
    while "status" not in emulator.get("deployments", "d", group="apps") and time.time() < deadline:
        time.sleep(0.1)
    status_now = emulator.get("deployments", "d", group="apps")["status"]
    assert status_now["availableReplicas"] == 3 and status_now["observedGeneration"] == 1
    # a spec patch bumps the generation: observedGeneration lags until the controller catches up
    _request(base + "/apis/apps/v1/namespaces/default/deployments/d", "PATCH", {"spec": {"replicas": 1}}, "application/merge-patch+json")
    patched = emulator.get("deployments", "d", group="apps")
    assert patched["metadata"]["generation"] == 2 and patched["status"]["observedGeneration"] == 1
    # label selectors filter lists
    _request(base + "/api/v1/namespaces/default/configmaps", "POST",
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"owner": "helm"}}})
    _request(base + "/api/v1/namespaces/default/configmaps", "POST",
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "labels": {"owner": "other"}}})
    status, listing = _request(base + "/api/v1/namespaces/default/configmaps?labelSelector=owner%3Dhelm")
    assert [item["metadata"]["name"] for item in listing["items"]] == ["a"]
    # core discovery says groupVersion v1 (Helm's REST mapper needs it)
    assert _request(base + "/api/v1")[1]["groupVersion"] == "v1"
