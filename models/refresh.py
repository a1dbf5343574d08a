"""A served version over a new influencer catalog, without retraining (`influencer-recs refresh-catalog`).

The owner side stays the trained version's: its owner tables, its served query (the towers and the item
factors summed over the past hires, hires that have left the catalog included), the cold-start query and
serving_default. The refreshed SavedModel calls that version's own signatures for them, so an owner's
query is exactly the one it served before.

The catalog is the new file's: ids, the filters' price, followers and categories, and each influencer's
candidate embedding:
- features unchanged: its embedding as served, bit for bit;
- features changed: the candidate tower's embedding of the new features, with its own item factors (its
  co-hires are still its own);
- new: the candidate tower's embedding, and as item factors the mean of those of its NEIGHBOURS nearest
  influencers of the served catalog by candidate-tower embedding (cosine). Nobody has hired it yet, so
  co-occurrence knows nothing of it; the influencers the towers find most like it are the best guess of
  who will. Zeros would leave it only the towers' part, which the blend may weigh at 0;
- removed: no longer in the catalog, so no ranking, filter or index can return it.
"""

import dataclasses
from typing import Dict, Sequence, Tuple

import numpy as np
import tensorflow as tf

from data import records, schema
from models import features
from models.serving import EMBEDDING_KEY, OwnerLookup, RecommenderModule, served_function

NEIGHBOURS = 10
_TOWER_BATCH = 4096  # influencers per candidate-tower call
_NEIGHBOUR_CELLS = 2**24  # new x catalog similarities held at once (64 MiB): 1,024 new rows at 16k influencers, 16 at 1M


@dataclasses.dataclass(frozen=True)
class CatalogChange:
    """How a new influencer file differs from the catalog a version serves (counts of influencers)."""

    unchanged: int
    changed: int
    added: int
    removed: int

    @property
    def removed_share(self) -> float:
        """The share of the served catalog the new file drops."""
        served = self.unchanged + self.changed + self.removed
        return self.removed / served if served else 0.0


def catalog_of(influencers: Sequence[records.Influencer]) -> Dict[str, np.ndarray]:
    """Parsed influencer rows as the catalog mapping the serving module takes."""
    return {
        features.INFLUENCER_ID: np.array([row.id for row in influencers], np.int64),
        **{name: np.array([getattr(row, name) for row in influencers], np.int64) for name in features.FOLLOWERS},
        features.PRICE: np.array([row.price_normalized for row in influencers], np.float32),
        features.CATEGORIES: [tuple(row.categories) for row in influencers],
    }


def served_catalog(version) -> Dict[str, np.ndarray]:
    """The catalog a loaded version serves, in the same form."""
    followers = version.catalog_followers.numpy()
    return {
        features.INFLUENCER_ID: version.catalog_ids.numpy(),
        **{name: followers[:, n] for n, name in enumerate(features.FOLLOWERS)},
        features.PRICE: version.catalog_price.numpy(),
        features.CATEGORIES: [tuple(c.decode().split(schema.CATEGORY_SEPARATOR)) if c else () for c in version.catalog_categories.numpy()],
    }


def compare(served: Dict[str, np.ndarray], new: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray, CatalogChange]:
    """For each new row: its position in the served catalog (-1: new) and whether its features are the same."""
    position = {int(i): n for n, i in enumerate(served[features.INFLUENCER_ID])}
    positions = np.array([position.get(int(i), -1) for i in new[features.INFLUENCER_ID]], np.int64)
    known = positions >= 0
    same = known.copy()
    at = positions[known]
    for name in (*features.FOLLOWERS, features.PRICE):
        same[known] &= np.asarray(served[name])[at] == np.asarray(new[name])[known]
    for row in np.flatnonzero(same):
        same[row] = set(served[features.CATEGORIES][positions[row]]) == set(new[features.CATEGORIES][row])
    change = CatalogChange(
        unchanged=int(same.sum()), changed=int((known & ~same).sum()), added=int((~known).sum()),
        removed=int(len(position) - len(set(at.tolist()))),
    )
    return positions, same, change


def neighbour_factors(towers: np.ndarray, catalog_towers: np.ndarray, catalog_factors: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """Each row's mean item factors over its `neighbours` nearest catalog influencers by cosine of the tower embeddings."""
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    catalog = unit(np.asarray(catalog_towers, np.float32))
    neighbours = min(neighbours, len(catalog))
    out = np.zeros((len(towers), catalog_factors.shape[1]), np.float32)
    chunk = max(1, _NEIGHBOUR_CELLS // max(len(catalog), 1))
    for start in range(0, len(towers), chunk):
        similarity = unit(np.asarray(towers[start : start + chunk], np.float32)) @ catalog.T
        nearest = np.argpartition(-similarity, neighbours - 1, axis=1)[:, :neighbours]
        out[start : start + len(similarity)] = catalog_factors[nearest].mean(axis=1)
    return out


def tower_embeddings(version, catalog: Dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The candidate tower's embeddings of these catalog rows' features, by the version's own `candidate_embedding`."""
    width = int(version.tower_width.numpy())
    out = np.zeros((len(rows), width), np.float32)
    for start in range(0, len(rows), _TOWER_BATCH):
        batch = rows[start : start + _TOWER_BATCH]
        embedded = version.candidate_embedding(
            tf.constant(catalog[features.INFLUENCER_ID][batch]),
            *[tf.constant(np.asarray(catalog[name])[batch], tf.int64) for name in features.FOLLOWERS],
            tf.constant(catalog[features.PRICE][batch], tf.float32),
            tf.constant([schema.CATEGORY_SEPARATOR.join(catalog[features.CATEGORIES][n]) for n in batch], tf.string),
        )[EMBEDDING_KEY]
        out[start : start + len(batch)] = embedded.numpy()[:, :width]
    return out


def refreshed_embeddings(version, catalog: Dict[str, np.ndarray], positions: np.ndarray, same: np.ndarray) -> np.ndarray:
    """The new catalog's candidate embeddings (module docstring: what each kind of row gets)."""
    served = version.catalog_embeddings.numpy()
    width = int(version.tower_width.numpy())
    embeddings = np.zeros((len(positions), served.shape[1]), np.float32)
    embeddings[same] = served[positions[same]]
    embed = np.flatnonzero(~same)
    embeddings[embed, :width] = tower_embeddings(version, catalog, embed)
    if served.shape[1] > width:  # item factors are served beside the towers
        changed = np.flatnonzero(~same & (positions >= 0))
        embeddings[changed, width:] = served[positions[changed], width:]
        added = np.flatnonzero(positions < 0)
        embeddings[added, width:] = neighbour_factors(embeddings[added, :width], served[:, :width], served[:, width:])
    return embeddings


def trained_version(version):
    """The version whose owner side a (refreshed) version serves: refreshing a refresh wraps the trained one, not a chain."""
    return getattr(version, "source", version)


def owner_lookup(version) -> Tuple[OwnerLookup, Dict[str, np.ndarray]]:
    """The version's owner tables, rebuilt as they were served (the last profile row is the fallback)."""
    owners = version.owners
    profiles, counts, splits = owners.profiles.numpy(), owners.counts.numpy(), owners.hire_splits.numpy()
    tables = {
        "owner_ids": owners.owner_ids.numpy(), "profiles": profiles[:-1], "counts": counts[:-1],
        "hires": owners.hires.numpy(), "hire_splits": splits[:-1],  # the served splits end with an empty fallback row
    }
    return OwnerLookup(tables, profiles[-1]), tables


class RefreshedModule(RecommenderModule):
    """A trained version's owner side (its own signatures, called) over a new catalog; the signatures of RecommenderModule."""

    def __init__(self, trained, catalog: Dict[str, np.ndarray], catalog_embeddings: np.ndarray, owners: OwnerLookup, default_k: int, max_k: int):
        tf.Module.__init__(self)
        self.source = trained
        item_query = getattr(trained, "item_query", None)
        self._init_catalog(
            catalog, catalog_embeddings, int(trained.tower_width.numpy()), default_k, max_k, owners,
            None if item_query is None else item_query.numpy(), trained.factor_ids.numpy(),
        )

    def query(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        return self.source.query_embedding(tf.reshape(inputs[features.OWNER_ID_KEY], [-1]))[EMBEDDING_KEY]

    def cold_start_query(self, categories, budget):
        return self.source.cold_start_embedding(categories, budget)[EMBEDDING_KEY]

    def candidate_towers(self, inf_id, insta_follower, tiktok, youtube, price_normalized, categories) -> tf.Tensor:
        embedded = self.source.candidate_embedding(inf_id, insta_follower, tiktok, youtube, price_normalized, categories)[EMBEDDING_KEY]
        return embedded[:, : self.tower_width]

    @served_function(tf.TensorSpec([None], tf.string, name="examples"))
    def serve_examples(self, examples):
        return self.source.serve_examples(examples)

    @served_function(tf.TensorSpec([None], tf.string, name="examples"))
    def transform_features(self, examples):
        return self.source.transform_features(examples)


def refreshed_module(version, catalog: Dict[str, np.ndarray], positions: np.ndarray, same: np.ndarray, default_k: int,
                     max_k: int) -> Tuple[RefreshedModule, Dict[str, np.ndarray]]:
    """The module serving `catalog` (compared with the served one by `compare`) with `version`'s owner side, and its owner tables."""
    embeddings = refreshed_embeddings(version, catalog, positions, same)
    owners, tables = owner_lookup(version)
    return RefreshedModule(trained_version(version), catalog, embeddings, owners, default_k, max_k), tables
