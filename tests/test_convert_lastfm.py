"""Last.fm (HetRec 2011) -> seed CSVs: the mapping, the leak-free descriptors, the real data, bad input."""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import schema
from data.convert_lastfm import UNTAGGED, convert_lastfm
from data.validate import validate_data

REAL_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "lastfm" / "hetrec2011-lastfm-2k.zip"

LISTENS = "userID\tartistID\tweight\n" "1\t10\t100\n" "1\t11\t10\n" "1\t12\t1\n" "2\t10\t5\n" "2\t13\t50\n" "3\t11\t7\n"
# Users 1 and 2 tag artist 10, which they also listen to: their tags must not describe artist 10.
TAGGINGS = (
    "userID\tartistID\ttagID\tday\tmonth\tyear\n"
    "1\t10\t1\t1\t1\t2009\n"
    "3\t10\t2\t1\t1\t2009\n" "3\t10\t2\t2\t1\t2009\n" "2\t10\t3\t1\t1\t2009\n"
    "2\t11\t2\t1\t1\t2009\n" "3\t13\t3\t1\t1\t2009\n"
)
TAGS = "tagID\ttagValue\n1\tRock\n2\tJazz, Fusion\n3\tcaf\xe9\n"


def _zip(tmp_path, listens=LISTENS, taggings=TAGGINGS, tags=TAGS):
    path = tmp_path / "lastfm.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hetrec2011-lastfm-2k/user_artists.dat", listens)
        z.writestr("hetrec2011-lastfm-2k/user_taggedartists.dat", taggings)
        z.writestr("hetrec2011-lastfm-2k/tags.dat", tags.encode("latin-1"))
    return str(path)


def _read(out):
    return pd.read_csv(out / schema.INFLUENCER_FILE).set_index(schema.INFLUENCER_ID), pd.read_csv(out / schema.HISTORY_FILE)


def test_mapping_and_descriptors_from_non_listeners_only(tmp_path):
    counts = convert_lastfm(_zip(tmp_path), str(tmp_path / "out"))
    influencers, history = _read(tmp_path / "out")
    assert counts["influencers"] == 4 and counts["interactions"] == 6 and counts["owners"] == 3
    assert influencers.loc[10, schema.CATEGORIES] == "jazz  fusion"  # not rock or café: their taggers listen to it; a comma cannot split a tag
    assert influencers.loc[10, [schema.INSTA_FOLLOWERS, schema.TIKTOK_FOLLOWERS, schema.YOUTUBE_FOLLOWERS]].tolist() == [1, 2, 1]
    assert influencers.loc[13, schema.CATEGORIES] == "café"  # tags.dat is latin-1
    assert influencers.loc[11, schema.CATEGORIES] == "jazz  fusion"  # user 2 does not listen to 11
    assert influencers.loc[12, schema.CATEGORIES] == UNTAGGED and influencers.loc[12, schema.INSTA_FOLLOWERS] == 0
    user1 = history[history[schema.OWNER_ID] == 1].set_index(schema.HISTORY_INFLUENCER_ID)
    assert user1[schema.STAR_RATING].to_dict() == {10: 5, 11: 4, 12: 2}  # ceil(5 x the play count's rank among the user's artists)
    assert user1.loc[10, schema.SENTIMENT] == pytest.approx(1.0) and user1.loc[12, schema.SENTIMENT] == pytest.approx(np.log1p(1) / np.log1p(100), abs=1e-6)
    validate_data(str(tmp_path / "out"))  # what it writes, the pipeline takes


def test_same_seed_same_files(tmp_path):
    src = _zip(tmp_path)
    convert_lastfm(src, str(tmp_path / "a"), seed=3)
    convert_lastfm(src, str(tmp_path / "b"), seed=3)
    assert (tmp_path / "a" / schema.INFLUENCER_FILE).read_bytes() == (tmp_path / "b" / schema.INFLUENCER_FILE).read_bytes()


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such zip file or folder"):
        convert_lastfm(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    missing = tmp_path / "partial.zip"
    with zipfile.ZipFile(missing, "w") as z:
        z.writestr("user_artists.dat", LISTENS)
    with pytest.raises(FileNotFoundError, match="no user_taggedartists.dat"):
        convert_lastfm(str(missing), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="user_artists.dat column weight must hold integers"):
        convert_lastfm(_zip(tmp_path, listens="userID\tartistID\tweight\n1\t10\tmany\n"), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="play count >= 1"):
        convert_lastfm(_zip(tmp_path, listens="userID\tartistID\tweight\n1\t10\t0\n"), str(tmp_path / "out"))


@pytest.mark.skipif(not REAL_ZIP.exists(), reason="the shared Last.fm data is not beside the repo")
def test_real_lastfm_zip(tmp_path):
    counts = convert_lastfm(str(REAL_ZIP), str(tmp_path))
    influencers, history = _read(tmp_path)
    assert counts == {**counts, "influencers": 17632, "owners": 1892, "interactions": 92834}
    assert len(influencers) == 17632 and len(history) == 92834
    assert history[schema.STAR_RATING].between(1, 5).all() and history[schema.SENTIMENT].between(0, 1).all()
    assert (influencers[schema.CATEGORIES] != UNTAGGED).mean() > 0.5
