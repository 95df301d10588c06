"""One validation stack: model predictions beside measured timings, for every device.

    records.py     MeasuredPoint (one measured case + prediction), Summary, Noise, Group,
                   NotEvaluated, Corpus, Crossover, ValidationReport
    stats.py       APE / MAPE (fractions), Spearman (NaN where undefined), sign agreement of
                   (speedup - 1), worst points, repeatability (the measurement's own noise),
                   summaries and groupings
    corpus.py      published CSVs: the torch-level and kernel schemas, strict checks, shape-set folds
    gpu_predict.py GPU name -> arch spec table, dense / 2:4 pair prediction under a software stack
    published.py   source `published`: every shipped corpus (or one --csv), per corpus x GPU x dtype
    gpu_fit.py     scipy fit of the fields a GPU spec's `fitted:` block names, on its dev rows;
                   leave-one-shape-set-out refits (stored in gpu_fits.json) and their predictions
    gpu_bands.py   the GPU error-band table from validation residuals (--regenerate / --check)
    cpu_timing.py  timing CPU points in interleaved shuffled passes (calibrate and validate)
    calibrate.py   the CPU model's per-kernel fit (`simsparse calibrate`), on the same records
    cpu.py         source `cpu`: held-out suite measured here, in-run calibration, crossovers
    cuda.py        source `cuda`: kernels timed on this GPU (measuring: kernels/cuda.py)
    render.py      table, JSON and CSV of a report (and of a calibration)

Sources are imported by name (`from simsparse.validate import published`); this package's
namespace holds only the records.
"""

from simsparse.validate.records import (Corpus, Crossover, Group, MeasuredPoint, Noise, NotEvaluated, Summary,
                                        ValidationReport)

__all__ = ["Corpus", "Crossover", "Group", "MeasuredPoint", "Noise", "NotEvaluated", "Summary", "ValidationReport"]
