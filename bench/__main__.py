"""``python -m bench`` (``make bench``): run every benchmark of this directory with its defaults.

Each ``bench/*.py`` with a ``main()`` prints its tables and writes plots to ``bench/out/``;
``--quick`` is passed through for a short run.
"""
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def benchmarks():
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".py") and not name.startswith("_"):
            yield "bench." + name[:-3]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    failed = []
    for modname in benchmarks():
        mod = importlib.import_module(modname)
        if not hasattr(mod, "main"):
            continue
        print("== %s %s" % (modname, " ".join(argv)), flush=True)
        sys.argv = [modname] + argv
        try:
            rc = mod.main()
        except SystemExit as exc:
            rc = exc.code
        if rc:
            failed.append(modname)
    if failed:
        print("failed: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
