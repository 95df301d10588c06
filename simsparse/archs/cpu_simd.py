"""CPU with SIMD units running the real kernels of simsparse/kernels: `kind: cpu_simd`.

Per layer the model plans one of the kernels ("dense", "csr", "condensed", "nm", "shrunk") as
the plan's `format`: the inner-loop profile of that kernel (archs/cpu_loops.py) with each data
stream placed in the memory level its working set fits (warm cache) or in main memory (cold
cache, `memory.cache_state`): the typed payload `CpuPlan` (archs/cpu_cost.py). With no kernel
forced it plans every kernel the mask allows and keeps the fastest by the closed form
(`cpu_cost.latency_breakdown`, the analytic engine's formula: what simsparse recommends);
`plan(work, kernel="csr")` forces one (the CLI's `--kernel`), raising PatternError when the mask
does not suit it (e.g. condensed needs a constant fan-in). Kernels are decided from the layer's
measured Pattern, never from the mask array.

A grouped conv (depthwise included: `gemm.count` groups of an op_kind "conv" layer) is one kernel
call over all its groups (`grouped_profile`): the per-group loops `count` times, split over the
threads by rows of all groups, one call overhead; the dense kernel runs the groups as one batched
GEMM (one dispatch), the sparse kernels one dispatch per group (kernels/grouped.py). Other
batched GEMMs (attention matmuls: count = batch x heads) stay `count` calls back to back.

`cpu_host` is this machine: detected by simsparse.hostinfo (cores, SIMD, caches, clock, a cached
bandwidth probe) plus the kernel parameters fitted by `simsparse.calibrate` when present.
"""

from __future__ import annotations

from dataclasses import replace

from simsparse.archs import ARCH_KINDS, DYNAMIC_ARCHS, ArchModel, load_arch
from simsparse.archs.cpu_cost import CpuPlan, PlacedPhase, latency_breakdown, place, place_phases
from simsparse.archs.cpu_host import host_spec_data
from simsparse.archs.cpu_loops import PROFILES, TORCH_PARALLEL_GRAIN
from simsparse.archs.cpu_phases import LoopProfile, PortCycles, Shape
from simsparse.archs.cpu_spec import KIND, parse_cpu_spec
from simsparse.errors import PatternError, SimSparseError
from simsparse.masks.formats import FORMATS, NM_GROUP_CHOICES
from simsparse.masks.patterns import best_nm
from simsparse.records import ExecutionPlan, Gemm, LayerWork
from simsparse.units import dtype_bytes

CPU_DTYPES = ("fp32", "bf16")


# ----------------------------------------------------------------------------- mask statistics


def shape_of(work: LayerWork, gemm: Gemm) -> tuple[Shape, bool]:
    """Kernel-relevant statistics of one of the layer's `count` GEMMs, from its measured Pattern,
    and whether its fan-in is constant. A grouped conv's pattern covers all groups' stacked rows:
    its counts are shared evenly among the groups."""
    vb = dtype_bytes(gemm.dtype)
    p = work.pattern
    if p is None:
        return Shape(m=gemm.m, n=gemm.n, k=gemm.k, nnz=gemm.n * gemm.k, rows_active=gemm.n, cols_active=gemm.k,
                     fan_in=gemm.k, nm=None, value_bytes=vb), True
    groups = max(1, p.rows // max(1, gemm.n))
    rows_active = -(-(p.rows - p.rows_removed) // groups)
    return Shape(m=gemm.m, n=gemm.n, k=gemm.k, nnz=round(work.nnz_per_gemm), rows_active=rows_active,
                 cols_active=p.cols - p.zero_cols, fan_in=p.fan_in.max,
                 nm=best_nm(p.nm_envelope, NM_GROUP_CHOICES), value_bytes=vb), p.fan_in.constant or p.nnz == 0


def suitable_kernels(shape: Shape, *, constant_fan_in: bool, has_mask: bool) -> dict[str, str]:
    """kernel -> "" when it can run this mask, else why not."""
    why = {"dense": ""}
    why["csr"] = "" if has_mask else "no mask (dense layer)"
    why["condensed"] = ("" if has_mask and constant_fan_in else
                        "condensed needs a constant fan-in among active rows; use csr or a fanin=K mask")
    why["nm"] = "" if has_mask and shape.nm is not None else "nm needs an N:M mask (N < M for M in 4..32)"
    removed = shape.rows_active < shape.n or shape.cols_active < shape.k
    why["shrunk"] = "" if has_mask and removed else ("shrunk needs all-zero rows or columns to remove (evaluate's "
                                                     "coupled channel shrink leaves none: --no-shrink keeps them)")
    return why


def grouped_profile(profile: LoopProfile, *, groups: int) -> LoopProfile:
    """One call of `profile`'s loops over `groups` groups: cycles, bytes, work units and MACs `groups`
    times; one dispatch for the dense kernel (a batched GEMM), one per group for the others."""
    phases = tuple(replace(ph, cycles=ph.cycles.scaled(groups), units=ph.units * groups,
                           streams=tuple(replace(st, bytes=st.bytes * groups) for st in ph.streams))
                   for ph in profile.phases)
    calls = profile.calls if profile.kernel == "dense" else profile.calls * groups
    return replace(profile, phases=phases, calls=calls, macs_issued=profile.macs_issued * groups,
                   metadata_bytes=profile.metadata_bytes * groups,
                   notes=profile.notes + (f"grouped conv: one call over {groups} groups",))


# ----------------------------------------------------------------------------- the model


@ARCH_KINDS.register(KIND)
class CpuSimdModel(ArchModel):
    kind = KIND
    kernels = FORMATS           # one kernel per storage format (masks.formats)
    unstructured = True         # csr runs any mask
    engines_agree_rel = 0.02    # with rows that split evenly over the threads (tests/test_cpu_model.py)

    parse_spec = staticmethod(parse_cpu_spec)

    def default_dtype(self) -> str:
        return "fp32"

    def supported_dtypes(self) -> tuple[str, ...]:
        return CPU_DTYPES if self.spec.bf16 else ("fp32",)

    def plan(self, work: LayerWork, *, dense: bool = False, kernel: str | None = None) -> ExecutionPlan[CpuPlan]:
        """The plan of `work` on this CPU. `kernel` forces one of `kernels` (None: the fastest
        suitable one); `dense=True` plans the dense baseline (torch GEMM on the full weight)."""
        self.check_kernel(kernel)
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
        why = suitable_kernels(shape, constant_fan_in=constant, has_mask=work.pattern is not None)
        if kernel is not None:
            if why[kernel]:
                raise PatternError(f"layer {work.name}: kernel {kernel} cannot run this mask: {why[kernel]}")
            return self._plan_kernel(work, gemm, shape, kernel)
        plans = [self._plan_kernel(work, gemm, shape, k) for k in FORMATS if not why[k]]
        times = [latency_breakdown(p.payload, self.spec).latency_s for p in plans]
        best = min(range(len(plans)), key=times.__getitem__)
        ranking = ", ".join(f"{p.format} {t * 1e6:.1f} us" for p, t in sorted(zip(plans, times),
                                                                           key=lambda pt: pt[1]))
        return replace(plans[best], notes=plans[best].notes + (f"kernel choice: {ranking}",))

    def _plan_kernel(self, work: LayerWork, gemm: Gemm, shape: Shape, kernel: str) -> ExecutionPlan[CpuPlan]:
        spec = self.spec
        threads = max(1, spec.threads)
        profile = PROFILES[kernel](spec, shape, threads)
        calls = gemm.count                                   # back-to-back calls of the profile
        if work.op_kind == "conv" and gemm.count > 1:        # a grouped conv: one call over its groups
            profile, calls = grouped_profile(profile, groups=gemm.count), 1
        phases = place_phases(profile, spec, threads)
        by_level: dict[str, float] = {}
        for ph in phases:
            for lvl, b in ph.bytes_by_level.items():
                by_level[lvl] = by_level.get(lvl, 0.0) + b * calls
        notes: tuple[str, ...] = ()
        if gemm.dtype != "fp32":
            notes += (f"{gemm.dtype}: modelled by value width only; the real kernels are fp32",)
        payload = CpuPlan(kernel=kernel, threads=threads, threaded=profile.threaded, calls=profile.calls,
                          count=calls, phases=phases)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=kernel, gemm=gemm, padded=gemm,
            macs_dense=gemm.macs, macs_effective=round(gemm.m * work.nnz_per_gemm * gemm.count) if work.pattern
            is not None else gemm.macs, macs_issued=profile.macs_issued * calls, bytes_by_level=by_level,
            metadata_bytes=profile.metadata_bytes * calls, payload=payload, notes=notes + profile.notes)

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan[CpuPlan]:
        spec = self.spec
        b = float(work.bytes_moved)
        split = place(bytes_moved=b, working_set_bytes=b / max(1, spec.threads), levels=spec.levels,
                      threads=spec.threads, fill_fraction=spec.fill_fraction, cold=spec.cache_state == "cold")
        elems = max(1, work.elements)
        phase = PlacedPhase(name="elementwise", cycles=PortCycles(load=elems / (spec.fp32_lanes * spec.load_ports)),
                            parallel=elems > TORCH_PARALLEL_GRAIN, units=elems, params="", batched=False,
                            bytes_by_level=split, gathered_row_bytes_by_level={}, gather_loop_bytes_by_level={})
        payload = CpuPlan(kernel="memory", threads=spec.threads, threaded=True, calls=1, count=1, phases=(phase,))
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            macs_dense=0, macs_effective=0, macs_issued=0, bytes_by_level=split, metadata_bytes=0.0,
            payload=payload)


# ----------------------------------------------------------------------------- cpu_host


@DYNAMIC_ARCHS.register("cpu_host")
def cpu_host_data() -> dict:
    """Spec data for this machine: detection + cached bandwidth probe + calibration when present."""
    return host_spec_data()


def cpu_model(name_or_path: str = "cpu_host", *, threads: int | None = None) -> CpuSimdModel:
    """Load a cpu_simd arch (default: this machine), optionally at another thread count."""
    overrides = (f"software.threads={int(threads)}",) if threads is not None else ()
    model = load_arch(name_or_path, overrides)
    if not isinstance(model, CpuSimdModel):
        raise SimSparseError(f"arch {name_or_path} is of kind {model.kind}, not {KIND}; pick a CPU arch")
    return model
