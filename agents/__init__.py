"""The Faust app of hashtag-spread: topics, the two stages, tables and the metrics collector."""
