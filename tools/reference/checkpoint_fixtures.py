"""Checkpoint-reader fixtures: small torch.save files of every shape the PyTorch world produces, with the expected
tensors as safetensors beside them (test/fixtures/io/).

Run with Debian's torch: /usr/bin/python3 tools/reference/checkpoint_fixtures.py

Each <name>.pt has <name>.expected.safetensors holding exactly the state dict our loader must return (views
materialised contiguous, keys flattened / unwrapped / prefix-stripped as documented in src/io/checkpoint.ts).
Hand-made archive variants (ZIP64, deflated, big-endian) are rewritten from a torch.save file with zipfile;
torch.load must read the ZIP64 and deflated ones too, which checks that they are valid archives. The malicious
files would create a marker file in /tmp if anything ran them; the tests assert the marker never appears.
"""
import argparse
import collections
import copy
import functools
import io
import os
import pathlib
import pickle
import struct
import zipfile

import numpy as np
import torch
import torch.nn as nn

from common import fixture_path, save_safetensors

MARKER_SYSTEM = "/tmp/cao2_ckpt_marker_system"
MARKER_EVAL = "/tmp/cao2_ckpt_marker_eval"


def out(name):
    return fixture_path("io", name)


class TinyNet(nn.Module):
    """Conv + BatchNorm (float running stats, int64 num_batches_tracked) + Linear: a typical torchvision-like state."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def tiny_state(seed):
    torch.manual_seed(seed)
    net = TinyNet()
    with torch.no_grad():
        net.bn.running_mean.normal_()
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.num_batches_tracked.fill_(7)
    return net, net.state_dict()


def save_pair(name, obj, expected, **kw):
    torch.save(obj, out(name + ".pt"), **kw)
    save_safetensors(out(name + ".expected.safetensors"), {k: v.contiguous() for k, v in expected.items()})


class SystemPayload:
    def __reduce__(self):
        return (os.system, ("touch " + MARKER_SYSTEM,))


class EvalPayload:
    def __reduce__(self):
        return (eval, ("open(%r, 'w').write('ran')" % MARKER_EVAL,))


def rewrite(src, dst, compression=zipfile.ZIP_STORED, transform=None, extra=None):
    """Copies a torch.save archive entry by entry, optionally transforming data and adding entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if transform:
                data = transform(info.filename, data)
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compression)
        for name, data in (extra or {}).items():
            zout.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compression)


def make_zip64(src, dst):
    """Rewrites a stored zip archive with ZIP64 central records and end-of-central-directory (as archives over 4 GB
    have): every size and offset in the 32-bit fields saturated to 0xFFFFFFFF and carried in the ZIP64 extra field."""
    with zipfile.ZipFile(src) as z:
        infos = [(i.filename, z.read(i.filename), i.CRC) for i in z.infolist()]
    body = io.BytesIO()
    central = io.BytesIO()
    for name, data, crc in infos:
        offset = body.tell()
        n = name.encode()
        # Local header: sizes saturated, real ones in a ZIP64 extra field (as torch's miniz writes for big entries).
        lextra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        body.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(n), len(lextra)))
        body.write(n + lextra + data)
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                                  len(n), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF))
        central.write(n + cextra)
    cd_offset = body.tell()
    cd = central.getvalue()
    zip64_eocd = body.tell() + len(cd)
    tail = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(infos), len(infos), len(cd), cd_offset)
    tail += struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd, 1)
    tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(body.getvalue() + cd + tail)


def main():
    torch.manual_seed(0)
    net, sd = tiny_state(0)

    # 1. A plain state dict (an OrderedDict with _metadata, as nn.Module.state_dict() returns).
    save_pair("plain", sd, sd)

    # 2. A training checkpoint: the state dict beside an epoch, optimizer state, argparse args and numpy scalars.
    trained = copy.deepcopy(net)  # the optimizer steps a copy: sd must stay what plain.pt holds
    opt = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
    for p in trained.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    args = argparse.Namespace(lr=0.1, model="tiny", epochs=3, data=pathlib.PosixPath("/data/train"), betas=(0.9, 0.99))
    wrapped = {"model": sd, "epoch": 3, "optimizer": opt.state_dict(), "args": args,
               "best_acc": np.float64(0.875), "steps": np.int64(1200)}
    save_pair("wrapped", wrapped, sd)

    # 3. A DiT-style training checkpoint with two state dicts: auto-unwrap takes "ema" (what DiT and Minimax sample
    #    with), "model" picks the other. Two state dicts neither of which is "ema": auto must refuse to guess.
    _, ema = tiny_state(1)
    save_pair("model_and_ema", {"model": sd, "ema": ema, "args": args}, ema)
    save_pair("two_state_dicts", {"model": sd, "state_dict": ema}, sd)

    # 4. DataParallel: every key under "module.".
    save_pair("dataparallel", nn.DataParallel(net).state_dict(), sd)

    # 5. Views of storages: shared storage, storage offsets, non-contiguous strides, a stride-0 expansion, and a
    #    transposed weight saved directly.
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    views = {
        "base": base,
        "row2": base[2],
        "col3": base[:, 3],
        "transposed": base.t(),
        "strided": base[1:4, 2:8:2],
        "expanded": base[5].expand(3, 10),
        "weight_t": torch.randn(5, 4).t(),
    }
    save_pair("views", views, views)

    # 6. Every dtype a state dict can hold.
    g = torch.Generator().manual_seed(3)
    dtypes = {
        "f64": torch.randn(3, 2, generator=g, dtype=torch.float64),
        "f32": torch.randn(4, generator=g),
        "f16": torch.randn(2, 3, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "i64": torch.tensor([-(2 ** 40), 7, 2 ** 53 - 1]),
        "i32": torch.tensor([-5, 6], dtype=torch.int32),
        "i16": torch.tensor([-300, 301], dtype=torch.int16),
        "i8": torch.tensor([-7, 8], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    save_pair("dtypes", dtypes, dtypes)

    # 7. Nested dicts (flattened with dots) and a Parameter (rebuilt with _rebuild_parameter).
    nested = {"encoder": {"conv": {"weight": torch.randn(2, 2)}, "bias": torch.randn(2)},
              "decoder": collections.OrderedDict(w=nn.Parameter(torch.randn(3)))}
    save_pair("nested", nested, {"encoder.conv.weight": nested["encoder"]["conv"]["weight"],
                                 "encoder.bias": nested["encoder"]["bias"],
                                 "decoder.w": nested["decoder"]["w"].detach()})

    # 7b. A dict nested 100 levels deep: refused rather than walked.
    deep = {"w": torch.zeros(1)}
    for _ in range(100):
        deep = {"d": deep}
    torch.save(deep, out("deep.pt"))

    # 8. A whole pickled model (torch.save(model)): read as its parameters and persistent buffers.
    save_pair("whole_model", net, sd)

    # 9. Pickle protocol 4 (STACK_GLOBAL, FRAME, MEMOIZE).
    torch.save(sd, out("protocol4.pt"), pickle_protocol=4)

    # 10. Legacy (non-zip) format: refused with conversion advice.
    torch.save(sd, out("legacy.pt"), _use_new_zipfile_serialization=False)

    # 10b. A TorchScript archive (torch.jit.save): refused with advice, it is not a torch.save checkpoint.
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), out("torchscript.pt"))

    # 11. Malicious pickles: os.system and builtins.eval through __reduce__, and an unknown callable.
    torch.save({"model": sd, "payload": SystemPayload()}, out("malicious_system.pt"))
    torch.save({"model": sd, "payload": EvalPayload()}, out("malicious_eval.pt"))
    torch.save({"model": sd, "schedule": functools.partial(max, 1)}, out("unknown_call.pt"))
    with open(out("malicious_raw.pkl"), "wb") as f:
        pickle.dump(SystemPayload(), f, protocol=2)

    # 12. Hand-made archive variants of plain.pt.
    plain = out("plain.pt")
    make_zip64(plain, out("zip64.pt"))
    rewrite(plain, out("deflated.pt"), compression=zipfile.ZIP_DEFLATED)
    prefix = zipfile.ZipFile(plain).namelist()[0].split("/")[0]
    itemsize = {}
    pkl = zipfile.ZipFile(plain).read(prefix + "/data.pkl")
    # Storage keys -> element sizes, from the tensors themselves (one storage per tensor in a state dict).
    for i, t in enumerate(sd.values()):
        itemsize[str(i)] = t.element_size()

    def to_big_endian(name, data):
        key = name.split("/")[-1]
        if "/data/" in name:
            return np.frombuffer(data, dtype="u%d" % itemsize[key]).byteswap().tobytes() if itemsize[key] > 1 else data
        return data

    rewrite(plain, out("bigendian.pt"), transform=to_big_endian, extra={prefix + "/byteorder": b"big"})
    assert len(pkl) > 0

    # Archives that torch itself must read (checks that the rewrites are valid zip files); all hold plain.pt's values.
    for name in ("zip64.pt", "deflated.pt", "protocol4.pt", "whole_model.pt"):
        got = torch.load(out(name))
        got = got.state_dict() if isinstance(got, nn.Module) else got
        assert all(torch.equal(got[k], v) for k, v in sd.items()), name
    print("wrote", sorted(f for f in os.listdir(fixture_path("io", "x")[:-2]) if not f.startswith(".")))


if __name__ == "__main__":
    main()
