"""Shared helpers for our PyTorch reference scripts (run with Debian's python3-torch: /usr/bin/python3).

Fixtures are safetensors files written by `save_safetensors` below (our own writer: the Python safetensors package
is not in Debian) plus, where a test needs settings, a JSON file beside them.
"""
import json
import os
import struct

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "test", "fixtures")

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def fixture_path(*parts):
    path = os.path.join(FIXTURES, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in the safetensors layout (sorted names, 8-byte aligned header)."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""  # reshape: 0-d tensors cannot be viewed
        if t.dtype == torch.bool:
            data = t.to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf8")
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


_FROM_CODE = {v: k for k, v in _DTYPES.items()}


def load_safetensors(path):
    """Reads a safetensors file written by save_safetensors (or any little-endian one) into {name: tensor}."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        dtype = _FROM_CODE[e["dtype"]]
        t = torch.frombuffer(bytearray(body[lo:hi]), dtype=dtype) if hi > lo else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def classifier_outputs(model, x, grad_weight, grad_keys):
    """A classifier case's tensors: the input, the eval-mode output, one training-mode forward (batch statistics,
    running-statistic update) with the gradient of sum(y * grad_weight) at `grad_keys`, and the buffers after it.
    `grad_weight(shape)` draws the weight, so each script keeps its own random stream."""
    out = {"input": x}
    with torch.no_grad():
        model.eval()
        out["eval_output"] = model(x)
    model.train()
    y = model(x)
    out["train_output"] = y.detach()
    out["grad_weight"] = grad_weight(y.shape)
    (y * out["grad_weight"]).sum().backward()
    for k in grad_keys:
        out[f"grad.{k}"] = model.get_parameter(k).grad
    for k, v in model.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            out[f"after_train.{k}"] = v
    return out
