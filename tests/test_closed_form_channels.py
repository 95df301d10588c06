"""masks.closed_form.channels_pattern: the exact Pattern of a channel-pruned layer (kept rows x kept
input channels), as `patterns.analyze` measures the drawn mask."""

import numpy as np
import pytest

from simsparse.errors import PatternError
from simsparse.masks.closed_form import channels_pattern
from simsparse.masks.patterns import analyze
from simsparse.masks.synthetic import parse_pattern


@pytest.mark.parametrize("shape", [(64, 32, 3, 3), (48, 40), (30, 7, 1, 1), (10, 6, 3, 3)])
@pytest.mark.parametrize("cut_inputs", [False, True])
def test_the_closed_form_of_a_channel_pruned_layer_is_what_analyze_measures(shape, cut_inputs):
    rng = np.random.default_rng(sum(shape))
    rows, cols = shape[0], int(np.prod(shape[1:]))
    kept_rows = np.sort(rng.permutation(rows)[: rows * 2 // 3])
    kept_in = np.sort(rng.permutation(shape[1])[: max(1, shape[1] // 2)]) if cut_inputs else None
    mask = np.zeros(shape, bool)
    mask[np.ix_(kept_rows, kept_in if cut_inputs else np.arange(shape[1]))] = True
    closed, measured = channels_pattern(shape, rows, cols, kept_rows, kept_in), analyze(mask)
    for field in measured.__dataclass_fields__:
        if field != "source":
            assert getattr(closed, field) == getattr(measured, field), field


def test_channels_with_a_skip_share_parses_and_a_bad_one_is_refused_naming_the_forms():
    assert parse_pattern("channels=0.6,skip=keep").skip == 1.0
    assert parse_pattern("channels=0.6,skip=0.8").skip == 0.8 and parse_pattern("channels=0.6").skip is None
    with pytest.raises(PatternError, match="skip=S needs 0 < S <= 1"):
        parse_pattern("channels=0.6,skip=1.5")
    with pytest.raises(PatternError, match="only skip=S"):
        parse_pattern("channels=0.6,heads=2")
