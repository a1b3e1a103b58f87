"""Regenerates every PyTorch reference fixture: runs each tools/reference/*_fixtures.py (found by name) in its own
process, so one failing script does not stop the others, and exits non-zero if any failed.

Usage: /usr/bin/python3 tools/reference/make_all.py [name ...]   (names select scripts: `ops` runs ops_fixtures.py)
`npm run fixtures` runs it with every script.
"""
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SUFFIX = "_fixtures.py"


def scripts(selected):
    found = {os.path.basename(p)[: -len(SUFFIX)]: p for p in sorted(glob.glob(os.path.join(HERE, "*" + SUFFIX)))}
    unknown = [s for s in selected if s not in found]
    if unknown:
        sys.exit(f"make_all: no script for {', '.join(unknown)} (have: {', '.join(found)})")
    return [(n, p) for n, p in found.items() if not selected or n in selected]


def main():
    try:
        import torch  # noqa: F401  (checked here so the message is about the interpreter, not each script)
    except ImportError:
        sys.exit(f"make_all: {sys.executable} has no torch; run Debian's /usr/bin/python3 (python3-torch)")
    failed = []
    for name, path in scripts(sys.argv[1:]):
        start = time.time()
        print(f"== {name}: {os.path.relpath(path, ROOT)}", flush=True)
        rc = subprocess.call([sys.executable, path], cwd=HERE)
        print(f"== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.time() - start:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        sys.exit(f"make_all: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
