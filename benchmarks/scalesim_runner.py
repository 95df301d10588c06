"""Run GEMMs through SCALE-Sim v3 (executed by bench_vs_scalesim.py inside SCALE-Sim's own venv).

    VENV/bin/python benchmarks/scalesim_runner.py < cases.json > results.json

Each case (JSON object): m, n, k, nm ("1:1" = dense, else "N:M", SCALE-Sim's layer-wise
sparsity), dataflow (ws|os|is), rows, cols, ifmap_kb, filter_kb, ofmap_kb, bw (words per cycle
of each SRAM's DRAM port: SCALE-Sim's USER mode `Bandwidth`, and the ifmap/filter SRAM bank
bandwidths, one bank each). Prints, per case, SCALE-Sim's "Total Cycles (incl. prefetch)",
"Total Cycles", "Stall Cycles" of the layer and the wall time of the run (config parse, topology
load, compute and memory simulation; no traces written) and its CPU time. Standard library + scalesim only: it
runs where numpy < 2 is installed, never inside simsparse.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from importlib.metadata import version

from scalesim.scale_sim import scalesim

CONFIG = """[general]
run_name = bench

[run_presets]
InterfaceBandwidth = USER
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {ifmap_kb}
FilterSramSzkB = {filter_kb}
OfmapSramSzkB = {ofmap_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {bw}
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = {bw}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = {bw}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = {sparse}
SparseRep = ellpack_block
OptimizedMapping = False
BlockSize = 4
RandomNumberGeneratorSeed = 40
"""


def run_case(case: dict, workdir: str) -> dict:
    cfg, topo, layout = (os.path.join(workdir, name) for name in ("s.cfg", "t.csv", "l.csv"))
    with open(cfg, "w") as f:
        f.write(CONFIG.format(sparse="true" if case["nm"] != "1:1" else "false", **case))
    with open(topo, "w") as f:
        f.write("Layer, M, N, K, Sparsity,\n")
        f.write(f"gemm, {case['m']}, {case['n']}, {case['k']}, {case['nm']},\n")
    with open(layout, "w") as f:
        f.write("Layer,\n")
    start, cpu_start = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                       input_type_gemm=True)
        sim.run_scale(top_path=os.path.join(workdir, "out"))
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    overall, total, stall = sim.runner.single_layer_sim_object_list[0].get_compute_report_items()[:3]
    return {"total_cycles_incl_prefetch": int(overall), "total_cycles": int(total), "stall_cycles": int(stall),
            "wall_s": wall_s, "cpu_s": cpu_s, "scalesim_version": version("scalesim"), "numpy_version": version("numpy")}


def main() -> None:
    cases = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as workdir:
        for case in cases:
            print(json.dumps({"case": case, "result": run_case(case, workdir)}), flush=True)


if __name__ == "__main__":
    main()
