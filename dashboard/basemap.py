"""The project's own offline basemap: streets, community boundaries and names from the API's vector tiles.

``GET /v1/tiles/basemap/{z}/{x}/{y}.mvt`` (layers ``streets``, ``communities``, ``labels``) is drawn in the
browser by Leaflet.VectorGrid (vendored under ``static/vendor/vectorgrid``), so a map on an intranet is readable
without any tile server. Used only when no provider tiles are configured (those come with their own streets;
:mod:`dashboard.maps` keeps shifting overlays to GCJ-02 for them).

The map fetches the tiles itself, so it needs the API's URL as the *browser* reaches it
(:func:`dashboard.api.public_url`) and the API must allow the dashboard's origin (``GEO_CORS_ORIGINS``).
Community names are drawn as small SVG images (VectorGrid draws points as icons, not text).
Test hook: ``window.__geo_basemap = {tiles, features, errors}`` counts tiles loaded and features drawn.
"""

from __future__ import annotations

import folium
from jinja2 import Template

TILE_PATH = "/v1/tiles/basemap/{z}/{x}/{y}.mvt"

#: colours of the dark wall style (streets by class, community fill and outline, label text)
STYLE = {"bg": "#0c1a30", "community_fill": "#102440", "community_line": "#4f6f9f", "street": "#31496d",
         "street_major": "#48658f", "label": "#9fb6d9", "label_halo": "#07101e"}
MAJOR = ["primary", "trunk", "secondary", "motorway", "主干路", "快速路", "primary_link", "trunk_link"]


class OwnBasemap(folium.MacroElement):
    """A VectorGrid layer of the basemap tiles below every overlay (tile pane), not interactive."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var S = {{ this.style|tojson }}, MAJOR = {{ this.major|tojson }};
            window.__geo_basemap = {tiles: 0, features: 0, errors: 0};
            function esc(s) { return String(s).replace(/[&<>"']/g, function (c) {
                return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]; }); }
            var icons = {};
            function labelIcon(name, size) {
                var k = name + '|' + size;
                if (icons[k]) { return icons[k]; }
                var w = Math.ceil(size * 1.08 * String(name).length + 8), h = Math.ceil(size * 1.6);
                var svg = '<svg xmlns="http://www.w3.org/2000/svg" width="' + w + '" height="' + h + '">' +
                    '<text x="50%" y="' + (h * 0.7) + '" text-anchor="middle" font-size="' + size + '" ' +
                    'font-family="Noto Sans CJK SC,Source Han Sans SC,Microsoft YaHei,PingFang SC,sans-serif" ' +
                    'fill="' + S.label + '" stroke="' + S.label_halo + '" stroke-width="3" paint-order="stroke" ' +
                    'font-weight="600">' + esc(name) + '</text></svg>';
                icons[k] = L.icon({iconUrl: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg),
                                   iconSize: [w, h], iconAnchor: [w / 2, h / 2]});
                return icons[k];
            }
            function counted(style) { window.__geo_basemap.features += 1; return style; }
            var vg = L.vectorGrid.protobuf({{ this.url|tojson }}, {
                rendererFactory: L.canvas.tile, interactive: false, maxNativeZoom: 16, maxZoom: 19,
                fetchOptions: {headers: {{ this.headers|tojson }}, mode: 'cors', credentials: 'omit'},
                vectorTileLayerStyles: {
                    communities: function () {
                        return counted({weight: 1.4, color: S.community_line, opacity: .9, dashArray: '5 4',
                                        fill: true, fillColor: S.community_fill, fillOpacity: .85});
                    },
                    streets: function (p, z) {
                        var major = MAJOR.indexOf(p.klass) >= 0;
                        return counted({weight: (major ? 2.6 : 1.3) * (z >= 15 ? 1.5 : 1) * (window.innerWidth >= 1700 ? 2 : 1),
                                        color: major ? S.street_major : S.street, opacity: .95});
                    },
                    labels: function (p, z) {
                        if (!p.name || z < 12) { return []; }
                        return counted({icon: labelIcon(p.name, (z >= 15 ? 15 : 13) * (window.innerWidth >= 1700 ? 2 : 1))});
                    }
                }
            });
            vg.on('load', function () { window.__geo_basemap.loaded = true; });
            vg.on('tileload', function () { window.__geo_basemap.tiles += 1; });
            vg.on('tileerror', function () { window.__geo_basemap.errors += 1; });
            vg.addTo(map);
        })();
        {% endmacro %}
    """)

    def __init__(self, url: str, headers: dict):
        super().__init__()
        self._name = "OwnBasemap"
        self.url = url
        self.headers = headers
        self.style = STYLE
        self.major = MAJOR


def tiles_url(api_public_url: str) -> str:
    """The basemap's tile URL template (Leaflet placeholders) on the API as the browser reaches it."""
    return api_public_url.rstrip("/") + TILE_PATH
