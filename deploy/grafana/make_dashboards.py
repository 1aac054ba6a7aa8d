"""Writes deploy/grafana/dashboards/*.json: python deploy/grafana/make_dashboards.py

The dashboards are generated so that panels stay consistent (datasource, layout); edit this
file, run it, commit both.
"""

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "prometheus"}


def target(expr, legend="", fmt="time_series", instant=False, ref="A"):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend, "format": fmt}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def panel(pid, title, typ, targets, x, y, w, h, description="", **extra):
    p = {
        "id": pid,
        "title": title,
        "type": typ,
        "datasource": DS,
        "targets": targets,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "description": description,
    }
    p.update(extra)
    return p


def dashboard(uid, title, panels, templating=None, time_from="now-6h"):
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "tags": ["hashtag-spread"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "5s",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": templating or []},
        "panels": panels,
        "annotations": {"list": []},
    }


hashtag_var = {
    "name": "hashtag",
    "label": "hashtag",
    "type": "query",
    "datasource": DS,
    "query": {"query": "label_values(hashtag_posts_total, hashtag)", "refId": "var"},
    "definition": "label_values(hashtag_posts_total, hashtag)",
    "multi": True,
    "includeAll": True,
    "refresh": 2,
    "sort": 1,
    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
}

# R_t: a red threshold line at 1; the band's series dashed.
RT_FIELDS = {
    "defaults": {
        "custom": {"thresholdsStyle": {"mode": "line"}},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
        },
    },
    "overrides": [
        {
            "matcher": {"id": "byRegexp", "options": ".*%$"},
            "properties": [
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [4, 4]}},
                {"id": "custom.lineWidth", "value": 1},
            ],
        }
    ],
}

GEOMAP_OPTIONS = {
    "view": {"id": "zero", "lat": 20, "lon": 0, "zoom": 1},
    "controls": {"showZoom": True, "mouseWheelZoom": True},
    "basemap": {"type": "default", "name": "Basemap"},
    "layers": [
        {
            "type": "markers",
            "name": "posts",
            "location": {
                "mode": "lookup",
                "lookup": "region",
                "gazetteer": "public/gazetteer/countries.json",
            },
            "config": {
                "size": {"field": "Value", "min": 3, "max": 30, "fixed": 5},
                "color": {"fixed": "red"},
                "showLegend": True,
            },
        }
    ],
}

movement_var = {
    "name": "movement",
    "label": "movement",
    "type": "query",
    "datasource": DS,
    "query": {"query": "label_values(movement_posts_total, movement)", "refId": "var"},
    "definition": "label_values(movement_posts_total, movement)",
    "multi": False,
    "includeAll": False,
    "refresh": 2,
    "sort": 1,
}

spread = dashboard(
    "hashtag-spread",
    "Hashtag spread",
    [
        panel(
            1,
            "Trending: by trend score (last 15 minutes against the tag's own baseline)",
            "table",
            [
                target(
                    "topk(20, max by (hashtag) (hashtag_trend_score))",
                    fmt="table",
                    instant=True,
                    ref="A",
                ),
                target(
                    'sum by (hashtag) (hashtag_posts_per_minute{window="15m"})',
                    fmt="table",
                    instant=True,
                    ref="B",
                ),
                target(
                    "max by (hashtag) (hashtag_growth_ratio)", fmt="table", instant=True, ref="C"
                ),
                target(
                    "max by (hashtag) (hashtag_reproduction_number)",
                    fmt="table",
                    instant=True,
                    ref="D",
                ),
                target(
                    "max by (hashtag) (hashtag_regions_reached)", fmt="table", instant=True, ref="E"
                ),
                target(
                    "sum by (hashtag) (hashtag_posts_total)", fmt="table", instant=True, ref="F"
                ),
                target(
                    "max by (hashtag) (hashtag_unique_users)", fmt="table", instant=True, ref="G"
                ),
            ],
            0,
            0,
            12,
            10,
            "Event time: a replay at 1800x shows the original day's numbers. Trend score: standard errors above the tag's EWMA baseline (a small tag taking off outranks a big steady one). R_t: new posts per post, last hour.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "filterByValue",
                    "options": {
                        "filters": [
                            {"fieldName": "Value #A", "config": {"id": "isNull", "options": {}}}
                        ],
                        "type": "exclude",
                        "match": "any",
                    },
                },
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "trend score",
                            "Value #B": "posts/min (15m)",
                            "Value #C": "growth (1h / hour before)",
                            "Value #D": "R_t",
                            "Value #E": "regions",
                            "Value #F": "posts",
                            "Value #G": "unique users",
                        },
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "trend score", "desc": True}]}},
            ],
        ),
        panel(
            2,
            "Posts per minute (1m window, event time)",
            "timeseries",
            [
                target(
                    'sum by (hashtag) (hashtag_posts_per_minute{window="1m", hashtag=~"$hashtag"})',
                    "{{hashtag}}",
                ),
            ],
            12,
            0,
            12,
            10,
            "The newest minute bucket at the watermark; during a replay, the x axis is wall-clock time of the replay.",
        ),
        panel(
            3,
            "Where the selected hashtags are posted",
            "geomap",
            [
                target(
                    'sum by (region) (hashtag_region_posts_total{hashtag=~"$hashtag"})',
                    fmt="table",
                    instant=True,
                ),
            ],
            0,
            10,
            12,
            12,
            "Regions are ISO 3166-1 alpha-2 codes; ZZ (unknown) has no place on the map.",
            options=GEOMAP_OPTIONS,
        ),
        panel(
            4,
            "Regions reached",
            "timeseries",
            [
                target(
                    'max by (hashtag) (hashtag_regions_reached{hashtag=~"$hashtag"})', "{{hashtag}}"
                ),
            ],
            12,
            10,
            12,
            12,
        ),
        panel(
            5,
            "First seen, by region (event time)",
            "table",
            [
                target(
                    'min by (hashtag, region) (hashtag_region_first_seen_timestamp_seconds{hashtag=~"$hashtag"}) * 1000',
                    fmt="table",
                    instant=True,
                ),
            ],
            0,
            22,
            24,
            10,
            "The spread timeline: when each hashtag reached each region.",
            fieldConfig={"defaults": {"unit": "dateTimeAsIso"}, "overrides": []},
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value": "first seen"},
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "first seen", "desc": False}]}},
            ],
        ),
        panel(
            6,
            "Reproduction number R_t (line at 1: each post brings one more)",
            "timeseries",
            [
                target(
                    'max by (hashtag) (hashtag_reproduction_number{hashtag=~"$hashtag"})',
                    "{{hashtag}}",
                    ref="A",
                ),
                target(
                    'max by (hashtag) (hashtag_reproduction_number_lower{hashtag=~"$hashtag"})',
                    "{{hashtag}} 2.5 %",
                    ref="B",
                ),
                target(
                    'max by (hashtag) (hashtag_reproduction_number_upper{hashtag=~"$hashtag"})',
                    "{{hashtag}} 97.5 %",
                    ref="C",
                ),
            ],
            0,
            32,
            12,
            10,
            "Cori et al. (2013) over the last hour of event time; posts without a parent start cascades. Above 1 and the band above 1: spreading by itself.",
            fieldConfig=RT_FIELDS,
        ),
        panel(
            7,
            "Trend score",
            "timeseries",
            [
                target(
                    'max by (hashtag) (hashtag_trend_score{hashtag=~"$hashtag"})', "{{hashtag}}"
                ),
            ],
            12,
            32,
            12,
            10,
            "The last 15 minutes' rate against the hashtag's own EWMA baseline, in standard errors.",
        ),
        panel(
            8,
            "Posts per minute by region, last hour (selected hashtags, event time)",
            "timeseries",
            [
                target(
                    'sum by (region) (hashtag_region_posts_per_minute{hashtag=~"$hashtag", window="1h"})',
                    "{{region}}",
                ),
            ],
            0,
            42,
            24,
            10,
            "Where the selected hashtags are spreading now; regions with no post in the hour are absent.",
        ),
    ],
    templating=[hashtag_var],
)

movement = dashboard(
    "spread-movement",
    "Movement",
    [
        panel(
            1,
            "Posts (any of its hashtags, each once)",
            "stat",
            [target('sum(movement_posts_total{movement="$movement"})', "posts")],
            0,
            0,
            6,
            5,
        ),
        panel(
            2,
            "Unique users",
            "stat",
            [target('sum(movement_unique_users{movement="$movement"})', "users")],
            6,
            0,
            6,
            5,
            "HyperLogLog estimate, about 0.8 % standard error.",
        ),
        panel(
            3,
            "Regions reached",
            "stat",
            [target('max(movement_regions_reached{movement="$movement"})', "regions")],
            12,
            0,
            6,
            5,
        ),
        panel(
            4,
            "R_t now",
            "stat",
            [target('max(movement_reproduction_number{movement="$movement"})', "R_t")],
            18,
            0,
            6,
            5,
            fieldConfig={
                "defaults": {
                    "decimals": 2,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
                    },
                },
                "overrides": [],
            },
        ),
        panel(
            5,
            "Posts per minute, the movement and each of its hashtags (event time)",
            "timeseries",
            [
                target(
                    'sum(movement_posts_per_minute{movement="$movement", window="15m"})',
                    "$movement (all variants)",
                    ref="A",
                ),
                target(
                    'sum by (hashtag) (hashtag_posts_per_minute{window="15m"}) * on (hashtag) '
                    'group_left () max by (hashtag) (movement_hashtag_info{movement="$movement"})',
                    "#{{hashtag}}",
                    ref="B",
                ),
            ],
            0,
            5,
            24,
            10,
            "One movement across its language variants: the total counts an event carrying two variants once.",
        ),
        panel(
            6,
            "Where it is posted",
            "geomap",
            [
                target(
                    'sum by (region) (movement_region_posts_total{movement="$movement"})',
                    fmt="table",
                    instant=True,
                ),
            ],
            0,
            15,
            12,
            12,
            "Regions are ISO 3166-1 alpha-2 codes; ZZ (unknown) has no place on the map.",
            options=GEOMAP_OPTIONS,
        ),
        panel(
            7,
            "The spread timeline: first post by region (event time)",
            "table",
            [
                target(
                    'min by (region) (movement_region_first_seen_timestamp_seconds{movement="$movement"}) * 1000',
                    fmt="table",
                    instant=True,
                ),
            ],
            12,
            15,
            12,
            12,
            "When the movement, under any of its hashtags, reached each region, in order.",
            fieldConfig={"defaults": {"unit": "dateTimeAsIso"}, "overrides": []},
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value": "first post"},
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "first post", "desc": False}]}},
            ],
        ),
        panel(
            8,
            "R_t with its 95 % band (line at 1)",
            "timeseries",
            [
                target('max(movement_reproduction_number{movement="$movement"})', "R_t", ref="A"),
                target(
                    'max(movement_reproduction_number_lower{movement="$movement"})',
                    "2.5 %",
                    ref="B",
                ),
                target(
                    'max(movement_reproduction_number_upper{movement="$movement"})',
                    "97.5 %",
                    ref="C",
                ),
            ],
            0,
            27,
            12,
            10,
            fieldConfig=RT_FIELDS,
        ),
        panel(
            9,
            "Regions reached and unique users",
            "timeseries",
            [
                target('max(movement_regions_reached{movement="$movement"})', "regions", ref="A"),
                target('sum(movement_unique_users{movement="$movement"})', "users", ref="B"),
            ],
            12,
            27,
            12,
            10,
            fieldConfig={
                "defaults": {},
                "overrides": [
                    {
                        "matcher": {"id": "byName", "options": "users"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                    }
                ],
            },
        ),
        panel(
            10,
            "Posts per minute by region, last hour (event time)",
            "timeseries",
            [
                target(
                    'sum by (region) (movement_region_posts_per_minute{movement="$movement", window="1h"})',
                    "{{region}}",
                ),
            ],
            0,
            37,
            24,
            10,
            "Where the movement, under any of its hashtags, is spreading now.",
        ),
    ],
    templating=[movement_var],
)

health = dashboard(
    "spread-pipeline-health",
    "Pipeline health",
    [
        panel(
            1,
            "Events per second, by outcome",
            "timeseries",
            [target("sum by (outcome) (rate(spread_events_total[1m]))", "{{outcome}}")],
            0,
            0,
            12,
            8,
        ),
        panel(
            2,
            "Rejected events per second, by reason",
            "timeseries",
            [target("sum by (reason) (rate(spread_events_rejected_total[1m]))", "{{reason}}")],
            12,
            0,
            12,
            8,
            "Rejected lines are in topic posts-rejected with headers reason and source.",
        ),
        panel(
            3,
            "Age of the newest event (now - watermark)",
            "timeseries",
            [target("time() - max(spread_watermark_timestamp_seconds)", "age")],
            0,
            8,
            12,
            8,
            "Live traffic: how far behind real time the pipeline is. During a replay this is the age of the replayed data, not lag.",
            fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
        ),
        panel(
            4,
            "Workers up",
            "stat",
            [
                target('sum(up{job="hashtag-spread"})', "workers"),
                target("sum(spread_ingest_helper_up)", "with stage-1 helper"),
            ],
            12,
            8,
            6,
            8,
            "A worker without its helper processes (turned off, or one died: see its "
            "log) counts more slowly on a machine with cores to spare.",
        ),
        panel(
            5,
            "Delta overlaps and offset gaps (must stay 0)",
            "stat",
            [
                target("sum(spread_delta_overlaps_total)", "overlaps"),
                target("sum(spread_offset_gaps_total)", "gaps"),
            ],
            18,
            8,
            6,
            8,
            "A delta that straddled an applied offset, or a record read past unread ones: "
            "a correctness bug if either ever moves.",
        ),
        panel(
            6,
            "Scrape duration per worker",
            "timeseries",
            [target('scrape_duration_seconds{job="hashtag-spread"}', "{{instance}}")],
            0,
            16,
            12,
            8,
            fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
        ),
        panel(
            7,
            "Hashtags tracked vs exported, and samples per scrape",
            "timeseries",
            [
                target("sum(spread_hashtags_tracked)", "hashtags tracked", ref="A"),
                target("sum(spread_hashtags_exported)", "hashtags exported", ref="B"),
                target('sum(scrape_samples_scraped{job="hashtag-spread"})', "samples", ref="C"),
            ],
            12,
            16,
            12,
            8,
        ),
        panel(
            8,
            "Broker reachable, per worker",
            "timeseries",
            [target("spread_broker_up", "{{instance}}")],
            0,
            24,
            12,
            8,
            "1 while the worker reaches its broker; counting pauses (nothing is lost) while it is 0.",
        ),
        panel(
            9,
            "Broker outages (last 24 h)",
            "stat",
            [target("sum(increase(spread_broker_outages_total[24h]))", "outages")],
            12,
            24,
            12,
            8,
        ),
        panel(
            10,
            "Generation interval used for R_t (mean), per worker",
            "timeseries",
            [target("spread_generation_interval_mean_seconds", "{{instance}}")],
            0,
            32,
            12,
            8,
            "Learned from the delays between posts and the replies/reposts naming them once 200 were seen; the default (30 min) or --generation-interval before.",
            fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
        ),
    ],
    time_from="now-1h",
)

boards = {"hashtag-spread.json": spread, "movement.json": movement, "pipeline-health.json": health}
for name, d in boards.items():
    with open(Path(__file__).parent / "dashboards" / name, "w") as f:
        json.dump(d, f, indent=2, ensure_ascii=False)
        f.write("\n")
