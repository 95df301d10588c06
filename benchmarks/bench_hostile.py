"""Issue 18's hostile cases, each run as `python -m simsparse ...` in its own process: exit code,
first stderr line, peak RSS and wall time, and whether the case holds (refused with one line and
exit 2 within 1 GB / 10 s, or run correctly). Then the durability and timing targets: kill-and-resume
of a 200-point sweep at 10 random moments, two different sweeps on one --out, and `measure` beside
two busy processes.

Run (this checkout):        python benchmarks/bench_hostile.py
Run another checkout:       python benchmarks/bench_hostile.py --root /tmp/hostile-before --label before
Only some groups:           python benchmarks/bench_hostile.py --only files,yaml
Every hostile file is generated into a temporary folder (tests/hostile_corpus.py), never kept.
Children run under RLIMIT_AS = --cap-gb (default 8) so a memory bomb cannot take the machine down.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))

import ckpt_factory as cf  # noqa: E402
import hostile_corpus as hc  # noqa: E402


@dataclass
class Run:
    code: int
    stderr: str
    stdout: str
    rss_mb: float
    wall_s: float

    @property
    def first_line(self) -> str:
        lines = [l for l in self.stderr.splitlines() if l.strip() and "%|" not in l]
        return lines[0].strip() if lines else ""

    @property
    def one_line_exit_2(self) -> bool:
        """Exit 2 with exactly one line that says something after `error:`."""
        lines = [l for l in self.stderr.strip().splitlines() if l.strip()]
        said = len(lines) == 1 and len(lines[0].split("error:", 1)[-1].strip()) > 8
        return self.code == 2 and said and "Traceback" not in self.stderr


@dataclass
class Ctx:
    root: Path
    cap_gb: float
    timeout_s: float
    env: dict = field(default_factory=dict)

    def run(self, argv: list[str], *, cwd: Path, env: dict | None = None, timeout_s: float | None = None) -> Run:
        full_env = {**os.environ, "PYTHONPATH": str(self.root), "SIMSPARSE_SKIP_PROBE": "1", **(env or {})}
        full_env = {k: v for k, v in full_env.items() if v is not None}
        cap = int(self.cap_gb * 2**30)

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "simsparse", *argv], cwd=cwd, env=full_env, stdout=out,
                                stderr=err, preexec_fn=limit)
        deadline = t0 + (timeout_s or self.timeout_s)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return Run(code=proc.returncode, stderr=err.read().decode(errors="replace"),
                   stdout=out.read().decode(errors="replace"), rss_mb=usage.ru_maxrss / 1024, wall_s=wall)


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    argv: Callable[[Path], list[str]]          # folder -> arguments (makes the hostile files)
    expect: str = "refuse"                      # refuse | ok | custom
    check: Callable[[Run, Path], tuple[bool, str]] | None = None
    env: Callable[[Path], dict] | None = None
    file_case: bool = False                     # the 1 GB / 10 s budget applies


def verdict(case: Case, r: Run, folder: Path) -> tuple[bool, str]:
    if r.code == -9:
        return False, "killed (timeout)"
    if case.check is not None:
        return case.check(r, folder)
    if case.expect == "ok":
        return r.code == 0, "" if r.code == 0 else "expected success"
    ok = r.one_line_exit_2
    if case.file_case and (r.rss_mb > 1024 or r.wall_s > 10):
        return False, "over 1 GB or 10 s"
    if ok and "MemoryError" in r.stderr:
        return False, "refused only by running out of memory"
    return ok, "" if ok else ("silently accepted" if r.code == 0 else "internal error" if r.code == 1 else "not one line")


# ----------------------------------------------------------------------------- cases


def _ev(*extra: str) -> list[str]:
    return ["evaluate", "--arch", "a100_2to4", *extra]


TRAIN = ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5", "--steps", "2"]


def _inspect(maker):
    return lambda d: ["inspect", str(maker(d))]


def _mask(maker):
    return lambda d: ["evaluate", "--mask", str(maker(d)), "--arch", "a100_2to4"]


def _no_marker(r: Run, d: Path) -> tuple[bool, str]:
    ok = not (d / "pwned").exists() and r.code != 1
    return ok, "no code ran" if ok else "CODE RAN or internal error"


def file_cases() -> list[Case]:
    f = "files"
    return [
        Case(f, "1 MB .pt whose zip entry inflates to 1 GiB", _inspect(hc.make_zip_bomb), file_case=True),
        Case(f, "1.6 kB storage viewed 20000x20000, stride 0", _inspect(hc.make_stride0_view), file_case=True),
        Case(f, "one 4 MB storage behind 600 weights", _inspect(hc.make_aliased_storage), file_case=True),
        Case(f, "safetensors offsets past the file", _inspect(hc.make_safetensors_offsets), file_case=True),
        Case(f, "SRigL metadata: shared-list billion laughs", _inspect(hc.make_srigl_laughs), file_case=True),
        Case(f, "Chase metadata: shared-list billion laughs", _inspect(hc.make_chase_laughs), file_case=True),
        Case(f, "native meta nested 100000 deep", _inspect(lambda d: hc.make_deep_meta(d, layout="native")),
             file_case=True),
        Case(f, "Chase meta nested 100000 deep", _inspect(hc.make_deep_meta), file_case=True),
        Case(f, "legacy pickle claiming 2^40 floats", _inspect(hc.make_legacy_huge_storage), file_case=True),
        Case(f, "geometry: negative weight shape", _mask(lambda d: hc.make_bad_geometry(d, op={"weight_shape": [-8, 16]}))),
        Case(f, "geometry: tokens -3", _mask(lambda d: hc.make_bad_geometry(d, op={"tokens": -3}))),
        Case(f, "geometry: unknown op kind", _mask(lambda d: hc.make_bad_geometry(d, op={"kind": "frobnicate"}))),
        Case(f, "__reduce__ os.system in the pickle (held before)",
             lambda d: ["inspect", str(_malicious(d))], expect="custom", check=_no_marker),
    ]


def _malicious(d: Path) -> Path:
    path = d / "evil.pt"
    cf.make_malicious(path, marker=d / "pwned")
    return path


def _sweep(argv_tail=()):
    return lambda p: lambda d: ["sweep", str(p(d)), "--out", str(d / "r.csv"), *argv_tail]


def yaml_cases() -> list[Case]:
    y = "yaml"
    arch = lambda p: lambda d: ["evaluate", "--gemm", "8,8,8", "--arch", str(p(d))]
    recipe = lambda p: lambda d: TRAIN + ["--recipe", str(p(d)), "--out", str(d / "x.pt")]
    return [
        Case(y, "sweep: billion-laughs anchors", _sweep()(hc.make_sweep_laughs), file_case=True),
        Case(y, "arch: nesting 10000 deep", arch(lambda d: hc.make_deep_yaml(d, "a.yaml", head="version: 1\nkind: nm_systolic\n"))),
        Case(y, "recipe: nesting 10000 deep", recipe(lambda d: hc.make_deep_yaml(d, "r.yaml", key="extra"))),
        Case(y, "sweep: nesting 10000 deep", _sweep()(lambda d: hc.make_deep_yaml(d, "s.yaml", key="grid"))),
        Case(y, "sweep: NUL and control bytes", _sweep()(hc.make_control_bytes_sweep)),
        Case(y, "sweep: Latin-1 text", _sweep()(hc.make_latin1_sweep)),
        Case(y, "sweep: recursive alias", _sweep()(hc.make_recursive_alias_sweep)),
        Case(y, "sweep: 1 kB file, 10^8 grid points", _sweep()(hc.make_huge_grid_sweep), file_case=True),
        Case(y, "sweep: misspelt grid key", _sweep()(lambda d: hc.make_sweep(d, grid="  memory.dram_bytes_per_clkk: [8]\n"))),
    ]


def arg_cases() -> list[Case]:
    a = "args"
    g = ["--gemm", "64,256,256"]
    return [
        Case(a, "empty --pattern", lambda d: _ev(*g, "--pattern", "")),
        Case(a, "full-width --pattern ２:４", lambda d: _ev(*g, "--pattern", "２:４")),
        Case(a, "full-width --gemm ６４,２５６,２５６", lambda d: _ev("--gemm", "６４,２５６,２５６", "--pattern", "2:4")),
        Case(a, "--gemm 1_0,64,64", lambda d: _ev("--gemm", "1_0,64,64", "--pattern", "2:4")),
        Case(a, "--pattern fanin=0", lambda d: _ev(*g, "--pattern", "fanin=0")),
        Case(a, "--pattern 1:100000000 (M > reduction)", lambda d: _ev(*g, "--pattern", "1:100000000"), file_case=True),
        Case(a, "evaluate --seed -1", lambda d: _ev(*g, "--pattern", "2:4", "--seed", "-1")),
        Case(a, "train --seed -1", lambda d: TRAIN + ["--seed", "-1", "--out", str(d / "x.pt")]),
        Case(a, "train --set update_interval=1:8 (YAML 1.1: 68)",
             lambda d: TRAIN + ["--set", "update_interval=1:8", "--out", str(d / "x.pt")]),
        Case(a, "train --world-size 0", lambda d: TRAIN + ["--world-size", "0", "--out", str(d / "x.pt")]),
        Case(a, "train --world-size -1", lambda d: TRAIN + ["--world-size", "-1", "--out", str(d / "x.pt")]),
        Case(a, "train --lr -1", lambda d: TRAIN + ["--lr", "-1", "--out", str(d / "x.pt")]),
        Case(a, "train --lr inf", lambda d: TRAIN + ["--lr", "inf", "--out", str(d / "x.pt")]),
        Case(a, "train --lr nan", lambda d: TRAIN + ["--lr", "nan", "--out", str(d / "x.pt")]),
        Case(a, "train --batch-size 0", lambda d: TRAIN + ["--batch-size", "0", "--out", str(d / "x.pt")]),
        Case(a, "train --batch-size -5", lambda d: TRAIN + ["--batch-size", "-5", "--out", str(d / "x.pt")]),
        Case(a, "train --resume garbage", lambda d: TRAIN + ["--resume", str(_bytes(d, b"\x80\x04garbage" * 9)),
                                                            "--out", str(d / "x.pt")]),
        Case(a, "train --resume a pickled list", lambda d: TRAIN + ["--resume", str(_torch(d, [1, 2])), "--out", str(d / "x.pt")]),
        Case(a, "train --resume a mask checkpoint", lambda d: TRAIN + ["--resume", str(_native(d)), "--out", str(d / "x.pt")]),
        Case(a, "train --out names a folder", lambda d: TRAIN + ["--out", str(d)]),
        Case(a, "evaluate --out names a file", lambda d: _ev(*g, "--pattern", "2:4", "--out", str(_bytes(d, b"notes")))),
        Case(a, "compare --plot names a file",
             lambda d: ["compare", str(_native(d)), "--arch", "systolic_32x32", "--plot", str(_bytes(d, b"notes"))]),
        Case(a, "evaluate --set sparsity.patterns=[2:4,1:8]",
             lambda d: ["evaluate", *g, "--pattern", "1:8", "--arch", "systolic_32x32", "--set",
                        "sparsity.patterns=[2:4,1:8]"], expect="ok"),
    ]


def _bytes(d: Path, data: bytes, name: str = "notes.txt") -> Path:
    p = d / name
    p.write_bytes(data)
    return p


def _torch(d: Path, obj) -> Path:
    import torch

    p = d / "obj.pt"
    torch.save(obj, p)
    return p


def _native(d: Path) -> Path:
    p = d / "masks.pt"
    from simsparse.records import Op, Workload

    geometry = Workload(name="mlp1", input_shape=(32,), ops=(Op(name="fc1.weight", kind="linear", weight_shape=(16, 32)),
                                                             Op(name="fc2.weight", kind="linear", weight_shape=(8, 16))))
    cf.make_native(p, geometry=geometry)
    return p


def shape_cases() -> list[Case]:
    s = "shapes"
    return [
        Case(s, "evaluate --gemm 1,100000,100000 --pattern 2:4 (target: answer <= 2 s)",
             lambda d: _ev("--gemm", "1,100000,100000", "--pattern", "2:4"), expect="custom",
             check=lambda r, d: (r.code == 0 and r.wall_s <= 2.0, "answered" if r.code == 0 else
                                 "refused: waits for closed-form masks" if r.code == 2 else "crashed")),
        Case(s, "evaluate --gemm 1,100000,100000 dense", lambda d: _ev("--gemm", "1,100000,100000"), expect="custom",
             check=lambda r, d: (r.code == 0, "answered" if r.code == 0 else
                                 "refused: waits for closed-form masks" if r.code == 2 else "crashed")),
        Case(s, "--gemm 1,100000,100000 density=0.5 (a 10^10 mask to draw)",
             lambda d: _ev("--gemm", "1,100000,100000", "--pattern", "density=0.5"), file_case=True),
        Case(s, "--batch 1e12 (cycle engine)", lambda d: ["evaluate", "--workload", "mlp", "--pattern", "2:4", "--arch",
                                                         "systolic_32x32", "--engine", "cycle", "--batch", "1e12"]),
        Case(s, "--batch 1000000000000 (cycle engine)",
             lambda d: ["evaluate", "--workload", "mlp", "--pattern", "2:4", "--arch", "systolic_32x32", "--engine",
                        "cycle", "--batch", "1000000000000"], file_case=True),
        Case(s, "--batch 100000000 (cycle engine, systolic: a legitimate shape, answered <= 10 s)",
             lambda d: ["evaluate", "--workload", "mlp", "--pattern", "2:4", "--arch", "systolic_32x32", "--engine",
                        "cycle", "--batch", "100000000"], expect="custom",
             check=lambda r, d: (r.code == 0 and r.wall_s <= 10.0 and r.rss_mb <= 1024,
                                 "answered" if r.code == 0 else "refused" if r.code == 2 else "crashed")),
    ]


def _planted(victim_name: str):
    def check(r: Run, d: Path) -> tuple[bool, str]:
        intact = (d / victim_name).read_bytes() == b"precious"
        return intact and r.code == 0, "victim intact" if intact else "VICTIM OVERWRITTEN"
    return check


def _plant_state(d: Path) -> list[str]:
    (d / "victim").write_text("precious")
    (d / "x.pt.state.pt").symlink_to(d / "victim")
    return TRAIN + ["--save-every", "1", "--out", str(d / "x.pt")]


def _plant_cache(d: Path) -> list[str]:
    from simsparse import hostinfo

    (d / "victim").write_text("precious")
    folder = d / "cache" / "simsparse"
    folder.mkdir(parents=True)
    (folder / f"host_{hostinfo.detect().key}.tmp").symlink_to(d / "victim")
    return ["evaluate", "--gemm", "8,64,64", "--arch", "cpu_host"]


def _report_mode(r: Run, d: Path) -> tuple[bool, str]:
    p = d / "rep" / "report.json"
    if not p.exists():
        return False, "no report"
    mode = stat.S_IMODE(p.stat().st_mode)
    return r.code == 0 and mode == 0o644, f"mode {mode:o} with umask 022"


def _corrupt_calibration(d: Path) -> list[str]:
    from simsparse import hostinfo

    folder = d / "cache" / "simsparse"
    folder.mkdir(parents=True, exist_ok=True)
    key = hostinfo.detect().key
    (folder / f"cpu_calibration_{key}.json").write_text(json.dumps({"machine": key, "kernels": {"dense": {"overhead_s": "x"}}}))
    return ["evaluate", "--gemm", "8,64,64", "--arch", "cpu_host"]


def _corrupt_probe(d: Path) -> list[str]:
    from simsparse import hostinfo

    folder = d / "cache" / "simsparse"
    folder.mkdir(parents=True, exist_ok=True)
    key = hostinfo.detect().key
    (folder / f"host_{key}.json").write_text(json.dumps({"probe_version": 2, "machine": key, "bandwidth": {"dram": {}}}))
    return ["evaluate", "--gemm", "8,64,64", "--arch", "cpu_host"]


def _cache_env(probe: bool):
    return lambda d: {"XDG_CACHE_HOME": str(d / "cache"), "SIMSPARSE_SKIP_PROBE": None if probe else "1"}


def write_cases() -> list[Case]:
    w = "writes"
    return [
        Case(w, "train --save-every through a planted symlink", _plant_state, expect="custom", check=_planted("victim")),
        Case(w, "host-probe cache through a planted .tmp symlink", _plant_cache, expect="custom",
             check=_planted("victim"), env=_cache_env(True)),
        Case(w, "evaluate --out report files get the umask (not 0600)",
             lambda d: _ev("--gemm", "8,8,8", "--out", str(d / "rep")), expect="custom", check=_report_mode),
        Case(w, "corrupted host-probe cache", _corrupt_probe, expect="ok", env=_cache_env(True)),
        Case(w, "corrupted calibration cache", _corrupt_calibration, expect="ok", env=_cache_env(False)),
        Case(w, "calibrate with an unwritable cache (fails fast?)", lambda d: ["calibrate"], expect="custom",
             env=lambda d: {"XDG_CACHE_HOME": str(_bytes(d, b"x", "file")) + "/sub"},
             check=lambda r, d: (r.one_line_exit_2 and r.wall_s < 10, f"exit {r.code} after {r.wall_s:.0f} s")),
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SILENT: list[socket.socket] = []


def _silent_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    threading.Thread(target=lambda: [s.accept() for _ in range(8)], daemon=True).start()
    _SILENT.append(s)
    return s.getsockname()[1]


def sweep_arg_cases() -> list[Case]:
    s = "sweep args"
    mk = lambda d: hc.make_sweep(d)
    return [
        Case(s, "--out names a folder", lambda d: ["sweep", str(mk(d)), "--out", str(d)]),
        Case(s, "--resume onto a one-line notes file", lambda d: ["sweep", str(mk(d)), "--out", str(_bytes(d, b"my notes\n")),
                                                                  "--resume"], expect="custom",
             check=lambda r, d: (r.one_line_exit_2 and (d / "notes.txt").read_bytes() == b"my notes\n",
                                 "notes intact" if (d / "notes.txt").read_bytes() == b"my notes\n" else "NOTES OVERWRITTEN")),
        Case(s, "--resume of a binary CSV", lambda d: ["sweep", str(mk(d)), "--out",
                                                       str(_bytes(d, bytes(range(256)) * 16, "bin.csv")), "--resume"]),
        Case(s, "--executor dask:// (empty)", lambda d: ["sweep", str(mk(d)), "--out", str(d / "r.csv"), "--executor", "dask://"]),
        Case(s, "--executor dask://closed port", lambda d: ["sweep", str(mk(d)), "--out", str(d / "r.csv"), "--executor",
                                                            f"dask://127.0.0.1:{_closed_port()}"], expect="custom",
             check=lambda r, d: (r.one_line_exit_2 and r.wall_s < 8, f"{r.wall_s:.1f} s")),
        Case(s, "--executor dask://silent server", lambda d: ["sweep", str(mk(d)), "--out", str(d / "r.csv"), "--executor",
                                                              f"dask://127.0.0.1:{_silent_port()}"], expect="custom",
             check=lambda r, d: (r.one_line_exit_2 and r.wall_s < 8, f"{r.wall_s:.1f} s")),
    ]


def _hf(maker, *tail):
    return lambda d: ["trace", f"hf:{maker(d)}", "-o", str(d / "w.yaml"), *tail]


def byom_cases() -> list[Case]:
    b = "byom"
    tiny = lambda d: hc.make_hf_config(d)
    return [
        Case(b, "config.json nested 200000 deep", _hf(hc.make_hf_deep_config, "--seq", "8"), file_case=True),
        Case(b, "config.json: num_hidden_layers 10^9", _hf(lambda d: hc.make_hf_config(d, num_hidden_layers=10**9),
                                                            "--seq", "8"), file_case=True),
        Case(b, "HF shard index nested 200000 deep", _inspect(hc.make_hf_deep_index), file_case=True),
        Case(b, "compressed-tensors shape 4 x 2^40, 4-byte bitmask", _inspect(hc.make_ct_declared_shape),
             file_case=True),
        Case(b, "trace module:os:system (a factory that raises)",
             lambda d: ["trace", "module:os:system", "--seq", "8", "-o", str(d / "w.yaml")]),
        Case(b, "trace --seq ６４", _hf(tiny, "--seq", "６４")),
        Case(b, "trace --decode --context -1", _hf(tiny, "--decode", "--context", "-1")),
        Case(b, "trace --input 3,0,224", lambda d: ["trace", "module:torch.nn:Flatten", "--input", "3,0,224",
                                                    "-o", str(d / "w.yaml")]),
        Case(b, "trace -o names a folder", lambda d: ["trace", f"hf:{tiny(d)}", "--seq", "8", "-o", str(d)]),
        Case(b, "evaluate --model hf: --seq 1_0", lambda d: _ev("--model", f"hf:{tiny(d)}", "--pattern", "2:4",
                                                                "--seq", "1_0")),
        Case(b, "train --explain --steps 0", lambda d: TRAIN[:-2] + ["--steps", "0", "--explain"]),
        Case(b, "validate --gpu-arch naming no GPU of the rows", lambda d: ["validate", "--gpu-arch", "A1OO=h100_2to4"]),
        Case(b, "validate --csv '' (ran every corpus)", lambda d: ["validate", "--csv", ""]),
        Case(b, "train --resume '' (trained from scratch)", lambda d: TRAIN + ["--resume", "", "--out", str(d / "x.pt")]),
    ]


GROUPS = {"files": file_cases, "yaml": yaml_cases, "args": arg_cases, "shapes": shape_cases,
          "writes": write_cases, "sweep args": sweep_arg_cases, "byom": byom_cases}


def run_cases(ctx: Ctx, groups: list[str]) -> list[dict]:
    rows = []
    print(f"{'group':10s} {'case':52s} {'exit':>4s} {'RSS MB':>7s} {'wall s':>6s}  verdict  first stderr line")
    for g in groups:
        for case in GROUPS[g]():
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                argv = case.argv(folder)
                r = ctx.run(argv, cwd=folder, env=case.env(folder) if case.env else None)
                ok, why = verdict(case, r, folder)
            line = r.first_line[:110]
            print(f"{g:10s} {case.name[:52]:52s} {r.code:4d} {r.rss_mb:7.0f} {r.wall_s:6.1f}  "
                  f"{'HOLDS' if ok else 'FAILS':7s}  {line}" + (f"  [{why}]" if why else ""), flush=True)
            rows.append({"group": g, "case": case.name, "exit": r.code, "rss_mb": round(r.rss_mb), "wall_s": round(r.wall_s, 2),
                         "holds": ok, "why": why, "stderr": line})
    return rows


# ----------------------------------------------------------------------------- sweeps


SWEEP_200 = ("version: 1\nname: durable\narchs: [systolic_32x32, vegeta_like]\n"
             "grid:\n  memory.dram_bytes_per_clk: [4, 8, 16, 32, 64]\n"
             "inputs:\n  - {workload: mlp, patterns: ['dense', '2:4', '1:8', 'fanin=16']}\nbatches: [1, 2, 4, 8, 16]\n")


def kill_resume(ctx: Ctx, *, kills: int = 10, seed: int = 0) -> dict:
    """200 points; the sweep is killed at `kills` random moments (each restart with --resume), then
    finished; its CSV must equal an uninterrupted run's byte for byte."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sweep = d / "s.yaml"
        sweep.write_text(SWEEP_200)
        ref = ctx.run(["sweep", str(sweep), "--out", str(d / "ref.csv")], cwd=d, timeout_s=600)
        out = d / "r.csv"
        env = {**os.environ, "PYTHONPATH": str(ctx.root), "SIMSPARSE_SKIP_PROBE": "1"}
        moments = []
        for i in range(kills):
            argv = [sys.executable, "-m", "simsparse", "sweep", str(sweep), "--out", str(out)] + (["--resume"] if i else [])
            proc = subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            at = rng.uniform(1.0, 1.0 + ref.wall_s)
            moments.append(round(at, 2))
            try:
                proc.wait(timeout=at)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        final = ctx.run(["sweep", str(sweep), "--out", str(out), "--resume"], cwd=d, timeout_s=600)
        same = out.exists() and (d / "ref.csv").read_bytes() == out.read_bytes()
        rows = (out.read_text().count("\n") - 1) if out.exists() else 0
        return {"points": 200, "kills_at_s": moments, "final_exit": final.code, "rows": rows,
                "byte_identical": same, "reference_s": round(ref.wall_s, 1)}


def two_sweeps(ctx: Ctx) -> dict:
    """Two different sweeps started together on one --out, then the second again with --resume while
    the first runs: only one sweep may succeed, and it must find all its rows in the final CSV."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        a = hc.make_sweep(d, name="a", grid="  memory.dram_bytes_per_clk: [4, 8, 16, 32, 64]\n",
                          patterns="['dense', '2:4', 'fanin=16']", batches="[1, 2, 4, 8]", file="a.yaml")
        a.write_text(a.read_text().replace("workload: mlp", "workload: cnn"))
        b = hc.make_sweep(d, name="b", grid="  memory.dram_bytes_per_clk: [128]\n", batches="[1, 2, 4]", file="b.yaml")
        out = d / "r.csv"
        env = {**os.environ, "PYTHONPATH": str(ctx.root), "SIMSPARSE_SKIP_PROBE": "1"}
        start = lambda f, *extra: subprocess.Popen([sys.executable, "-m", "simsparse", "sweep", str(f), "--out", str(out),
                                                    *extra], cwd=d, env=env, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.PIPE, text=True)
        pa, pb = start(a), start(b)
        time.sleep(6.0)
        pb2 = start(b, "--resume")
        codes = [p.wait(timeout=900) for p in (pa, pb, pb2)]
        text = out.read_text() if out.exists() else ""
        rows_a = sum(1 for line in text.splitlines()[1:] if "=128" not in line)
        rows_b = sum(1 for line in text.splitlines()[1:] if "=128" in line)
        a_ok = codes[0] != 0 or rows_a == 60
        b_ok = (codes[1] != 0 and codes[2] != 0) or rows_b == 6
        one_sweep = not (codes[0] == 0 and 0 in codes[1:])   # two sweeps' rows never share one output
        return {"exits_A_B_Bresume": codes, "rows_A_of_60": rows_a, "rows_B_of_6": rows_b,
                "refusals": [p.stderr.read().strip().splitlines()[-1][:100] if c else "" for p, c in zip((pa, pb, pb2), codes)],
                "holds": a_ok and b_ok and one_sweep and 0 in codes}


def dask_identity(ctx: Ctx) -> dict:
    """The 200-point sweep on a local Dask cluster (2 workers) vs locally: the same bytes?"""
    dask_cli = Path(sys.executable).parent / "dask"
    if not dask_cli.exists():
        return {"skipped": "no dask here (run this script with a python that has dask[distributed])"}
    port = _closed_port()
    env = {**os.environ, "PYTHONPATH": str(ctx.root), "SIMSPARSE_SKIP_PROBE": "1"}
    procs = [subprocess.Popen([str(dask_cli), "scheduler", "--port", str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    time.sleep(4)
    procs.append(subprocess.Popen([str(dask_cli), "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(8)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            sweep = d / "s.yaml"
            sweep.write_text(SWEEP_200)
            local = ctx.run(["sweep", str(sweep), "--out", str(d / "local.csv")], cwd=d, timeout_s=600)
            dask = ctx.run(["sweep", str(sweep), "--out", str(d / "dask.csv"), "--executor", f"dask://127.0.0.1:{port}"],
                           cwd=d, timeout_s=600)
            same = (d / "dask.csv").exists() and (d / "local.csv").read_bytes() == (d / "dask.csv").read_bytes()
            return {"local_exit": local.code, "dask_exit": dask.code, "byte_identical": same,
                    "dask_says": dask.first_line[:100]}
    finally:
        for p in procs[::-1]:
            p.terminate()
            p.wait(timeout=30)


# ----------------------------------------------------------------------------- timing


MEASURE = ["measure", "--gemm", "1,3072,768", "--pattern", "fanin=77", "--kernel", "dense", "--threads", "2",
           "--format", "json"]


def _busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def loaded_measure(ctx: Ctx, *, new_flags: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        extra = ["--allow-noisy", "--max-wait", "0"] if new_flags else []
        quiet = ctx.run(MEASURE + extra, cwd=d, timeout_s=120)
        q = json.loads(quiet.stdout)["results"][0] if quiet.code == 0 else {}
        busy = _busy(2)
        try:
            time.sleep(1.0)
            strict = ctx.run(MEASURE + (["--max-wait", "10"] if new_flags else []), cwd=d, timeout_s=120)
            noisy = ctx.run(MEASURE + extra, cwd=d, timeout_s=120) if new_flags else strict
        finally:
            for p in busy:
                p.kill()
        n = json.loads(noisy.stdout)["results"][0] if noisy.code == 0 else {}
        band = (n.get("min_s", 0.0), n.get("p90_s", n.get("median_s", 0.0) + n.get("iqr_s", 0.0)))
        covers = bool(n) and band[0] <= q.get("median_s", -1) <= band[1]
        return {"load_before": round(os.getloadavg()[0], 1), "quiet_median_ms": round(q.get("median_s", 0) * 1e3, 3),
                "quiet_cpu_share": q.get("cpu_share"), "strict_exit": strict.code, "strict_says": strict.first_line[:140],
                "loaded_median_ms": round(n.get("median_s", 0) * 1e3, 3), "loaded_iqr_ms": round(n.get("iqr_s", 0) * 1e3, 3),
                "band_ms": [round(b * 1e3, 3) for b in band], "band_covers_quiet_median": covers,
                "flagged": n.get("noisy", "(no such field)"),
                "holds": strict.code == 2 or covers}


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(HERE), help="checkout whose simsparse runs (default: this one)")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--only", help=f"comma-separated groups: {', '.join(GROUPS)}, sweeps, timing")
    ap.add_argument("--cap-gb", type=float, default=8.0, help="RLIMIT_AS of each child")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a case is killed")
    ap.add_argument("--json", help="also write every result here")
    args = ap.parse_args()
    ctx = Ctx(root=Path(args.root).resolve(), cap_gb=args.cap_gb, timeout_s=args.timeout)
    wanted = args.only.split(",") if args.only else [*GROUPS, "sweeps", "timing"]
    print(f"== bench_hostile: {args.label} ({ctx.root}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    report: dict = {"label": args.label, "cases": run_cases(ctx, [g for g in wanted if g in GROUPS])}
    cases = report["cases"]
    if cases:
        fails = [c for c in cases if not c["holds"]]
        print(f"-- {len(cases) - len(fails)} of {len(cases)} cases hold; internal errors {sum(c['exit'] == 1 for c in cases)}; "
              f"silent acceptances {sum(c['why'] == 'silently accepted' for c in cases)}; "
              f"max RSS {max(c['rss_mb'] for c in cases)} MB; max wall {max(c['wall_s'] for c in cases):.1f} s")
    if "sweeps" in wanted:
        report["kill_resume"] = kill_resume(ctx)
        print(f"-- kill-and-resume, 200 points, 10 random kills: {report['kill_resume']}")
        report["two_sweeps"] = two_sweeps(ctx)
        print(f"-- two different sweeps on one --out: {report['two_sweeps']}")
        report["dask_vs_local"] = dask_identity(ctx)
        print(f"-- the 200-point sweep on 2 Dask workers vs locally: {report['dask_vs_local']}")
    if "timing" in wanted:
        new_flags = "--allow-noisy" in subprocess.run([sys.executable, "-m", "simsparse", "measure", "--help"], cwd=ctx.root,
                                                      env={**os.environ, "PYTHONPATH": str(ctx.root)},
                                                      capture_output=True, text=True).stdout
        report["loaded_measure"] = loaded_measure(ctx, new_flags=new_flags)
        print(f"-- measure beside two busy processes (dense 1x3072x768, 2 threads): {report['loaded_measure']}")
    for s in _SILENT:
        s.close()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
