"""Maps: folium base maps that work offline, data layers, GCJ-02 shifting, and the st_folium wrapper.

Offline
    folium loads Leaflet from public CDNs, which a governance intranet (and CI) cannot reach. The dashboard
    ships Leaflet 1.9.4 and Leaflet.VectorGrid 1.3.0 (the own basemap, :mod:`dashboard.basemap`) under ``dashboard/static/vendor`` and serves them through
    a declared (never rendered) Streamlit component, whose files Streamlit serves at
    ``/component/<name>/…`` with proper MIME types. The st_folium iframe lives at
    ``/component/streamlit_folium.st_folium/index.html``, so the assets are ``../<name>/vendor/…`` relative to
    it (which also works under a ``server.baseUrlPath``).

Basemap
    None by default: grids on a plain background. ``GEO_TILE_URL`` (or the sidebar input) adds any XYZ layer;
    for GCJ-02 providers (Amap/AutoNavi/Tencent, detected from the host or ticked by hand) every overlay is
    shifted with :func:`geo.crs.wgs84_to_gcj02`, and clicks are shifted back.

Refresh without losing the view
    ``st_folium`` re-mounts the map whenever the *base map's* script changes, so the base map only depends on
    the jurisdiction and basemap settings; all data goes in ``feature_group_to_add`` layers, which the
    component swaps in place. The zoom/centre it reports are kept in ``st.session_state`` and passed back.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import folium
import h3
import numpy as np
import streamlit as st
import streamlit.components.v1 as components
from jinja2 import Template
from streamlit_folium import st_folium

from geo.crs import gcj02_to_wgs84, wgs84_to_gcj02

STATIC_DIR = Path(__file__).resolve().parent / "static"
_ASSETS = components.declare_component("geo_map_assets", path=str(STATIC_DIR))
ASSET_BASE = f"../{_ASSETS.name}"

LEAFLET_JS = [("leaflet", f"{ASSET_BASE}/vendor/leaflet/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", f"{ASSET_BASE}/vendor/leaflet/leaflet.css")]
VECTORGRID_JS = ("vectorgrid", f"{ASSET_BASE}/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js")

GCJ_HOSTS = re.compile(r"(amap|autonavi|tencent|gtimg|map\.qq\.com)", re.I)

#: open events per grid → outline/fill colour (bucket upper bounds)
OPEN_BUCKETS = [(0, "#3fa7d6"), (2, "#f6d55c"), (5, "#f39c34"), (10, "#e8543f"), (math.inf, "#b3123b")]
HEAT_COLOURS = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]
WORKER_COLOURS = {"on": "#2ecc71", "off": "#8a94a6", "outside": "#ff9f1c"}


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Basemap:
    url: str | None
    gcj: bool

    @property
    def key(self) -> str:
        return f"{self.url or 'plain'}|{int(self.gcj)}"


def is_gcj_url(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url.replace("{s}", "a")).hostname or url
    return bool(GCJ_HOSTS.search(host))


def map_key(base: str, bm: Basemap) -> str:
    """A map's widget key per coordinate system: a stored view in WGS84 must not be reused on a GCJ-02 map."""
    return f"{base}_gcj" if bm.gcj else base


def basemap_settings() -> Basemap:
    """The basemap chosen in the sidebar (defaults from ``GEO_TILE_URL``)."""
    url = st.session_state.get("tile_url")
    if url is None:
        url = os.environ.get("GEO_TILE_URL", "")
    url = (url or "").strip() or None
    gcj = st.session_state.get("tile_gcj")
    if gcj is None:
        gcj = is_gcj_url(url)
    return Basemap(url, bool(gcj) and url is not None)


# --------------------------------------------------------------------------- geometry helpers


def zoom_for_bbox(bbox, width_px: int = 1300, height_px: int = 750) -> float:
    """Web-Mercator zoom at which *bbox* fits a map of the given size."""
    x0, y0, x1, y1 = bbox
    dx = max(x1 - x0, 1e-6)
    y0m, y1m = (math.log(math.tan(math.pi / 4 + math.radians(v) / 2)) for v in (y0, y1))
    dy = max(abs(y1m - y0m), 1e-9)
    zx = math.log2(0.92 * width_px * 360 / (256 * dx))
    zy = math.log2(0.92 * height_px * 2 * math.pi / (256 * dy))
    return max(3.0, min(18.0, math.floor(4 * min(zx, zy)) / 4))  # zoomSnap is 0.25


def bbox_center(bbox) -> tuple[float, float]:
    x0, y0, x1, y1 = bbox
    return (y0 + y1) / 2, (x0 + x1) / 2


def union_bbox(bboxes) -> list[float] | None:
    bs = [b for b in bboxes if b and all(v is not None for v in b)]
    if not bs:
        return None
    return [min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs)]


def to_display(lon, lat, bm: Basemap):
    """WGS84 → the basemap's coordinates (GCJ-02 shifted when needed)."""
    if not bm.gcj:
        return lon, lat
    x, y = wgs84_to_gcj02(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return (float(x), float(y)) if np.ndim(x) == 0 else (x, y)


def from_display(lon: float, lat: float, bm: Basemap) -> tuple[float, float]:
    """A clicked point (basemap coordinates) → WGS84."""
    if not bm.gcj:
        return lon, lat
    x, y = gcj02_to_wgs84(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return float(x), float(y)


def _shift_coords(coords, depth: int):
    if depth == 0:  # a ring / line: list of [x, y]
        a = np.asarray(coords, dtype=float)
        if a.size == 0:
            return coords
        x, y = wgs84_to_gcj02(a[:, 0], a[:, 1])
        return np.round(np.column_stack([x, y]), 6).tolist()
    return [_shift_coords(c, depth - 1) for c in coords]


_DEPTH = {"Polygon": 1, "MultiPolygon": 2, "LineString": 0, "MultiLineString": 1}


def shift_fc(fc: dict, bm: Basemap) -> dict:
    """A FeatureCollection (WGS84) in the basemap's coordinates."""
    if not bm.gcj:
        return fc
    feats = []
    for f in fc.get("features", []):
        g = f.get("geometry") or {}
        t = g.get("type")
        if t in _DEPTH:
            g = {"type": t, "coordinates": _shift_coords(g["coordinates"], _DEPTH[t])}
        elif t == "Point":
            x, y = wgs84_to_gcj02(np.array([g["coordinates"][0]]), np.array([g["coordinates"][1]]))
            g = {"type": "Point", "coordinates": [float(x[0]), float(y[0])]}
        feats.append({**f, "geometry": g})
    return {"type": "FeatureCollection", "features": feats}


def fc_bbox(fc: dict) -> list[float] | None:
    xs, ys = [], []

    def walk(c):
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        elif isinstance(c, (list, tuple)):
            for x in c:
                walk(x)

    for f in fc.get("features", []):
        walk((f.get("geometry") or {}).get("coordinates", []))
    if not xs:
        return None
    return [min(xs), min(ys), max(xs), max(ys)]


# --------------------------------------------------------------------------- base map


def base_map(bbox, bm: Basemap, *, background: str = "#0b1626", width_px: int = 1300, height_px: int = 750,
             zoom_control: bool = True, own_basemap: tuple[str, dict] | None = None, fill_frame: bool = False,
             fit: bool = False) -> folium.Map:
    """A Leaflet map fitted to *bbox* (WGS84) with no data on it: stable across refreshes.

    own_basemap : (tile URL template, request headers) of the project's vector tiles
        (:mod:`dashboard.basemap`), drawn when no provider tiles are configured.
    fill_frame : the map fills its iframe, whatever height the page gives the iframe (CSS), instead of the
        fixed *height_px* (the big screen sizes its map from the viewport).
    fit : fit *bbox* to the map's real size once when it is mounted (its size is only known in the browser).
    """
    dbbox = list(bbox)
    if bm.gcj:
        (x0, x1), (y0, y1) = to_display([bbox[0], bbox[2]], [bbox[1], bbox[3]], bm)
        dbbox = [float(x0), float(y0), float(x1), float(y1)]
    z = zoom_for_bbox(dbbox, width_px, height_px)
    m = folium.Map(location=bbox_center(dbbox), zoom_start=z, tiles=None, prefer_canvas=True,
                   control_scale=False, zoom_control=zoom_control, attribution_control=bm.url is not None,
                   max_zoom=19, maxZoom=19, minZoom=3, zoomSnap=0.25, zoomDelta=0.5)
    m.default_js = LEAFLET_JS
    m.default_css = LEAFLET_CSS
    if bm.url:
        folium.TileLayer(tiles=bm.url, attr="basemap", max_zoom=19, max_native_zoom=18,
                         subdomains="abcd" if "{s}" in bm.url else None).add_to(m)
    elif own_basemap:
        from dashboard.basemap import OwnBasemap

        m.default_js = [*LEAFLET_JS, VECTORGRID_JS]
        OwnBasemap(*own_basemap).add_to(m)
    frame_css = ""
    if fill_frame:  # and on a 4K wall, controls, tooltips and markers twice as large (a map wider than 1700 px)
        # tooltips get a larger font, not CSS zoom: zooming their pane would scale their map positions as well,
        # and a label would float away from its marker (twice its distance from the map's corner)
        frame_css = ("html,body{height:100%;margin:0}#map_div{height:100vh !important}"
                     "@media (min-width:1700px){.leaflet-control-container{zoom:2}"
                     ".leaflet-container .leaflet-tooltip{font-size:26px;padding:6px 12px}}")
    m.get_root().header.add_child(folium.Element(
        "<style>.leaflet-container{background:%s;font-family:'Noto Sans CJK SC','Source Han Sans SC',"
        "'Microsoft YaHei','PingFang SC',sans-serif}%s"
        ".leaflet-tooltip{font-size:13px}.leaflet-control-scale-line{background:rgba(255,255,255,.7)}</style>"
        % (background, frame_css)))
    if fit:
        _FitOnce([[dbbox[1], dbbox[0]], [dbbox[3], dbbox[2]]]).add_to(m)
    _MetricScale().add_to(m)
    return m


class _MetricScale(folium.MacroElement):
    """The scale bar in metres only (folium's ``control_scale`` adds feet and miles as well)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({metric: true, imperial: false, maxWidth: 120}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)


class _FitOnce(folium.MacroElement):
    """Fit the bounds to the map's real size once it has one (the iframe is sized by the page's CSS)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, b = {{ this.bounds|tojson }}, done = false;
            function fit() {
                if (done) { return; }
                var s = map.getSize();
                if (s.x < 50 || s.y < 50) { setTimeout(fit, 100); return; }
                map.invalidateSize(false);
                map.fitBounds(b, {padding: [12, 12], animate: false});
                done = true;
                window.__geo_fitted = map.getZoom();
            }
            setTimeout(fit, 0);
        })();
        {% endmacro %}
    """)

    def __init__(self, bounds):
        super().__init__()
        self._name = "FitOnce"
        self.bounds = bounds


def map_zoom_for(bbox) -> int:
    """Zoom level used to simplify geometry fetched for the whole jurisdiction (half a pixel tolerance)."""
    return int(min(16, math.floor(zoom_for_bbox(bbox)) + 1))


# --------------------------------------------------------------------------- layers


class LayerHook(folium.MacroElement):
    """Records, in the map's window, that a data layer was (re)drawn: ``window.__geo_layers[name] =
    {features, t}`` — a test/benchmark hook (the canvas renderer leaves no DOM nodes per feature)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.__geo_layers = window.__geo_layers || {};
        window.__geo_layers[{{ this.layer_name|tojson }}] = {features: {{ this.n }}, t: Date.now()};
        {% endmacro %}
    """)

    def __init__(self, layer_name: str, n: int):
        super().__init__()
        self._name = "LayerHook"
        self.layer_name = layer_name
        self.n = int(n)


def _hooked(fg: folium.FeatureGroup, name: str, n: int) -> folium.FeatureGroup:
    LayerHook(name, n).add_to(fg)
    return fg


def open_colour(n: int) -> str:
    for hi, c in OPEN_BUCKETS:
        if n <= hi:
            return c
    return OPEN_BUCKETS[-1][1]


def grids_layer(fc: dict, bm: Basemap, *, name: str, open_counts: dict | None = None,
                highlight: set[str] | frozenset = frozenset(), highlight_colour: str = "#ff3df5",
                base_colour: str | None = None, fill_opacity: float = 0.12, weight: float = 1.2,
                tooltip_fields: tuple[tuple[str, str], ...] = ()) -> folium.FeatureGroup:
    """Grid polygons: outline colour from open events (or *base_colour*), *highlight* codes emphasised."""
    feats = []
    for f in fc.get("features", []):
        p = dict(f.get("properties") or {})
        code = p.get("code")
        n = int((open_counts or {}).get(code, 0))
        p["open"] = n
        hl = code in highlight
        colour = highlight_colour if hl else (base_colour or open_colour(n))
        p["_style"] = {"color": colour, "weight": weight * (2.6 if hl else 1.0),
                       "fillColor": colour, "fillOpacity": 0.35 if hl else fill_opacity, "opacity": 0.95}
        feats.append({"type": "Feature", "geometry": f.get("geometry"), "properties": p})
    data = shift_fc({"type": "FeatureCollection", "features": feats}, bm)
    fg = _hooked(folium.FeatureGroup(name=name), name, len(feats))
    if not feats:
        return fg
    tooltip = None
    if tooltip_fields:
        tooltip = folium.GeoJsonTooltip(fields=[f for f, _ in tooltip_fields], aliases=[a for _, a in tooltip_fields],
                                        sticky=True)
    folium.GeoJson(data, name=name, style_function=_style_from_props, tooltip=tooltip,
                   highlight_function=None, smooth_factor=0.5).add_to(fg)
    return fg


def _style_from_props(feature):
    return feature["properties"]["_style"]


def heat_layer(cells: list[dict], bm: Basemap, *, name: str, tooltip_alias: str = "events") -> folium.FeatureGroup:
    """H3 cells (``{"cell": hex, "count": n}``) as polygons coloured by count (log scale)."""
    fg = _hooked(folium.FeatureGroup(name=name), name, len(cells))
    if not cells:
        return fg
    mx = max(c["count"] for c in cells) or 1
    feats = []
    for c in cells:
        ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(c["cell"])]
        ring.append(ring[0])
        k = heat_level(c["count"], mx)
        colour = HEAT_COLOURS[k]
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"count": c["count"],
                                     "_style": {"color": colour, "weight": 0, "fillColor": colour,
                                                "fillOpacity": 0.16 + 0.065 * k}}})
    data = shift_fc({"type": "FeatureCollection", "features": feats}, bm)
    folium.GeoJson(data, name=name, style_function=_style_from_props,
                   tooltip=folium.GeoJsonTooltip(fields=["count"], aliases=[tooltip_alias]),
                   highlight_function=None).add_to(fg)
    return fg


def worker_status(p: dict) -> str:
    """``on`` (on duty in one of their grids), ``outside`` (on duty, out of their own grids) or ``off``."""
    if not p.get("on_duty"):
        return "off"
    return "outside" if p.get("outside_own_grids") else "on"


class _JsPoints(folium.MacroElement):
    """Many small circle markers from one JS array (``[lat, lon, colour, tooltip]`` rows), drawn on the map's
    canvas renderer: every worker is drawn on its own (no clustering), in the colour the legend gives."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var rows = {{ this.rows|tojson }}, s = window.innerWidth >= 1700 ? 2 : 1;
            for (var i = 0; i < rows.length; i++) {
                var r = rows[i];
                L.circleMarker([r[0], r[1]], {radius: {{ this.radius }} * s, weight: 1.5 * s, color: '#0b1626',
                                             fillColor: r[2], fillOpacity: 0.95})
                 .bindTooltip(r[3]).addTo({{ this._parent.get_name() }});
            }
        })();
        {% endmacro %}
    """)

    def __init__(self, rows: list, radius: float):
        super().__init__()
        self._name = "JsPoints"
        self.rows = rows
        self.radius = radius


def workers_layer(positions: list[dict], bm: Basemap, *, name: str, label, radius: float = 5.5) -> folium.FeatureGroup:
    """Latest worker positions, each drawn individually in its status colour (:data:`WORKER_COLOURS`)."""
    fg = _hooked(folium.FeatureGroup(name=name), name, len(positions))
    if not positions:
        return fg
    lon = np.array([p["lon"] for p in positions], dtype=float)
    lat = np.array([p["lat"] for p in positions], dtype=float)
    x, y = to_display(lon, lat, bm) if bm.gcj else (lon, lat)
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    rows = [[round(float(y[i]), 6), round(float(x[i]), 6), WORKER_COLOURS[worker_status(p)], label(p)]
            for i, p in enumerate(positions)]
    _JsPoints(rows, radius).add_to(fg)
    return fg


def heat_buckets(cells: list[dict]) -> list[tuple[str, int, int, int]]:
    """The heat legend: per colour of :func:`heat_layer`, (colour, lowest count, highest count, cells) — the
    counts each colour stands for, from 1 to the busiest cell's, without gaps (a colour no cell has today still
    holds its place in the scale, with 0 cells), so the legend says how many events each colour means."""
    if not cells:
        return []
    mx = max(c["count"] for c in cells) or 1
    n = {}
    for c in cells:
        k = heat_level(c["count"], mx)
        n[k] = n.get(k, 0) + 1
    out, lo = [], 1
    for k in range(len(HEAT_COLOURS)):
        hi = lo - 1
        while hi < mx and heat_level(hi + 1, mx) <= k:  # the level grows with the count: walk to its last one
            hi += 1
        if hi >= lo:
            out.append((HEAT_COLOURS[k], lo, hi, n.get(k, 0)))
            lo = hi + 1
    return out


def heat_level(count: int, mx: int) -> int:
    """Colour index of a cell with *count* events when the busiest cell has *mx* (log scale)."""
    return min(len(HEAT_COLOURS) - 1, int(len(HEAT_COLOURS) * math.log1p(count) / math.log1p(mx + 1e-9)))


def track_layer(fixes: list[dict], bm: Basemap, *, name: str, colour: str = "#ff3df5",
                replay_s: float = 12.0, time_label=None) -> folium.FeatureGroup:
    """A worker's track (``[{lon, lat, ts}]`` in time order) as a line with a marker replaying it over
    *replay_s* seconds, looping (``window.__geo_track`` = {fixes, step} for tests)."""
    fg = _hooked(folium.FeatureGroup(name=name), name, len(fixes))
    if len(fixes) < 1:
        return fg
    lon = np.array([f["lon"] for f in fixes], dtype=float)
    lat = np.array([f["lat"] for f in fixes], dtype=float)
    x, y = to_display(lon, lat, bm) if bm.gcj else (lon, lat)
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    pts = [[round(float(y[i]), 6), round(float(x[i]), 6)] for i in range(len(fixes))]
    times = [time_label(f) if time_label else str(f.get("ts") or "")[11:16] for f in fixes]
    _TrackReplay(pts, times, colour, replay_s).add_to(fg)
    return fg


class _TrackReplay(folium.MacroElement):
    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var pts = {{ this.pts|tojson }}, times = {{ this.times|tojson }}, fg = {{ this._parent.get_name() }};
            var s = window.innerWidth >= 1700 ? 2 : 1;  // a 4K wall: twice as thick, like the workers' dots
            L.polyline(pts, {color: {{ this.colour|tojson }}, weight: 3 * s, opacity: .85,
                             dashArray: (6 * s) + ' ' + (4 * s)}).addTo(fg);
            L.circleMarker(pts[0], {radius: 4 * s, color: '#fff', weight: s, fillColor: '#2ecc71', fillOpacity: 1})
             .bindTooltip('start ' + times[0]).addTo(fg);
            var m = L.circleMarker(pts[0], {radius: 8 * s, color: '#fff', weight: 2 * s,
                                            fillColor: {{ this.colour|tojson }}, fillOpacity: 1})
                     .bindTooltip(times[0], {permanent: true, direction: 'top'}).addTo(fg);
            var i = 0, n = pts.length, dt = Math.max(30, 1000 * {{ this.replay_s }} / Math.max(1, n));
            window.__geo_track = {fixes: n, step: 0};
            if (window.__geo_track_timer) { clearInterval(window.__geo_track_timer); }
            window.__geo_track_timer = setInterval(function () {
                i = (i + 1) % n;
                m.setLatLng(pts[i]);
                m.setTooltipContent(times[i]);
                window.__geo_track.step += 1;
            }, dt);
        })();
        {% endmacro %}
    """)

    def __init__(self, pts, times, colour, replay_s):
        super().__init__()
        self._name = "TrackReplay"
        self.pts, self.times, self.colour, self.replay_s = pts, times, colour, replay_s


def points_layer(points: list[tuple[float, float, str, str]], bm: Basemap, *, name: str,
                 radius: float = 6) -> folium.FeatureGroup:
    """A few labelled points: (lon, lat, colour, tooltip)."""
    fg = _hooked(folium.FeatureGroup(name=name), name, len(points))
    for lon, lat, colour, tip in points:
        x, y = to_display(lon, lat, bm)
        folium.CircleMarker([y, x], radius=radius, color="#ffffff", weight=2, fill=True, fill_color=colour,
                            fill_opacity=1.0, tooltip=tip).add_to(fg)
    return fg


# --------------------------------------------------------------------------- rendering


def render(m: folium.Map, layers: list[folium.FeatureGroup], *, key: str, height: int,
           returned: tuple[str, ...] = ("zoom", "center"), on_change=None) -> dict:
    """Show *m* with *layers* swapped in place, keeping the user's zoom and position.

    The component keeps its own view while it stays mounted, so the view passed to it only changes when the
    page wants it to: when the map is mounted afresh (first time, or back on this page: the last view the
    user had is restored) or when a page moves it on purpose (``st.session_state[f"{key}__view"]``). Passing
    back every reported view instead would make the map jump back to a stale view after each move.
    """
    run = st.session_state.get("__app_run", 0)
    last = st.session_state.get(f"{key}__run")
    if last is None or last < run - 1:  # not shown in the previous full run: it mounts afresh now
        seen = st.session_state.get(f"{key}__seen")
        if seen and not st.session_state.get(f"{key}__view_set"):
            st.session_state[f"{key}__view"] = {"zoom": seen[0], "center": (seen[1], seen[2])}
    st.session_state[f"{key}__run"] = run
    st.session_state.pop(f"{key}__view_set", None)
    view = st.session_state.get(f"{key}__view") or {}
    out = st_folium(m, key=key, height=height, use_container_width=True,
                    returned_objects=list(returned), feature_group_to_add=layers or None,
                    zoom=view.get("zoom"), center=view.get("center"), on_change=on_change) or {}
    z, c = out.get("zoom"), out.get("center")
    if z and c and isinstance(c, dict) and "lat" in c:
        st.session_state[f"{key}__seen"] = (round(float(z), 2), round(c["lat"], 6), round(c["lng"], 6))
    return out


def set_view(key: str, zoom: float, lat: float, lon: float) -> None:
    """Move a map on its next render (e.g. to a looked-up point)."""
    st.session_state[f"{key}__view"] = {"zoom": round(float(zoom), 2), "center": (round(lat, 6), round(lon, 6))}
    st.session_state[f"{key}__view_set"] = True
