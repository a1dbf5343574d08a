"""Anime data -> seed CSVs: both source layouts, zip or folder, the real data, bad input."""

import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from data import schema
from data.convert_anime import convert_anime

REAL_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime" / "anime.zip"  # ../shared beside the repo

DAT_INFO = (
    "anime_ids\tname\tgenre\ttype\tepisodes\trating\tmembers\n"
    '10\tSay "Hi", Bye\tAction, Comedy\tTV\t12\t8.1\t1000\n'
    "11\tNo Genre\t\tOVA\t1\t6.0\t77\n"
    "12\tQuiet\tDrama\tMovie\t1\t7.5\t50\n"
)
DAT_RATINGS = (
    "User_ID\tAnime_ID\tFeedback\n"
    "1\t10\t8\n"
    "1\t11\t5\n"   # anime without genre: dropped
    "1\t99\t7\n"   # unknown anime: dropped
    "2\t12\t1\n"
    "2\t10\t10\n"
)
KAGGLE_ANIME = (
    "anime_id,name,genre,type,episodes,rating,members\n"
    '10,"Say ""Hi"", Bye","Action, Comedy",TV,12,8.1,1000\n'
    "11,No Genre,,OVA,1,6.0,77\n"
    "12,Quiet,Drama,Movie,1,,50\n"
)
KAGGLE_RATINGS = (
    "user_id,anime_id,rating\n"
    "1,10,8\n"
    "1,12,-1\n"    # watched, unrated: dropped
    "1,11,5\n"
    "1,99,7\n"
    "2,12,1\n"
    "2,10,10\n"
    "3,12,-1\n"    # an owner with only unrated rows disappears
)
EXPECTED_INFLUENCERS = pd.DataFrame({
    schema.INFLUENCER_ID: [10, 12], schema.INSTA_FOLLOWERS: [1000, 50],
    schema.CATEGORIES: ["Action,Comedy", "Drama"]})
EXPECTED_HISTORY = pd.DataFrame({
    schema.OWNER_ID: [1, 2, 2], schema.HISTORY_INFLUENCER_ID: [10, 12, 10], schema.STAR_RATING: [4, 1, 5]})


def _write_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return str(path)


def _write_dir(path, files):
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return str(path)


DAT_FILES = {"anime/anime_info.dat": DAT_INFO, "anime/anime_ratings.dat": DAT_RATINGS,
             "anime/anime_history.dat": "User_ID\tAnime_ID\tFeedback\n1\t12\t1\n", "anime/README": "x\n"}
KAGGLE_FILES = {"anime.csv": KAGGLE_ANIME, "rating.csv": KAGGLE_RATINGS}
SOURCES = {
    "dat-zip": lambda tmp: _write_zip(tmp / "anime.zip", DAT_FILES),
    "dat-folder": lambda tmp: _write_dir(tmp / "unpacked", DAT_FILES),
    "kaggle-folder": lambda tmp: _write_dir(tmp / "kaggle", KAGGLE_FILES),
    "kaggle-zip": lambda tmp: _write_zip(tmp / "kaggle.zip", KAGGLE_FILES),
}


def _read(out_dir):
    return (pd.read_csv(os.path.join(out_dir, schema.INFLUENCER_FILE)),
            pd.read_csv(os.path.join(out_dir, schema.HISTORY_FILE)))


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_converts_tiny_sources(tmp_path, kind):
    out = tmp_path / "out"
    counts = convert_anime(SOURCES[kind](tmp_path), str(out), seed=0)
    inf, hist = _read(out)
    assert tuple(inf.columns) == schema.INFLUENCER_COLUMNS and tuple(hist.columns) == schema.HISTORY_COLUMNS
    pd.testing.assert_frame_equal(inf[EXPECTED_INFLUENCERS.columns], EXPECTED_INFLUENCERS)
    pd.testing.assert_frame_equal(hist[EXPECTED_HISTORY.columns], EXPECTED_HISTORY)
    # synthetic columns: present, typed and in range
    assert (inf[[schema.TIKTOK_FOLLOWERS, schema.YOUTUBE_FOLLOWERS]] >= 0).all().all()
    assert inf[schema.PRICE].between(*schema.UNIT_INTERVAL).all()
    assert hist[schema.SENTIMENT].between(*schema.UNIT_INTERVAL).all()
    assert counts["influencers"] == 2 and counts["interactions"] == 3 and counts["owners"] == 2
    assert counts["dropped_no_genre"] == 1 and counts["dropped_unknown_anime"] == 2
    assert counts["dropped_unrated"] == (2 if kind.startswith("kaggle") else 0)


def test_zip_and_folder_give_identical_files_and_seed_matters(tmp_path):
    outs = {}
    for kind, seed in (("dat-zip", 0), ("dat-folder", 0), ("dat-zip", 1)):
        out = tmp_path / f"{kind}-{seed}"
        convert_anime(SOURCES[kind](tmp_path), str(out), seed=seed)
        outs[kind, seed] = [(out / f).read_bytes() for f in (schema.INFLUENCER_FILE, schema.HISTORY_FILE)]
    assert outs["dat-zip", 0] == outs["dat-folder", 0]
    assert outs["dat-zip", 0] != outs["dat-zip", 1]


@pytest.mark.skipif(not REAL_ZIP.is_file(), reason=f"real anime data not found at {REAL_ZIP}")
def test_real_anime_zip(tmp_path):
    counts = convert_anime(str(REAL_ZIP), str(tmp_path))
    assert (counts["influencers"], counts["interactions"]) == (7387, 419_941)
    inf, hist = _read(tmp_path)
    assert len(inf) == 7387 and len(hist) == 419_941
    first = inf.iloc[0]  # the notebook's first row: anime 1723 "Kimi no Na wa."
    assert (first[schema.INFLUENCER_ID], first[schema.INSTA_FOLLOWERS]) == (1723, 200_630)
    assert first[schema.CATEGORIES] == "Drama,Romance,School,Supernatural"
    assert abs(hist[schema.STAR_RATING].mean() - 4.133) < 0.001  # README: ceil(Feedback / 2) has mean 4.13
    assert not hist.duplicated([schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID]).any()
    assert hist[schema.HISTORY_INFLUENCER_ID].isin(inf[schema.INFLUENCER_ID]).all()
    assert abs(inf[schema.PRICE].mean() - 0.5) < 0.02 and hist[schema.STAR_RATING].corr(hist[schema.SENTIMENT]) > 0.5


def test_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        convert_anime(str(tmp_path / "nowhere"), str(tmp_path / "out"))


def test_not_a_zip(tmp_path):
    bogus = tmp_path / "anime.zip"
    bogus.write_text("not a zip")
    with pytest.raises(ValueError, match="zip file or a folder"):
        convert_anime(str(bogus), str(tmp_path / "out"))


def test_unknown_layout(tmp_path):
    src = _write_dir(tmp_path / "src", {"something.csv": "a,b\n1,2\n"})
    with pytest.raises(ValueError, match="unknown layout.*anime_info.dat.*anime.csv"):
        convert_anime(src, str(tmp_path / "out"))


def test_ratings_file_missing(tmp_path):
    src = _write_zip(tmp_path / "a.zip", {"anime/anime_info.dat": DAT_INFO})
    with pytest.raises(FileNotFoundError, match="anime_ratings.dat"):
        convert_anime(src, str(tmp_path / "out"))


def test_column_missing(tmp_path):
    src = _write_dir(tmp_path / "src", {"anime.csv": KAGGLE_ANIME.replace("members", "fans"), "rating.csv": KAGGLE_RATINGS})
    with pytest.raises(ValueError, match=r"anime.csv lacks column\(s\) \['members'\]"):
        convert_anime(src, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_bad_values(tmp_path):
    src = _write_dir(tmp_path / "src", {"anime.csv": KAGGLE_ANIME, "rating.csv": KAGGLE_RATINGS + "4,10,11\n"})
    with pytest.raises(ValueError, match="rating must be 1-10"):
        convert_anime(src, str(tmp_path / "out"))
    src = _write_dir(tmp_path / "src2", {"anime.csv": KAGGLE_ANIME.replace(",50\n", ",many\n"), "rating.csv": KAGGLE_RATINGS})
    with pytest.raises(ValueError, match="members must hold integers"):
        convert_anime(src, str(tmp_path / "out"))
