"""The clock a GPU sustains under its board power limit (`power:` block of a GPU spec).

A board may draw at most `tdp_w` (datasheet). What does not scale with tensor-core work
(`idle_w`: leakage, memory, fans, the rest of the chip) comes first; the SMs issuing MMAs share
the rest. An SM's tensor-core power is cubic in its clock (dynamic power ~ f V^2, the voltage
rising about linearly with the clock along the DVFS curve), proportional to its MMA duty (the
library's main-loop efficiency) and to the relative energy of the operation (`sparse_power_ratio`
for mma.sp, `dtype_power_ratio` per dtype, dense fp16 = 1):

    idle_w + busy_sms * duty * ratio * tensor_w_per_sm_at_1ghz * (f / 1 GHz)^3 <= tdp_w

so the sustained clock is the clock the datasheet peaks are quoted at (`clock_hz`) when that
fits, else the f that meets the limit (never below `min_clock_hz`, the base clock). A skinny
GEMM that keeps a few SMs busy runs at the full clock; a large one that fills every SM runs at
the power-limited clock: the PCIe parts (300 W A100, 350 W H100) reach it, the SXM parts far less.

`busy_sms` counts the SMs a kernel keeps busy on average over its waves, a static property of the
launch (tiles per wave), not of its memory stalls: more bandwidth never changes the clock.
"""

from __future__ import annotations

from simsparse.archs.gpu_spec import GpuSpec

REFERENCE_CLOCK_HZ = 1e9
CLOCK_EXPONENT = 3.0          # P_dynamic ~ f * V^2 with V ~ f on the DVFS curve


def tensor_power_w(spec: GpuSpec, *, busy_sms: float, duty: float, dtype: str, sparse: bool,
                   clock_hz: float) -> float:
    """Tensor-core power of `busy_sms` SMs at `clock_hz` (0 for a spec without a power block)."""
    p = spec.power
    if p is None:
        return 0.0
    ratio = p.dtype_power_ratio.get(dtype, 1.0) * (p.sparse_power_ratio if sparse else 1.0)
    return busy_sms * duty * ratio * p.tensor_w_per_sm_at_1ghz * (clock_hz / REFERENCE_CLOCK_HZ) ** CLOCK_EXPONENT


def sustained_clock_hz(spec: GpuSpec, *, busy_sms: float, duty: float, dtype: str, sparse: bool) -> float:
    """The clock the kernel runs at: `clock_hz`, or lower where the power limit binds."""
    p = spec.power
    if p is None:
        return spec.clock_hz
    at_one_ghz = tensor_power_w(spec, busy_sms=busy_sms, duty=duty, dtype=dtype, sparse=sparse,
                                clock_hz=REFERENCE_CLOCK_HZ)
    if at_one_ghz <= 0.0:
        return spec.clock_hz
    limited = REFERENCE_CLOCK_HZ * ((p.tdp_w - p.idle_w) / at_one_ghz) ** (1.0 / CLOCK_EXPONENT)
    return min(spec.clock_hz, max(p.min_clock_hz, limited))
