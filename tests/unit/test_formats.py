"""Twitter v1.1, Mastodon and Bluesky Jetstream lines become native events.

The inputs follow each API's documented shape (no real captures of these ship with the
repository); expectations are written out by hand.
"""

from __future__ import annotations

import orjson
import pytest

from pipeline.events import validate
from pipeline.formats import CONVERTERS, bluesky, mastodon, twitter_v1
from pipeline.formats.convert import ConvertError
from pipeline.replay import detect

V1 = {
    "created_at": "Sun Oct 15 20:21:00 +0000 2017",
    "id": 919659884,
    "id_str": "919659884",
    "text": "If you've been sexually harassed or assaulted write 'me too' as a reply #MeToo",
    "user": {"id_str": "26642006", "location": "Los Angeles, CA"},
    "entities": {"hashtags": [{"text": "MeToo", "indices": [74, 80]}]},
    "place": None,
    "lang": "en",
}
V1_RETWEET = {
    **V1,
    "id_str": "2",
    "text": "RT @Alyssa_Milano: If you've been sexually harassed or assault…",
    "entities": {"hashtags": []},
    "retweeted_status": V1,
    "user": {"id_str": "7", "location": "Paris"},
    "place": {"country_code": "FR"},
}
V1_LONG_REPLY = {
    **V1,
    "id_str": "3",
    "in_reply_to_status_id_str": "919659884",
    "entities": {"hashtags": []},
    "extended_tweet": {"entities": {"hashtags": [{"text": "YoTambien"}, {"text": "MeToo"}]}},
    "user": {"id_str": "8", "location": ""},
}
MASTODON = {
    "id": "109",
    "uri": "https://mastodon.social/users/a/statuses/109",
    "created_at": "2022-11-01T12:00:00.000Z",
    "account": {"id": "42", "acct": "a"},
    "in_reply_to_id": None,
    "reblog": None,
    "language": "fr",
    "tags": [{"name": "balancetonporc", "url": "https://mastodon.social/tags/balancetonporc"}],
}
MASTODON_BOOST = {**MASTODON, "id": "110", "tags": [], "reblog": MASTODON}
JETSTREAM_POST = {
    "did": "did:plc:abc",
    "time_us": 1725911162329308,
    "kind": "commit",
    "commit": {
        "rev": "x",
        "operation": "create",
        "collection": "app.bsky.feed.post",
        "rkey": "3l3qo2vutsw2b",
        "record": {
            "$type": "app.bsky.feed.post",
            "createdAt": "2024-09-09T19:46:02.102Z",
            "langs": ["es"],
            "text": "#YoTambien y #MeToo",
            "facets": [
                {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "YoTambien"}]},
                {"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x"}]},
            ],
            "tags": ["MeToo"],
            "reply": {"parent": {"uri": "at://did:plc:p/app.bsky.feed.post/1"}},
        },
        "cid": "bafy",
    },
}
JETSTREAM_LIKE = {
    **JETSTREAM_POST,
    "commit": {**JETSTREAM_POST["commit"], "collection": "app.bsky.feed.like"},
}


def one(module, obj) -> dict:
    (line,) = module.convert(orjson.dumps(obj))
    event = orjson.loads(line)
    assert validate(event) is None
    return event


def test_twitter_v1():
    post = one(twitter_v1, V1)
    assert post["id"] == "919659884" and post["ts"] == 1508098860.0
    assert (post["kind"], post["hashtags"], post["region"]) == ("post", ["MeToo"], "US")
    rt = one(twitter_v1, V1_RETWEET)
    assert (rt["kind"], rt["parent"], rt["hashtags"], rt["region"]) == (
        "repost",
        "919659884",
        ["MeToo"],  # the retweeted tweet's, not the truncated RT text's
        "FR",  # the place wins over the profile
    )
    reply = one(twitter_v1, V1_LONG_REPLY)
    assert (reply["kind"], reply["parent"]) == ("reply", "919659884")
    assert reply["hashtags"] == ["YoTambien", "MeToo"] and reply["region"] == "ZZ"
    with pytest.raises(ConvertError, match="Twitter's format"):
        twitter_v1.convert(orjson.dumps({**V1, "created_at": "2017-10-15"}))


def test_mastodon():
    post = one(mastodon, MASTODON)
    assert post["id"] == "mastodon.social/109" and post["platform"] == "mastodon"
    assert (post["hashtags"], post["lang"], post["region"]) == (["balancetonporc"], "fr", "ZZ")
    boost = one(mastodon, MASTODON_BOOST)
    assert (boost["kind"], boost["parent"], boost["hashtags"]) == (
        "repost",
        "mastodon.social/109",
        ["balancetonporc"],
    )
    with pytest.raises(ConvertError):
        mastodon.convert(b'{"id": 1}')


def test_bluesky_posts_and_what_is_not_a_post():
    post = one(bluesky, JETSTREAM_POST)
    assert post["id"] == "at://did:plc:abc/app.bsky.feed.post/3l3qo2vutsw2b"
    assert (post["kind"], post["parent"]) == ("reply", "at://did:plc:p/app.bsky.feed.post/1")
    assert (post["hashtags"], post["lang"]) == (["YoTambien", "MeToo"], "es")
    assert bluesky.convert(orjson.dumps(JETSTREAM_LIKE)) == []  # valid, not a post
    assert bluesky.convert(orjson.dumps({**JETSTREAM_POST, "kind": "identity"})) == []
    with pytest.raises(ConvertError):
        bluesky.convert(b"[1, 2]")


@pytest.mark.parametrize(
    ("obj", "name"),
    [(V1, "twitter-v1"), (MASTODON, "mastodon"), (JETSTREAM_POST, "bluesky"),
     ({"id": "a", "ts": 1.0, "hashtags": []}, "native")],
)  # fmt: skip
def test_auto_detection(obj, name):
    assert detect(orjson.dumps(obj)) == name
    assert name == "native" or CONVERTERS[name].looks_like(obj)
