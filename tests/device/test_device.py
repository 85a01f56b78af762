"""Device detection and the spec rule, against recorded macOS answers and against this machine."""

from __future__ import annotations

import json
import platform
import sys

import pytest
from recorded_devices import recorded

from verification.ondevice.chips import CHIPS, chip_generation, ipad_chip, iphone_chip, is_in_spec
from verification.ondevice.device import (
    PlatformInfo,
    compute_plan_gate,
    detect,
    fingerprint,
    measurement_gate,
    subprocess_runner,
)

# device -> (in_spec, generation, apple_silicon, rosetta, os_version, words in the reason)
EXPECTED = {
    "m1": (True, "M1", True, False, "14.5", ["M1", "M1 or newer"]),
    "m3_pro": (True, "M3 Pro", True, False, "15.1", ["M3 Pro"]),
    "intel_mac": (False, None, False, False, "13.6.1", ["Intel Mac", "i9-9880H", "no Neural Engine"]),
    "intel_mac_sonoma": (False, None, False, False, "14.5", ["Intel Mac", "Xeon", "no Neural Engine"]),
    "rosetta_m2": (True, "M2", True, True, "12.6", ["M2", "Rosetta", "still in spec"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detects_recorded_macs(name):
    in_spec, generation, apple_silicon, rosetta, os_version, words = EXPECTED[name]
    run, info = recorded(name)
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    assert (device.os_name, device.os_version) == ("macOS", os_version)
    assert device.in_spec is in_spec, device.reason
    assert (device.generation.name if device.generation else None) == generation
    assert device.apple_silicon is apple_silicon and device.rosetta is rosetta
    assert device.has_neural_engine is apple_silicon
    assert all(word in device.reason for word in words), device.reason
    assert device.machine == info.machine  # Rosetta: Python sees x86_64, the chip is still the M2


def test_rosetta_names_the_chip_through_system_profiler_only_when_the_brand_string_is_virtual():
    run, info = recorded("rosetta_m2")
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    assert ("system_profiler", "SPHardwareDataType") in run.asked
    assert device.chip == "Apple M2"
    run, info = recorded("m1")
    detect(run=run, platform_info=info, coreml_runtime=True)
    assert ("system_profiler", "SPHardwareDataType") not in run.asked


def test_an_apple_silicon_mac_whose_chip_cannot_be_named_is_out_of_spec_and_says_so():
    run, info = recorded("m1")
    run.answers = {**run.answers, ("sysctl", "-n", "machdep.cpu.brand_string"): "Mystery chip"}
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    assert not device.in_spec and "not recognized" in device.reason and "Mystery chip" in device.reason


def test_this_machine():
    device = detect()
    if platform.system() != "Linux":
        pytest.skip(f"expectations written for Linux; this is {platform.system()}")
    assert device.os_name == "Linux" and not device.in_spec and not device.coreml_runtime
    assert not device.has_neural_engine and device.generation is None
    reason = measurement_gate(device)
    assert "out-of-spec device" in reason and "no Core ML runtime" in reason, reason
    assert "not available here" in compute_plan_gate(device)


@pytest.mark.parametrize(
    ("system", "machine"), [("Linux", "aarch64"), ("Windows", "AMD64"), ("FreeBSD", "amd64")]
)
def test_other_systems_are_out_of_spec_without_asking_macos_tools(system, machine):
    def run(argv):
        raise AssertionError(f"asked {argv} on {system}")

    device = detect(run=run, platform_info=PlatformInfo(system, "1.0", machine))
    assert not device.in_spec and not device.coreml_runtime and system in device.reason


@pytest.mark.parametrize(
    ("identifier", "chip", "in_spec"),
    [
        ("iPhone13,2", "A14", True),
        ("iPhone14,2", "A15", True),
        ("iPhone15,4", "A16", True),
        ("iPhone16,1", "A17 Pro", True),
        ("iPhone17,1", "A18", True),
        ("iPhone12,1", "A13", False),
        ("iPhone11,2", "A12", False),
    ],
)
def test_iphone_identifiers(identifier, chip, in_spec):
    assert iphone_chip(identifier) == chip
    device = detect(run=None, platform_info=PlatformInfo("iOS", "17.0", identifier, ios_version="17.0"))
    assert device.in_spec is in_spec and device.os_name == "iOS", device.reason
    assert "no Core ML runtime" in measurement_gate(device)


@pytest.mark.parametrize(
    ("identifier", "chip", "in_spec"),
    [
        ("iPad13,1", "A14", True),  # iPad Air (4th generation)
        ("iPad13,4", "M1", True),  # iPad Pro 11-inch (3rd generation)
        ("iPad13,11", "M1", True),  # iPad Pro 12.9-inch (5th generation)
        ("iPad13,16", "M1", True),  # iPad Air (5th generation)
        ("iPad13,19", "A14", True),  # iPad (10th generation)
        ("iPad14,1", "A15", True),  # iPad mini (6th generation)
        ("iPad14,5", "M2", True),  # iPad Pro 12.9-inch (6th generation)
        ("iPad14,10", "M2", True),  # iPad Air 13-inch (M2)
        ("iPad15,3", "M3", True),  # iPad Air 11-inch (M3)
        ("iPad15,7", "A16", True),  # iPad (A16)
        ("iPad16,1", "A17 Pro", True),  # iPad mini (A17 Pro)
        ("iPad16,5", "M4", True),  # iPad Pro 13-inch (M4)
        ("iPad12,1", "A13", False),  # iPad (9th generation)
        ("iPad11,6", "A12", False),  # iPad (8th generation)
        ("iPad8,11", "A12", False),  # iPad Pro 12.9-inch (4th generation), A12Z
    ],
)
def test_ipad_identifiers(identifier, chip, in_spec):
    assert ipad_chip(identifier) == chip
    device = detect(run=None, platform_info=PlatformInfo("iPadOS", "17.0", identifier, ios_version="17.0"))
    assert device.in_spec is in_spec and device.chip == chip, device.reason
    assert device.os_name == "iPadOS" and device.has_neural_engine  # every A12-or-newer and M chip has one
    assert (
        "M1 or newer" if chip.startswith("M") else "A14" if in_spec else "older than A14"
    ) in device.reason
    assert "no Core ML runtime" in measurement_gate(device)


@pytest.mark.parametrize("identifier", ["iPad17,1", "iPad13,3", "iPod9,1", "iPad"])
def test_unmodeled_ios_devices_are_out_of_spec_with_a_reason(identifier):
    device = detect(run=None, platform_info=PlatformInfo("iOS", "17.0", identifier))
    assert not device.in_spec and "not recognized" in device.reason and identifier in device.reason
    assert device.generation is None and not device.has_neural_engine


@pytest.mark.parametrize(
    ("family", "generation", "expected"),
    [
        ("M", 1, True),
        ("M", 4, True),
        ("M", 9, True),
        ("A", 14, True),
        ("A", 18, True),
        ("A", 13, False),
        ("A", 11, False),
        ("X", 20, False),
    ],
)
def test_spec_rule(family, generation, expected):
    assert is_in_spec(family, generation) is expected


def test_chip_table_holds_the_published_neural_engine_figures():
    tops = {name: chip.neural_engine_tops for name, chip in CHIPS.items()}
    published = {
        "A14": 11,
        "M1": 11,
        "A15": 15.8,
        "M2": 15.8,
        "A16": 17,
        "M3": 18,
        "A17 Pro": 35,
        "A18": 35,
        "M4": 38,
    }
    assert {name: tops[name] for name in published} == published
    assert tops["M1 Pro"] == tops["M1 Max"] == 11 and tops["M1 Ultra"] == 22 and tops["M2 Ultra"] == 31.6
    assert all(chip.in_spec for chip in CHIPS.values())  # the table lists in-spec chips only
    assert set(CHIPS) >= {f"M{g}{v}" for g in (1, 2, 3, 4) for v in ("", " Pro", " Max")}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Apple M2 Pro", "M2 Pro"),
        ("Apple M1 Ultra", "M1 Ultra"),
        ("Apple M4 Max", "M4 Max"),
        ("A17 Pro", "A17 Pro"),
        ("Apple M5", "M5"),
        ("Intel(R) Core(TM) i7-8850H CPU @ 2.60GHz", None),
        ("VirtualApple @ 2.50GHz", None),
        (None, None),
    ],
)
def test_chip_names(name, expected):
    generation = chip_generation(name)
    assert (generation.name if generation else None) == expected


def test_a_newer_chip_than_the_table_is_in_spec_with_unknown_throughput():
    generation = chip_generation("Apple M5 Pro")
    assert generation.in_spec and generation.neural_engine_tops is None


def test_compute_plan_needs_macos_14_4_and_core_ml():
    run, info = recorded("m1")
    assert compute_plan_gate(detect(run=run, platform_info=info, coreml_runtime=True)) is None
    no_runtime = detect(run=run, platform_info=info, coreml_runtime=False)
    assert "libcoremlpython" in compute_plan_gate(no_runtime)
    assert "no Core ML runtime" in measurement_gate(no_runtime)
    run, info = recorded("macos_14_3_m2_max")
    reason = compute_plan_gate(detect(run=run, platform_info=info, coreml_runtime=True))
    assert "14.4" in reason and "14.3" in reason, reason


def test_timing_on_cpu_and_ne_needs_macos_13():
    """coremltools refuses ComputeUnit.CPU_AND_NE below macOS 13: an in-spec M2 on macOS 12.6 cannot time."""
    run, info = recorded("rosetta_m2")
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    assert device.in_spec  # the chip is in spec; only the OS is too old
    reason = measurement_gate(device)
    assert reason is not None and "macOS 13" in reason and "12.6" in reason, reason
    assert "out-of-spec" not in reason
    run, info = recorded("m1")
    assert measurement_gate(detect(run=run, platform_info=info, coreml_runtime=True)) is None


def test_compute_plan_gate_needs_a_neural_engine():
    """An Intel Mac on macOS 14.4+ with Core ML can read a compute plan, but has no ANE to place ops on."""
    run, info = recorded("intel_mac_sonoma")
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    assert device.os_version_tuple() >= (14, 4) and device.coreml_runtime and not device.has_neural_engine
    reason = compute_plan_gate(device)
    assert reason is not None and reason.startswith("not available here"), reason
    assert "no Neural Engine" in reason and "Xeon" in reason and "14.4" not in reason
    no_runtime = compute_plan_gate(detect(run=run, platform_info=info, coreml_runtime=False))
    assert "no Neural Engine" in no_runtime and "libcoremlpython" in no_runtime  # every reason is given


def test_fingerprint_names_chip_os_build_and_versions():
    import coremltools
    import torch
    import transformers

    run, info = recorded("m3_pro")
    printed = fingerprint(detect(run=run, platform_info=info, coreml_runtime=True))
    assert (
        printed["chip"] == "Apple M3 Pro" and printed["os"] == "macOS 15.1" and printed["os_build"] == "24B83"
    )
    assert printed["python"] == sys.version.split()[0]
    assert printed["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert printed["coremltools"] == coremltools.__version__
    assert printed["transformers"] == transformers.__version__
    json.dumps(printed)
    json.dumps(detect(run=run, platform_info=info, coreml_runtime=True).to_dict())


def test_subprocess_runner():
    assert subprocess_runner([sys.executable, "-c", "print(' 1 ')"]) == "1"
    assert subprocess_runner([sys.executable, "-c", "raise SystemExit(3)"]) is None
    assert subprocess_runner(["/nonexistent/command-for-the-test"]) is None
