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

import os
from typing import Dict

import numpy as np

from data import schema
from data.archive import Archive, integer_column, read_table
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
    source = Archive(src, "the anime data")
    layout = next((name for name, spec in _LAYOUTS.items() if source.find(spec[0])), None)
    if layout is None:
        wanted = " or ".join(f"{spec[0]} + {spec[1]}" for spec in _LAYOUTS.values())
        raise ValueError(f"{src}: unknown layout, expected {wanted} (top level or one folder down)")
    info_name, ratings_name, sep, info_cols, rating_cols = _LAYOUTS[layout]
    if not source.find(ratings_name):
        raise FileNotFoundError(f"{src}: found {info_name} but not {ratings_name} beside it")

    info = read_table(source, info_name, sep, info_cols, text_columns=info_cols)
    ratings = read_table(source, ratings_name, sep, rating_cols)
    anime_id, genre, members = info_cols
    user_id, rated_id, rating = rating_cols

    info = info.assign(**{anime_id: integer_column(info[anime_id], src, info_name, anime_id),
                          members: integer_column(info[members], src, info_name, members)})
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
