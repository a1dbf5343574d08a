"""The seed CSV schema: file names, column names and value ranges, defined once.

Every other module (generator, converter, validation, ExampleGen, Transform)
refers to these names instead of spelling the strings again.
"""

INFLUENCER_FILE = "data_content_influencer_categ.csv"
HISTORY_FILE = "historical_data.csv"

# Influencer catalog columns.
INFLUENCER_ID = "id"
INSTA_FOLLOWERS = "insta_follower"
TIKTOK_FOLLOWERS = "tiktok"
YOUTUBE_FOLLOWERS = "youtube"
PRICE = "price_normalized"
CATEGORIES = "categories"
FOLLOWER_COLUMNS = (INSTA_FOLLOWERS, TIKTOK_FOLLOWERS, YOUTUBE_FOLLOWERS)
INFLUENCER_COLUMNS = (INFLUENCER_ID, *FOLLOWER_COLUMNS, PRICE, CATEGORIES)

# History (who hired whom, and how it went) columns.
OWNER_ID = "own_id"
HISTORY_INFLUENCER_ID = "inf_id"
STAR_RATING = "star_rating"
SENTIMENT = "sentiment_rating"
HISTORY_COLUMNS = (OWNER_ID, HISTORY_INFLUENCER_ID, STAR_RATING, SENTIMENT)

CATEGORY_SEPARATOR = ","
STAR_MIN, STAR_MAX = 1, 5
# Inclusive ranges of the [0, 1] columns.
UNIT_INTERVAL = (0.0, 1.0)

# The value domain of every example feature: (kind, min, max), None = unbounded.
# records.py checks rows with the constants above; data/schema.pbtxt (TFDV's
# schema of the examples) must say the same, which tests/test_schema.py checks.
INT, FLOAT, LABELS = "int", "float", "labels"
DOMAINS = {
    OWNER_ID: (INT, 0, None),
    HISTORY_INFLUENCER_ID: (INT, 0, None),
    STAR_RATING: (INT, STAR_MIN, STAR_MAX),
    SENTIMENT: (FLOAT, *UNIT_INTERVAL),
    **{column: (INT, 0, None) for column in FOLLOWER_COLUMNS},
    PRICE: (FLOAT, *UNIT_INTERVAL),
    CATEGORIES: (LABELS, 1, None),  # at least one label
}
