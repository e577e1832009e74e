"""Offline stand-in for https://bootstrap.pypa.io/get-pip.py used by ansible-test.

ansible-test downloads get-pip.py to bootstrap pip in the virtual environments
it creates for sanity tests. This machine reaches only the package registries,
so scripts/setup.sh places this file where ansible-test caches the download
($HOME/.ansible/test/cache/get_pip_24_2.py). It installs pip from the package
index the same way get-pip.py would: by running the pip wheel found through
the interpreter that created the caller's environment.
"""
import glob
import os
import subprocess
import sys
import tempfile


def main():
    args = [a for a in sys.argv[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        # Use the pip of the base interpreter to download a pip wheel
        base = getattr(sys, "_base_executable", None) or sys.executable
        candidates = [base, "/usr/bin/python3", "python3"]
        for py in candidates:
            rc = subprocess.call([py, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, "pip"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if rc == 0 and glob.glob(os.path.join(tmp, "pip-*.whl")):
                break
        wheels = glob.glob(os.path.join(tmp, "pip-*.whl"))
        if not wheels:
            sys.exit("get_pip_offline: could not fetch a pip wheel from the package index")
        wheel = wheels[0]
        # A wheel is importable: run pip from inside it to install itself.
        cmd = [sys.executable, os.path.join(wheel, "pip"), "install", "-q", "--no-index", wheel] + \
              [a for a in args if a.startswith("--")]
        sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
