"""ExampleGen that joins the history CSV with the influencer CSV in Beam.

Outputs one Examples artifact with five splits:
- `train` / `validation` / `eval`: one example per history row, carrying the
  hired influencer's raw features, split by a hash of the row (ratios from
  config); the rows stream from the CSV to the files, joined with the catalog
  held by each worker, so memory grows with the catalog and not with the rows;
- `catalog`: one example per influencer (also those nobody hired yet), for the
  retrieval index;
- `rating_eval`: the eval rows TFMA's Evaluator scores, a copy of at most
  MAX_RATING_EVAL_ROWS of them chosen by a hash of each row (all of them below it).

The input files are checked first (`data.validate`), so a bad file stops the
run before Beam starts, with an error naming file, row and field. The input
pattern covers both CSVs, so ExampleGen's fingerprint (and so caching) sees a
change to either.
"""

import dataclasses
import hashlib
import json
import operator
import os
import shutil
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
import tensorflow as tf
from absl import logging
from google.protobuf import any_pb2, json_format, struct_pb2
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.components.util import examples_utils
from tfx.utils import proto_utils
from tfx.components import FileBasedExampleGen

from components import example_wire
from data import csv_files, records, schema
from data.validate import DataValidationError, ValidationReport, validate_data
from models import progress
from models import features
from models.layout import VALIDATION_REPORT_FILE

_INFLUENCER_PATH = "_influencer_csv"
_HISTORY_PATH = "_history_csv"
_HASH_BUCKETS = 1000
REPORT_FILE = VALIDATION_REPORT_FILE
_NAMESPACE = "InteractionExampleGen"


ROW_FEATURES = (features.OWNER_ID, features.STAR_RATING, features.SENTIMENT)  # what a history row adds to its influencer's
READ_SHARDS = 8  # readers of each CSV (csv_files.read_shard): the workers' parallelism, for 8 parses of the file
# TFMA's metrics cost Python per example and slice (about 0.75 ms an eval row on anime with 2 workers; 27 minutes at
# 10M history rows). The gate holds an RMSE to a bound and to the last blessed model's, by 0.02 (pipeline.config), both
# models scored on the same rows: on 2^18 rows of ratings in [0, 1] the mean squared error's standard error is at most
# 0.5 / 512 ~ 0.001 (on anime's errors about 6e-5, an RMSE's 2e-4), so more rows only cost time. A hash picks the rows,
# so every run on the same data scores the same ones.
MAX_RATING_EVAL_ROWS = 2**18


def influencer_entries(influencer: records.Influencer) -> List[example_wire.Entry]:
    """The influencer's raw features, as every example that carries them writes them."""
    # Every value written, 0 and 0.0 included (tfx's dict_to_example drops them: tensorflow/tfx#6407).
    entries = [
        example_wire.int64_entry(features.INFLUENCER_ID, getattr(influencer, schema.INFLUENCER_ID)),
        example_wire.float_entry(features.PRICE, getattr(influencer, schema.PRICE)),
        example_wire.bytes_entry(features.CATEGORIES, [c.encode("utf-8") for c in getattr(influencer, schema.CATEGORIES)]),
    ]
    return entries + [example_wire.int64_entry(name, getattr(influencer, name)) for name in features.FOLLOWERS]


def influencer_segments(influencer: records.Influencer) -> example_wire.Segments:
    """The influencer's entries cut for its history rows' own (made once per influencer, merged into each of its rows)."""
    return example_wire.segments(influencer_entries(influencer), ROW_FEATURES)


# The example's bytes are the same in every process (deterministic: the feature map in key order), as
# ExampleGen's split is a hash of them: a process-dependent order would move rows between train and
# eval from one run to the next (and let the last blessed model be judged on rows it trained on).


def catalog_example(influencer: records.Influencer) -> bytes:
    """Serialized catalog example: the influencer's raw features."""
    return example_wire.example(influencer_entries(influencer))


def interaction_example(row: records.Interaction, influencer: Union[records.Influencer, example_wire.Segments]) -> bytes:
    """Serialized interaction example: a history row plus the influencer's raw features (or their `influencer_segments`)."""
    cut = influencer_segments(influencer) if isinstance(influencer, records.Influencer) else influencer
    return example_wire.merged(cut, [
        example_wire.int64_entry(features.OWNER_ID, getattr(row, schema.OWNER_ID)),
        example_wire.int64_entry(features.STAR_RATING, getattr(row, schema.STAR_RATING)),
        example_wire.float_entry(features.SENTIMENT, getattr(row, schema.SENTIMENT)),
    ])


def read_records(shard: int, path: str, columns: Sequence[str], parse, shards: int = 1) -> Iterator[Any]:
    """The parsed rows of shard `shard` of a validated CSV, read by the same reader and dialect as validation (data/csv_files.py)."""
    opener = lambda name, mode: FileSystems.open(name, compression_type=CompressionTypes.UNCOMPRESSED)
    with csv_files.open_text(path, opener) as handle:
        header, rows = csv_files.read_shard(handle, shard, shards)
        index = records.check_header(path, header or [], columns)
        values = operator.itemgetter(*(index[column] for column in columns))
        for fields in rows:
            yield parse(*values(fields))


@beam.ptransform_fn
def ReadRecords(pipeline: beam.Pipeline, path: str, columns: Sequence[str], parse, shards: int = READ_SHARDS) -> beam.PCollection:
    """One CSV's rows as records, from `shards` readers that Create spreads over the workers.

    Nothing downstream groups the rows, so they stream from the file to the written splits: memory
    does not grow with the rows (a grouping holds them all in the DirectRunner's memory).
    """
    return pipeline | "Shards" >> beam.Create(list(range(shards))) | "ReadCsv" >> beam.FlatMap(read_records, path, columns, parse, shards)


def _join(row: records.Interaction, cuts: Mapping[int, example_wire.Segments], missing_counter) -> Iterable[bytes]:
    cut = cuts.get(getattr(row, schema.HISTORY_INFLUENCER_ID))
    if cut is None:
        # Only reachable with --drop-invalid, whose cleaned files are consistent;
        # kept so a race with a changed file never emits a half example.
        missing_counter.inc()
        return
    yield interaction_example(row, cut)


@beam.ptransform_fn
def _InteractionsToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str) -> beam.PCollection:
    """Each history row with its influencer's features, looked up in the catalog as a side input.

    A side input, not a CoGroupByKey: each worker holds the catalog (its size), never the rows.
    """
    del split_pattern  # Paths come from validation (originals or cleaned copies).
    missing = beam.metrics.Metrics.counter(_NAMESPACE, "history_rows_without_influencer")
    cuts = (
        pipeline
        | "ReadInfluencersForJoin" >> ReadRecords(exec_properties[_INFLUENCER_PATH], schema.INFLUENCER_COLUMNS, records.influencer_from_values)
        | "CutInfluencers" >> beam.Map(lambda inf: (getattr(inf, schema.INFLUENCER_ID), influencer_segments(inf)))
    )
    return (
        pipeline
        | "ReadHistory" >> ReadRecords(exec_properties[_HISTORY_PATH], schema.HISTORY_COLUMNS, records.interaction_from_values)
        | "ToInteractionExample" >> beam.FlatMap(_join, beam.pvalue.AsDict(cuts), missing)
    )


def _remote_paths(problems, local: str, remote: str) -> list:
    """Problems found in the local copy, naming the user's bucket files instead."""
    return [dataclasses.replace(p, path=p.path.replace(local, remote.rstrip("/"), 1)) for p in problems]


def validate_input(input_base: str, drop_invalid: bool, tmp_dir: str) -> ValidationReport:
    """data.validate on the input folder, also when it is a bucket (gs://...).

    data.validate reads local files, so a bucket's two CSVs are checked from a
    local copy, with errors naming the bucket paths. Beam then reads the
    bucket itself (Dataflow workers cannot see this container's disk); with
    drop_invalid the cleaned copies are uploaded into `tmp_dir` (under the
    pipeline root) for the same reason.
    """
    cleaned = os.path.join(tmp_dir, "cleaned") if drop_invalid else None
    if "://" not in input_base:
        return validate_data(input_base, drop_invalid=drop_invalid, cleaned_dir=cleaned, progress=logging.info)
    names = (schema.INFLUENCER_FILE, schema.HISTORY_FILE)
    local = tempfile.mkdtemp(prefix="influencer_recs_input_")
    try:
        for name in names:
            if tf.io.gfile.exists(os.path.join(input_base, name)):
                tf.io.gfile.copy(os.path.join(input_base, name), os.path.join(local, name))
        local_cleaned = os.path.join(local, "cleaned") if drop_invalid else None
        try:
            report = validate_data(local, drop_invalid=drop_invalid, cleaned_dir=local_cleaned, progress=logging.info)
        except DataValidationError as error:
            raise DataValidationError(_remote_paths(error.problems, local, input_base), error.total, error.advice) from None
        if drop_invalid:
            tf.io.gfile.makedirs(cleaned)
            for path in (report.influencer_path, report.history_path):
                tf.io.gfile.copy(path, os.path.join(cleaned, os.path.basename(path)), overwrite=True)
            sources = cleaned
        else:
            sources = input_base
        return dataclasses.replace(
            report,
            influencer_path=os.path.join(sources, names[0]),
            history_path=os.path.join(sources, names[1]),
            examples=_remote_paths(report.examples, local, input_base),
        )
    finally:
        shutil.rmtree(local, ignore_errors=True)


class Executor(BaseExampleGenExecutor):
    """Validates the CSVs, then writes train/eval interactions and the catalog."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _InteractionsToExample

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]) -> Dict[str, beam.PCollection]:
        splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        splits[features.CATALOG_SPLIT] = (
            pipeline
            | "ReadInfluencersForCatalog" >> ReadRecords(exec_properties[_INFLUENCER_PATH], schema.INFLUENCER_COLUMNS, records.influencer_from_values)
            | "ToCatalogExample" >> beam.Map(catalog_example)
        )
        splits[features.RATING_EVAL_SPLIT] = splits[features.EVAL_SPLIT] | "SampleRatingEval" >> HashSample(MAX_RATING_EVAL_ROWS)
        return splits

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        options = decode_custom_config(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
        drop_invalid = bool(options.get("drop_invalid", False))
        report = validate_input(exec_properties[standard_component_specs.INPUT_BASE_KEY], drop_invalid, self._get_tmp_dir())
        logging.info("Input validation:\n%s", report.summary())
        dropped = sum(report.dropped.values())
        progress.report(
            "InteractionExampleGen: %s influencers, %s history rows, %s owners valid%s%s", f"{report.influencer_rows:,}",
            f"{report.history_rows:,}", f"{report.owners:,}", f"; {dropped:,} invalid rows dropped" if dropped else "",
            f"; warning: {report.repeated_pairs:,} rows repeat an (own_id, inf_id) pair" if report.repeated_pairs else "",
        )
        exec_properties = {**exec_properties, _INFLUENCER_PATH: report.influencer_path, _HISTORY_PATH: report.history_path}

        # The base Do derives split names from the hash-split config alone, so
        # it cannot write the extra catalog split: this is its loop, plus one split.
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        split_names = example_gen_utils.generate_output_split_names(input_config, output_config)
        split_names = split_names + [features.CATALOG_SPLIT, features.RATING_EVAL_SPLIT]
        examples.split_names = artifact_utils.encode_split_names(split_names)
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY, example_gen_pb2.FORMAT_TFRECORDS_GZIP)
        with self._make_beam_pipeline() as pipeline:
            for name, split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                _ = split | f"WriteSplit[{name}]" >> WriteSplit(artifact_utils.get_split_uri([examples], name))
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))
        with tf.io.gfile.GFile(os.path.join(examples.uri, REPORT_FILE), "w") as handle:
            handle.write(json.dumps(dataclasses.asdict(report), indent=2, sort_keys=True, default=str))
        logging.info("Examples written: splits %s", split_names)


def _row_hash(example: bytes) -> bytes:
    return hashlib.blake2b(example, digest_size=8).digest()


@beam.ptransform_fn
def HashSample(examples: beam.PCollection, n: int) -> beam.PCollection:
    """The `n` serialized examples of smallest hash (all of them if fewer): the same rows whatever their order.

    Each bundle keeps at most `n` rows, so memory follows `n`, not the split.
    """
    return examples | "Smallest" >> beam.combiners.Top.Smallest(n, key=_row_hash) | "Rows" >> beam.FlatMap(lambda rows: rows)


@beam.ptransform_fn
def WriteSplit(examples: beam.PCollection, split_uri: str) -> beam.pvalue.PDone:
    """A split's serialized examples as gzipped TFRecord files, where tfx's WriteSplit puts them.

    Without tfx's Reshuffle before the write: on the DirectRunner it held every row of the split in memory.
    """
    return examples | "Write" >> beam.io.WriteToTFRecord(os.path.join(split_uri, write_split.DEFAULT_TF_RECORD_FILE_NAME), file_name_suffix=".gz")


def encode_custom_config(options: Mapping[str, Any]) -> example_gen_pb2.CustomConfig:
    """Packs plain options into ExampleGen's proto-typed custom_config."""
    struct = struct_pb2.Struct()
    struct.update(dict(options))
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def decode_custom_config(serialized: Optional[str]) -> Dict[str, Any]:
    if not serialized:
        return {}
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(serialized, config)
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        return {}
    return json_format.MessageToDict(struct)


class InteractionExampleGen(FileBasedExampleGen):
    """ExampleGen over a folder holding the influencer and history CSVs."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, data_dir: str, eval_ratio: float, validation_ratio: float, drop_invalid: bool, code_version: str = ""):
        eval_buckets = max(1, min(_HASH_BUCKETS - 2, round(eval_ratio * _HASH_BUCKETS)))
        # Hash buckets go to the splits in order, so eval (last) holds the same rows whatever the validation share.
        validation_buckets = max(1, round(validation_ratio * (_HASH_BUCKETS - eval_buckets)))
        super().__init__(
            input_base=data_dir,
            input_config=example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name="csv", pattern="*.csv")]
            ),
            output_config=example_gen_pb2.Output(
                split_config=example_gen_pb2.SplitConfig(
                    splits=[
                        example_gen_pb2.SplitConfig.Split(
                            name=features.TRAIN_SPLIT, hash_buckets=_HASH_BUCKETS - eval_buckets - validation_buckets
                        ),
                        example_gen_pb2.SplitConfig.Split(name=features.VALIDATION_SPLIT, hash_buckets=validation_buckets),
                        example_gen_pb2.SplitConfig.Split(name=features.EVAL_SPLIT, hash_buckets=eval_buckets),
                    ]
                )
            ),
            # code_version: only for TFX's cache key (pipeline/code_version.py).
            custom_config=encode_custom_config({"drop_invalid": drop_invalid, "code_version": code_version}),
        )
