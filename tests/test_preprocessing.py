"""preprocessing_fn against a pandas computation of the notebook's formulas."""

import os
import tempfile

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from components.transform import deep_copy_on_this_beam
from models import features, preprocessing

CATEGORY_POOL = ["Action", "Drama", "Slice of Life", "Comedy", "Sci-Fi", "Horror"]
RAW_SPEC = {
    features.OWNER_ID: tf.io.FixedLenFeature([1], tf.int64),
    features.INFLUENCER_ID: tf.io.FixedLenFeature([1], tf.int64),
    features.STAR_RATING: tf.io.FixedLenFeature([1], tf.int64),
    features.SENTIMENT: tf.io.FixedLenFeature([1], tf.float32),
    **{name: tf.io.FixedLenFeature([1], tf.int64) for name in features.FOLLOWERS},
    features.PRICE: tf.io.FixedLenFeature([1], tf.float32),
    features.CATEGORIES: tf.io.VarLenFeature(tf.string),
}


def _raw_rows(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    influencers = pd.DataFrame({
        features.INFLUENCER_ID: np.arange(1, 61),
        **{name: rng.lognormal(8, 2, 60).astype(np.int64) for name in features.FOLLOWERS},
        features.PRICE: rng.uniform(0.3, 0.7, 60).astype(np.float32),
        features.CATEGORIES: [tuple(rng.choice(CATEGORY_POOL, rng.integers(1, 4), replace=False)) for _ in range(60)],
    })
    history = pd.DataFrame({
        features.OWNER_ID: rng.integers(1, 25, n),
        features.INFLUENCER_ID: rng.integers(1, 61, n),
        features.STAR_RATING: rng.integers(1, 6, n),
        features.SENTIMENT: rng.uniform(0, 1, n).astype(np.float32),
    })
    return history.merge(influencers, on=features.INFLUENCER_ID)


def _to_instances(frame: pd.DataFrame):
    rows = []
    for record in frame.to_dict("records"):
        row = {name: [record[name]] for name in RAW_SPEC if name != features.CATEGORIES}
        row[features.CATEGORIES] = [c.encode() for c in record[features.CATEGORIES]]
        rows.append(row)
    return rows


def _analyze_and_transform(frame: pd.DataFrame, config: dict):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    out_dir = tempfile.mkdtemp()
    # Deep copy on, as in the pipeline's Transform: the second analysis phase re-reads its input.
    with deep_copy_on_this_beam(), tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp"), use_deep_copy_optimization=True):
        (transformed, _), transform_fn = (_to_instances(frame), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    metadata_io.write_metadata(metadata, os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))  # as TFX's Transform does
    return transformed, tft.TFTransformOutput(out_dir)


def _expected_features(frame: pd.DataFrame, vocabulary, scaling: str, width: int) -> np.ndarray:
    columns = []
    for name in features.FOLLOWERS:
        x = frame[name].astype(np.float64)
        x = np.log1p(x) if scaling == "log" else x
        columns.append((x - x.min()) / (x.max() - x.min()))
    columns.append(frame[features.PRICE].astype(np.float64))
    numeric = np.stack(columns, axis=1)
    multi_hot = np.zeros((len(frame), width))
    index = {c: i for i, c in enumerate(vocabulary)}
    for row, cats in enumerate(frame[features.CATEGORIES]):
        for c in cats:
            if c in index:
                multi_hot[row, index[c]] = 1.0
    return np.concatenate([numeric, multi_hot], axis=1)


@pytest.fixture(scope="module")
def transformed_log():
    frame = _raw_rows()
    config = {"max_categories": 4, "follower_scaling": "log", "star_weight": 0.6, "sentiment_weight": 0.4}
    transformed, output = _analyze_and_transform(frame, config)
    return frame, transformed, output


def test_influencer_features_match_pandas_scaling_and_multi_hot(transformed_log):
    frame, transformed, output = transformed_log
    vocabulary = [v.decode() for v in output.vocabulary_by_name(features.CATEGORY_VOCABULARY)]
    assert len(vocabulary) == 4  # top_k keeps the 4 most frequent of 6 categories
    counts = pd.Series([c for cats in frame[features.CATEGORIES] for c in cats]).value_counts()
    assert set(vocabulary) == set(counts.index[:4]) or counts.iloc[3] == counts.iloc[4]
    expected = _expected_features(frame, vocabulary, "log", 4)
    got = np.stack([row[features.INFLUENCER_FEATURES_KEY] for row in transformed])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_label_is_the_configured_combination(transformed_log):
    frame, transformed, _ = transformed_log
    expected = 0.6 * frame[features.STAR_RATING] / 5 + 0.4 * frame[features.SENTIMENT]
    got = np.array([row[features.LABEL_KEY] for row in transformed])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_owner_profile_is_the_notebook_formula(transformed_log):
    frame, transformed, _ = transformed_log
    item = np.stack([row[features.INFLUENCER_FEATURES_KEY] for row in transformed]).astype(np.float64)
    label = np.array([row[features.LABEL_KEY] for row in transformed], np.float64)
    owners = np.array([row[features.OWNER_ID_KEY] for row in transformed])
    weighted = pd.DataFrame(item * label[:, None])
    weighted["own_id"] = owners
    expected = weighted.groupby("own_id").mean()
    sizes = weighted.groupby("own_id").size()
    for row in transformed:
        owner = int(row[features.OWNER_ID_KEY])
        np.testing.assert_allclose(row[features.OWNER_PROFILE_KEY], expected.loc[owner].to_numpy(), atol=1e-5)
        assert row[features.OWNER_HISTORY_COUNT_KEY] == sizes.loc[owner]


def test_reloaded_graph_looks_up_known_owners_and_falls_back_for_unknown(transformed_log):
    frame, transformed, output = transformed_log
    layer = output.transform_features_layer()
    sample = frame.head(2).copy()
    sample.loc[sample.index[1], features.OWNER_ID] = 10_000  # never seen
    batch = {}
    for name, spec in RAW_SPEC.items():
        if name == features.CATEGORIES:
            batch[name] = tf.ragged.constant([[c.encode() for c in cats] for cats in sample[name]]).to_sparse()
        else:
            batch[name] = tf.constant(sample[name].to_numpy().reshape(-1, 1), dtype=spec.dtype)
    result = layer(batch)
    known = [r for r in transformed if r[features.OWNER_ID_KEY] == sample[features.OWNER_ID].iloc[0]][0]
    np.testing.assert_allclose(result[features.OWNER_PROFILE_KEY][0].numpy(), known[features.OWNER_PROFILE_KEY], atol=1e-6)
    item = np.stack([r[features.INFLUENCER_FEATURES_KEY] for r in transformed])
    label = np.array([r[features.LABEL_KEY] for r in transformed])
    global_mean = (item * label[:, None]).mean(axis=0)
    np.testing.assert_allclose(result[features.OWNER_PROFILE_KEY][1].numpy(), global_mean, atol=1e-5)
    assert result[features.OWNER_HISTORY_COUNT_KEY].numpy().tolist() == [known[features.OWNER_HISTORY_COUNT_KEY], 0.0]


def test_minmax_option_is_the_notebook_scaling():
    frame = _raw_rows(n=120, seed=5)
    transformed, output = _analyze_and_transform(frame, {"max_categories": 6, "follower_scaling": "minmax"})
    vocabulary = [v.decode() for v in output.vocabulary_by_name(features.CATEGORY_VOCABULARY)]
    expected = _expected_features(frame, vocabulary, "minmax", 6)
    got = np.stack([row[features.INFLUENCER_FEATURES_KEY] for row in transformed])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_query_features_leave_the_row_itself_out(transformed_log):
    frame, transformed, _ = transformed_log
    item = np.stack([row[features.INFLUENCER_FEATURES_KEY] for row in transformed]).astype(np.float64)
    label = np.array([row[features.LABEL_KEY] for row in transformed], np.float64)
    owners = np.array([row[features.OWNER_ID_KEY] for row in transformed])
    influencers = np.array([row[features.INFLUENCER_ID_KEY] for row in transformed])
    # Pick rows whose (owner, influencer) pair is unique, so "the row" is well defined.
    pair_counts = pd.Series(list(zip(owners, influencers))).value_counts()
    checked = 0
    for i, row in enumerate(transformed):
        if pair_counts[(owners[i], influencers[i])] != 1:
            continue
        others = (owners == owners[i]) & (influencers != influencers[i])
        assert sorted(row[features.OWNER_HISTORY_KEY].tolist()) == sorted(set(influencers[others].tolist()))
        if others.sum() == 0:
            np.testing.assert_allclose(row[features.QUERY_PROFILE_KEY], 0.0)
        else:
            expected = (item[others] * label[others, None]).mean(axis=0)
            np.testing.assert_allclose(row[features.QUERY_PROFILE_KEY], expected, atol=1e-5)
        checked += 1
    assert checked > 100


def test_read_transformed_applies_the_saved_graph_as_beam_transformed_the_rows(transformed_log, tmp_path):
    from models.examples import read_transformed

    frame, transformed, output = transformed_log
    path = str(tmp_path / "rows.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in _to_instances(frame):
            feature = {}
            for name, values in row.items():
                if RAW_SPEC[name].dtype == tf.int64:
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
                elif RAW_SPEC[name].dtype == tf.float32:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
                else:
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    keys = (features.LABEL_KEY, features.INFLUENCER_FEATURES_KEY, features.OWNER_PROFILE_KEY, features.QUERY_PROFILE_KEY)
    got = read_transformed([path], output, keys, batch_size=64)  # several batches
    for key in keys:
        want = np.stack([np.asarray(row[key]) for row in transformed])
        np.testing.assert_allclose(got[key], want.reshape(got[key].shape), atol=1e-6, err_msg=key)
