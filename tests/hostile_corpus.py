"""Hostile files, generated at run time (never committed), for the fuzz tests and
benchmarks/bench_hostile.py. Every `make_<case>(folder, ...)` writes one file into `folder` and
returns its path; sizes are parameters so that tests use small but still hostile versions and the
benchmark the full sizes of issue 18.

Checkpoints: a zip entry that inflates far beyond its file, a storage viewed with stride 0, one
storage aliased behind hundreds of weights, safetensors offsets past the file, shared-list
"billion laughs" and deep nesting inside pickled metadata. YAML: alias bombs, deep nesting,
control bytes, Latin-1 text, recursive aliases, a grid of 10^8 points. Bring-your-own-model
inputs (Hugging Face directories and configs): a deeply nested config.json, a config of a billion
layers, a shard index nested past any parser, a compressed-tensors layer whose declared dense shape
is far larger than its bitmask.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import torch

# ----------------------------------------------------------------------------- torch zip helpers


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    """Pickles exactly like a float32 torch tensor of `size`/`stride` over storage `storage`."""

    def __init__(self, storage: _Storage, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.size, self.stride = storage, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, self.size, self.stride, False, collections.OrderedDict()))


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def _torch_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _write_torch_zip(path: Path, pkl: bytes, records: dict[str, bytes] | None = None, *,
                     deflated: dict[str, int] | None = None) -> Path:
    """A torch-style zip: archive/data.pkl, byteorder, version, data/<key> records.
    `deflated` maps record keys to a number of zero bytes written compressed (a zip bomb)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        for key, data in (records or {}).items():
            z.writestr(f"archive/data/{key}", data)
        for key, nbytes in (deflated or {}).items():
            info = zipfile.ZipInfo(f"archive/data/{key}")
            info.compress_type = zipfile.ZIP_DEFLATED
            chunk = bytes(1 << 20)
            with z.open(info, "w", force_zip64=True) as fh:
                for _ in range(nbytes >> 20):
                    fh.write(chunk)
    return path


def _splice_pickle(path: Path, sentinel: str, replacement: bytes) -> Path:
    """Replace the BINUNICODE opcode of `sentinel` in a torch zip's data.pkl by raw opcodes."""
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    name = next(n for n in entries if n.endswith("/data.pkl"))
    raw = sentinel.encode()
    opcode = b"X" + struct.pack("<I", len(raw)) + raw
    assert entries[name].count(opcode) == 1
    entries[name] = entries[name].replace(opcode, replacement)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for n, data in entries.items():
            z.writestr(n, data)
    return path


def _small_state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"fc1.weight": torch.randn(16, 32, generator=g), "fc2.weight": torch.randn(8, 16, generator=g)}


# ----------------------------------------------------------------------------- checkpoints


def make_zip_bomb(folder: Path, *, inflated_bytes: int = 1 << 30) -> Path:
    """A ~1 MB torch zip whose one storage record inflates to `inflated_bytes` of zeros."""
    side = int((inflated_bytes // 4) ** 0.5)
    pkl = _torch_pickle({"fc.weight": _Tensor(_Storage("0", side * side), (side, side), (side, 1))})
    return _write_torch_zip(folder / "zip_bomb.pt", pkl, deflated={"0": side * side * 4})


def make_stride0_view(folder: Path, *, side: int = 20000) -> Path:
    """A tiny file: one 1-element storage viewed as side x side with stride 0."""
    path = folder / "stride0.pt"
    torch.save({"fc.weight": torch.ones(1).expand(side, side)}, path)
    return path


def make_aliased_storage(folder: Path, *, side: int = 1024, aliases: int = 600) -> Path:
    """One side x side float storage (4 MB at 1024) behind `aliases` differently named weights."""
    base = torch.randn(side, side, generator=torch.Generator().manual_seed(0))
    path = folder / "aliased.pt"
    torch.save({f"layer{i}.weight": base.view(side, side) for i in range(aliases)}, path)
    return path


def make_safetensors_offsets(folder: Path, *, side: int = 100000) -> Path:
    """A safetensors header declaring a side x side float tensor that the 16-byte body cannot hold."""
    header = json.dumps({"fc.weight": {"dtype": "F32", "shape": [side, side],
                                       "data_offsets": [0, side * side * 4]}}).encode()
    path = folder / "offsets.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    return path


def shared_list_bomb(*, width: int = 10, levels: int = 9) -> list:
    """width**levels leaves behind only `levels` distinct lists (a pickled billion laughs)."""
    node: list = ["lol"] * width
    for _ in range(levels - 1):
        node = [node] * width
    return node


def make_srigl_laughs(folder: Path, *, width: int = 10, levels: int = 9) -> Path:
    """An SRigL-layout checkpoint whose pruner hyperparameters are a shared-list bomb."""
    sd = _small_state_dict()
    path = folder / "srigl_laughs.pt"
    torch.save({"model": sd, "pruner": {"hyperparams": shared_list_bomb(width=width, levels=levels),
                                        "backward_masks": [None, None]},
                "epoch": 3, "step": 10}, path)
    return path


def make_chase_laughs(folder: Path, *, width: int = 10, levels: int = 9) -> Path:
    """A Chase-layout checkpoint whose `arch` entry is a shared-list bomb."""
    path = folder / "chase_laughs.pt"
    torch.save({"epoch": 1, "arch": shared_list_bomb(width=width, levels=levels),
                "state_dict": _small_state_dict()}, path)
    return path


def make_deep_meta(folder: Path, *, depth: int = 100_000, layout: str = "chase") -> Path:
    """A checkpoint whose metadata holds a list nested `depth` deep (built without recursion):
    Chase layout (`arch`) or native layout (`meta`)."""
    path = folder / f"deep_meta_{layout}.pt"
    if layout == "native":
        import numpy as np

        from simsparse.masks import native

        native.save(path, masks={"fc.weight": np.ones((8, 16), dtype=bool)}, meta={"notes": "DEEP-SENTINEL"})
    else:
        torch.save({"epoch": 1, "arch": "DEEP-SENTINEL", "state_dict": _small_state_dict()}, path)
    return _splice_pickle(path, "DEEP-SENTINEL", b"]" * depth + b"a" * (depth - 1))


def make_legacy_huge_storage(folder: Path, *, numel: int = 1 << 40) -> Path:
    """A legacy (non-zip) torch pickle whose storage header claims `numel` floats."""
    path = folder / "legacy_huge.pt"
    torch.save({"fc.weight": torch.ones(4, 4)}, path, _use_new_zipfile_serialization=False)
    data = bytearray(path.read_bytes())
    marker = struct.pack("<q", 16)  # the storage's element count, written just before its bytes
    at = data.rfind(marker, 0, len(data) - 64)
    data[at:at + 8] = struct.pack("<q", numel)
    path.write_bytes(bytes(data))
    return path


def make_bad_geometry(folder: Path, *, op: dict) -> Path:
    """A native checkpoint whose geometry holds `op` (e.g. negative shapes, unknown kinds)."""
    import numpy as np

    from simsparse.masks import native
    from simsparse.records import Op, Workload

    mask = np.ones((8, 16), dtype=bool)
    path = folder / "bad_geometry.pt"
    native.save(path, masks={"fc.weight": mask},
                geometry=Workload(name="w", input_shape=(16,), ops=(Op(name="fc.weight", kind="linear",
                                                                        weight_shape=(8, 16)),)))
    payload = torch.load(path, weights_only=True)
    payload["geometry"]["ops"][0].update(op)
    torch.save(payload, path)
    return path


# ----------------------------------------------------------------------------- YAML

SWEEP_HEAD = "version: 1\nname: hostile\narchs: [systolic_32x32]\n"
SWEEP_TAIL = "inputs:\n  - {workload: mlp, patterns: [dense]}\nbatches: [1]\n"


def yaml_laughs(*, width: int = 9, levels: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def make_sweep_laughs(folder: Path) -> Path:
    path = folder / "laughs.yaml"
    path.write_text(SWEEP_HEAD + "grid:\n  " + yaml_laughs().replace("\n", "\n  ").rstrip() + "\n" + SWEEP_TAIL)
    return path


def deep_yaml(depth: int = 10000) -> str:
    return "[" * depth + "]" * depth


def make_deep_yaml(folder: Path, name: str, *, head: str = "version: 1\n", key: str = "name",
                   depth: int = 10000) -> Path:
    path = folder / name
    path.write_text(head + f"{key}: " + deep_yaml(depth) + "\n")
    return path


def make_control_bytes_sweep(folder: Path) -> Path:
    path = folder / "nul.yaml"
    path.write_bytes((SWEEP_HEAD + SWEEP_TAIL).encode().replace(b"name: hostile", b"name: host\x00ile\x07"))
    return path


def make_latin1_sweep(folder: Path) -> Path:
    path = folder / "latin1.yaml"
    path.write_bytes(("# r\u00e9sultats du caf\u00e9\n" + SWEEP_HEAD + SWEEP_TAIL).encode("latin-1"))
    return path


def make_recursive_alias_sweep(folder: Path) -> Path:
    path = folder / "recursive.yaml"
    path.write_text(SWEEP_HEAD + "grid:\n  memory.dram_bytes_per_clk: &a [1, *a]\n" + SWEEP_TAIL)
    return path


def make_huge_grid_sweep(folder: Path, *, keys: int = 8, values: int = 10) -> Path:
    """A ~1 kB sweep file whose grid has values**keys points."""
    grid = "".join(f"  memory.k{i}: [{', '.join(str(v + 1) for v in range(values))}]\n" for i in range(keys))
    path = folder / "huge_grid.yaml"
    path.write_text(SWEEP_HEAD + "grid:\n" + grid + SWEEP_TAIL)
    return path


def make_sweep(folder: Path, *, name: str = "s", grid: str = "  memory.dram_bytes_per_clk: [8, 32]\n",
               patterns: str = "[dense, '2:4']", batches: str = "[1]", archs: str = "[systolic_32x32]",
               file: str = "sweep.yaml") -> Path:
    path = folder / file
    path.write_text(f"version: 1\nname: {name}\narchs: {archs}\ngrid:\n{grid}"
                    f"inputs:\n  - {{workload: mlp, patterns: {patterns}}}\nbatches: {batches}\n")
    return path


# ----------------------------------------------------------------------------- Hugging Face (BYOM)

LLAMA_TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 256}


def make_hf_config(folder: Path, *, name: str = "cfg", **fields) -> Path:
    """A folder holding a config.json (LLAMA_TINY with `fields` replaced); returns the folder."""
    path = folder / name
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps({**LLAMA_TINY, **fields}))
    return path


def make_hf_deep_config(folder: Path, *, depth: int = 200_000) -> Path:
    """A folder whose config.json nests `depth` lists (a RecursionError for a naive JSON reader)."""
    path = folder / "deep_cfg"
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama", "x": ' + "[" * depth + "]" * depth + "}")
    return path


def make_hf_deep_index(folder: Path, *, depth: int = 200_000) -> Path:
    """An HF checkpoint directory whose shard index nests `depth` lists, beside one real shard."""
    from safetensors.torch import save_file

    path = folder / "deep_index"
    path.mkdir(exist_ok=True)
    save_file(_small_state_dict(), str(path / "model-00001-of-00001.safetensors"))
    (path / "model.safetensors.index.json").write_text('{"weight_map": ' + "[" * depth + "]" * depth + "}")
    return path


def make_ct_declared_shape(folder: Path, *, cols: int = 1 << 40) -> Path:
    """A compressed-tensors checkpoint directory: one layer whose `.shape` declares 4 x `cols`
    weights, with a 4-byte bitmask and 8 values (a reader trusting the shape allocates cols / 2 bytes)."""
    from safetensors.torch import save_file

    path = folder / "ct_shape"
    path.mkdir(exist_ok=True)
    save_file({"model.layers.0.mlp.up_proj.bitmask": torch.full((4, 1), 3, dtype=torch.uint8),
               "model.layers.0.mlp.up_proj.compressed": torch.ones(8),
               "model.layers.0.mlp.up_proj.shape": torch.tensor([4, cols])}, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return path
