"""simsparse's nm_systolic (memory.reuse: scalesim) beside SCALE-Sim v3, GEMM by GEMM.

    python benchmarks/bench_vs_scalesim.py [--venv DIR] [--quick] [--jobs 2] [--write-golden PATH]

Creates (or reuses) a virtual environment with `scalesim==3.0.0` and `numpy<2` (SCALE-Sim needs
both; it is never a dependency of simsparse), runs the same GEMMs and configs through both
tools and prints per case: compute, stall and total cycles of each, the error, and the wall time
of SCALE-Sim beside simsparse's analytic and cycle engines; then the worst case per dataflow and
memory config and the speed ratio at equal simulated cycles (the same GEMM, so the same cycles).
SCALE-Sim results are cached (`--cache`, keyed by case) so a rerun only times simsparse.

How the configs map. SCALE-Sim's word is one byte: simsparse runs int8. SCALE-Sim's USER mode
gives each SRAM its own DRAM port (`Bandwidth` for the ofmap, `IfmapSRAMBankBandwidth` /
`FilterSRAMBankBandwidth` for the read SRAMs, one bank each, all set to the same `bw`), which is
simsparse's `memory.reuse: scalesim` with `dram_bytes_per_clk: bw`. SRAM sizes are the same
bytes. Compared: SCALE-Sim's "Total Cycles" (compute + stalls; the index of the last cycle, so
+1 gives a count), "Stall Cycles" and "Total Cycles (incl. prefetch)" (first fill and last drain
too) against simsparse's compute + stall, stall and estimate cycles. simsparse runs the format
SCALE-Sim was told (`NmSystolic.plan_format`); where its own choice (`plan`) differs, e.g. a layer
that SCALE-Sim's memory makes slower sparse than dense, the row says so. simsparse's time is
planning that format + estimating it, best of `--repeats` (the same work as SCALE-Sim's run;
`plan` also prices the dense alternative, which costs as much again).

How N:M maps. SCALE-Sim v3's sparsity mode (`SparsitySupport`, `ellpack_block`, non-optimized
mapping) takes a layer-wise N:M ratio from the topology file and keeps the first N of every M
reduction positions in *every* filter; it condenses the filter to k_c = N per group of M (at most
N of a last partial group) and drops the activation columns no filter keeps, so both operands
shrink; the ellpack metadata is counted as storage only and never moves through the simulated
memory. simsparse is given that very mask (the same positions in every row): it runs N:M with
k_c weight slots, fetches only the activation columns that carry a weight, and the spec sets
`metadata_bits_per_value` to 0 for the comparison (SCALE-Sim moves none; simsparse otherwise
streams the index bits with the weights). SCALE-Sim's other mode (`OptimizedMapping`: a random
N per column, ws only) has no counterpart and is not run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.engines.systolic_analytic import analytic_timing
from simsparse.engines.systolic_event import cycle_timing
from simsparse.graph import lower
from simsparse.records import Gemm, LayerWork

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "scalesim_runner.py"
DEFAULT_VENV = Path(os.environ.get("SIMSPARSE_SCALESIM_VENV", Path.home() / ".cache/simsparse/scalesim-3.0.0-venv"))
DEFAULT_CACHE = Path.home() / ".cache/simsparse/scalesim-3.0.0-results.json"

# (m, n, k): divisible by 32 or not, tall, wide, GEMV-like, and operands from 1 KB to 400 KB
SHAPES = [
    (64, 128, 256), (100, 300, 200), (196, 192, 384), (50, 70, 100), (32, 32, 32), (64, 64, 64),
    (128, 128, 128), (17, 33, 65), (1, 1000, 512), (8, 64, 1024), (1024, 16, 64), (31, 257, 63),
    (129, 65, 97), (250, 10, 300), (7, 500, 90), (256, 256, 256), (512, 128, 256), (128, 512, 384),
    (300, 200, 400), (96, 96, 576), (49, 512, 256), (196, 256, 147), (784, 64, 64), (3136, 32, 27),
    (12, 768, 768), (64, 768, 192), (200, 40, 1000), (40, 200, 1000), (255, 255, 255), (33, 129, 513),
    (16, 2048, 64), (640, 48, 160),
]
# SRAM-pressure subset: every operand layout, inside and far outside 16 KB / 64 KB
MEMORY_SHAPES = [(64, 128, 256), (100, 300, 200), (196, 192, 384), (50, 70, 100), (129, 65, 97),
                 (256, 256, 256), (512, 128, 256), (128, 512, 384), (300, 200, 400), (8, 64, 1024),
                 (1024, 16, 64), (40, 200, 1000)]
NM_SHAPES = [(64, 128, 256), (196, 192, 384), (50, 70, 100), (256, 256, 256), (128, 512, 384),
             (33, 129, 513), (300, 200, 400), (12, 768, 768)]
SRAM_KB = (16, 64, 1024)
BANDWIDTHS = (2, 10, 64)          # words/clk per port: starved, SCALE-Sim's sample configs, ample
AMPLE_BW = 256
ISSUE = [("ws", 64, 128, 256), ("ws", 196, 192, 384), ("ws", 196, 384, 1536), ("os", 64, 128, 256),
         ("os", 100, 300, 200)]      # the GEMMs quoted in the issue (64 KB SRAMs, 10 words/clk)
# a small table for tests/data/scalesim_golden.csv: each dataflow ample / tight / starved, N:M, two
# os hand cases, and SCALE-Sim stalling more with a larger SRAM (196x192x384 os, 64 KB vs 128 KB)
GOLDEN_KEYS = [
    ("compute", "ws", 50, 70, 100, "1:1", 1024, AMPLE_BW), ("compute", "os", 64, 128, 256, "1:1", 1024, AMPLE_BW),
    ("compute", "is", 17, 33, 65, "1:1", 1024, AMPLE_BW),
    ("memory", "ws", 196, 192, 384, "1:1", 64, 10), ("memory", "os", 100, 300, 200, "1:1", 16, 2),
    ("memory", "is", 129, 65, 97, "1:1", 16, 10), ("memory", "ws", 8, 64, 1024, "1:1", 16, 2),
    ("memory", "os", 300, 200, 400, "1:1", 64, 10), ("memory", "is", 256, 256, 256, "1:1", 64, 2),
    ("memory", "ws", 1024, 16, 64, "1:1", 16, 64), ("memory", "os", 40, 200, 1000, "1:1", 16, 10),
    ("nm", "ws", 64, 128, 256, "2:4", 64, 10), ("nm", "os", 50, 70, 100, "1:4", 16, 2),
    ("nm", "is", 33, 129, 513, "1:8", 16, 2),
    ("compute", "os", 64, 64, 64, "1:1", 1024, AMPLE_BW), ("compute", "os", 32, 32, 100, "1:1", 1024, AMPLE_BW),
    ("memory", "os", 196, 192, 384, "1:1", 64, 10), ("memory", "os", 196, 192, 384, "1:1", 128, 10),
]


def case(tier: str, dataflow: str, m: int, n: int, k: int, nm: str, sram_kb: int, bw: int) -> dict:
    return {"tier": tier, "m": m, "n": n, "k": k, "nm": nm, "dataflow": dataflow, "rows": 32, "cols": 32,
            "ifmap_kb": sram_kb, "filter_kb": sram_kb, "ofmap_kb": sram_kb, "bw": bw}


def cases(quick: bool) -> list[dict]:
    if quick:
        shapes, mem_shapes, nm_shapes = SHAPES[::8], MEMORY_SHAPES[:2], NM_SHAPES[:1]
        memories = [(16, 2), (64, 10), (1024, BANDWIDTHS[-1])]
    else:
        shapes, mem_shapes, nm_shapes = SHAPES, MEMORY_SHAPES, NM_SHAPES
        memories = [(kb, bw) for kb in SRAM_KB for bw in BANDWIDTHS]
    out = [case("issue", df, m, n, k, "1:1", 64, 10) for df, m, n, k in (ISSUE[:1] if quick else ISSUE)]
    out += [case("compute", df, *s, "1:1", 1024, AMPLE_BW) for s in shapes for df in ("ws", "os", "is")]
    out += [case("memory", df, *s, "1:1", kb, bw) for s in mem_shapes for df in ("ws", "os", "is")
            for kb, bw in memories]
    out += [case("nm", df, *s, nm, kb, bw) for s in nm_shapes for df in ("ws", "os", "is")
            for nm in ("1:4", "2:4", "1:8") for kb, bw in ((64, 10), (16, 2))]
    keys = {key(c) for c in out}
    out += [c for c in (case(*g) for g in GOLDEN_KEYS) if key(c) not in keys]
    return out


def key(c: dict) -> str:
    return json.dumps({f: c[f] for f in sorted(c) if f != "tier"}, sort_keys=True)


# ----------------------------------------------------------------------------- SCALE-Sim side

def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with scalesim==3.0.0 (numpy<2) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "scalesim==3.0.0", "numpy<2"], check=True)
    return python


def run_scalesim(python: Path, todo: list[dict], cache: dict, cache_path: Path, jobs: int) -> None:
    """Run the uncached cases in `jobs` runner processes; results land in `cache` (saved as they come)."""
    chunks = [todo[i::jobs] for i in range(jobs) if todo[i::jobs]]

    def worker(chunk: list[dict]) -> None:
        payload = json.dumps([{f: c[f] for f in c if f != "tier"} for c in chunk])
        proc = subprocess.Popen([str(python), str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        proc.stdin.write(payload)
        proc.stdin.close()
        for line in proc.stdout:
            rec = json.loads(line)
            cache[key(rec["case"])] = rec["result"]
            print(f"  scalesim {len(cache)}: {rec['case']['dataflow']} {rec['case']['m']}x{rec['case']['n']}x"
                  f"{rec['case']['k']} {rec['result']['wall_s']:.1f} s", file=sys.stderr, flush=True)
            cache_path.write_text(json.dumps(cache))
        if proc.wait() != 0:
            raise RuntimeError(f"SCALE-Sim runner failed (exit {proc.returncode})")

    with ThreadPoolExecutor(max_workers=len(chunks) or 1) as pool:
        list(pool.map(worker, chunks))


# ----------------------------------------------------------------------------- simsparse side

def scalesim_mask(n: int, k: int, nm: str) -> np.ndarray:
    """SCALE-Sim's layer-wise N:M: the first N of every M reduction positions, in every filter."""
    keep_n, group = (int(x) for x in nm.split(":"))
    return np.broadcast_to(np.arange(k) % group < keep_n, (n, k)).copy()


def simsparse_arch(c: dict):
    sets = [f"array.dataflow={c['dataflow']}", f"array.rows={c['rows']}", f"array.cols={c['cols']}",
            "array.tile_temporal=false", "memory.reuse=scalesim", f"memory.dram_bytes_per_clk={c['bw']}",
            f"memory.ifmap_sram_bytes={c['ifmap_kb'] * 1024}", f"memory.filter_sram_bytes={c['filter_kb'] * 1024}",
            f"memory.ofmap_sram_bytes={c['ofmap_kb'] * 1024}"]
    if c["nm"] != "1:1":
        sets += [f"sparsity.patterns=['{c['nm']}']", "sparsity.metadata_bits_per_value={4: 0, 8: 0}"]
    return load_arch("systolic_32x32", sets)


def simsparse_work(c: dict) -> LayerWork:
    mask = None if c["nm"] == "1:1" else scalesim_mask(c["n"], c["k"], c["nm"])
    return lower.gemm_work(name="gemm", gemm=Gemm(c["m"], c["n"], c["k"], "int8"), mask=mask)


def run_simsparse(c: dict, engine: str, repeats: int) -> tuple[dict, float, float]:
    """Cycles of one case on one engine in the format SCALE-Sim was told, with the best wall and
    CPU time over `repeats` of planning that format and estimating it (the same work SCALE-Sim
    does; `plan`, which also prices the other formats to choose one, is run once, untimed)."""
    arch, work = simsparse_arch(c), simsparse_work(c)
    told = "dense" if c["nm"] == "1:1" else c["nm"]
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        plan = arch.plan_format(work, told)
        est = estimate(plan, arch, engine)
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.process_time() - cpu)
    t = (analytic_timing if engine == "analytic" else cycle_timing)(plan, arch)
    assert t.cycles == est.cycles
    chosen = arch.plan(work)
    return {"compute": t.compute_cycles, "stall": t.stall_cycles, "total": t.compute_cycles + t.stall_cycles,
            "cycles": t.cycles, "format": chosen.format,
            "chosen_cycles": estimate(chosen, arch, "analytic").cycles}, best, best_cpu


# ----------------------------------------------------------------------------- report

def compare(c: dict, ss: dict, args) -> dict:
    ana, t_ana, cpu_ana = run_simsparse(c, "analytic", args.repeats)
    cyc, t_cyc, _ = run_simsparse(c, "cycle", 1) if not args.no_cycle else (None, float("nan"), None)
    ss_total = ss["total_cycles"] + 1                      # SCALE-Sim reports the last cycle's index
    ss_compute = ss_total - ss["stall_cycles"]
    return {"case": c, "ss_compute": ss_compute, "ss_stall": ss["stall_cycles"], "ss_total": ss_total,
            "ss_incl": ss["total_cycles_incl_prefetch"] + 1, "ss_wall": ss["wall_s"], "ss_cpu": ss.get("cpu_s"),
            "ana": ana, "cyc": cyc, "t_ana": t_ana, "cpu_ana": cpu_ana, "t_cyc": t_cyc,
            "err_compute": (ana["compute"] - ss_compute) / ss_compute, "err_total": (ana["total"] - ss_total) / ss_total,
            "err_incl": (ana["cycles"] - ss["total_cycles_incl_prefetch"] - 1) / (ss["total_cycles_incl_prefetch"] + 1),
            "engines_agree": cyc is None or abs(cyc["cycles"] - ana["cycles"]) <= 1e-9 * ana["cycles"]}


def print_rows(rows: list[dict]) -> None:
    print(f"{'tier':8s} {'df':2s} {'m x n x k':>15s} {'N:M':4s} {'KB':>4s} {'bw':>3s} | "
          f"{'SS compute':>10s} {'stall':>9s} {'total':>9s} | {'simsparse compute':>17s} {'stall':>9s} {'total':>9s} "
          f"{'err%':>6s} {'incl%':>6s} | {'SS s':>7s} {'ana ms':>7s} {'cyc ms':>8s} {'ratio':>7s}")
    for r in rows:
        c, a = r["case"], r["ana"]
        agree = "" if r["engines_agree"] else "  cycle engine differs"
        fmt = "" if a["format"] == ("dense" if c["nm"] == "1:1" else c["nm"]) else \
            f"  (simsparse would run {a['format']}: {a['chosen_cycles']:.0f} cycles)"
        print(f"{c['tier']:8s} {c['dataflow']:2s} {c['m']:>4d}x{c['n']:>4d}x{c['k']:>5d} {c['nm']:4s} "
              f"{c['ifmap_kb']:>4d} {c['bw']:>3d} | {r['ss_compute']:>10.0f} {r['ss_stall']:>9.0f} {r['ss_total']:>9.0f} | "
              f"{a['compute']:>17.0f} {a['stall']:>9.0f} {a['total']:>9.0f} {100 * r['err_total']:>+6.2f} "
              f"{100 * r['err_incl']:>+6.2f} | {r['ss_wall']:>7.2f} {1e3 * r['t_ana']:>7.2f} {1e3 * r['t_cyc']:>8.1f} "
              f"{r['ss_wall'] / r['t_ana']:>7.0f}{agree}{fmt}")


def memory_config(c: dict) -> str:
    return "ample (1 MB, 256 w/clk)" if c["tier"] == "compute" else f"{c['ifmap_kb']} KB, {c['bw']} w/clk"


def print_summary(rows: list[dict]) -> None:
    print("\nworst |error| per dataflow and memory config (compute cycles; compute + stall; incl. first fill "
          "and last drain):")
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["case"]["dataflow"], memory_config(r["case"])), []).append(r)
    for (df, mem), rs in sorted(groups.items()):
        worst = max(rs, key=lambda r: abs(r["err_total"]))
        c = worst["case"]
        print(f"  {df} {mem:26s} n={len(rs):3d}  compute {100 * max(abs(r['err_compute']) for r in rs):.3f} %  "
              f"total {100 * abs(worst['err_total']):.3f} % ({c['m']}x{c['n']}x{c['k']} {c['nm']})  "
              f"incl {100 * max(abs(r['err_incl']) for r in rs):.3f} %")
    ratios = [r["ss_wall"] / r["t_ana"] for r in rows]
    cyc = [r for r in rows if r["cyc"] is not None]
    ss_s, ana_s, cycles = sum(r["ss_wall"] for r in rows), sum(r["t_ana"] for r in rows), sum(r["ss_total"] for r in rows)
    print(f"\n{len(rows)} cases, {cycles:.3g} simulated cycles: SCALE-Sim {ss_s:.1f} s ({cycles / ss_s:.3g} cycles/s), "
          f"simsparse analytic {ana_s:.3f} s ({cycles / ana_s:.3g} cycles/s)")
    print(f"speed ratio at equal simulated cycles (SCALE-Sim wall / analytic plan+estimate wall, same GEMM): overall "
          f"{ss_s / ana_s:.0f}x; per case min {min(ratios):.0f}x, median {statistics.median(ratios):.0f}x")
    timed = [r for r in rows if r["ss_cpu"] is not None]
    if timed:
        cpu = sum(r["ss_cpu"] for r in timed) / sum(r["cpu_ana"] for r in timed)
        print(f"same on CPU time ({len(timed)} cases whose SCALE-Sim CPU time was recorded; the wall times "
              f"above stretch with other load on the machine): {cpu:.0f}x")
    if cyc:
        print(f"cycle engine: {sum(r['t_cyc'] for r in cyc):.2f} s for {len(cyc)} cases "
              f"({ss_s / sum(r['t_cyc'] for r in cyc):.0f}x SCALE-Sim); agrees with analytic on "
              f"{sum(r['engines_agree'] for r in cyc)}/{len(cyc)}")
    print(f"worst over all: compute {100 * max(abs(r['err_compute']) for r in rows):.3f} % (target 1 %), "
          f"total {100 * max(abs(r['err_total']) for r in rows):.3f} % (target 5 %)")


def write_golden(path: Path, cache: dict) -> None:
    with open(path, "w", newline="") as f:
        f.write("# SCALE-Sim v3.0.0 (pip scalesim==3.0.0, numpy 1.26.4), GEMM topology, USER interface bandwidth:\n"
                "# Bandwidth = IfmapSRAMBankBandwidth = FilterSRAMBankBandwidth = bw (1 bank), word = 1 byte,\n"
                "# ReadRequestBuffer = WriteRequestBuffer = 32, no ramulator; sparsity (nm != 1:1): SparsitySupport,\n"
                "# ellpack_block, OptimizedMapping false. Cycles as SCALE-Sim reports them (index of the last cycle).\n"
                "# Written by benchmarks/bench_vs_scalesim.py --write-golden.\n")
        w = csv.writer(f)
        w.writerow(["dataflow", "rows", "cols", "m", "n", "k", "nm", "ifmap_kb", "filter_kb", "ofmap_kb", "bw",
                    "total_cycles", "stall_cycles", "total_cycles_incl_prefetch"])
        for g in GOLDEN_KEYS:
            c, r = case(*g), cache[key(case(*g))]
            w.writerow([c["dataflow"], c["rows"], c["cols"], c["m"], c["n"], c["k"], c["nm"], c["ifmap_kb"],
                        c["filter_kb"], c["ofmap_kb"], c["bw"], r["total_cycles"], r["stall_cycles"],
                        r["total_cycles_incl_prefetch"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="SCALE-Sim's venv (created if missing)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="SCALE-Sim results cache (JSON)")
    ap.add_argument("--rerun", action="store_true", help="ignore cached SCALE-Sim results")
    ap.add_argument("--quick", action="store_true", help="a subset of every tier")
    ap.add_argument("--jobs", type=int, default=2, help="SCALE-Sim processes in parallel")
    ap.add_argument("--repeats", type=int, default=3, help="analytic engine timing: best of N")
    ap.add_argument("--no-cycle", action="store_true", help="skip the cycle engine")
    ap.add_argument("--write-golden", type=Path, help="write the golden table (tests/data/scalesim_golden.csv)")
    args = ap.parse_args()
    todo = cases(args.quick)
    cache = {} if args.rerun or not args.cache.exists() else json.loads(args.cache.read_text())
    missing = [c for c in todo if key(c) not in cache]
    if missing:
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        print(f"running {len(missing)} cases through SCALE-Sim ({len(todo) - len(missing)} cached)", file=sys.stderr)
        run_scalesim(ensure_venv(args.venv), missing, cache, args.cache, args.jobs)
    rows = [compare(c, cache[key(c)], args) for c in todo]
    print_rows(rows)
    print_summary(rows)
    if args.write_golden:
        write_golden(args.write_golden, cache)
        print(f"wrote {args.write_golden}")


if __name__ == "__main__":
    main()
