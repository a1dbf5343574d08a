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


def test_the_table_gives_each_runner_its_cold_and_warm_runs_speed_and_agreement():
    report = {"owners": 4714, "workers": 2, "repeats": 3, "cores": 2, "runners": {
        IN_PROCESS: {"first_s": 18.2, "later_median_s": 13.0, "first_speed_vs_in_process": 1.0, "same_rankings": 4714},
        "DaskRunner, LocalCluster of 2 workers": {"first_s": 30.2, "later_median_s": None, "first_speed_vs_in_process": 0.6, "same_rankings": 4713},
    }}
    lines = markdown(report, "var/run/serving/influencer_recs", "var/anime")
    assert "| DirectRunner, in one process | 18.2 | 13.0 | 1.00x | 4,714 of 4,714 |" in lines
    assert "| DaskRunner, LocalCluster of 2 workers | 30.2 | - | 0.60x | 4,713 of 4,714 |" in lines
    assert any("Reproduce: `make bench-batch`" in line for line in lines)
