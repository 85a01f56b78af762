"""What device this is, whether it is in spec for Neural Engine speed-up claims, and a fingerprint.

In spec: Apple silicon with a Neural Engine of generation M1 or newer (Macs, iPad Pro, iPad Air) or A14
or newer (iPhones, and iPads from the iPad Air 4th generation, iPad 10th generation and iPad mini 6th
generation on). Python under Rosetta on an Apple-silicon Mac is still in spec: the chip and its Neural
Engine are there, only the Python process is translated. Intel Macs, Linux and Windows are out
of spec.

Detection asks the OS through an injectable ``run(argv) -> str | None`` (stdout, or None when the
command fails) and ``platform_info`` (a ``PlatformInfo``), so tests replay recorded answers. On macOS:

- ``sysctl -n hw.optional.arm64`` is 1 on Apple silicon, also under Rosetta (where
  ``platform.machine()`` says x86_64); Intel Macs answer 0 or fail (unknown oid);
- ``sysctl -n sysctl.proc_translated`` is 1 when this process runs under Rosetta;
- ``sysctl -n machdep.cpu.brand_string`` names the chip ("Apple M2 Pro"); some macOS versions answer
  "VirtualApple @ 2.50GHz processor" under Rosetta, then ``system_profiler SPHardwareDataType``
  ("Chip: Apple M2") names it;
- ``sw_vers -productVersion`` / ``-buildVersion`` give the OS version and build (``platform.mac_ver``
  can report 10.16 to old binaries).
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata


class NotAvailableHere(RuntimeError):
    """A measurement needs a runtime this machine does not have (the message says which and why)."""


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


_VENDOR = "vendor figure (docs/ane-notes.md)"
# Ultra chips join two Max dies: two 16-core Neural Engines (vendor figures: M1 Ultra 22, M2 Ultra 31.6).
_ULTRA = "two Max dies: twice the generation's vendor figure"
# Vendor TOPS by generation (docs/ane-notes.md). Pro and Max variants share the 16-core Neural Engine.
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


@dataclass(frozen=True)
class PlatformInfo:
    system: str  # platform.system(): "Darwin", "Linux", "iOS", "Windows"
    release: str  # platform.release()
    machine: str  # platform.machine(): "arm64", "x86_64", "iPhone14,2"
    mac_version: str = ""  # platform.mac_ver()[0]
    ios_version: str = ""

    @classmethod
    def current(cls) -> PlatformInfo:
        ios_version = ""
        if hasattr(platform, "ios_ver") and platform.system() in ("iOS", "iPadOS"):
            ios_version = platform.ios_ver().release
        return cls(
            platform.system(), platform.release(), platform.machine(), platform.mac_ver()[0], ios_version
        )


def subprocess_runner(argv: list[str]) -> str | None:
    """stdout of ``argv`` stripped, or None if it cannot run or exits non-zero."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@dataclass(frozen=True)
class DeviceSpec:
    os_name: str  # "macOS", "iOS", "Linux", "Windows", ...
    os_version: str
    os_build: str
    machine: str  # what Python sees: x86_64 under Rosetta
    apple_silicon: bool
    rosetta: bool
    chip: str | None  # as the OS names it: "Apple M3 Pro"
    generation: ChipGeneration | None
    has_neural_engine: bool
    in_spec: bool
    reason: str  # why the device is in or out of spec
    coreml_runtime: bool  # coremltools can run predictions here
    coreml_reason: str
    extra: dict = field(default_factory=dict)

    def os_version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.os_version)[:3])

    def to_dict(self) -> dict:
        data = asdict(self)
        data["generation"] = self.generation.to_dict() if self.generation else None
        return data


def detect(
    run=subprocess_runner, platform_info: PlatformInfo | None = None, coreml_runtime: bool | None = None
) -> DeviceSpec:
    """Describe this device (or the one whose recorded answers ``run`` and ``platform_info`` replay).

    ``coreml_runtime``: whether coremltools can predict here; None asks coremltools (macOS only).
    """
    info = platform_info or PlatformInfo.current()
    if info.system == "Darwin":
        return _detect_macos(run, info, coreml_runtime)
    if info.system in ("iOS", "iPadOS"):
        return _detect_ios(info, coreml_runtime)
    return _out_of_spec(
        os_name=info.system or "unknown OS",
        os_version=info.release,
        machine=info.machine,
        reason=f"{info.system or 'unknown OS'} {info.machine}: not an Apple device, no Neural Engine",
        coreml_runtime=bool(coreml_runtime),
        coreml_reason=f"no Core ML runtime on {info.system or 'this OS'}: Core ML predictions need macOS",
    )


def _out_of_spec(
    *, os_name, os_version, machine, reason, coreml_runtime, coreml_reason, os_build="", chip=None
) -> DeviceSpec:
    return DeviceSpec(
        os_name,
        os_version,
        os_build,
        machine,
        apple_silicon=False,
        rosetta=False,
        chip=chip,
        generation=None,
        has_neural_engine=False,
        in_spec=False,
        reason=reason,
        coreml_runtime=coreml_runtime,
        coreml_reason=coreml_reason,
    )


def _detect_macos(run, info: PlatformInfo, coreml_runtime: bool | None) -> DeviceSpec:
    os_version = run(["sw_vers", "-productVersion"]) or info.mac_version
    os_build = run(["sw_vers", "-buildVersion"]) or ""
    apple_silicon = run(["sysctl", "-n", "hw.optional.arm64"]) == "1"
    rosetta = run(["sysctl", "-n", "sysctl.proc_translated"]) == "1"
    chip = run(["sysctl", "-n", "machdep.cpu.brand_string"])
    if apple_silicon and chip_generation(chip) is None:
        chip = _chip_from_system_profiler(run) or chip
    if coreml_runtime is None:
        from verification.coreml.predict import coreml_runtime_available

        coreml_runtime = coreml_runtime_available()
    coreml_reason = (
        "Core ML runtime available"
        if coreml_runtime
        else "no Core ML runtime: coremltools' native extension (libcoremlpython) does not load"
    )
    generation = chip_generation(chip) if apple_silicon else None
    if not apple_silicon:
        return _out_of_spec(
            os_name="macOS",
            os_version=os_version,
            os_build=os_build,
            machine=info.machine,
            chip=chip,
            reason=f"Intel Mac ({chip or 'unknown CPU'}): no Neural Engine",
            coreml_runtime=coreml_runtime,
            coreml_reason=coreml_reason,
        )
    under = " (Python under Rosetta; the chip is still in spec)" if rosetta else ""
    if generation is None:
        in_spec, reason = False, f"Apple silicon, chip not recognized ({chip!r}){under}"
    elif generation.in_spec:
        in_spec, reason = True, f"{generation.name}: Apple silicon M1 or newer{under}"
    else:
        in_spec, reason = False, f"{generation.name}: not an M1-or-newer Mac chip{under}"
    return DeviceSpec(
        "macOS",
        os_version,
        os_build,
        info.machine,
        apple_silicon=True,
        rosetta=rosetta,
        chip=chip,
        generation=generation,
        has_neural_engine=True,
        in_spec=in_spec,
        reason=reason,
        coreml_runtime=coreml_runtime,
        coreml_reason=coreml_reason,
    )


def _chip_from_system_profiler(run) -> str | None:
    report = run(["system_profiler", "SPHardwareDataType"]) or ""
    match = re.search(r"^\s*Chip:\s*(.+)$", report, re.MULTILINE)
    return match.group(1).strip() if match else None


def _detect_ios(info: PlatformInfo, coreml_runtime: bool | None) -> DeviceSpec:
    chip_name = ios_device_chip(info.machine)
    generation = chip_generation(chip_name)
    coreml_reason = (
        "Core ML runtime available"
        if coreml_runtime
        else "no Core ML runtime for Python on iOS: coremltools predicts on macOS only"
    )
    if generation is None:
        reason = (
            f"{info.machine}: device not recognized (modeled: iPhone identifiers, and iPad identifiers of "
            "A14-or-newer and M1-or-newer iPads and of A12/A13 iPads)"
        )
        in_spec = False
    else:
        in_spec = generation.in_spec
        rule = "M1 or newer" if generation.family == "M" else "A14 or newer"
        reason = f"{generation.name}: " + (rule if in_spec else "older than A14")
    return DeviceSpec(
        info.system,
        info.ios_version or info.release,
        "",
        info.machine,
        apple_silicon=True,
        rosetta=False,
        chip=chip_name,
        generation=generation,
        # Every M chip has a Neural Engine; A chips from the A11.
        has_neural_engine=generation is not None
        and (generation.family == "M" or generation.generation >= 11),
        in_spec=in_spec,
        reason=reason,
        coreml_runtime=bool(coreml_runtime),
        coreml_reason=coreml_reason,
    )


# coremltools refuses ComputeUnit.CPU_AND_NE below macOS 13 (ValueError from MLModel; the timing loads the
# optimized model on CPU_AND_NE for both ANE ratios).
CPU_AND_NE_MIN_MACOS = (13, 0)


def measurement_gate(device: DeviceSpec) -> str | None:
    """None if speed-ups can be measured and asserted on ``device``, else every reason they cannot."""
    reasons = []
    if not device.in_spec:
        reasons.append(f"out-of-spec device: {device.reason}")
    if not device.coreml_runtime:
        reasons.append(device.coreml_reason)
    if device.os_name == "macOS" and device.os_version_tuple() < CPU_AND_NE_MIN_MACOS:
        reasons.append(
            f"timing on ComputeUnit.CPU_AND_NE needs macOS 13 or newer (coremltools refuses it below), "
            f"this is macOS {device.os_version or 'of unknown version'}"
        )
    return "; ".join(reasons) or None


COMPUTE_PLAN_MIN_MACOS = (14, 4)


def compute_plan_gate(device: DeviceSpec) -> str | None:
    """None if Core ML's compute plan can be read and judged for ANE placement on ``device`` (macOS 14.4+
    with Core ML, on a chip with a Neural Engine), else every reason why not."""
    if device.os_name != "macOS":
        return (
            f"not available here: compute plans need macOS 14.4 or newer with Core ML (this is "
            f"{device.os_name} {device.os_version} {device.machine})"
        )
    reasons = []
    if not device.has_neural_engine:
        # Core ML would still plan the ops (on CPU and GPU), but there is no placement on an ANE to judge.
        reasons.append(f"no Neural Engine to place ops on ({device.reason})")
    if not device.coreml_runtime:
        reasons.append(device.coreml_reason)
    if device.os_version_tuple() < COMPUTE_PLAN_MIN_MACOS:
        version = device.os_version or "of unknown version"
        reasons.append(f"compute plans need macOS 14.4 or newer, this is macOS {version}")
    return "not available here: " + "; ".join(reasons) if reasons else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(device: DeviceSpec | None = None) -> dict:
    """What a report needs to say where its numbers come from: chip, OS build and library versions."""
    device = device or detect()
    return {
        "chip": device.chip,
        "chip_generation": device.generation.name if device.generation else None,
        "in_spec": device.in_spec,
        "rosetta": device.rosetta,
        "os": f"{device.os_name} {device.os_version}".strip(),
        "os_build": device.os_build,
        "machine": device.machine,
        "python": sys.version.split()[0],
        "torch": _version("torch"),
        "coremltools": _version("coremltools"),
        "transformers": _version("transformers"),
        "numpy": _version("numpy"),
    }
