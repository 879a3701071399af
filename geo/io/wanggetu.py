"""The printable 网格图 of one community: PDF, A3 landscape, drawn with matplotlib and a CJK font.

Grids coloured and labelled with code and name, streets with names, estate / special-unit names, a legend
with each grid's population, north arrow, scale bar, plan version and date. Coordinates are drawn in a
local metric CRS so the scale bar is true.
"""

from __future__ import annotations

import io
from datetime import datetime

import geopandas as gpd
import numpy as np

from geo.crs import local_metric_crs

A3_LANDSCAPE_IN = (16.54, 11.69)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "SimHei",
             "Source Han Sans SC")
KIND_ZH = {"standard": "基础网格", "exclusive": "专属网格", "rural": "农村网格"}


def _cjk_font() -> str:
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in have:
            return name
    raise RuntimeError("no CJK font found for the 网格图 (install fonts-noto-cjk)")


def _nice_length(max_m: float) -> float:
    for v in (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if v >= max_m / 5:
            return float(v)
    return 10000.0


def render_pdf(grids: gpd.GeoDataFrame, *, title: str, subtitle: str, streets: gpd.GeoDataFrame | None = None,
               places: gpd.GeoDataFrame | None = None, boundary=None, fmt: str = "pdf") -> bytes:
    """Draw the 网格图 and return the file's bytes.

    Parameters
    ----------
    grids : GeoDataFrame (EPSG:4326)
        ``code``, ``name``, ``kind``, ``people``, ``households`` and geometry.
    title, subtitle : str
        e.g. ``"桂园社区网格图"`` and ``"方案 #12 v3 · 已发布 · 2026-12-02"``.
    streets : GeoDataFrame, optional
        Street lines with ``name``.
    places : GeoDataFrame, optional
        Points with ``name`` (estates 小区, special units).
    boundary : shapely geometry (EPSG:4326), optional
        The community boundary.
    fmt : {"pdf", "png"}
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrow, Patch, Rectangle

    font = _cjk_font()
    plt.rcParams["font.family"] = font
    plt.rcParams["axes.unicode_minus"] = False
    crs = local_metric_crs(grids)
    g = grids.to_crs(crs).reset_index(drop=True)
    fig = plt.figure(figsize=A3_LANDSCAPE_IN)
    ax = fig.add_axes([0.03, 0.06, 0.66, 0.84])
    lax = fig.add_axes([0.71, 0.06, 0.27, 0.84])
    lax.axis("off")
    cmap = plt.get_cmap("tab20")
    colours = [cmap(i % 20) for i in range(len(g))]
    # one plot call for all grids and one for the exclusive ones' hatching: every GeoSeries.plot redraws the whole
    # A3 figure (geopandas calls draw_idle), so a call per grid made a 16-grid map cost 16 full renders
    g.geometry.plot(ax=ax, color=colours, alpha=0.55, edgecolor="#333333", linewidth=1.2)
    exclusive = g[g["kind"] == "exclusive"]
    if len(exclusive):
        exclusive.geometry.plot(ax=ax, facecolor="none", edgecolor="#7a1fa2", linewidth=2.4, hatch="//")
    minx, miny, maxx, maxy = g.total_bounds
    pad = 0.04 * max(maxx - minx, maxy - miny)
    if streets is not None and len(streets):
        s = streets.to_crs(crs).clip((minx - pad, miny - pad, maxx + pad, maxy + pad))
        s = s[~s.geometry.is_empty]
        if len(s):
            s.plot(ax=ax, color="#6b6b6b", linewidth=0.9, zorder=3)
            named = s[s["name"].notna() & (s["name"].astype(str) != "")]
            done = set()
            for _, r in named.assign(_len=named.length).sort_values("_len", ascending=False).iterrows():
                if r["name"] in done or r["_len"] < 0.15 * (maxx - minx):
                    continue
                done.add(r["name"])
                p = r.geometry.interpolate(0.5, normalized=True)
                ax.annotate(str(r["name"]), (p.x, p.y), fontsize=7, color="#404040", ha="center", va="center",
                            zorder=6, bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    if boundary is not None:
        gpd.GeoSeries([boundary], crs=4326).to_crs(crs).boundary.plot(ax=ax, color="#c62828", linewidth=2.2,
                                                                     linestyle="--", zorder=4)
    for i, geom in enumerate(g.geometry):
        p = geom.representative_point()
        ax.annotate(f"{g['code'].iat[i]}\n{g['name'].iat[i]}", (p.x, p.y), fontsize=8, ha="center", va="center",
                    zorder=7, fontweight="bold")
    if places is not None and len(places):
        pl = places.to_crs(crs)
        for _, r in pl.iterrows():
            ax.plot(r.geometry.x, r.geometry.y, marker="s", markersize=4, color="#0d47a1", zorder=8)
            ax.annotate(str(r["name"]), (r.geometry.x, r.geometry.y), xytext=(4, 4), textcoords="offset points",
                        fontsize=7.5, color="#0d47a1", zorder=8)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    # north arrow
    w, h = maxx - minx + 2 * pad, maxy - miny + 2 * pad
    ax_x, ax_y = maxx + pad - 0.06 * w, maxy + pad - 0.14 * h
    ax.add_patch(FancyArrow(ax_x, ax_y, 0, 0.08 * h, width=0.012 * w, head_width=0.035 * w, head_length=0.035 * h,
                            color="black", zorder=9))
    ax.annotate("N", (ax_x, ax_y + 0.125 * h), ha="center", fontsize=14, fontweight="bold", zorder=9)
    # scale bar
    L = _nice_length(w)
    sx, sy = minx - pad + 0.04 * w, miny - pad + 0.04 * h
    for k in range(2):
        ax.add_patch(Rectangle((sx + k * L / 2, sy), L / 2, 0.008 * h, facecolor="black" if k == 0 else "white",
                               edgecolor="black", zorder=9))
    ax.annotate("0", (sx, sy + 0.015 * h), ha="center", fontsize=8)
    ax.annotate(f"{L:g} 米" if L < 1000 else f"{L / 1000:g} 公里", (sx + L, sy + 0.015 * h), ha="center", fontsize=8)
    fig.suptitle(title, fontsize=22, fontweight="bold", x=0.36, y=0.965)
    fig.text(0.36, 0.925, subtitle, ha="center", fontsize=11, color="#333333")
    # legend: one row per grid with its population
    handles = [Patch(facecolor=colours[i], alpha=0.55, edgecolor="#333333",
                     label=f"{g['code'].iat[i]} {g['name'].iat[i]} · {KIND_ZH.get(g['kind'].iat[i], g['kind'].iat[i])}"
                           f" · {int(g['people'].iat[i]):,}人 / {int(g['households'].iat[i]):,}户")
               for i in range(len(g))]
    handles += [Patch(facecolor="none", edgecolor="#c62828", linestyle="--", label="社区边界"),
                Patch(facecolor="#6b6b6b", label="道路")]
    lax.legend(handles=handles, loc="upper left", fontsize=8.5 if len(g) <= 30 else 6.5, frameon=True,
               title=f"图例 · {len(g)} 个网格 · 共 {int(np.sum(g['people'])):,} 人", title_fontsize=11)
    fig.text(0.98, 0.015, f"制图 {datetime.now():%Y-%m-%d %H:%M} · geo 网格化管理", ha="right", fontsize=8,
             color="#555555")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=150 if fmt == "png" else None)
    plt.close(fig)
    return buf.getvalue()
