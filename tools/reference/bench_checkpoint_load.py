"""PyTorch side of bench/checkpoint-load.ts (run with Debian's torch: /usr/bin/python3).

  convert <file.safetensors> <file.pt>        re-save the benchmark weights with torch.save (float32 state dict)
  load <file.pt> --shapes-from <safetensors>  build a module with the same parameters (zeros), then time
                                              torch.load + load_state_dict; print {seconds, peak_rss_bytes, ...}

Each `load` runs in its own process so that VmHWM is the peak of that load alone.
"""
import argparse
import collections
import json
import struct
import time

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}


def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return 8 + n, h


def read_safetensors(path):
    start, h = header(path)
    sd = collections.OrderedDict()
    with open(path, "rb") as f:
        for name, e in h.items():
            b, end = e["data_offsets"]
            f.seek(start + b)
            sd[name] = torch.frombuffer(bytearray(f.read(end - b)), dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return sd


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def model_like(shapes):
    root = nn.Module()
    for key, shape in shapes:
        *path, name = key.split(".")
        m = root
        for p in path:
            if not hasattr(m, p):
                m.add_module(p, nn.Module())
            m = getattr(m, p)
        m.register_parameter(name, nn.Parameter(torch.zeros(shape)))
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("mode", choices=["convert", "load"])
    ap.add_argument("src")
    ap.add_argument("dst", nargs="?")
    ap.add_argument("--shapes-from")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "convert":
        torch.save(read_safetensors(args.src), args.dst)
        print(json.dumps({"ok": True}))
        return
    _, h = header(args.shapes_from)
    model = model_like([(k, e["shape"]) for k, e in h.items()])
    before = status("VmRSS")
    t0 = time.perf_counter()
    sd = torch.load(args.src)
    model.load_state_dict(sd)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": status("VmHWM"), "rss_before_bytes": before}))


if __name__ == "__main__":
    main()
