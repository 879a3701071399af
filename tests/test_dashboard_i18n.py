"""The planner page names every reason the engine gives for an out-of-range grid in Chinese."""

from geo.partition import quality
from geo.partition.verify import FLAG_ISLAND
from geo.partition.regions import common


def test_every_out_of_range_reason_has_a_chinese_name():
    from dashboard.i18n import FLAG_NAMES

    flags = {v for k, v in vars(common).items() if k.startswith("FLAG_")}
    flags |= {FLAG_ISLAND, quality.REASON_UNEXPLAINED}
    assert flags and flags <= set(FLAG_NAMES["zh"]), flags - set(FLAG_NAMES["zh"])
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in FLAG_NAMES["zh"][f]) for f in flags)
