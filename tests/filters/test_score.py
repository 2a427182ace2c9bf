import math

import pytest

from kodolly.errors import ConfigError
from kodolly.filters.score import ScoreFilter

from kodolly.rows import make_row


def row(id="r", instruction="질문입니다", response="답입니다", **fields):
    """A row as the pipeline hands it to filters (already normalised)."""
    return make_row(instruction=instruction, response=response, source="test", id=id, **fields)


def test_keeps_strictly_above_threshold_and_names_each_reason():
    rows = [row("a", score=31.0), row("b", score=30.0), row("c", score=29.5), row("d", score=None), row("e", score=math.nan)]
    assert ScoreFilter(30).apply(rows) == [None, "score_below", "score_below", "no_score", "no_score"]


def test_keep_unscored_keeps_rows_without_score_but_still_filters_low_scores():
    rows = [row("a", score=None), row("b", score=5.0), row("c", score=99.0)]
    assert ScoreFilter(30, keep_unscored=True).apply(rows) == [None, "score_below", None]


def test_scores_left_as_text_compare_as_numbers():
    rows = [row("a", score="45"), row("b", score=" 12.5 "), row("c", score="높음"), row("d", score=True)]
    assert ScoreFilter(30).apply(rows) == [None, "score_below", "no_score", "no_score"]


def test_settings_record_threshold_and_strictness():
    assert ScoreFilter("30", keep_unscored=True).settings() == {"min_score": 30.0, "strict": True, "keep_unscored": True}


def test_bad_threshold_is_a_config_error():
    with pytest.raises(ConfigError, match="not a number"):
        ScoreFilter("thirty")
