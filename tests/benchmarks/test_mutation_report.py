"""The mutation report's own logic: reading mutmut's verdicts, per-module scores, the accepted list."""

import pytest

from benchmarks.mutation import accepted_survivors, markdown, module_of, parse_results, problems, scores

RESULTS = """
    edge.window.x_uniform_indices__mutmut_1: killed
    edge.window.x_uniform_indices__mutmut_2: survived
    edge.window.xǁScoreSmootherǁ__init____mutmut_1: timeout
    edge.window.xǁScoreSmootherǁ__call____mutmut_3: no tests
    kernels.csr.xǁCSRMatrixǁ__post_init____mutmut_7: killed
"""


def test_verdicts_are_read_per_mutant_and_grouped_by_module():
    r = parse_results(RESULTS)
    assert len(r) == 5 and r["edge.window.x_uniform_indices__mutmut_2"] == "survived"
    assert module_of("edge.window.xǁScoreSmootherǁ__init____mutmut_1") == "edge.window"
    assert module_of("train.data.decode.x_read_video__mutmut_12") == "train.data.decode"
    with pytest.raises(ValueError, match="module"):
        module_of("nonsense")


def test_scores_count_timeouts_as_detected_and_untested_code_as_surviving(tmp_path):
    doc = tmp_path / "testing.md"
    doc.write_text("| mutant | why |\n|---|---|\n| `edge.window.x_uniform_indices__mutmut_2` | equivalent: ... |\n")
    accepted = accepted_survivors(doc)
    assert accepted == {"edge.window.x_uniform_indices__mutmut_2"}
    results = parse_results(RESULTS)
    rows = scores(results, accepted)
    window, csr = rows
    assert (csr.module, csr.mutants, csr.killed, csr.survived) == ("kernels.csr", 1, 1, 0)
    assert (window.module, window.mutants, window.killed, window.survived, window.accepted, window.unchecked) == \
        ("edge.window", 4, 2, 2, 1, 0)
    found = problems(results, accepted, rows, 0.10)
    assert found == ["edge.window: 2 of 4 mutants survive (50% > 10%)",
                     "survivor not listed in docs/testing.md: edge.window.xǁScoreSmootherǁ__call____mutmut_3 (no tests)"]
    assert "| edge.window | 4 | 2 | 2 | 1 | 0 | 50.0% |" in markdown(rows, 0.10)


def test_an_unfinished_run_is_reported_as_such():
    results = {"edge.window.x_f__mutmut_1": "not checked", "edge.window.x_f__mutmut_2": "killed"}
    rows = scores(results, set())
    assert (rows[0].killed, rows[0].unchecked, rows[0].survived) == (1, 1, 0)
    assert problems(results, set(), rows, 0.10) == [
        "edge.window: 1 of 2 mutants not checked yet (finish `make mutate`)"]
    with pytest.raises(SystemExit, match="does not know"):
        scores({"edge.window.x_f__mutmut_1": "pending"}, set())
