"""Synthetic seed data (influencer catalog + hiring history) with a planted structure.

The notebook's CSVs came from anime ratings; this generator reproduces their
statistics (heavy-tailed follower counts, price ~0.5 +- 0.07, 40 genre labels,
stars mean ~4.1, sentiment mean ~0.78) and plants a signal a recommender can
learn, so pipeline tests can tell a working model from most-popular:

* every owner has a sparse preference mix over a few categories and a budget;
* an owner hires influencer i with probability roughly
  ``popularity_i**a * category_match * exp(-(price_i - budget)**2 / 2s**2)``,
  sampled as "category from the owner's mix (or, with small probability, any
  influencer by popularity), then an influencer of that category by cumulative
  popularity weights + searchsorted, then rejection for the budget fit"
  (owners who exhaust what fits their taste get the rest uniformly at random:
  about 0.1% of rows at default size);
* stars and sentiment rise with category match, budget fit, the influencer's
  latent quality and the owner's generosity, plus noise.

Nothing of size owners x influencers is ever built: owners are processed in
chunks and the history CSV is streamed out chunk by chunk, so 1M influencers and
10M history rows take ~40 s and ~0.6 GB. Same arguments => byte-identical files (every
random stream comes from a SeedSequence keyed by seed, stage and chunk).
"""

import csv
import math
import os
from typing import Callable, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from data import schema
from data.atomic import atomic_text_file

CATEGORIES: Tuple[str, ...] = (
    "Action", "Adventure", "Cars", "Comedy", "Dementia", "Demons", "Drama", "Ecchi",
    "Fantasy", "Game", "Harem", "Historical", "Horror", "Josei", "Kids", "Magic",
    "Martial Arts", "Mecha", "Military", "Music", "Mystery", "Parody", "Police",
    "Psychological", "Romance", "Samurai", "School", "Sci-Fi", "Seinen", "Shoujo",
    "Shoujo Ai", "Shounen", "Shounen Ai", "Slice of Life", "Space", "Sports",
    "Super Power", "Supernatural", "Thriller", "Vampire",
)
# How often each label occurs in the anime catalog (same order as CATEGORIES),
# so common genres are common here too.
_CATEGORY_FREQ = np.array([
    2100, 1536, 39, 3033, 70, 220, 1402, 565, 1467, 116, 298, 393, 279, 48, 336, 582,
    200, 711, 356, 364, 412, 258, 159, 190, 1259, 101, 968, 1547, 419, 432, 54, 1350,
    58, 768, 272, 340, 359, 838, 76, 92], dtype=np.float64)
# Labels per anime (1..6) in the real data, truncated at 6.
_LABELS_PER_INFLUENCER = np.array([1317, 1057, 1623, 1499, 1046, 530], dtype=np.float64)

# Follower counts: log-normal around the notebook's median (~7k) with both tails
# compressed (above ~250k, below ~300) so mean (~33k), min (~40) and max (~1M)
# match the notebook's table too.
_LOG_MEDIAN_FOLLOWERS = math.log(7300.0)
_LOG_SIGMA = 2.0
_LOG_KNEES = (math.log(300.0 / 7300.0), math.log(250_000.0 / 7300.0))
_TAIL_SLOPE = 0.35

_POPULARITY_EXPONENT = 1.8   # hiring weight = exp(a * latent popularity)
_EXPLORE = 0.05              # share of hires drawn by popularity alone
_BUDGET_MEAN, _BUDGET_SD = 0.5, 0.05
_BUDGET_TOLERANCE = 0.06     # s in exp(-(price - budget)^2 / 2s^2)
_ROWS_SIGMA = 1.2            # log-normal spread of rows per owner
_MAX_PREFS = 4               # categories in an owner's preference mix
_ROWS_PER_CHUNK = 1_000_000  # history rows generated and written per chunk
_MAX_DRAWS = 8 * _ROWS_PER_CHUNK  # candidate hires per sampling round
_INFLUENCER_CHUNK = 65_536
_HISTORY_HEADER = ",".join(schema.HISTORY_COLUMNS) + "\n"

# Rating model: y = weighted sum of match, fit, quality, generosity and noise,
# standardised with constants measured between default size and 200k influencers
# (big catalogs match tastes better: mean star ~4.1 at default, ~4.2 at 200k),
# then cut at standard-normal quantiles of the real star distribution
# (1: 0.7%, 2: 2.3%, 3: 14.6%, 4: 47.6%, 5: 34.7%).
_Y_MEAN, _Y_SD = 1.32, 0.76
_STAR_CUTS = np.array([-2.45, -1.88, -0.93, 0.39])


def generate(
    out_dir: str,
    n_influencers: int = 6406,
    n_owners: int = 5000,
    n_interactions: int = 413_446,
    seed: int = 0,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, int]:
    """Write the influencer and history CSVs into `out_dir`; return row counts."""
    if n_influencers < 1 or n_owners < 1:
        raise ValueError("n_influencers and n_owners must be >= 1")
    if n_interactions < n_owners:
        raise ValueError(f"n_interactions ({n_interactions}) must be >= n_owners ({n_owners}): every owner has a row")
    cap = max(1, n_influencers // 4)
    if n_interactions > n_owners * cap:
        raise ValueError(f"n_interactions too large: at most {n_owners * cap} for {n_owners} owners x {n_influencers} influencers")
    say = progress or (lambda _msg: None)

    def rng(*key: int) -> np.random.Generator:
        """Independent stream per stage/chunk, so chunking never shifts another stream."""
        return np.random.default_rng(np.random.SeedSequence([seed, *key]))

    inf = _influencers(n_influencers, rng(1))
    write_influencer_csv(
        os.path.join(out_dir, schema.INFLUENCER_FILE), np.arange(1, n_influencers + 1),
        inf["insta"], inf["tiktok"], inf["youtube"], inf["price"], inf["categories"])
    say(f"influencers: {n_influencers} rows")

    owners = _owners(n_owners, n_interactions, cap, rng(2))
    pools = _category_pools(inf["masks"], inf["weight"])
    bounds = _chunk_bounds(owners["rows"], _ROWS_PER_CHUNK)
    written = 0
    path = os.path.join(out_dir, schema.HISTORY_FILE)
    with atomic_text_file(path) as handle:
        handle.write(_HISTORY_HEADER)
        for i, (lo, hi) in enumerate(bounds):
            chunk_rng = rng(3, i)
            own, item = _hire(lo, hi, owners, inf, pools, chunk_rng)
            stars, sentiment = _ratings(own, item, owners, inf, chunk_rng)
            write_history_rows(handle, own + 1, item + 1, stars, sentiment)
            written += len(own)
            say(f"history: chunk {i + 1}/{len(bounds)}, owners {lo + 1}-{hi}, {written} rows so far")
    return {"influencers": n_influencers, "owners": n_owners, "interactions": written}


# --- influencer columns (shared with the anime converter) -------------------

def companion_followers(insta: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """TikTok and YouTube counts correlated with Instagram (log-ratio noise, sd 0.3)."""
    log_insta = np.log(np.maximum(insta, 1).astype(np.float64))
    tiktok = np.exp(log_insta - 0.15 + 0.3 * rng.standard_normal(len(insta)))
    youtube = np.exp(log_insta - 0.12 + 0.3 * rng.standard_normal(len(insta)))
    return np.rint(tiktok).astype(np.int64), np.rint(youtube).astype(np.int64)


def price_from_followers(followers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Price ~0.5 +- 0.07 rising with log followers; clipped to [0, 1]."""
    pop = (np.log(np.maximum(followers, 1).astype(np.float64)) - _LOG_MEDIAN_FOLLOWERS) / _LOG_SIGMA
    price = 0.497 + 0.04 * pop + 0.055 * rng.standard_normal(len(followers))
    return np.clip(price, *schema.UNIT_INTERVAL)


def categories_from_masks(masks: np.ndarray) -> np.ndarray:
    """Comma-joined labels for 40-bit category masks (each distinct mask joined once)."""
    uniq, inverse = np.unique(masks, return_inverse=True)
    names = [schema.CATEGORY_SEPARATOR.join(c for b, c in enumerate(CATEGORIES) if (int(m) >> b) & 1) for m in uniq]
    return np.array(names, dtype=object)[inverse]


def _influencers(n: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Catalog columns plus the latent popularity weight, category bitmasks and quality."""
    latent = rng.standard_normal(n)  # one popularity factor drives followers, price, hires
    log_rel = _LOG_SIGMA * latent
    low, high = _LOG_KNEES
    log_rel = np.where(log_rel > high, high + (log_rel - high) * _TAIL_SLOPE, log_rel)
    log_rel = np.where(log_rel < low, low + (log_rel - low) * _TAIL_SLOPE, log_rel)
    insta = np.rint(np.exp(_LOG_MEDIAN_FOLLOWERS + log_rel)).astype(np.int64)
    tiktok, youtube = companion_followers(insta, rng)
    price = price_from_followers(insta, rng)
    k = rng.choice(len(_LABELS_PER_INFLUENCER), size=n, p=_LABELS_PER_INFLUENCER / _LABELS_PER_INFLUENCER.sum()) + 1
    masks = np.empty(n, dtype=np.int64)
    log_freq = np.log(_CATEGORY_FREQ / _CATEGORY_FREQ.sum())
    bits = np.int64(1) << np.arange(len(CATEGORIES), dtype=np.int64)
    for lo in range(0, n, _INFLUENCER_CHUNK):  # Gumbel top-k: weighted draw without replacement
        hi = min(n, lo + _INFLUENCER_CHUNK)
        keys = log_freq + rng.gumbel(size=(hi - lo, len(CATEGORIES)))
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        masks[lo:hi] = (rank < k[lo:hi, None]) @ bits
    return {
        "insta": insta, "tiktok": tiktok, "youtube": youtube, "price": price,
        "masks": masks, "categories": categories_from_masks(masks),
        "weight": np.exp(_POPULARITY_EXPONENT * latent),
        "quality": 0.3 * latent + 0.95 * rng.standard_normal(n),
    }


def write_influencer_csv(path: str, ids: Iterable[int], insta: np.ndarray, tiktok: np.ndarray,
                       youtube: np.ndarray, price: np.ndarray, categories: Sequence[str]) -> None:
    """Write the catalog CSV atomically (csv module quotes the comma-joined labels)."""
    with atomic_text_file(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(schema.INFLUENCER_COLUMNS)
        prices = ["%.6f" % p for p in np.asarray(price).tolist()]
        writer.writerows(zip(np.asarray(ids).tolist(), np.asarray(insta).tolist(), np.asarray(tiktok).tolist(),
                             np.asarray(youtube).tolist(), prices, categories))


def write_history_csv(path: str, own: np.ndarray, item: np.ndarray, stars: np.ndarray, sentiment: np.ndarray) -> None:
    """Write a whole history CSV atomically (for data that fits in memory)."""
    with atomic_text_file(path) as handle:
        handle.write(_HISTORY_HEADER)
        write_history_rows(handle, own, item, stars, sentiment)


def write_history_rows(handle: TextIO, own: np.ndarray, item: np.ndarray, stars: np.ndarray, sentiment: np.ndarray) -> None:
    """Append numeric history rows (no quoting needed); ~0.5 s per million rows."""
    if len(own):
        rows = zip(own.tolist(), item.tolist(), stars.tolist(), sentiment.tolist())
        handle.write("\n".join(map("%d,%d,%d,%.6f".__mod__, rows)) + "\n")


# --- owners and hires --------------------------------------------------------

def _owners(m: int, total: int, cap: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Latent owner traits: 1-4 preferred categories with a Dirichlet mix, budget, generosity, rows."""
    n_cat = len(CATEGORIES)
    k = rng.choice(_MAX_PREFS, size=m, p=[0.3, 0.35, 0.25, 0.1]) + 1
    keys = 0.7 * np.log(_CATEGORY_FREQ) + rng.gumbel(size=(m, n_cat))  # favour common labels, less than catalog does
    prefs = np.argsort(-keys, axis=1)[:, :_MAX_PREFS].astype(np.int16)
    mix = rng.gamma(1.0, size=(m, _MAX_PREFS)) * (np.arange(_MAX_PREFS) < k[:, None])  # Dirichlet(1) over k labels
    mix /= mix.sum(axis=1, keepdims=True)
    return {
        "prefs": prefs, "mix": mix, "cum_mix": np.cumsum(mix, axis=1),
        "budget": np.clip(rng.normal(_BUDGET_MEAN, _BUDGET_SD, m), 0.3, 0.7),
        "generosity": rng.standard_normal(m),
        "rows": _rows_per_owner(rng.lognormal(0.0, _ROWS_SIGMA, m), total, cap),
    }


def _rows_per_owner(weights: np.ndarray, total: int, cap: int) -> np.ndarray:
    """Heavy-tailed counts in [1, cap] summing to ~total (bisect on a scale factor)."""
    share = weights / weights.sum()
    lo, hi = 0.0, float(total) / share.min() + 1.0  # at hi every owner is at the cap
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.clip(1 + np.floor(mid * share), 1, cap).sum() < total:
            lo = mid
        else:
            hi = mid
    return np.clip(1 + np.floor(hi * share), 1, cap).astype(np.int64)


def _chunk_bounds(rows: np.ndarray, per_chunk: int) -> List[Tuple[int, int]]:
    """Owner ranges [lo, hi) holding about per_chunk rows each."""
    ends = np.searchsorted(np.cumsum(rows), np.arange(per_chunk, rows.sum(), per_chunk), side="left") + 1
    cuts = [0, *sorted(set(int(e) for e in ends if 0 < e < len(rows))), len(rows)]
    return list(zip(cuts[:-1], cuts[1:]))


def _category_pools(masks: np.ndarray, weight: np.ndarray) -> Dict[str, np.ndarray]:
    """Members of each category laid end to end with cumulative popularity weights."""
    members = [np.flatnonzero((masks >> c) & 1) for c in range(len(CATEGORIES))]
    flat = np.concatenate(members)
    sizes = np.array([len(x) for x in members])
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cum = np.cumsum(weight[flat])
    before = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    return {"members": flat, "cum": cum, "start": start, "size": sizes, "before": before,
            "total": np.where(sizes > 0, cum[np.maximum(start + sizes - 1, 0)], 0.0) - before,
            "cum_all": np.cumsum(weight)}


def _hire(lo: int, hi: int, owners: Dict[str, np.ndarray], inf: Dict[str, np.ndarray],
          pools: Dict[str, np.ndarray], rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Distinct (owner, influencer) pairs for owners [lo, hi), sorted by owner then influencer."""
    n_inf = len(inf["weight"])
    want = owners["rows"][lo:hi]
    kept = np.empty(0, dtype=np.int64)  # keys own * n_inf + inf, grouped by owner, in draw order
    rounds = 8
    for r in range(rounds):
        have = np.bincount(kept // n_inf - lo, minlength=hi - lo)
        need = want - have
        if not need.any():
            break
        draws = np.where(need > 0, np.ceil(need * 2.5 * 2 ** r + 2), 0)
        if draws.sum() > _MAX_DRAWS:  # owners near their pool's size: bound memory, accept a shortfall
            draws = np.where(need > 0, np.maximum(1, np.floor(draws * _MAX_DRAWS / draws.sum())), 0)
        draws = draws.astype(np.int64)
        own = np.repeat(np.arange(lo, hi), draws)
        if r == rounds - 1:  # owners that exhausted their taste: fill up uniformly, no budget test
            item = rng.integers(0, n_inf, len(own))
        else:
            item = _draw_influencers(own, owners, pools, rng)
            gap = inf["price"][item] - owners["budget"][own]
            accept = rng.random(len(own)) < np.exp(-gap * gap / (2 * _BUDGET_TOLERANCE ** 2))
            own, item = own[accept], item[accept]
        keys = np.concatenate([kept, own * n_inf + item])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
        keys = keys[np.argsort(keys // n_inf, kind="stable")]
        owner = keys // n_inf - lo
        group_start = np.searchsorted(owner, owner, side="left")
        kept = keys[np.arange(len(keys)) - group_start < want[owner]]
    kept.sort()
    return kept // n_inf, kept % n_inf


def _draw_influencers(own: np.ndarray, owners: Dict[str, np.ndarray], pools: Dict[str, np.ndarray],
                      rng: np.random.Generator) -> np.ndarray:
    """One influencer per row: owner's category mix then popularity within it, or popularity alone."""
    u = rng.random(len(own))
    slot = np.minimum((u[:, None] > owners["cum_mix"][own]).sum(axis=1), _MAX_PREFS - 1)
    cat = owners["prefs"][own, slot]
    v = rng.random(len(own))
    idx = np.searchsorted(pools["cum"], pools["before"][cat] + v * pools["total"][cat], side="right")
    idx = np.clip(idx, pools["start"][cat], pools["start"][cat] + np.maximum(pools["size"][cat] - 1, 0))
    item = pools["members"][np.minimum(idx, len(pools["members"]) - 1)]
    explore = (rng.random(len(own)) < _EXPLORE) | (pools["size"][cat] == 0)
    cum_all = pools["cum_all"]
    wild = np.searchsorted(cum_all, rng.random(int(explore.sum())) * cum_all[-1], side="right")
    item[explore] = np.minimum(wild, len(cum_all) - 1)
    return item


def _ratings(own: np.ndarray, item: np.ndarray, owners: Dict[str, np.ndarray], inf: Dict[str, np.ndarray],
             rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Stars 1-5 and sentiment in [0, 1] from category match, budget fit, quality, generosity."""
    mask = inf["masks"][item]
    hit = (mask[:, None] >> owners["prefs"][own].astype(np.int64)) & 1
    match = (hit * owners["mix"][own]).sum(axis=1)
    gap = inf["price"][item] - owners["budget"][own]
    fit = np.exp(-gap * gap / (2 * _BUDGET_TOLERANCE ** 2))
    y = (1.0 * match + 0.8 * fit + 0.3 * inf["quality"][item] + 0.3 * owners["generosity"][own]
         + 0.5 * rng.standard_normal(len(own)))
    y = (y - _Y_MEAN) / _Y_SD
    stars = np.searchsorted(_STAR_CUTS, y) + schema.STAR_MIN
    sentiment = np.clip(0.785 + 0.13 * y + 0.11 * rng.standard_normal(len(own)), *schema.UNIT_INTERVAL)
    return stars, sentiment
