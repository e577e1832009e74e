# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""haproxy_runtime: pointing pre-declared server slots at a new address (``addresses``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import haproxy_runtime as hr
from tests.unit.plugins.module_utils.test_haproxy_runtime import STATE_HEADER, FakeHAProxy


class AddrHAProxy(FakeHAProxy):
    """The fake HAProxy plus 'set server <b>/<s> addr <ip> port <p>' (answered with HAProxy 2.6's sentence)."""

    def __init__(self, servers, **kw):
        super(AddrHAProxy, self).__init__(servers, **kw)
        self.addrs = dict((n, ["127.0.0.1", 8000 + i]) for i, n in enumerate(sorted(self.servers), 1))

    def _state(self):
        rows = ["1", STATE_HEADER]
        for i, (n, (w, adm, op)) in enumerate(sorted(self.servers.items()), 1):
            ip, port = self.addrs[n]
            rows.append("4 %s %d %s %s %d %d %d 100 2 15 3 2 6 0 0 0 - %d - 0 0 - - 0"
                        % (self.backend, i, n, ip, op, adm, w, port))
        return "\n".join(rows) + "\n\n"

    def _run(self, cmd):
        parts = cmd.split()
        if parts[:2] == ["set", "server"] and len(parts) > 3 and parts[3] == "addr" and cmd not in self.reject:
            srv = parts[2].split("/")[1]
            old = list(self.addrs[srv])
            self.addrs[srv] = [parts[4], int(parts[6])]
            return ("IP changed from '%s' to '%s', port changed from '%d' to '%s' by 'stats socket command'.\n\n"
                    % (old[0], parts[4], old[1], parts[6]))
        return super(AddrHAProxy, self)._run(cmd)


def slots():
    return AddrHAProxy({"blue": [100, 0, 2], "green": [0, 1, 2]})


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    (" 10.1.2.3:1 ", ("10.1.2.3", 1)),
    ("[::1]:65535", ("::1", 65535)),
])
def test_parse_server_address(text, expected):
    assert hr.parse_server_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host.example:80", "1.2.3:80",
                                  "127.0.0.1:80;shutdown sessions", 8080, None])
def test_parse_server_address_rejects_with_field_value_and_format(text):
    with pytest.raises(hr.ValidationError) as exc:
        hr.parse_server_address(text, "addresses.green")
    assert "addresses.green" in exc.value.msg and repr(text) in exc.value.msg and "127.0.0.1:8080" in exc.value.msg


def test_validate_request_reports_bad_addresses_together():
    with pytest.raises(hr.ValidationError) as exc:
        hr.validate_request("app", addresses={"green": "nowhere", "bad name;": "127.0.0.1:80"})
    assert len(exc.value.details["errors"]) == 2


def test_addresses_must_be_a_mapping():
    with pytest.raises(hr.ValidationError) as exc:
        hr.validate_request("app", addresses=["127.0.0.1:80"])
    assert "addresses" in exc.value.msg


def test_unknown_server_in_addresses_is_refused_before_sending():
    f = slots()
    with pytest.raises(hr.ValidationError) as exc:
        hr.change_traffic(None, "app", client=f, addresses={"purple": "127.0.0.1:9000"})
    assert "addresses.purple" in exc.value.msg and "blue, green" in exc.value.msg
    assert not any("set " in ln for ln in f.lines)


def test_register_slot_addr_first_then_weight_state_in_one_session_then_idempotent():
    f = slots()
    res = hr.change_traffic(None, "app", client=f, addresses={"green": "127.0.0.1:9107"}, weights={"green": 0},
                            states={"green": "ready"})
    assert res["changed"]
    assert res["commands"] == ["set server app/green addr 127.0.0.1 port 9107", "set server app/green state ready"]
    assert f.addrs["green"] == ["127.0.0.1", 9107] and f.servers["green"][1] == 0
    assert res["before"]["green"]["port"] == 8002 and res["after"]["green"]["port"] == 9107
    assert res["after"]["green"]["address"] == "127.0.0.1"
    assert len([ln for ln in f.lines if "set server" in ln]) == 1
    again = hr.change_traffic(None, "app", client=f, addresses={"green": "127.0.0.1:9107"}, weights={"green": 0},
                              states={"green": "ready"})
    assert not again["changed"] and again["commands"] == []


def test_check_mode_predicts_the_address_and_sends_nothing():
    f = slots()
    res = hr.change_traffic(None, "app", client=f, addresses={"green": "127.0.0.1:9107"}, check_mode=True)
    assert res["changed"] and res["after"]["green"]["port"] == 9107 and f.addrs["green"][1] == 8002
    assert not any("set " in ln for ln in f.lines)


def test_rejected_addr_restores_the_other_changes():
    f = slots()
    f.reject["set server app/green addr 127.0.0.1 port 9107"] = "Could not make server 'green' use port 9107"
    with pytest.raises(hr.ApplyError) as exc:
        hr.change_traffic(None, "app", client=f, addresses={"green": "127.0.0.1:9107"}, states={"green": "ready"})
    assert "Could not make server" in exc.value.msg
    assert f.servers["green"][1] == 1 and exc.value.details["restored"] is True


def test_restore_puts_a_changed_address_back():
    f = slots()
    f.reject["set server app/blue weight 50"] = "Backend is using a static LB algorithm"
    with pytest.raises(hr.ApplyError) as exc:
        hr.change_traffic(None, "app", client=f, addresses={"green": "127.0.0.1:9107"}, weights={"blue": 50})
    assert exc.value.details["restored"] is True and f.addrs["green"] == ["127.0.0.1", 8002]
