"""Feature names of the tf.Examples and of the Transform outputs, defined once."""

from data import schema

# Raw tf.Example features. Interaction examples (train/eval splits) carry all of
# them; catalog examples carry only the influencer ones.
OWNER_ID = schema.OWNER_ID
INFLUENCER_ID = schema.HISTORY_INFLUENCER_ID
STAR_RATING = schema.STAR_RATING
SENTIMENT = schema.SENTIMENT
FOLLOWERS = schema.FOLLOWER_COLUMNS
PRICE = schema.PRICE
CATEGORIES = schema.CATEGORIES

INFLUENCER_RAW_FEATURES = (INFLUENCER_ID, *FOLLOWERS, PRICE, CATEGORIES)

# ExampleGen split holding one example per influencer (the whole catalog).
CATALOG_SPLIT = "catalog"
TRAIN_SPLIT = "train"
# Train owners' rows held out from Transform's analysis and from training: the
# Trainer's early stopping and blend are chosen on them (the eval split is the gate's).
VALIDATION_SPLIT = "validation"
EVAL_SPLIT = "eval"
# A copy of at most components.interaction_example_gen.MAX_RATING_EVAL_ROWS eval rows (all of them below it), chosen by
# a hash of each row: the rows TFMA's Evaluator scores, whose cost per row is Python's, so it stays fixed at scale.
RATING_EVAL_SPLIT = "rating_eval"

# Transform outputs.
LABEL_KEY = "combined_rating"
INFLUENCER_FEATURES_KEY = "influencer_features"  # [F]: scaled followers, price, multi-hot categories
OWNER_PROFILE_KEY = "owner_profile"  # [F]: mean of influencer_features * label over the owner's train rows
OWNER_HISTORY_COUNT_KEY = "owner_history_count"  # train rows behind the profile; 0 = unknown owner
# Query-side inputs of a row, leaving the row itself out (see preprocessing.leave_row_out).
QUERY_PROFILE_KEY = "query_profile"  # [F]
OWNER_HISTORY_KEY = "owner_history"  # VarLen int64: the owner's other train hires
OWNER_ID_KEY = OWNER_ID
INFLUENCER_ID_KEY = INFLUENCER_ID

# Slicing keys the served model's transform_features adds for TFMA (models/slices.py's buckets).
OWNER_HISTORY_BUCKET_KEY = "owner_history_bucket"
INFLUENCER_POPULARITY_BUCKET_KEY = "influencer_popularity_bucket"

# Vocabulary file names written by Transform.
CATEGORY_VOCABULARY = "categories"

# Where in influencer_features each block sits (categories fill the rest).
NUMERIC_FEATURE_NAMES = (*FOLLOWERS, PRICE)
