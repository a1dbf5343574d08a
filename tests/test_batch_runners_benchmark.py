"""The batch-runners benchmark's comparison and table (the runs themselves: tests/test_batch_dask.py)."""

from benchmarks.batch_runners import IN_PROCESS, markdown, rankings, same_rankings
from components.batch_scorer.output import write_shard


def test_rankings_compare_owner_by_owner_in_order(tmp_path):
    rows = [{"owner_id": 1, "influencer_ids": [3, 4], "scores": [0.5, 0.25]}, {"owner_id": 2, "influencer_ids": [5], "scores": [1.0]}]
    write_shard(str(tmp_path), 0, 1, rows, [], "jsonl", False, {"owners_read": 2})
    reference = rankings(str(tmp_path))
    assert reference == {1: [3, 4], 2: [5]}
    assert same_rankings(reference, reference) == 2
    assert same_rankings(reference, {1: [4, 3], 2: [5]}) == 1  # the same influencers in another order are not the same
    assert same_rankings(reference, {1: [3, 4]}) == 1  # an owner missing from the other run is not either


def test_the_table_gives_each_runner_its_median_range_speed_and_agreement():
    report = {"owners": 4714, "workers": 2, "repeats": 2, "cores": 2, "runners": {
        IN_PROCESS: {"median_s": 16.1, "min_s": 15.2, "max_s": 17.0, "speed_vs_in_process": 1.0, "same_rankings": 4714},
        "DaskRunner, LocalCluster of 2 workers": {"median_s": 16.0, "min_s": 15.9, "max_s": 16.1, "speed_vs_in_process": 1.01, "same_rankings": 4714},
    }}
    lines = markdown(report, "var/run/serving/influencer_recs", "var/anime")
    assert "| DirectRunner, in one process | 16.1 (15.2-17.0) | 1.00x | 4,714 of 4,714 |" in lines
    assert "| DaskRunner, LocalCluster of 2 workers | 16.0 (15.9-16.1) | 1.01x | 4,714 of 4,714 |" in lines
    assert any("Reproduce: `make bench-batch`" in line for line in lines)
