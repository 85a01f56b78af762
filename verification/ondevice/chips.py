"""The chip table: Apple chips with a Neural Engine, their generation, vendor TOPS, and model identifiers.

Figures and identifier tables are public vendor figures and public device tables; sources are in
``docs/ane-facts.md`` (section "Devices").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ChipGeneration:
    name: str  # "M1", "M3 Pro", "A17 Pro"
    family: str  # "M" (Macs, iPads) or "A" (iPhones, iPads)
    generation: int  # 1 for M1, 14 for A14
    neural_engine_tops: float | None  # vendor figure; None where not published
    tops_source: str

    @property
    def in_spec(self) -> bool:
        return is_in_spec(self.family, self.generation)

    def to_dict(self) -> dict:
        return {**asdict(self), "in_spec": self.in_spec}


def is_in_spec(family: str, generation: int) -> bool:
    """The spec rule: M1 or newer, A14 or newer."""
    return (family == "M" and generation >= 1) or (family == "A" and generation >= 14)


_VENDOR = "vendor figure (docs/ane-facts.md, Devices)"
# Ultra chips join two Max dies: two 16-core Neural Engines (vendor figures: M1 Ultra 22, M2 Ultra 31.6).
_ULTRA = "two Max dies: twice the generation's vendor figure"
# Vendor TOPS by generation (docs/ane-facts.md, Devices). Pro and Max variants share the 16-core
# Neural Engine.
# A17 Pro, A18 and M4 look like int8 figures (M4 measured about 19 TFLOPS fp16).
_GENERATION_TOPS = {
    ("A", 14): 11.0,
    ("A", 15): 15.8,
    ("A", 16): 17.0,
    ("A", 17): 35.0,
    ("A", 18): 35.0,
    ("M", 1): 11.0,
    ("M", 2): 15.8,
    ("M", 3): 18.0,
    ("M", 4): 38.0,
}


def _build_table() -> dict[str, ChipGeneration]:
    table = {}
    for (family, generation), tops in _GENERATION_TOPS.items():
        base = f"{family}{generation}"
        if family == "A":
            variants = {"A17": ["A17 Pro"], "A18": ["A18", "A18 Pro"]}.get(base, [base])
            for name in variants:
                table[name] = ChipGeneration(name, family, generation, tops, _VENDOR)
            continue
        for suffix in ("", " Pro", " Max"):
            table[base + suffix] = ChipGeneration(base + suffix, family, generation, tops, _VENDOR)
        if generation <= 3:  # no M4 Ultra has been announced
            table[base + " Ultra"] = ChipGeneration(base + " Ultra", family, generation, 2 * tops, _ULTRA)
    return table


CHIPS: dict[str, ChipGeneration] = _build_table()

_CHIP_NAME = re.compile(r"\b([AM])(\d{1,2})(?: (Pro|Max|Ultra))?\b")


def chip_generation(chip_name: str | None) -> ChipGeneration | None:
    """The generation of a chip named like "Apple M2 Pro" or "A15"; None if it names no Apple chip.

    Chips newer than the table (an "Apple M5") get a generation with unknown TOPS, and the spec rule.
    """
    if not chip_name:
        return None
    match = _CHIP_NAME.search(chip_name)
    if match is None:
        return None
    family, generation, variant = match.group(1), int(match.group(2)), match.group(3)
    name = f"{family}{generation}" + (f" {variant}" if variant else "")
    if name in CHIPS:
        return CHIPS[name]
    return ChipGeneration(name, family, generation, None, "not in the table (newer or unknown chip)")


# iPhone model identifiers by major number (iPhone13,x is the iPhone 12 family with the A14).
_IPHONE_CHIPS = {13: "A14", 14: "A15", 15: "A16", 16: "A17 Pro", 17: "A18"}


def iphone_chip(identifier: str) -> str | None:
    """Chip of an iPhone model identifier such as "iPhone14,2"; None for unknown identifiers.

    Approximate by design: iPhone15,2/15,3 (14 Pro) and 15,4/15,5 (15) are both A16; iPhone14,7/14,8
    (14) are A15 like the 13 series; identifiers below iPhone13 are pre-A14 (out of spec).
    """
    match = re.fullmatch(r"iPhone(\d+),\d+", identifier)
    if match is None:
        return None
    major = int(match.group(1))
    if major < 13:
        return f"A{major + 1}" if major >= 10 else None  # iPhone12,x is A13, iPhone11,x A12, iPhone10,x A11
    return _IPHONE_CHIPS.get(major)


# iPad model identifiers of A14-or-newer and M1-or-newer iPads, from the public identifier tables
# (github.com/KHwang9883/MobileModels brands/apple_all_en.md, checked against other device tables).
# Unlike iPhones, an iPad major number mixes chips (iPad13,x holds A14 and M1 iPads), so each identifier
# is listed. Older iPads map to their (out-of-spec) chip by major number in ``ipad_chip``.
_IPAD_CHIPS = {
    **dict.fromkeys(("iPad13,1", "iPad13,2"), "A14"),  # iPad Air (4th generation)
    **{f"iPad13,{n}": "M1" for n in range(4, 12)},  # iPad Pro 11-inch (3rd gen), 12.9-inch (5th gen)
    **dict.fromkeys(("iPad13,16", "iPad13,17"), "M1"),  # iPad Air (5th generation)
    **dict.fromkeys(("iPad13,18", "iPad13,19"), "A14"),  # iPad (10th generation)
    **dict.fromkeys(("iPad14,1", "iPad14,2"), "A15"),  # iPad mini (6th generation)
    **{f"iPad14,{n}": "M2" for n in range(3, 7)},  # iPad Pro 11-inch (4th gen), 12.9-inch (6th gen)
    **{f"iPad14,{n}": "M2" for n in range(8, 12)},  # iPad Air 11-inch and 13-inch (M2)
    **{f"iPad15,{n}": "M3" for n in range(3, 7)},  # iPad Air 11-inch and 13-inch (M3)
    **dict.fromkeys(("iPad15,7", "iPad15,8"), "A16"),  # iPad (A16)
    **dict.fromkeys(("iPad16,1", "iPad16,2"), "A17 Pro"),  # iPad mini (A17 Pro)
    **{f"iPad16,{n}": "M4" for n in range(3, 7)},  # iPad Pro 11-inch and 13-inch (M4)
}
# Older iPads by major number: iPad8,x is the iPad Pro with the A12X/A12Z (generation A12), iPad11,x the
# A12 iPad mini 5, Air 3 and iPad 8, iPad12,x the A13 iPad 9; all older than A14 (out of spec).
_OLDER_IPAD_CHIPS = {8: "A12", 11: "A12", 12: "A13"}


def ipad_chip(identifier: str) -> str | None:
    """Chip of an iPad model identifier such as "iPad13,4" (M1); None for identifiers not modeled."""
    if identifier in _IPAD_CHIPS:
        return _IPAD_CHIPS[identifier]
    match = re.fullmatch(r"iPad(\d+),\d+", identifier)
    return _OLDER_IPAD_CHIPS.get(int(match.group(1))) if match else None


def ios_device_chip(identifier: str) -> str | None:
    """Chip of an iPhone or iPad model identifier; None for identifiers not modeled."""
    return ipad_chip(identifier) if identifier.startswith("iPad") else iphone_chip(identifier)
