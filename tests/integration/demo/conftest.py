"""Fixtures for the demo tests: a real nats-server with JetStream and real service processes."""
import pytest

from demo.stack.ports import port_open
from demo.testkit import Service, start_nats


@pytest.fixture
def nats_url(tmp_path):
    proc, url = start_nats(tmp_path)
    yield url
    proc.stop()


@pytest.fixture
def services(tmp_path):
    started = []

    def make(version, env, **kw):
        svc = Service(tmp_path, version, env, **kw)
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()
    for svc in started:
        assert not port_open(svc.port), "service %s still listening" % svc.version
