"""Shared pieces of the PyTorch benchmark baselines. bench/*.ts starts a baseline as a child process (bench/common.ts
PythonBaseline) with --threads set to its own libtorch thread count and OPENBLAS_CORETYPE in the environment; the
baseline sets up its cases and calls serve(), which times one call of a case for each case name read from stdin.

Standalone check of a baseline: printf 'case\\ncase\\n' | /usr/bin/python3 tools/reference/bench_engine.py --threads 2
"""
import argparse
import json
import os
import sys
import time

import torch


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    if extra:
        extra(p)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    return a


def randomise_(module, std=0.02):
    """Every parameter ~ N(0, std), as the TS side does: DiT's adaLN-Zero init would make every block an identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, std)


def freeze_(module):
    """Parameters stop requiring gradients: backward then runs to the input only (latent refinement)."""
    for p in module.parameters():
        p.requires_grad_(False)


def serve(cases, **extra_env):
    """Prints {"ready": [names], "env": {...}}, then for each case name read from stdin [wall, cpu] seconds of one call
    of it (cpu: user + system time of every thread of the process)."""
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        **extra_env,
    }
    print(json.dumps({"ready": list(cases), "env": env}), flush=True)
    for line in sys.stdin:
        fn = cases[line.strip()]
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        t1, c1 = time.perf_counter(), time.process_time()
        print(json.dumps([t1 - t0, c1 - c0]), flush=True)
