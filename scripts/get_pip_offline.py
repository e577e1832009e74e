"""Offline stand-in for get-pip.py, used by ansible-test.

ansible-test bootstraps pip in the virtual environments it creates for sanity
tests by running a cached get-pip.py
($HOME/.ansible/test/cache/get_pip_24_2.py) as
``python get_pip.py --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.
This machine reaches only the package registries, not the host get-pip.py comes
from, so scripts/setup.sh puts this file there instead. It does what get-pip.py
does: fetch the requested pip wheel from the package index (with the pip of the
interpreter that created the environment) and install it from that wheel.
"""
import glob
import os
import subprocess
import sys
import tempfile

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main():
    specs = [a for a in sys.argv[1:] if not a.startswith("-")] or ["pip"]
    options = [a for a in sys.argv[1:] if a.startswith("-") and a not in GET_PIP_ONLY_OPTIONS]
    with tempfile.TemporaryDirectory() as tmp:
        fetched = False
        for py in (getattr(sys, "_base_executable", None), "/usr/bin/python3", "python3"):
            if not py:
                continue
            rc = subprocess.call([py, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp] + specs,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if rc == 0 and glob.glob(os.path.join(tmp, "pip-*.whl")):
                fetched = True
                break
        if not fetched:
            sys.exit("get_pip_offline: could not fetch %s from the package index" % " ".join(specs))
        wheel = glob.glob(os.path.join(tmp, "pip-*.whl"))[0]
        # A pip wheel is importable: run pip from inside it to install itself.
        cmd = [sys.executable, os.path.join(wheel, "pip"), "install", "-q", "--no-index",
               "--find-links", tmp] + options + specs
        sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
