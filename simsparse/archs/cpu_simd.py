"""CPU with SIMD units running the real kernels of simsparse/kernels: `kind: cpu_simd`.

Per layer the model plans one of the kernels ("dense", "csr", "condensed", "nm", "shrunk") as
the plan's `format`: the inner-loop profile of that kernel (archs/cpu_loops.py) with each data
stream placed in the memory level its working set fits (warm cache) or in main memory (cold
cache, `memory.cache_state`). With no kernel forced it plans every kernel the mask allows and
keeps the fastest by the analytic engine; `plan(work, kernel="csr")` forces one (the CLI's
`--kernel`), raising PatternError when the mask does not suit it (e.g. condensed needs a
constant fan-in).

`cpu_host` is this machine: detected by simsparse.hostinfo (cores, SIMD, caches, clock, a cached
bandwidth probe) plus the kernel parameters fitted by `simsparse.calibrate` when present.
"""

from __future__ import annotations

import math

import numpy as np

from simsparse.archs import ARCH_KINDS, DYNAMIC_ARCHS, ArchModel
from simsparse.archs.cpu_loops import PROFILES, LoopProfile, Shape, row_line_bytes
from simsparse.archs.cpu_spec import KERNEL_NAMES, KIND, CpuSpec, MemLevel, parse_cpu_spec
from simsparse.errors import PatternError, SimSparseError
from simsparse.records import ExecutionPlan, Gemm, LayerWork
from simsparse.units import dtype_bytes

CPU_DTYPES = ("fp32", "bf16")
NM_GROUPS = (4, 8, 16, 32)


# ----------------------------------------------------------------------------- placement


def place(*, bytes_moved: float, working_set_bytes: float, levels: tuple[MemLevel, ...], threads: int,
          fill_fraction: float, cold: bool) -> dict[str, float]:
    """Bytes served by each level: the share of the working set that fits each level (LRU-like,
    smooth at the boundary); a first-touch stream with a cold cache comes from main memory."""
    if bytes_moved <= 0:
        return {}
    if cold:
        return {levels[-1].name: float(bytes_moved)}
    out: dict[str, float] = {}
    served = 0.0
    ws = max(1.0, float(working_set_bytes))
    for lvl in levels:
        cap = lvl.capacity_per_thread(threads) * fill_fraction
        hit = 1.0 if cap >= ws else cap / ws
        share = max(0.0, hit - served)
        if share > 0:
            out[lvl.name] = out.get(lvl.name, 0.0) + share * bytes_moved
            served += share
        if served >= 1.0:
            break
    return out


def phases_to_data(profile: LoopProfile, spec: CpuSpec, threads: int) -> list[dict]:
    """Plain-data phases with each stream's bytes split over the memory levels."""
    cold = spec.cache_state == "cold"
    out = []
    for ph in profile.phases:
        by_level: dict[str, float] = {}
        rows_by_level: dict[str, float] = {}
        loop_by_level: dict[str, float] = {}
        cross_core = 0.0
        streams = []
        for st in ph.streams:
            if st.cross_core:
                cross_core += st.bytes
                streams.append({"name": st.name, "bytes": st.bytes, "working_set_bytes": st.working_set_bytes,
                                "bytes_by_level": {}, "cross_core": True})
                continue
            split = place(bytes_moved=st.bytes, working_set_bytes=st.working_set_bytes, levels=spec.levels,
                          threads=threads if ph.parallel else 1, fill_fraction=spec.fill_fraction,
                          cold=cold and st.first_touch)
            streams.append({"name": st.name, "bytes": st.bytes, "working_set_bytes": st.working_set_bytes,
                            "bytes_by_level": split})
            for lvl, b in split.items():
                if st.gathered_rows and st.row_bytes and lvl == spec.levels[0].name:
                    b *= min(1.0, st.row_bytes / row_line_bytes(st.row_bytes))   # L1: the row's own bytes
                by_level[lvl] = by_level.get(lvl, 0.0) + b
                if st.gathered_rows:
                    rows_by_level[lvl] = rows_by_level.get(lvl, 0.0) + b
                elif st.gather_loop:
                    loop_by_level[lvl] = loop_by_level.get(lvl, 0.0) + b
        out.append({"name": ph.name, "cycles": dict(ph.cycles), "parallel": ph.parallel, "params": ph.params,
                    "batched": ph.batched,
                    "units": int(ph.units), "bytes_by_level": by_level, "gathered_row_bytes_by_level": rows_by_level,
                    "gather_loop_bytes_by_level": loop_by_level, "cross_core_bytes": cross_core,
                    "streams": streams})
    return out


# ----------------------------------------------------------------------------- mask statistics


def _nm_choice(envelope) -> tuple[int, int] | None:
    best = None
    for m_ in NM_GROUPS:
        env = envelope.get(m_, envelope.get(str(m_))) if envelope else None
        if env is None:
            continue
        n_ = max(1, int(env))
        if n_ < m_ and (best is None or n_ * best[1] < best[0] * m_):
            best = (n_, m_)
    return best


def shape_of(work: LayerWork, gemm: Gemm) -> tuple[Shape, bool]:
    """Kernel-relevant statistics of the layer's mask, and whether its fan-in is constant."""
    vb = dtype_bytes(gemm.dtype)
    if work.mask is None:
        return Shape(m=gemm.m, n=gemm.n, k=gemm.k, nnz=gemm.n * gemm.k, rows_active=gemm.n, cols_active=gemm.k,
                     fan_in=gemm.k, nm=None, value_bytes=vb), True
    mask = np.asarray(work.mask, dtype=bool).reshape(gemm.n, gemm.k)
    per_row = mask.sum(axis=1)
    active = per_row[per_row > 0]
    constant = active.size == 0 or int(active.min()) == int(active.max())
    envelope = work.pattern.nm_envelope if work.pattern is not None else None
    if not envelope:
        from simsparse.masks.patterns import analyze
        envelope = analyze(mask).nm_envelope
    return Shape(m=gemm.m, n=gemm.n, k=gemm.k, nnz=int(per_row.sum()), rows_active=int(active.size),
                 cols_active=int(mask.any(axis=0).sum()), fan_in=int(active.max()) if active.size else 0,
                 nm=_nm_choice(envelope), value_bytes=vb), constant


def suitable_kernels(shape: Shape, *, constant_fan_in: bool, has_mask: bool) -> dict[str, str]:
    """kernel -> "" when it can run this mask, else why not."""
    why = {"dense": ""}
    why["csr"] = "" if has_mask else "no mask (dense layer)"
    why["condensed"] = ("" if has_mask and constant_fan_in else
                        "condensed needs a constant fan-in among active rows; use csr or a fanin=K mask")
    why["nm"] = "" if has_mask and shape.nm is not None else "nm needs an N:M mask (N < M for M in 4..32)"
    removed = shape.rows_active < shape.n or shape.cols_active < shape.k
    why["shrunk"] = "" if has_mask and removed else "shrunk needs all-zero rows or columns to remove"
    return why


# ----------------------------------------------------------------------------- the model


@ARCH_KINDS.register(KIND)
class CpuSimdModel(ArchModel):
    kind = KIND

    parse_spec = staticmethod(parse_cpu_spec)

    def default_dtype(self) -> str:
        return "fp32"

    def supported_dtypes(self) -> tuple[str, ...]:
        return CPU_DTYPES if self.spec.bf16 else ("fp32",)

    def plan(self, work: LayerWork, *, dense: bool = False, kernel: str | None = None) -> ExecutionPlan:
        """The plan of `work` on this CPU. `kernel` forces one of KERNEL_NAMES (None: the fastest
        suitable one); `dense=True` plans the dense baseline (torch GEMM on the full weight)."""
        if work.kind == "memory" or work.gemm is None:
            return self._plan_memory(work)
        gemm = work.gemm
        if gemm.dtype not in self.supported_dtypes():
            raise SimSparseError(f"dtype {gemm.dtype!r} is not supported by arch {self.name}; use one of "
                                 + ", ".join(self.supported_dtypes()))
        if dense:
            work = LayerWork(name=work.name, kind="gemm", op_kind=work.op_kind, gemm=gemm, dtype=work.dtype)
            kernel = "dense"
        shape, constant = shape_of(work, gemm)
        why = suitable_kernels(shape, constant_fan_in=constant, has_mask=work.mask is not None)
        if kernel is not None:
            if kernel not in KERNEL_NAMES:
                raise SimSparseError(f"unknown kernel {kernel!r}; known: {', '.join(KERNEL_NAMES)}")
            if why[kernel]:
                raise PatternError(f"layer {work.name}: kernel {kernel} cannot run this mask: {why[kernel]}")
            return self._plan_kernel(work, gemm, shape, kernel, notes=())
        plans = [self._plan_kernel(work, gemm, shape, k, notes=()) for k in KERNEL_NAMES if not why[k]]
        times = [plan_latency_s(p, self) for p in plans]
        best = int(np.argmin(times))
        ranking = ", ".join(f"{p.format} {t * 1e6:.1f} us" for p, t in sorted(zip(plans, times),
                                                                           key=lambda pt: pt[1]))
        chosen = plans[best]
        return ExecutionPlan(**{**chosen.__dict__, "notes": chosen.notes + (f"kernel choice: {ranking}",)})

    def _plan_kernel(self, work: LayerWork, gemm: Gemm, shape: Shape, kernel: str,
                     notes: tuple[str, ...]) -> ExecutionPlan:
        spec = self.spec
        threads = max(1, spec.threads)
        profile = PROFILES[kernel](spec, shape, threads)
        phases = phases_to_data(profile, spec, threads)
        by_level: dict[str, float] = {}
        for ph in phases:
            for lvl, b in ph["bytes_by_level"].items():
                by_level[lvl] = by_level.get(lvl, 0.0) + b * gemm.count
        if gemm.dtype != "fp32":
            notes = notes + (f"{gemm.dtype}: modelled by value width only; the real kernels are fp32",)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=kernel, gemm=gemm, padded=gemm,
            tiles={"threads": threads, "lanes": spec.fp32_lanes},
            macs_dense=gemm.macs, macs_effective=gemm.m * shape.nnz * gemm.count,
            macs_issued=profile.macs_issued * gemm.count, bytes_by_level=by_level,
            metadata_bytes=profile.metadata_bytes * gemm.count, notes=notes + profile.notes,
            details={"kernel": kernel, "threads": threads, "threaded": profile.threaded, "calls": profile.calls,
                     "count": gemm.count, "phases": phases, "density": shape.nnz / max(1, shape.n * shape.k),
                     "cache_state": spec.cache_state})

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan:
        spec = self.spec
        b = float(work.bytes_moved)
        split = place(bytes_moved=b, working_set_bytes=b / max(1, spec.threads), levels=spec.levels,
                      threads=spec.threads, fill_fraction=spec.fill_fraction, cold=spec.cache_state == "cold")
        elems = max(1, work.elements)
        phase = {"name": "elementwise", "cycles": {"load": elems / (spec.fp32_lanes * spec.load_ports)},
                 "parallel": elems > 32768, "units": elems, "bytes_by_level": split, "streams": []}
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None, tiles={},
            macs_dense=0, macs_effective=0, macs_issued=0, bytes_by_level=split, metadata_bytes=0.0,
            details={"kernel": "memory", "threads": spec.threads, "threaded": True, "calls": 1, "count": 1,
                     "phases": [phase], "density": 1.0, "cache_state": spec.cache_state})


def plan_latency_s(plan: ExecutionPlan, model: CpuSimdModel) -> float:
    from simsparse.engines.cpu_analytic import latency_breakdown

    return latency_breakdown(plan, model.spec).latency_s


# ----------------------------------------------------------------------------- cpu_host


@DYNAMIC_ARCHS.register("cpu_host")
def cpu_host_data() -> dict:
    """Spec data for this machine: detection + cached bandwidth probe + calibration when present."""
    from simsparse.archs.cpu_host import host_spec_data

    return host_spec_data()


def cpu_model(name_or_path: str = "cpu_host", *, threads: int | None = None) -> CpuSimdModel:
    """Load a cpu_simd arch (default: this machine), optionally at another thread count."""
    from simsparse.archs import load_arch

    overrides = (f"software.threads={int(threads)}",) if threads is not None else ()
    model = load_arch(name_or_path, overrides)
    if not isinstance(model, CpuSimdModel):
        raise SimSparseError(f"arch {name_or_path} is of kind {model.kind}, not {KIND}; pick a CPU arch")
    return model



# engines of this kind register themselves on import
from simsparse.engines import cpu_analytic as _cpu_analytic  # noqa: E402,F401
from simsparse.engines import cpu_event as _cpu_event  # noqa: E402,F401
