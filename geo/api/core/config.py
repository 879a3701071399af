"""API configuration: the settings object plus the event catalogue (categories, SLAs, 权责清单)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from geo.config import Settings, get_settings

DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "catalogue.json"

#: Demo credentials that `geo serve` refuses outside --demo.
DEMO_PASSWORD = "demo-only-change-me"
DEMO_SECRET = "demo-secret-not-for-production-use-0000"


TIME_UNITS = ("work_hours", "work_days")
DEFAULT_WORK_HOURS = [("09:00", "12:00"), ("13:30", "17:30")]


@dataclass(frozen=True)
class Subtype:
    """A 小类 of the catalogue: code (and its 数字城管 2+2-digit code), default priority, department,
    立案标准 / 结案标准 and 处置时限 (``limit_value`` ``limit_unit``: work_hours | work_days)."""

    category: str
    category_name: str
    code: str
    name: str
    priority: str
    department: str
    dcode: str = ""  # 大类 (2 digits) + 小类 (2 digits), e.g. "0102"
    filing_standard: str = ""
    closing_standard: str = ""
    limit_value: float | None = None
    limit_unit: str | None = None


@dataclass(frozen=True)
class Catalogue:
    """Event categories and sub-types with their default priority and responsible department."""

    sla_hours: dict[str, float]
    sources: dict[str, str]
    subtypes: dict[tuple[str, str], Subtype]
    categories: dict[str, str]
    category_codes: dict[str, str] = None  # category → 大类 2-digit code
    work_hours: list = None  # [("09:00", "12:00"), …] working intervals of a workday

    def by_dcode(self, dcode: str) -> Subtype | None:
        """The sub-type with a 4-digit 大类+小类 code."""
        return next((s for s in self.subtypes.values() if s.dcode == dcode), None)

    def get(self, category: str, subtype: str) -> Subtype | None:
        return self.subtypes.get((category, subtype))

    def services(self) -> list[Subtype]:
        return list(self.subtypes.values())


def load_catalogue(path: Path) -> Catalogue:
    """Read and check a catalogue JSON file (raises ValueError naming the file and entry)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read event catalogue: {exc}") from exc
    sla = {k: float(v) for k, v in raw.get("sla_hours", {}).items()}
    subtypes: dict[tuple[str, str], Subtype] = {}
    cats: dict[str, str] = {}
    ccodes: dict[str, str] = {}
    seen: dict[str, str] = {}
    for ci, c in enumerate(raw.get("categories", [])):
        cats[c["code"]] = c["name"]
        cd = str(c.get("dcode", ""))
        if cd and not (len(cd) == 2 and cd.isdigit()):
            raise ValueError(f"{path}: categories[{ci}] ({c['code']}): dcode {cd!r} must be 2 digits (大类)")
        ccodes[c["code"]] = cd
        for si, s in enumerate(c.get("subtypes", [])):
            where = f"{path}: categories[{ci}].subtypes[{si}] ({s.get('code')})"
            if s.get("priority") not in sla:
                raise ValueError(f"{where}: priority {s.get('priority')!r} has no entry in sla_hours {sorted(sla)}")
            sd = str(s.get("dcode", ""))
            if sd and not (cd and len(sd) == 2 and sd.isdigit()):
                raise ValueError(f"{where}: dcode {sd!r} must be 2 digits (小类) under a category with a dcode")
            full = cd + sd if sd else ""
            if full and full in seen:
                raise ValueError(f"{where}: code {full} is also used by {seen[full]}")
            seen[full] = s["code"]
            lim = s.get("time_limit") or {}
            if lim and (lim.get("unit") not in TIME_UNITS or not isinstance(lim.get("value"), (int, float))
                        or lim["value"] <= 0):
                raise ValueError(f"{where}: time_limit {lim!r} must be {{'value': > 0, 'unit': {TIME_UNITS}}}")
            subtypes[(c["code"], s["code"])] = Subtype(
                c["code"], c["name"], s["code"], s["name"], s["priority"], s.get("department", ""), full,
                s.get("filing_standard", ""), s.get("closing_standard", ""),
                float(lim["value"]) if lim else None, lim.get("unit") if lim else None)
    if not subtypes:
        raise ValueError(f"{path}: the event catalogue defines no sub-types")
    wh = [tuple(x) for x in raw.get("work_hours", DEFAULT_WORK_HOURS)]
    return Catalogue(sla_hours=sla, sources=dict(raw.get("sources", {})), subtypes=subtypes, categories=cats,
                     category_codes=ccodes, work_hours=wh)


@lru_cache(maxsize=4)
def _catalogue(path: str) -> Catalogue:
    return load_catalogue(Path(path))


def get_catalogue(settings: Settings | None = None) -> Catalogue:
    s = settings or get_settings()
    return _catalogue(str(s.catalogue_path or DEFAULT_CATALOGUE))
