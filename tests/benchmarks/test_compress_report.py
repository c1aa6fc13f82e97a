"""The compression results page is rendered from the benchmark's JSON: ratios and speed-ups computed, not
typed (the committed docs/results/compress.json is the input)."""

import json
from pathlib import Path

from benchmarks.compress import markdown

RESULTS = Path(__file__).parents[2] / "docs" / "results" / "compress.json"


def test_the_page_derives_its_ratios_from_the_measurements():
    r = json.loads(RESULTS.read_text())
    md = markdown(r)
    assert md == (RESULTS.with_suffix(".md")).read_text()  # the committed page is this JSON's rendering
    ratio = r["deep"]["fp32_onnx_bytes"] / r["deep"]["store"]["file_bytes"]
    assert f"**{ratio:.1f}x smaller**" in md
    base = r["clips_per_s"]["torch fp32 eager, dense"]
    for name, v in r["clips_per_s"].items():
        assert f"| {name} | {v:.1f} | {v / base:.2f}x |" in md
    removed = 1 - r["structured"]["l1"][-1]["gflops"] / r["structured"]["l1"][0]["gflops"]
    assert f"| {removed:.0%} |" in md
    paper = r["paper_geometry"]["clips_per_s"]  # the same pruned architecture at the paper's geometry
    for name, v in paper.items():
        assert f"| {name} | {v:.1f} | {v / paper['torch fp32 eager, dense']:.2f}x |" in md


def test_the_low_data_split_keeps_the_first_videos_of_each_class(tmp_path):
    from benchmarks.compress import keep_first_per_class

    split = tmp_path / "trainlist01.txt"
    split.write_text("a/a_1.mp4 1\na/a_2.mp4 1\na/a_3.mp4 1\nb/b_1.mp4 2\nb/b_2.mp4 2\n")
    keep_first_per_class(split, 2)
    assert split.read_text() == "a/a_1.mp4 1\na/a_2.mp4 1\nb/b_1.mp4 2\nb/b_2.mp4 2\n"
