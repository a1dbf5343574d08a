"""Convert the public anime ratings data (the notebook's source) to the seed CSVs.

Accepted `src`:
* the distributed zip (`anime.zip`, read in place) or its unpacked folder:
  tab-separated `anime_info.dat` (anime_ids name genre type episodes rating
  members) and `anime_ratings.dat` (User_ID Anime_ID Feedback, 1-10);
  `anime_history.dat` (implicit "watched") is ignored;
* a folder (or zip) with the original Kaggle layout: `anime.csv`
  (anime_id,name,genre,type,episodes,rating,members) and `rating.csv`
  (user_id,anime_id,rating, where -1 = watched but unrated: dropped).
Files may sit at the top level or one folder down. If both layouts are present
the `.dat` one wins.

Real columns: id = anime id, insta_follower = members, categories = genre
(", " joined as ","; anime without a genre are dropped), own_id = user id,
inf_id = anime id, star_rating = ceil(rating / 2). Ratings on dropped or
unknown anime are dropped, as are repeated (user, anime) pairs (last one kept).

SYNTHETIC columns (not in the data; the notebook generated them at random too),
drawn from a numpy Generator seeded with `seed`, so output is deterministic:
tiktok and youtube (members times log-normal noise, as in the notebook's table),
price_normalized (~0.5 +- 0.07 rising with log members, in [0, 1]) and
sentiment_rating (rating / 10 plus noise, in [0, 1]).
"""

import contextlib
import csv
import os
import zipfile
from typing import IO, Dict, Iterator, List, Optional

import numpy as np
import pandas as pd

from data import schema
from data.generate import companion_followers, price_from_followers, write_history_csv, write_influencer_csv

# layout name -> (info file, ratings file, separator, info columns, rating columns)
_LAYOUTS = {
    "dat": ("anime_info.dat", "anime_ratings.dat", "\t",
            ("anime_ids", "genre", "members"), ("User_ID", "Anime_ID", "Feedback")),
    "kaggle": ("anime.csv", "rating.csv", ",",
               ("anime_id", "genre", "members"), ("user_id", "anime_id", "rating")),
}
_UNRATED = -1


def convert_anime(src: str, out_dir: str, seed: int = 0) -> Dict[str, int]:
    """Write the seed influencer and history CSVs for the anime data into `out_dir`; return counts."""
    source = _Source(src)
    layout = next((name for name, spec in _LAYOUTS.items() if source.find(spec[0])), None)
    if layout is None:
        wanted = " or ".join(f"{spec[0]} + {spec[1]}" for spec in _LAYOUTS.values())
        raise ValueError(f"{src}: unknown layout, expected {wanted} (top level or one folder down)")
    info_name, ratings_name, sep, info_cols, rating_cols = _LAYOUTS[layout]
    if not source.find(ratings_name):
        raise FileNotFoundError(f"{src}: found {info_name} but not {ratings_name} beside it")

    info = _read(source, info_name, sep, info_cols, text=True)
    ratings = _read(source, ratings_name, sep, rating_cols, text=False)
    anime_id, genre, members = info_cols
    user_id, rated_id, rating = rating_cols

    info = info.assign(**{anime_id: _integers(info[anime_id], src, info_name, anime_id),
                          members: _integers(info[members], src, info_name, members)})
    if info[anime_id].duplicated().any():
        raise ValueError(f"{src}: {info_name} repeats anime ids, e.g. {info[anime_id][info[anime_id].duplicated()].iloc[0]}")
    categories = info[genre].str.split(",").map(lambda parts: schema.CATEGORY_SEPARATOR.join(p.strip() for p in parts if p.strip()))
    keep = categories != ""
    info, categories = info[keep], categories[keep]

    unrated = ratings[rating] == _UNRATED
    ratings = ratings[~unrated]
    bad = ~ratings[rating].between(1, 10)
    if bad.any():
        raise ValueError(f"{src}: {ratings_name} column {rating} must be 1-10 (or -1), found {ratings[rating][bad].iloc[0]}")
    known = ratings[rated_id].isin(info[anime_id])
    ratings = ratings[known]
    repeated = ratings.duplicated([user_id, rated_id], keep="last")
    ratings = ratings[~repeated]

    rng = np.random.default_rng(seed)
    insta = info[members].to_numpy(np.int64)
    tiktok, youtube = companion_followers(insta, rng)
    price = price_from_followers(insta, rng)
    feedback = ratings[rating].to_numpy(np.int64)
    sentiment = np.clip(0.1 * feedback + 0.08 * rng.standard_normal(len(feedback)), *schema.UNIT_INTERVAL)

    write_influencer_csv(os.path.join(out_dir, schema.INFLUENCER_FILE), info[anime_id].to_numpy(),
                         insta, tiktok, youtube, price, categories.tolist())
    write_history_csv(os.path.join(out_dir, schema.HISTORY_FILE), ratings[user_id].to_numpy(np.int64),
                      ratings[rated_id].to_numpy(np.int64), (feedback + 1) // 2, sentiment)
    return {
        "influencers": len(info), "owners": int(ratings[user_id].nunique()), "interactions": len(ratings),
        "dropped_no_genre": int((~keep).sum()), "dropped_unrated": int(unrated.sum()),
        "dropped_unknown_anime": int((~known).sum()), "dropped_repeated": int(repeated.sum()),
    }


class _Source:
    """Files of a zip or folder by base name, looked up at the top level or one folder down."""

    def __init__(self, src: str) -> None:
        self.src = src
        if os.path.isdir(src):
            self._zip = None
            paths = sorted(os.listdir(src))
            paths += [os.path.join(d, e) for d in paths if os.path.isdir(os.path.join(src, d))
                      for e in sorted(os.listdir(os.path.join(src, d)))]
            self._paths = [p for p in paths if os.path.isfile(os.path.join(src, p))]
        elif os.path.isfile(src):
            if not zipfile.is_zipfile(src):
                raise ValueError(f"{src}: expected a zip file or a folder with the anime data")
            with zipfile.ZipFile(src) as z:
                self._paths = [n for n in z.namelist() if not n.endswith("/") and n.rstrip("/").count("/") <= 1]
            self._zip = src
        else:
            raise FileNotFoundError(f"{src}: no such zip file or folder (expected the anime data)")

    def find(self, name: str) -> Optional[str]:
        """Shallowest path whose base name is `name`."""
        hits: List[str] = sorted((p for p in self._paths if os.path.basename(p) == name),
                                 key=lambda p: (p.count("/") + p.count(os.sep), p))
        return hits[0] if hits else None

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """Binary stream of `name` (zip members are read in place, never extracted)."""
        path = self.find(name)
        if self._zip is None:
            with open(os.path.join(self.src, path), "rb") as handle:
                yield handle
        else:
            with zipfile.ZipFile(self._zip) as z, z.open(path) as handle:
                yield handle


def _read(source: _Source, name: str, sep: str, columns: tuple, text: bool) -> pd.DataFrame:
    """Read the needed columns; the .dat files are unquoted TSV, the Kaggle ones quoted CSV."""
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    with source.open(name) as handle:
        try:
            frame = pd.read_csv(handle, sep=sep, quoting=quoting, usecols=lambda c: c in columns,
                                dtype=str if text else None, keep_default_na=not text)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"{source.src}: cannot parse {name}: {err}") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source.src}: {name} lacks column(s) {missing}; expected {list(columns)}")
    if not text:
        for column in columns:
            frame[column] = _integers(frame[column], source.src, name, column)
    return frame


def _integers(values: pd.Series, src: str, name: str, column: str) -> pd.Series:
    """Integer column or a ValueError naming the file and column."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers != np.floor(numbers))
    if bad.any():
        raise ValueError(f"{src}: {name} column {column} must hold integers, found {values[bad].iloc[0]!r}")
    return numbers.astype(np.int64)
