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


@dataclass(frozen=True)
class Subtype:
    category: str
    category_name: str
    code: str
    name: str
    priority: str
    department: str


@dataclass(frozen=True)
class Catalogue:
    """Event categories and sub-types with their default priority and responsible department."""

    sla_hours: dict[str, float]
    sources: dict[str, str]
    subtypes: dict[tuple[str, str], Subtype]
    categories: dict[str, str]

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
    for ci, c in enumerate(raw.get("categories", [])):
        cats[c["code"]] = c["name"]
        for si, s in enumerate(c.get("subtypes", [])):
            if s.get("priority") not in sla:
                raise ValueError(f"{path}: categories[{ci}].subtypes[{si}] ({s.get('code')}): priority "
                                 f"{s.get('priority')!r} has no entry in sla_hours {sorted(sla)}")
            subtypes[(c["code"], s["code"])] = Subtype(c["code"], c["name"], s["code"], s["name"], s["priority"],
                                                      s.get("department", ""))
    if not subtypes:
        raise ValueError(f"{path}: the event catalogue defines no sub-types")
    return Catalogue(sla_hours=sla, sources=dict(raw.get("sources", {})), subtypes=subtypes, categories=cats)


@lru_cache(maxsize=4)
def _catalogue(path: str) -> Catalogue:
    return load_catalogue(Path(path))


def get_catalogue(settings: Settings | None = None) -> Catalogue:
    s = settings or get_settings()
    return _catalogue(str(s.catalogue_path or DEFAULT_CATALOGUE))
