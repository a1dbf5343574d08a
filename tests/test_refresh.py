"""models/refresh.py's catalog comparison and new influencers' item factors, and the strict influencer reader it relies on."""

import numpy as np
import pytest

from data import validate
from data.records import Influencer
from models import features, refresh


def _catalog(rows):
    return refresh.catalog_of([Influencer(*row) for row in rows])


SERVED = _catalog([(1, 10, 20, 30, 0.5, ("A", "B")), (2, 1, 2, 3, 0.1, ("C",)), (3, 5, 5, 5, 0.9, ("A",)), (4, 0, 0, 0, 0.0, ("B",))])


def test_compare_tells_unchanged_changed_new_and_removed_influencers_apart():
    new = _catalog([
        (3, 5, 5, 5, 0.9, ("A",)),  # unchanged, another row
        (1, 10, 20, 30, 0.5, ("B", "A")),  # unchanged: category order carries nothing
        (2, 1, 2, 3, 0.2, ("C",)),  # new price
        (9, 1, 1, 1, 0.3, ("A",)),  # new influencer
    ])  # 4 removed
    positions, same, change = refresh.compare(SERVED, new)
    assert positions.tolist() == [2, 0, 1, -1]
    assert same.tolist() == [True, True, False, False]
    assert change == refresh.CatalogChange(unchanged=2, changed=1, added=1, removed=1)
    assert change.removed_share == pytest.approx(0.25)


@pytest.mark.parametrize("row", [(1, 11, 20, 30, 0.5, ("A", "B")), (1, 10, 20, 30, 0.5, ("A",)), (1, 10, 20, 30, 0.5, ("A", "B", "D"))])
def test_any_feature_that_changed_makes_the_influencer_changed(row):
    _, same, change = refresh.compare(SERVED, _catalog([row]))
    assert not same[0] and change.changed == 1 and change.removed == 3


def test_a_new_influencer_gets_the_mean_factors_of_its_nearest_catalog_neighbours_by_cosine():
    catalog_towers = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    catalog_factors = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.0, -7.0]], np.float32)
    towers = np.array([[2.0, 0.1], [0.1, 3.0]], np.float32)
    got = refresh.neighbour_factors(towers, catalog_towers, catalog_factors, neighbours=2)
    # Row 0 points along the first axis: catalog rows 0 and 1 (cosine, not length); row 1 along the second: rows 2 and 1.
    np.testing.assert_allclose(got, [[2.0, 0.0], [1.5, 2.5]])
    assert refresh.neighbour_factors(towers, catalog_towers[:1], catalog_factors[:1]).tolist() == [[1.0, 0.0], [1.0, 0.0]]  # fewer than asked


def test_neighbours_found_a_few_rows_at_a_time_are_those_of_one_pass(monkeypatch):
    rng = np.random.default_rng(0)
    catalog_towers, catalog_factors, towers = rng.normal(size=(50, 4)), rng.normal(size=(50, 3)), rng.normal(size=(9, 4))
    whole = refresh.neighbour_factors(towers, catalog_towers, catalog_factors, neighbours=3)
    monkeypatch.setattr(refresh, "_NEIGHBOUR_CELLS", 2 * 50)  # two new rows per chunk (a million-influencer catalog's case), the last one short
    np.testing.assert_allclose(refresh.neighbour_factors(towers, catalog_towers, catalog_factors, neighbours=3), whole, rtol=1e-6)


def test_the_catalog_of_parsed_rows_has_the_model_s_feature_names():
    assert refresh.catalog_of([Influencer(7, 1, 2, 3, 0.25, ("A",))])[features.INFLUENCER_ID].tolist() == [7]
    assert set(SERVED) == set(features.INFLUENCER_RAW_FEATURES)


def test_read_influencers_takes_a_file_whole_or_names_every_bad_row(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text('id,insta_follower,tiktok,youtube,price_normalized,categories\n1,10,20,30,0.5,"A,B"\n2,1,2,3,0.1,C\n')
    assert [row.id for row in validate.read_influencers(str(path))] == [1, 2]
    path.write_text("id,insta_follower,tiktok,youtube,price_normalized,categories\n1,10,20,30,1.5,A\n2,1,2,3,0.1,C\n2,1,2,3,0.1,C\n")
    with pytest.raises(validate.DataValidationError) as error:
        validate.read_influencers(str(path))
    message = str(error.value)
    assert f"{path} row 1 (line 2), field price_normalized: expected a number from 0 to 1, got '1.5'" in message
    assert f"{path} row 3 (line 4), field id: expected a unique influencer id" in message
