"""Demo data: a deterministic synthetic district (合成数据, not real) for demos, tests and benchmarks."""

from geo.demo.synthetic import SyntheticDistrict, generate_district, write_demo

__all__ = ["SyntheticDistrict", "generate_district", "write_demo"]
