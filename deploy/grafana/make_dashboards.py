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

spread = dashboard(
    "hashtag-spread",
    "Hashtag spread",
    [
        panel(
            1,
            "Trending: posts per minute, last 15 minutes of event time",
            "table",
            [
                target(
                    'topk(20, sum by (hashtag) (hashtag_posts_per_minute{window="15m"}))',
                    fmt="table",
                    instant=True,
                    ref="A",
                ),
                target(
                    "sum by (hashtag) (hashtag_posts_total)", fmt="table", instant=True, ref="B"
                ),
                target(
                    "max by (hashtag) (hashtag_regions_reached)", fmt="table", instant=True, ref="C"
                ),
                target(
                    "max by (hashtag) (hashtag_growth_ratio)", fmt="table", instant=True, ref="D"
                ),
            ],
            0,
            0,
            12,
            10,
            "Rates are computed in event time by the pipeline, so a replay at 1800x shows the rates of the original day.",
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
                            "Value #A": "posts/min (15m)",
                            "Value #B": "posts",
                            "Value #C": "regions",
                            "Value #D": "growth (1h / hour before)",
                        },
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "posts/min (15m)", "desc": True}]}},
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
            options={
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
            },
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
    ],
    templating=[hashtag_var],
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
            [target('sum(up{job="hashtag-spread"})', "workers")],
            12,
            8,
            6,
            8,
        ),
        panel(
            5,
            "Delta overlaps (must stay 0)",
            "stat",
            [target("sum(spread_delta_overlaps_total)", "overlaps")],
            18,
            8,
            6,
            8,
            "A delta that straddled an applied offset: a correctness bug if it ever moves.",
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
    ],
    time_from="now-1h",
)

for name, d in {"hashtag-spread.json": spread, "pipeline-health.json": health}.items():
    with open(Path(__file__).parent / "dashboards" / name, "w") as f:
        json.dump(d, f, indent=2, ensure_ascii=False)
        f.write("\n")
