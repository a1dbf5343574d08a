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
