# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures every integration directory may use."""
import pytest

from tests.integration.hosts.site_kit import build_and_install_collection


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory):
    """A collections path holding only this checkout's collection, built and installed as a user does (once per
    session: the SSH-host phases and the fault suite run the same tarball)."""
    return build_and_install_collection(tmp_path_factory.mktemp("collection"))
