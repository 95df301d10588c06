"""Bring-your-own-model targets (issue 17), measured and printed side by side:

1. dense FLOPs of traced models vs torch.utils.flop_counter.FlopCounterMode on the same model
   (torchvision resnet18, mobilenet_v2, densenet121, vit_b_16, swin_t where torchvision imports;
   always the project's own models and a small random-init Llama-style decoder); target <= 1 %;
2. evaluate of a Llama-3-8B-shaped decode step (batch 1, 8, 64) and a 2048-token prefill with 2:4 on
   a100_2to4: wall time and peak RSS of a fresh process each; target <= 10 s and <= 2 GB;
3. `inspect` of a 1 GB sharded safetensors directory generated in a temp dir; target <= 15 s;
4. `evaluate --gemm 1,100000,100000 --pattern 2:4`; target <= 2 s.

FlopCounterMode counts 2 FLOPs per MAC of convolutions, linears and matmuls (attention included),
as the traced GEMMs do. Run: python benchmarks/bench_models.py [--quick] (quick: skips the 1 GB
directory). torchvision: run with a Python whose torch and torchvision match, e.g. a venv with
`pip install torch==2.14.1 torchvision==0.29.1` and this checkout on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's simsparse, not an installed one

from simsparse.graph import trace  # noqa: E402
from simsparse.graph.lower import lower  # noqa: E402
from simsparse.models import build_model, example_inputs  # noqa: E402
from simsparse.models.llm import SMALL_CONFIG, LlamaLike  # noqa: E402
TORCHVISION = ("resnet18", "mobilenet_v2", "densenet121", "vit_b_16", "swin_t")
OWN = (("resnet50", 1000, (3, 224, 224)), ("vit_b16", 1000, (3, 224, 224)), ("bert_base", 2, (128,)),
       ("wrn22_2", 10, (3, 32, 32)))


def traced_flops(model, inputs, name: str) -> int:
    wl = trace(model, inputs, name=name)
    return sum(2 * g.macs for _, g in lower(wl, batch=1) if g is not None)


def counted_flops(model, inputs) -> int:
    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)   # the fused MHA fast path is invisible to FlopCounterMode
    from torch.nn.attention import SDPBackend, sdpa_kernel   # CPU's fused SDPA kernel has no FLOP formula

    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops()


def flop_rows() -> list[tuple[str, int, int]]:
    rows = []
    try:
        import torchvision  # optional: only where a matching torchvision imports
        for name in TORCHVISION:
            model = torchvision.models.get_model(name, weights=None).eval()
            x = torch.zeros(1, 3, 224, 224)
            rows.append((f"torchvision {name}", traced_flops(model, x, name), counted_flops(model, x)))
    except Exception as exc:  # noqa: BLE001 - report and go on with the project's models
        print(f"torchvision models skipped: {type(exc).__name__}: {str(exc)[:100]}")
    for name, classes, shape in OWN:
        model = build_model(name, num_classes=classes, input_shape=shape).eval()
        x = example_inputs(name, shape)
        rows.append((f"simsparse {name}", traced_flops(model, x, name), counted_flops(model, x)))
    llama = LlamaLike(SMALL_CONFIG).eval()
    for label, inputs in (("prefill 128", (torch.zeros(1, 128, dtype=torch.long),)),
                          ("decode ctx 256", (torch.zeros(1, 1, dtype=torch.long), 256))):
        rows.append((f"llama-style small {label}", traced_flops(llama, inputs, "llama"), counted_flops(llama, inputs)))
    return rows


def timed(args: list[str]) -> tuple[float, float, int]:
    """(wall s, peak RSS GB (VmHWM of the fresh process), exit code) of `python -m simsparse ARGS`."""
    code = ("import runpy, sys, time; sys.argv = ['simsparse'] + sys.argv[1:]; t = time.perf_counter()\n"
            "try:\n    runpy.run_module('simsparse', run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code or 0\n"
            "else:\n    rc = 0\n"
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
            "print('BENCH', time.perf_counter() - t, hwm, rc, file=sys.stderr)")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    line = next((ln for ln in p.stderr.splitlines() if ln.startswith("BENCH")), None)
    if line is None:
        return wall, float("nan"), p.returncode
    _, _, rss_kb, rc = line.split()
    return wall, int(rss_kb) / 1e6, int(rc)


def write_sharded(folder: Path, total_bytes: float = 1e9, shards: int = 4) -> None:
    """A save_pretrained-style directory: fp16 2:4-pruned weights in `shards` files plus an index."""
    from safetensors.torch import save_file

    per_tensor = 4096 * 4096 * 2
    n = int(total_bytes // per_tensor)
    weight_map = {}
    for s in range(shards):
        part = {}
        for i in range(s, n, shards):
            w = torch.randn(4096, 4096, dtype=torch.float16)
            w.view(4096, -1, 4)[:, :, :2] = 0
            part[f"model.layers.{i}.mlp.up_proj.weight"] = w
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file(part, str(folder / file), metadata={"format": "pt"})
        weight_map.update({k: file for k in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 1 GB sharded directory")
    args = ap.parse_args()
    print(f"torch {torch.__version__}")
    print(f"{'model':36s} {'traced GFLOPs':>14s} {'FlopCounter':>12s} {'error':>8s}")
    for name, ours, ref in flop_rows():
        print(f"{name:36s} {ours / 1e9:14.3f} {ref / 1e9:12.3f} {abs(ours - ref) / ref:8.2%}")
    print("\nevaluate on a100_2to4 with 2:4 (fresh process each): target <= 10 s, <= 2 GB")
    cases = [("llama3_8b_decode_2048", b) for b in (1, 8, 64)] + [("llama3_8b_prefill_2048", 1)]
    for wl, batch in cases:
        wall, rss, rc = timed(["evaluate", "--workload", wl, "--pattern", "2:4", "--arch", "a100_2to4",
                               "--batch", str(batch), "--format", "json"])
        print(f"  {wl} batch {batch:3d}: {wall:6.2f} s wall, {rss:5.2f} GB peak RSS, exit {rc}")
    wall, rss, rc = timed(["evaluate", "--gemm", "1,100000,100000", "--pattern", "2:4", "--arch", "a100_2to4"])
    print(f"  --gemm 1,100000,100000 2:4: {wall:6.2f} s wall, {rss:5.2f} GB peak RSS, exit {rc} (target <= 2 s)")
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            write_sharded(Path(tmp))
            size = sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors")) / 1e9
            wall, rss, rc = timed(["inspect", tmp, "--format", "json"])
            print(f"\ninspect of a {size:.2f} GB sharded safetensors directory: {wall:.2f} s wall, "
                  f"{rss:.2f} GB peak RSS, exit {rc} (target <= 15 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
