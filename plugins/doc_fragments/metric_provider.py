# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The metric provider options (plugins/module_utils/metric_providers.py, PROVIDER_OPTIONS).
    DOCUMENTATION = r"""
options:
  provider:
    description:
      - Where metrics are read.
      - V(prometheus) queries the Prometheus HTTP API (C(/api/v1/query), C(/api/v1/query_range)) with PromQL.
      - V(prometheus_text) scrapes C(/metrics) endpoints (Prometheus text exposition format) directly, with no
        Prometheus server, and evaluates a subset of PromQL on the scrapes - numbers, selectors with label
        matchers, C(+ - * /), C(sum/min/max/avg/count) with C(by)/C(without), C(rate)/C(irate)/C(increase)
        over C([window]), C(histogram_quantile), C(vector(n)), C(or), C(on(\))/C(ignoring(\)) - so the same query
        works with both. C(rate(m[60s]\)) compares two scrapes taken 60 s apart (the first such query of a
        run waits for the second scrape; later ones reuse the scrape history).
      - V(http_json) GETs a JSON document and evaluates a JMESPath expression (the query) on it.
      - Can be set for the whole action group with C(module_defaults) (C(group/stagegate.rollout.metrics)).
    type: dict
    suboptions:
      type:
        description: The provider type.
        type: str
        choices: [prometheus, prometheus_text, http_json]
        default: prometheus
      url:
        description:
          - V(prometheus) - the server's base URL, for example V(http://127.0.0.1:9090).
          - Userinfo in the URL (C(http://user:pass@host)) is used for basic authentication and treated as a secret
            (C(no_log), removed from every message), as in O(provider.targets[].url).
          - V(prometheus_text) - the C(/metrics) URL to scrape (or use O(provider.targets)).
          - V(http_json) - the URL of the JSON document.
        type: str
      targets:
        description:
          - V(prometheus_text) only - several endpoints scraped together, each with extra labels (as Prometheus
            target labels), for example canary and stable instances with a C(track) label.
          - Every scraped series also gets an C(instance) label (host:port) unless a label sets it.
        type: list
        elements: dict
        suboptions:
          url:
            description: The C(/metrics) URL.
            type: str
            required: true
          labels:
            description: Labels added to every series scraped from this URL.
            type: dict
      labels:
        description: V(prometheus_text) only - labels added to every scraped series (for example C(job)).
        type: dict
      token:
        description: Bearer token sent as C(Authorization) header. Never logged, removed from every message.
        type: str
      username:
        description: User name for HTTP basic authentication.
        type: str
      password:
        description: Password for HTTP basic authentication. Never logged.
        type: str
      ca_path:
        description: PEM file of the CA certificates that sign the server's TLS certificate.
        type: path
      validate_certs:
        description: Verify TLS certificates. Turn off only for testing.
        type: bool
        default: true
      use_proxy:
        description: Use the proxy of the environment (C(https_proxy) and so on).
        type: bool
        default: true
      timeout:
        description: Seconds to wait for one HTTP response (connect and read).
        type: float
        default: 10
      retries:
        description:
          - Retries after a connection error, a timeout or an HTTP 5xx answer (0 to 10). Rejected queries
            (HTTP 4xx) are not retried; a 5xx still answered after the retries makes the provider unreachable
            (the status is in the error), it is never taken as a result.
          - Without a deadline, the longest a query can take is about (O(provider.retries) + 1) x
            O(provider.timeout) plus the backoff.
        type: int
        default: 2
      retry_backoff:
        description: Seconds before the first retry; doubled before each further retry (at most 30 s).
        type: float
        default: 0.5
      deadline:
        description:
          - Seconds one evaluation may take - all the checks of a gate round, all the queries of a judge's look or
            of a M(stagegate.rollout.metric_query) task.
          - Every HTTP attempt waits at most the time left, no retry starts after it, and when it passes the
            queries not answered fail closed with an error naming the budget.
          - M(stagegate.rollout.metric_gate) (its O(stagegate.rollout.metric_gate#module:timeout), default 30 s) and
            M(stagegate.rollout.canary_judge) (the time left of its O(stagegate.rollout.canary_judge#module:timeout))
            set their own budget; the smaller applies.
          - Default none - only O(provider.timeout) x attempts bounds a query.
        type: float
notes:
  - Reads the metrics from where the task runs (the target host, or the host of C(delegate_to)); the provider's
    URL must be reachable from there.
requirements:
  - Python 3 standard library only, but for the V(http_json) provider - C(jmespath) on the host the task runs on.
"""
