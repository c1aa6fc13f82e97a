"""The distillation benchmark's own logic: what each row costs per clip (the networks it runs plus the optical
flow where it needs flow) and the page rendered from its rows."""

import pytest

from benchmarks.distill import FLOWS, FUSIONS, STUDENTS, markdown, rows

NET = {"rgb": 2.0, "flow": 3.0}
FLOW = {"flow": {"method": "farneback", "pairs": 8, "resolution": [36, 36], "ms_per_pair": 0.5, "ms_per_clip": 4.0},
        "flow_tvl1": {"method": "tvl1", "pairs": 8, "resolution": [36, 36], "ms_per_pair": 30.0, "ms_per_clip": 240.0}}


def _evals(accuracy=0.5):
    keys = ["rgb", *FLOWS, *STUDENTS, *FUSIONS]
    return {k: {"accuracy": accuracy + 0.01 * i, "order_accuracy": 0.9, "clips": 310} for i, k in enumerate(keys)}


def test_each_row_costs_the_networks_it_runs_and_the_flow_it_needs():
    table = {r["key"]: r for r in rows(_evals(), NET, FLOW)}
    assert table["rgb"]["ms_per_clip"] == 2.0 and not table["rgb"]["needs_flow"]
    assert table["flow"]["ms_per_clip"] == 3.0 + 4.0 and table["flow_tvl1"]["ms_per_clip"] == 3.0 + 240.0
    for k in STUDENTS:  # a student runs the RGB network alone: RGB cost
        assert table[k]["ms_per_clip"] == 2.0 and not table[k]["needs_flow"]
    for k in FUSIONS:  # both networks and the teacher's flow
        assert table[k]["ms_per_clip"] == pytest.approx(2.0 + 3.0 + 4.0) and table[k]["needs_flow"]


def test_the_page_states_the_setup_the_flow_costs_and_the_claim():
    result = {"cpu": "Test CPU", "date": "2026-01-02", "seconds": 600, "quick": False, "setup": "a setup",
              "clips": 310, "network_ms": NET, "flows": FLOW, "opencv": "5.0.0",
              "rows": rows(_evals(), NET, FLOW),
              "all_classes": [{"key": "rgb", "model": "RGB only", "accuracy": 0.7, "order_accuracy": 0.8}]}
    page = markdown(result)
    assert "on Test CPU" in page and "10 min in one run" in page
    assert "farneback 0.5 ms per frame pair (4.0 ms for a clip's 8 pairs) and tvl1 30.0 ms" in page
    assert "| Flow only (TV-L1) | 0.520 | 0.900 | yes | 243.00 | 121.5x |" in page
    assert "310 test clips: one clip is 0.3 points." in page
    assert "(MAE + Gram) against plain RGB at the same cost: 0.560 vs 0.500 (better)" in page
    assert "| RGB only | 0.700 | 0.800 |" in page
