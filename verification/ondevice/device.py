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

from .chips import ChipGeneration, chip_generation, ios_device_chip


class NotAvailableHere(RuntimeError):
    """A measurement needs a runtime this machine does not have (the message says which and why)."""


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
