"""Convert the public Last.fm listening data (HetRec 2011, `hetrec2011-lastfm-2k`) to the seed CSVs.

Accepted `src`: the zip or its unpacked folder, with the tab-separated
`user_artists.dat` (userID artistID weight = play count), `user_taggedartists.dat`
(userID artistID tagID day month year) and `tags.dat` (tagID tagValue, latin-1),
at the top level or one folder down.

Mapping (docs/benchmark.md has it too):
- influencers: every artist somebody listened to; id = artistID;
- history: one row per (user, artist) of `user_artists.dat`; own_id = userID,
  inf_id = artistID; star_rating = ceil(5 * q) and sentiment_rating =
  log1p(plays) / log1p(the user's largest play count), q being the play
  count's percentile rank among the user's own artists: how it went for this
  user, not how popular the artist is;
- categories: the artist's TOP_TAGS most assigned tags (lower-cased, ties by
  name); "untagged" where it has none;
- insta_follower / tiktok / youtube: distinct taggers, tag assignments and
  distinct tags of the artist.

Descriptors come only from taggings by users who did not listen to the artist.
About a fifth of listened pairs were also tagged by the same user, so a tag (or
a tag count) from a listener would carry that user's held-out listens into the
artist's features, and any model reading them would be scored on leaked
answers. Listener and play counts are left out for the same reason: they are
counts over the very rows a benchmark holds out.

SYNTHETIC column (not in the data): price_normalized, from the artist's tag
assignments as the anime converter derives it from members, drawn from a numpy
Generator seeded with `seed` (deterministic output).
"""

import os
from typing import Dict

import numpy as np
import pandas as pd

from data import schema
from data.archive import Archive, read_table
from data.generate import price_from_followers, write_history_csv, write_influencer_csv

LISTENS = "user_artists.dat"
TAGGINGS = "user_taggedartists.dat"
TAGS = "tags.dat"
TOP_TAGS = 5
UNTAGGED = "untagged"
_USER, _ARTIST, _WEIGHT, _TAG, _TAG_VALUE = "userID", "artistID", "weight", "tagID", "tagValue"


def convert_lastfm(src: str, out_dir: str, seed: int = 0) -> Dict[str, int]:
    """Write the seed influencer and history CSVs for the Last.fm data into `out_dir`; return counts."""
    source = Archive(src, "the Last.fm (hetrec2011-lastfm-2k) data")
    for name in (LISTENS, TAGGINGS, TAGS):
        if not source.find(name):
            raise FileNotFoundError(f"{src}: no {name} (expected {LISTENS}, {TAGGINGS} and {TAGS}, top level or one folder down)")
    listens = read_table(source, LISTENS, "\t", (_USER, _ARTIST, _WEIGHT))
    taggings = read_table(source, TAGGINGS, "\t", (_USER, _ARTIST, _TAG))
    tags = read_table(source, TAGS, "\t", (_TAG, _TAG_VALUE), text_columns=(_TAG_VALUE,), encoding="latin-1")
    if (listens[_WEIGHT] < 1).any():
        raise ValueError(f"{src}: {LISTENS} column {_WEIGHT} must be a play count >= 1, found {listens[_WEIGHT][listens[_WEIGHT] < 1].iloc[0]}")
    repeated = listens.duplicated([_USER, _ARTIST], keep="last")
    listens = listens[~repeated]

    artists = np.sort(listens[_ARTIST].unique())
    descriptors = _descriptors(listens, taggings, tags, artists)
    rng = np.random.default_rng(seed)
    price = price_from_followers(descriptors["assignments"].to_numpy(np.int64) + 1, rng)
    write_influencer_csv(
        os.path.join(out_dir, schema.INFLUENCER_FILE), artists, descriptors["taggers"].to_numpy(np.int64),
        descriptors["assignments"].to_numpy(np.int64), descriptors["distinct_tags"].to_numpy(np.int64), price,
        descriptors["categories"].tolist(),
    )
    stars, sentiment = _how_it_went(listens)
    write_history_csv(os.path.join(out_dir, schema.HISTORY_FILE), listens[_USER].to_numpy(np.int64),
                      listens[_ARTIST].to_numpy(np.int64), stars, sentiment)
    return {
        "influencers": len(artists), "owners": int(listens[_USER].nunique()), "interactions": len(listens),
        "untagged": int((descriptors["categories"] == UNTAGGED).sum()), "dropped_repeated": int(repeated.sum()),
        "taggings_used": int(descriptors["assignments"].sum()), "taggings": len(taggings),
    }


def _how_it_went(listens: pd.DataFrame):
    """(stars 1-5, sentiment 0-1) of each row from its play count relative to the user's own counts."""
    by_user = listens.groupby(_USER)[_WEIGHT]
    quantile = by_user.rank(pct=True, method="average").to_numpy()
    stars = np.clip(np.ceil(schema.STAR_MAX * quantile), schema.STAR_MIN, schema.STAR_MAX).astype(np.int64)
    plays = np.log1p(listens[_WEIGHT].to_numpy(np.float64))
    sentiment = np.clip(plays / np.log1p(by_user.transform("max").to_numpy(np.float64)), *schema.UNIT_INTERVAL)
    return stars, sentiment


def _descriptors(listens: pd.DataFrame, taggings: pd.DataFrame, tags: pd.DataFrame, artists: np.ndarray) -> pd.DataFrame:
    """Per artist (in `artists` order): categories and tag counts from non-listeners' taggings."""
    names = tags.set_index(_TAG)[_TAG_VALUE].str.strip().str.lower().str.replace(schema.CATEGORY_SEPARATOR, " ", regex=False)
    taggings = taggings.assign(tag=taggings[_TAG].map(names))
    taggings = taggings[taggings["tag"].fillna("") != ""]
    by_listener = taggings.merge(listens[[_USER, _ARTIST]], on=[_USER, _ARTIST], how="left", indicator=True)
    kept = by_listener[by_listener["_merge"] == "left_only"]
    counts = kept.groupby([_ARTIST, "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values([_ARTIST, "n", "tag"], ascending=[True, False, True])
    top = counts.groupby(_ARTIST).head(TOP_TAGS).groupby(_ARTIST)["tag"].agg(schema.CATEGORY_SEPARATOR.join)
    frame = pd.DataFrame(index=pd.Index(artists, name=_ARTIST))
    frame["categories"] = top.reindex(frame.index).fillna(UNTAGGED)
    frame["taggers"] = kept.groupby(_ARTIST)[_USER].nunique().reindex(frame.index).fillna(0).astype(np.int64)
    frame["assignments"] = kept.groupby(_ARTIST).size().reindex(frame.index).fillna(0).astype(np.int64)
    frame["distinct_tags"] = counts.groupby(_ARTIST).size().reindex(frame.index).fillna(0).astype(np.int64)
    return frame
