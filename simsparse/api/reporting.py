"""`api.report`: every checkpoint on every arch at every batch, what-if workloads, kernels timed on
this CPU beside the CPU model, gathered into `ReportData` (report_data.py builds the records,
report_md.py writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from simsparse import report_data, report_md
from simsparse.api.core import evaluate, inspect, parse_batches, software_stacks
from simsparse.api.jobs import _noise_limits, measure
from simsparse.archs import load_arch
from simsparse.graph.catalog import load_workload
from simsparse.records import Pattern, Report
from simsparse.report_records import MeasuredRow, Network, ReportData


def report(*, checkpoints: Sequence[str | Path], archs: Sequence[str], batches: Sequence[int] = (1, 256),
           software: str | None = None, engine: str = "analytic", workload: str | None = None,
           what_if: Sequence[str] = (), measure: bool = True, measure_layers: int = 2, focus: str | None = None,
           title: str = "simsparse report", out: str | Path | None = None, progress: bool = False,
           allow_noisy: bool = False, max_noise: float | None = None, max_wait_s: float | None = None) -> ReportData:
    """`simsparse report`: every checkpoint on every arch at every batch (beside its dense baseline),
    each `what_if` workload with each family's synthetic pattern, kernels timed on this CPU beside
    the CPU model (`measure`, when cpu_host is among the archs; load-aware as `measure`: noisy
    timings are refused unless `allow_noisy`, then shown with their noise), and how every number
    was obtained. With `out`, writes report.md, its figures and the JSON/CSV behind it there.
    Checkpoints are labelled by file name without suffix; bad input fails before any estimate."""
    batches, stacks = parse_batches(batches), software_stacks(archs=archs, software=software)
    noise = {"allow_noisy": allow_noisy, **_noise_limits(max_noise=max_noise, max_wait_s=max_wait_s)}
    labels = report_data.checkpoint_labels(checkpoints, focus=focus, out=out)
    models = {a: load_arch(a) if stacks[a] is None else load_arch(a).with_software(stacks[a]) for a in archs}
    for wl in what_if:
        load_workload(wl)
    inspected = {label: inspect(path=path) for label, path in zip(labels, checkpoints)}
    networks, reports = [], {}
    for label, path in zip(labels, checkpoints):
        for a in archs:
            for b in batches:
                reports[(label, a, b)] = evaluate(arch=a, mask=path, workload=workload, batch=b, engine=engine,
                                                  software=stacks[a])
        networks.append(report_data.checkpoint_network(
            label=label, path=str(path), workload=str(reports[(label, archs[0], batches[0])].provenance["workload"]),
            patterns=inspected[label].patterns, meta=inspected[label].masks.provenance.get("meta") or {}))
    for wl in tqdm(what_if, desc="what-if", disable=not progress, leave=False):
        for family, pattern in report_data.FAMILY_PATTERNS:
            networks.append(report_data.what_if_network(family=family, pattern=pattern, workload=wl))
            for a in archs:
                for b in batches:
                    reports[(networks[-1].label, a, b)] = evaluate(arch=a, workload=wl, pattern=pattern, batch=b,
                                                                   engine=engine, software=stacks[a])
    by_label = {n.label: n for n in networks}
    rows = [report_data.row_of(by_label[label], r, batch=b, kind=models[a].kind) for (label, a, b), r in reports.items()]
    measured = (_measure_beside_model(networks, reports, {k: v.patterns for k, v in inspected.items()},
                                      batch=min(batches), layers=measure_layers, noise=noise)
                if measure and "cpu_host" in archs else ())
    data = ReportData(title=title, batches=batches, networks=tuple(networks), rows=tuple(rows),
                      archs=tuple(report_data.arch_info(models[a], reports, engine=engine) for a in archs),
                      measured=measured, validation=report_data.load_validation_summary(),
                      notes=report_data.what_if_notes(what_if),
                      **report_data.focus_data(focus or report_data.default_focus(rows, batch=max(batches)),
                                               reports, models, batch=max(batches)))
    if out is not None:
        report_md.write_report(data, out)
    return data


MEASURE_THREADS = 1   # one thread on both sides: on a shared machine two-thread timings of µs kernels wait on the scheduler


def _measure_beside_model(networks: Sequence[Network], reports: Mapping[tuple, Report],
                          patterns: Mapping[str, Mapping[str, Pattern]], *, batch: int,
                          layers: int, noise: Mapping[str, Any]) -> tuple[MeasuredRow, ...]:
    """The largest GEMM layers of each sparse trained network, timed here on MEASURE_THREADS with
    synthetic masks of their structure (dense, the family's kernel and the model's pick), beside
    the CPU model of the same GEMM, kernel and thread count. `noise`: `measure`'s noise policy."""
    one_thread = (f"software.threads={MEASURE_THREADS}",)
    out, seen = [], set()
    for net in networks:
        if net.synthetic or (net.density or 1.0) >= 1.0:
            continue
        mine = patterns[net.label]
        for e in report_data.largest_gemm_layers(reports[(net.label, "cpu_host", batch)], layers):
            pattern = report_data.measure_pattern(mine[e.layer]) if e.layer in mine else None
            if pattern is None:
                continue
            gemm = f"{e.m},{e.n},{e.k}"
            # kernel-level, as `measure` times it: the layer's own shape and mask, not shrunk first
            # (a channels=D mask then runs the `shrunk` kernel, as it is timed)
            same = {"arch": "cpu_host", "gemm": gemm, "pattern": pattern, "overrides": one_thread, "shrink": False}
            picked = evaluate(**same).estimates[0].format
            for kernel in dict.fromkeys(("dense", report_data.natural_kernel(pattern), picked)):
                if (gemm, pattern, kernel) in seen:
                    continue
                seen.add((gemm, pattern, kernel))
                timed = measure(device="cpu", gemm=gemm, pattern=pattern, kernel=kernel,
                                threads=MEASURE_THREADS, **noise).results[0]
                model = evaluate(**same, kernel=kernel)
                out.append(MeasuredRow(network=net.label, layer=e.layer, kernel=kernel, m=e.m, n=e.n, k=e.k,
                                       pattern=pattern, measured_s=timed.median_s, iqr_s=timed.iqr_s,
                                       modelled_s=model.total.latency_s, threads=timed.threads,
                                       load_avg_1min=timed.load_avg_1min, noise=timed.noise, noisy=timed.noisy))
    return tuple(out)


