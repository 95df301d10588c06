"""`validate --device published`: the A100 dev rows, predicted beside measured."""

from __future__ import annotations

import pytest

from simsparse.errors import SimSparseError
from simsparse.validate_published import result_to_dict, run


@pytest.fixture(scope="module")
def result():
    return run()


def test_every_dev_row_is_predicted_with_its_own_backend(result):
    assert len(result.points) == 9
    assert {p.backend for p in result.points} == {"cusparselt", "cutlass"}
    assert all(p.format == "2:4" for p in result.points)
    d = result_to_dict(result)
    assert set(d["summary"]) >= {"mape_speedup", "mape_time", "mape", "sign_correct", "n", "spearman"}
    assert {"predicted_speedup", "measured_speedup", "predicted_dense_us", "measured_sparse_us"} <= set(d["points"][0])


def test_dev_rows_meet_the_accuracy_targets(result):
    s = result.summary
    assert s["mape_speedup"] <= 10.0
    assert s["mape_time"] <= 15.0
    assert s["sign_correct"] == s["n"]


def test_missing_columns_are_reported(tmp_path):
    bad = tmp_path / "rows.csv"
    bad.write_text("id,m,n\nX,1,2\n")
    with pytest.raises(SimSparseError, match="missing column"):
        run(bad)
