# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The fast abort of the judging modules (canary_judge, metric_gate): module_utils/fast_abort.py.
    DOCUMENTATION = r"""
options:
  on_fail:
    description:
      - The fast abort - a traffic change the module makes itself, in the same process, the moment it decides
        C(fail), before the task returns (one HAProxy runtime session of about 2 ms; see RV(on_fail)).
      - M(stagegate.rollout.canary_judge) also makes it when a look cannot be made once the looks have begun
        (the metrics unreadable within the time left, a counter reset with C(on_counter_reset=error)) - it fails
        closed, and the failed result carries RV(on_fail).
      - Run the task where the HAProxy runtime socket is (C(delegate_to) the load-balancer host).
      - On a cluster, O(on_fail.kubernetes) instead - the canary weight 0 in one JSON patch of the HTTPRoute (or
        the canary Ingress of ingress-nginx) with the Python C(kubernetes) client (in C(requirements.txt); needed
        where the module runs). The connection is made before the first look, so the abort is two requests.
      - Either O(on_fail.socket), O(on_fail.backend) and O(on_fail.weights), or O(on_fail.kubernetes).
      - The options are checked before anything is read. A failed write does not fail the task; it is reported in
        RV(on_fail), and the rollback that follows writes the weights again.
      - Not written in check mode.
    type: dict
    suboptions:
      socket:
        description: HAProxy runtime API address - a UNIX socket path, C(unix@/path), or C(host:port) / C(ipv4@host:port).
        type: str
      backend:
        description: The backend whose servers get O(on_fail.weights).
        type: str
      weights:
        description: Server name to weight (0-256) - the weights that give the canary no traffic.
        type: dict
      kubernetes:
        description: The router of a cluster whose canary weight goes to 0 (and the stable one to 100).
        type: dict
        suboptions:
          router:
            description: V(gateway-api) (an HTTPRoute's backend weights) or V(ingress-nginx) (the canary Ingress' C(canary-weight)).
            type: str
            choices: [gateway-api, ingress-nginx]
            default: gateway-api
          namespace:
            description: The namespace of the router object.
            type: str
            required: true
          name:
            description: The HTTPRoute's name (gateway-api).
            type: str
            required: true
          stable:
            description: The stable backend (Service) name.
            type: str
            required: true
          canary:
            description: The canary backend (Service) name; with ingress-nginx also the canary Ingress' name.
            type: str
            required: true
          kubeconfig:
            description: A kubeconfig file (default - C($KUBECONFIG), C(~/.kube/config) or the in-cluster account).
            type: path
          context:
            description: The kubeconfig context.
            type: str
          host:
            description: The API server URL (with O(on_fail.kubernetes.api_key) instead of a kubeconfig).
            type: str
          api_key:
            description: A bearer token.
            type: str
          ca_cert:
            description: The CA bundle of the API server.
            type: path
          validate_certs:
            description: Verify the API server's certificate.
            type: bool
            default: true
      timeout:
        description: Seconds for each runtime session.
        type: float
        default: 2.0
"""
