"""What the report shows of the data, from StatisticsGen's own statistics: every split, offline.

Per split and feature: counts, the share of zeros, and for numbers their quantiles and a
histogram; for ids (categorical ints in data/schema.pbtxt) and categories the unique count
and the top values. Train against eval: TFDV's own drift measures (L-infinity distance for
categorical features, Jensen-Shannon divergence for numeric ones), computed by
tfdv.validate_statistics with comparators added to a copy of the schema.
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from models import features

SPLIT_ORDER = (features.TRAIN_SPLIT, features.VALIDATION_SPLIT, features.EVAL_SPLIT, features.CATALOG_SPLIT)
# The report's reference for "large": TFDV's comparators need a threshold; above it a row says so (it gates nothing).
DRIFT_THRESHOLD = 0.1
TOP_VALUES = 3

Table = Tuple[List[str], List[List[str]]]


def load(statistics_uri: Optional[str]) -> Dict[str, Any]:
    """Split name -> DatasetFeatureStatisticsList, for every split StatisticsGen wrote (train, validation, eval, catalog first)."""
    if not statistics_uri or not os.path.isdir(statistics_uri):
        return {}
    import tensorflow_data_validation as tfdv

    splits = [name[len("Split-"):] for name in os.listdir(statistics_uri) if name.startswith("Split-")]
    ordered = sorted(splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))
    found = {}
    for split in ordered:
        path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(path):
            found[split] = tfdv.load_stats_binary(path)
    return found


def _name(feature) -> str:
    return feature.path.step[0] if feature.path.step else feature.name


def _fmt(value: float) -> str:
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _quantile(num_stats, q: float) -> Optional[float]:
    """The value at quantile q from TFDV's equi-depth histogram (the upper edge of the bucket holding it)."""
    for histogram in num_stats.histograms:
        if histogram.type == histogram.QUANTILES and histogram.buckets:
            total = sum(b.sample_count for b in histogram.buckets)
            seen = 0.0
            for bucket in histogram.buckets:
                seen += bucket.sample_count
                if seen >= q * total:
                    return bucket.high_value
    return None


def feature_rows(statistics: Dict[str, Any]) -> Table:
    """One row per feature and split."""
    header = ["feature", "split", "count", "missing", "zeros", "unique", "mean", "std", "min", "median", "max", f"top {TOP_VALUES} values (share)"]
    rows: Dict[str, List[List[str]]] = {}
    for split, stats in statistics.items():
        dataset = stats.datasets[0]
        for feature in dataset.features:
            name = _name(feature)
            if feature.HasField("num_stats"):
                num = feature.num_stats
                common = num.common_stats
                count = max(1, common.num_non_missing)
                median = _quantile(num, 0.5)
                cells = [f"{num.num_zeros / count:.1%}", "", _fmt(num.mean), _fmt(num.std_dev), _fmt(num.min),
                         "" if median is None else _fmt(median), _fmt(num.max), ""]
            else:
                strings = feature.string_stats
                common = strings.common_stats
                values = max(1, common.tot_num_values)  # categories are lists: a share is of all the values
                top = ", ".join(f"{v.value} ({v.frequency / values:.1%})" for v in strings.top_values[:TOP_VALUES])
                cells = ["", f"{strings.unique:,}", "", "", "", "", "", top]
            rows.setdefault(name, []).append([name, split, f"{int(common.num_non_missing):,}", f"{int(common.num_missing):,}", *cells])
    return header, [row for name in sorted(rows) for row in rows[name]]


def histograms(statistics: Dict[str, Any]) -> Dict[str, Dict[str, List[Tuple[float, float, float]]]]:
    """Numeric feature -> split -> its standard histogram's (low, high, share of rows) buckets."""
    out: Dict[str, Dict[str, List[Tuple[float, float, float]]]] = {}
    for split, stats in statistics.items():
        for feature in stats.datasets[0].features:
            if not feature.HasField("num_stats"):
                continue
            for histogram in feature.num_stats.histograms:
                if histogram.type == histogram.STANDARD and histogram.buckets:
                    total = sum(b.sample_count for b in histogram.buckets) or 1.0
                    out.setdefault(_name(feature), {})[split] = [(b.low_value, b.high_value, b.sample_count / total) for b in histogram.buckets]
    return out


def drift_rows(statistics: Dict[str, Any], schema_uri: Optional[str], base: str = features.TRAIN_SPLIT, other: str = features.EVAL_SPLIT) -> Table:
    """TFDV's drift measure of each feature between two splits, from tfdv.validate_statistics on the run's schema (ImportSchemaGen's)."""
    header = ["feature", "measure", f"{base} vs {other}", "threshold", "verdict"]
    path = schema_uri and os.path.join(schema_uri, "schema.pbtxt")
    if base not in statistics or other not in statistics or not path or not os.path.exists(path):
        return header, []
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(path)
    numeric = {_name(f) for f in statistics[other].datasets[0].features if f.HasField("num_stats")}
    for feature in schema.feature:
        if feature.name in numeric:
            feature.drift_comparator.jensen_shannon_divergence.threshold = DRIFT_THRESHOLD
        else:
            feature.drift_comparator.infinity_norm.threshold = DRIFT_THRESHOLD
    anomalies = tfdv.validate_statistics(statistics[other], schema, previous_statistics=statistics[base])
    rows = []
    for info in anomalies.drift_skew_info:
        name = info.path.step[0] if info.path.step else ""
        for measurement in info.drift_measurements:
            kind = "Jensen-Shannon divergence" if measurement.type == measurement.JENSEN_SHANNON_DIVERGENCE else "L-infinity distance"
            verdict = "large" if measurement.value > measurement.threshold else "small"
            rows.append([name, kind, f"{measurement.value:.4f}", f"{measurement.threshold:g}", verdict])
    return header, sorted(rows)

