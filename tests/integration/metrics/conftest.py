# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the metric gate tests: a real exporter process and a real Prometheus (1 s scrape, loopback)."""
import os

import pytest

from demo.stack.ports import port_open
from demo.stack.prometheus import Prometheus

from gatekit import HEALTHY, Exporter, wait_for_data
from tests.integration.playbook_run import run_tasks


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One exporter ('app', service=shop, versions v1 and v2) and one 'doomed' exporter (service=doomed), both
    scraped every second by a real Prometheus."""
    work = str(tmp_path_factory.mktemp("metrics"))
    app = Exporter(work, "app", {"v1": HEALTHY, "v2": dict(HEALTHY, error_rate=0.01)}).start()
    doomed = Exporter(work, "doomed", {"v1": HEALTHY}).start()
    prom = Prometheus(os.path.join(work, "prometheus"),
                      {"app": [(app.target, {"service": "shop"})], "doomed": [(doomed.target, {"service": "doomed"})]})
    prom.start()
    try:
        for svc in ("shop", "doomed"):
            wait_for_data(prom.url, 'sum(rate(app_requests_total{service="%s"}[3s])) > 0' % svc)
        yield {"prometheus": prom, "app": app, "doomed": doomed, "work": work}
    finally:
        prom.stop()
        app.stop()
        doomed.stop()
        for port in (prom.port, app.port, doomed.port):
            assert not port_open(port), "port %d still open" % port


@pytest.fixture
def playbook(tmp_path):
    """Run a play of ``tasks`` on localhost through ansible-playbook -> PlaybookRun (tests/integration/playbook_run.py);
    ``verbose``: at -vvv with the default callback (text only, nothing parsed)."""

    def run(tasks, check=False, verbose=False, timeout=180):
        return run_tasks(tasks, tmp_path, check=check, verbosity=3 if verbose else 0,
                         callback="default" if verbose else "json", timeout=timeout)

    return run
