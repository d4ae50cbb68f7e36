"""Category scores are means of their tasks; the average is over tasks, not categories."""

import pytest

from piccolo_lib.reporting import aggregate, format_table


def test_average_is_over_tasks_not_categories():
    scores = {"A": {"category": "STS", "main_score": 60.0}, "B": {"category": "STS", "main_score": 80.0},
              "C": {"category": "Retrieval", "main_score": 40.0}}
    cats, avg = aggregate(scores)
    assert cats == {"STS": 70.0, "Retrieval": 40.0}
    assert avg == pytest.approx(60.0)  # (60 + 80 + 40) / 3, not (70 + 40) / 2 = 55
    with pytest.raises(ValueError, match="no task scores"):
        aggregate({})


def test_table_has_two_decimals_and_dash_for_missing_category():
    table = format_table([{"model": "m", "truncate_dim": None, "categories": {"STS": 70.0}, "average": 70.0},
                          {"model": "m", "truncate_dim": 64, "categories": {"Retrieval": 1 / 3}, "average": 1 / 3}])
    lines = table.splitlines()
    assert lines[0] == "| Model | Dim | Retrieval | STS | Average |"
    assert lines[2] == "| m | full | - | 70.00 | 70.00 |" and lines[3] == "| m | 64 | 0.33 | - | 0.33 |"
