"""Spec of an `nm_systolic` accelerator: YAML schema -> frozen records.

```yaml
version: 1
kind: nm_systolic
name: systolic_32x32
clock_hz: 1.0e9
dtypes: [int8]                  # datapath dtypes; the first is the default
accumulator_bytes: 4            # partial-sum width in the output SRAM
array: {rows: 32, cols: 32, dataflow: ws, tile_temporal: true}   # ws | os | is; see systolic_folds
sparsity:
  patterns: ["1:4", "2:4", "2:8"]                  # N:M along the reduction (k) axis
  metadata_bits_per_value: {4: 2, 8: 3}            # index bits per kept value, per group size M
  row_wise: {enabled: false, m: 4, n_choices: [1, 2]}   # VEGETA-style: one N per output row
memory: {ifmap_sram_bytes: 65536, filter_sram_bytes: 65536, ofmap_sram_bytes: 65536,
         double_buffered: true, dram_bytes_per_clk: 16,
         reuse: ideal-tiling}       # ideal-tiling | scalesim; see below
vector: {elements_per_clk: 32}  # non-GEMM ops (norms, pooling, element-wise) on the vector unit
energy_pj: {mac: 0.2, sram_read_byte: 1.2, sram_write_byte: 1.4, dram_byte: 40.0,
            metadata_bit: 0.05, vector_op: 0.5, static_per_clk: 0.0}
```

`memory.reuse` picks the memory system (both answers are available, each named in the estimate):
  ideal-tiling (default) — simsparse's tile-level DMA (`systolic_folds`): each fold's tiles are
      fetched once into the free half of each SRAM, an operand is kept across folds when it
      fits its half and re-fetched per fold/chunk when it does not, partial sums stay on chip
      (`array.tile_temporal`), and one DRAM interface of `dram_bytes_per_clk` serves all three
      SRAMs while the next fold's fill overlaps this fold's compute.
  scalesim — SCALE-Sim v3.0.0's double-buffered scratchpads, reproduced cycle for cycle
      (`systolic_memory`): a circular prefetch window over each operand in SCALE-Sim's order,
      re-fetching whole windows when the demand steps back, every partial sum written out,
      SCALE-Sim's stall accounting, and one DRAM port of `dram_bytes_per_clk` per SRAM (its
      USER bandwidth mode). It needs `double_buffered: true` and `array.tile_temporal: false`
      (SCALE-Sim neither tiles T nor single-buffers).
ideal-tiling is the default because it is the memory system an accelerator with these SRAMs
would be programmed for; scalesim answers "what would SCALE-Sim say" and carries its artifacts
(a lone miss counts its wait twice; a step back behind the window re-fetches a lap of windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simsparse.errors import SpecError
from simsparse.specs import Field, ListOf, MapOf, Optional, validate
from simsparse.units import DTYPES

DATAFLOWS = ("ws", "os", "is")
REUSE_MODES = ("ideal-tiling", "scalesim")

_ROW_WISE = {
    "enabled": Field(bool, required=False, default=False),
    "m": Field(int, min=2, max=64),
    "n_choices": ListOf(Field(int, min=1, max=64), min_len=1),
}

SCHEMA = {
    "version": Field(int),
    "kind": Field(str, choices=("nm_systolic",)),
    "name": Field(str),
    "description": Field(str, required=False, default=""),
    "clock_hz": Field(float, min=1e6, max=1e11),
    "dtypes": ListOf(Field(str, choices=DTYPES), min_len=1),
    "accumulator_bytes": Field(int, min=1, max=8),
    "array": {
        "rows": Field(int, min=1, max=4096),
        "cols": Field(int, min=1, max=4096),
        "dataflow": Field(str, choices=DATAFLOWS),
        "tile_temporal": Field(bool, required=False, default=True),
    },
    "sparsity": {
        "patterns": ListOf(Field(str)),
        "metadata_bits_per_value": MapOf(Field(float, min=0.0, max=32.0), required=False, default={}),
        "row_wise": Optional(_ROW_WISE),
    },
    "memory": {
        "ifmap_sram_bytes": Field(int, min=64),
        "filter_sram_bytes": Field(int, min=64),
        "ofmap_sram_bytes": Field(int, min=64),
        "double_buffered": Field(bool, required=False, default=True),
        "dram_bytes_per_clk": Field(float, min=1e-3, max=1e6),
        "reuse": Field(str, choices=REUSE_MODES, required=False, default="ideal-tiling"),
    },
    "vector": {"elements_per_clk": Field(float, min=1e-3, max=1e6)},
    "energy_pj": {
        "mac": Field(float, min=0.0, max=1e4),
        "sram_read_byte": Field(float, min=0.0, max=1e4),
        "sram_write_byte": Field(float, min=0.0, max=1e4),
        "dram_byte": Field(float, min=0.0, max=1e5),
        "metadata_bit": Field(float, min=0.0, max=1e4),
        "vector_op": Field(float, required=False, default=0.0, min=0.0, max=1e4),
        "static_per_clk": Field(float, required=False, default=0.0, min=0.0, max=1e9),
    },
}


@dataclass(frozen=True)
class NmPattern:
    """One supported N:M pattern: at most n nonzeros in every group of m along k."""

    n: int
    m: int
    metadata_bits_per_value: float

    @property
    def label(self) -> str:
        return f"{self.n}:{self.m}"


@dataclass(frozen=True)
class RowWise:
    """VEGETA-style row-wise N:M: every output row picks its own N from n_choices (group size m)."""

    m: int
    n_choices: tuple[int, ...]
    metadata_bits_per_value: float

    @property
    def row_code_bits(self) -> int:
        """Bits per row naming its N (one code per choice, plus dense and empty rows)."""
        return max(1, math.ceil(math.log2(len(self.n_choices) + 2)))


@dataclass(frozen=True)
class MemorySpec:
    ifmap_sram_bytes: int
    filter_sram_bytes: int
    ofmap_sram_bytes: int
    double_buffered: bool
    dram_bytes_per_clk: float
    reuse: str                      # ideal-tiling | scalesim (module docstring)

    def working_bytes(self, sram_bytes: int) -> float:
        """Bytes of one SRAM usable by the tile in use (half of it when double-buffered)."""
        return sram_bytes / 2 if self.double_buffered else float(sram_bytes)


@dataclass(frozen=True)
class EnergySpec:
    mac_pj: float
    sram_read_byte_pj: float
    sram_write_byte_pj: float
    dram_byte_pj: float
    metadata_bit_pj: float
    vector_op_pj: float
    static_per_clk_pj: float


@dataclass(frozen=True)
class SystolicSpec:
    name: str
    clock_hz: float
    dtypes: tuple[str, ...]
    accumulator_bytes: int
    rows: int
    cols: int
    dataflow: str
    tile_temporal: bool
    patterns: tuple[NmPattern, ...]
    row_wise: RowWise | None
    memory: MemorySpec
    vector_elements_per_clk: float
    energy: EnergySpec
    description: str = ""


def parse_nm(text: str, *, source: str, where: str) -> tuple[int, int]:
    """"2:8" -> (2, 8); SpecError naming the field unless 1 <= N < M <= 64."""
    parts = str(text).split(":")
    try:
        n, m = int(parts[0]), int(parts[1])
        ok = len(parts) == 2 and 1 <= n < m <= 64
    except (ValueError, IndexError):
        ok = False
    if not ok:
        raise SpecError(f"{source}: field {where} = {text!r} is invalid; allowed: 'N:M' with 1 <= N < M <= 64")
    return n, m


def _metadata_bits(table: dict, m: int, *, source: str, where: str) -> float:
    bits = table.get(m, table.get(str(m)))
    if bits is None:
        raise SpecError(f"{source}: missing field sparsity.metadata_bits_per_value.{m} (needed by {where}); "
                        f"add the index bits per kept value for groups of {m}, e.g. {math.ceil(math.log2(m))}")
    return float(bits)


def _row_wise(data: dict | None, table: dict, *, source: str) -> RowWise | None:
    if not data or not data.get("enabled"):
        return None
    m = data["m"]
    choices = tuple(sorted(set(data["n_choices"])))
    bad = [n for n in choices if n >= m]
    if bad:
        raise SpecError(f"{source}: field sparsity.row_wise.n_choices = {list(data['n_choices'])!r} is invalid; "
                        f"allowed: values 1 <= N < m = {m} (dense rows are always possible)")
    bits = _metadata_bits(table, m, source=source, where="sparsity.row_wise")
    return RowWise(m=m, n_choices=choices, metadata_bits_per_value=bits)


def _check_reuse(mem: dict, array: dict, *, source: str) -> None:
    """SCALE-Sim's scratchpads are double-buffered and run T untiled; say so instead of ignoring a field."""
    if mem["reuse"] != "scalesim":
        return
    if not mem["double_buffered"]:
        raise SpecError(f"{source}: field memory.double_buffered = False is invalid with memory.reuse = "
                        "'scalesim'; allowed: true (SCALE-Sim's scratchpads are double-buffered)")
    if array["tile_temporal"]:
        raise SpecError(f"{source}: field array.tile_temporal = True is invalid with memory.reuse = 'scalesim'; "
                        "allowed: false (SCALE-Sim streams T untiled; tile_temporal is an ideal-tiling schedule)")


def spec_from_data(data: dict, *, source: str) -> SystolicSpec:
    """Validate plain YAML data and build the frozen spec record."""
    d = validate(data, SCHEMA, source=source)
    sp = d["sparsity"]
    table = sp["metadata_bits_per_value"] or {}
    patterns = []
    for i, text in enumerate(sp["patterns"]):
        where = f"sparsity.patterns.{i}"
        n, m = parse_nm(text, source=source, where=where)
        patterns.append(NmPattern(n=n, m=m, metadata_bits_per_value=_metadata_bits(table, m, source=source,
                                                                                  where=where)))
    mem, en = d["memory"], d["energy_pj"]
    _check_reuse(mem, d["array"], source=source)
    return SystolicSpec(
        name=d["name"], clock_hz=d["clock_hz"], dtypes=tuple(d["dtypes"]),
        accumulator_bytes=d["accumulator_bytes"], rows=d["array"]["rows"], cols=d["array"]["cols"],
        dataflow=d["array"]["dataflow"], tile_temporal=d["array"]["tile_temporal"], patterns=tuple(patterns),
        row_wise=_row_wise(sp["row_wise"], table, source=source),
        memory=MemorySpec(ifmap_sram_bytes=mem["ifmap_sram_bytes"], filter_sram_bytes=mem["filter_sram_bytes"],
                          ofmap_sram_bytes=mem["ofmap_sram_bytes"], double_buffered=mem["double_buffered"],
                          dram_bytes_per_clk=mem["dram_bytes_per_clk"], reuse=mem["reuse"]),
        vector_elements_per_clk=d["vector"]["elements_per_clk"],
        energy=EnergySpec(mac_pj=en["mac"], sram_read_byte_pj=en["sram_read_byte"],
                          sram_write_byte_pj=en["sram_write_byte"], dram_byte_pj=en["dram_byte"],
                          metadata_bit_pj=en["metadata_bit"], vector_op_pj=en["vector_op"],
                          static_per_clk_pj=en["static_per_clk"]),
        description=d["description"],
    )
