"""Recorded answers of macOS system queries (sw_vers, sysctl, system_profiler) for detection tests.

Each device is a ``PlatformInfo`` and a table argv -> stdout; a command missing from the table failed
(as ``sysctl`` does for an unknown oid on Intel Macs).
"""

from verification.ondevice.device import PlatformInfo

SW_VERS_VERSION = ("sw_vers", "-productVersion")
SW_VERS_BUILD = ("sw_vers", "-buildVersion")
ARM64 = ("sysctl", "-n", "hw.optional.arm64")
TRANSLATED = ("sysctl", "-n", "sysctl.proc_translated")
BRAND = ("sysctl", "-n", "machdep.cpu.brand_string")
PROFILER = ("system_profiler", "SPHardwareDataType")

M2_PROFILER_REPORT = """Hardware:

    Hardware Overview:

      Model Name: MacBook Air
      Model Identifier: Mac14,2
      Chip: Apple M2
      Total Number of Cores: 8 (4 performance and 4 efficiency)
      Memory: 16 GB
"""

DEVICES = {
    "m1": (
        PlatformInfo("Darwin", "23.5.0", "arm64", "14.5"),
        {SW_VERS_VERSION: "14.5", SW_VERS_BUILD: "23F79", ARM64: "1", TRANSLATED: "0", BRAND: "Apple M1"},
    ),
    "m3_pro": (
        PlatformInfo("Darwin", "24.1.0", "arm64", "15.1"),
        {SW_VERS_VERSION: "15.1", SW_VERS_BUILD: "24B83", ARM64: "1", TRANSLATED: "0", BRAND: "Apple M3 Pro"},
    ),
    # Intel Mac: hw.optional.arm64 is an unknown oid (the command fails).
    "intel_mac": (
        PlatformInfo("Darwin", "22.6.0", "x86_64", "13.6.1"),
        {
            SW_VERS_VERSION: "13.6.1",
            SW_VERS_BUILD: "22G313",
            TRANSLATED: "0",
            BRAND: "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz",
        },
    ),
    # x86_64 Python under Rosetta on an M2: platform.machine() says x86_64, the brand string is virtual.
    "rosetta_m2": (
        PlatformInfo("Darwin", "21.6.0", "x86_64", "12.6"),
        {
            SW_VERS_VERSION: "12.6",
            SW_VERS_BUILD: "21G115",
            ARM64: "1",
            TRANSLATED: "1",
            BRAND: "VirtualApple @ 2.50GHz processor",
            PROFILER: M2_PROFILER_REPORT,
        },
    ),
    # Intel Mac Pro (2019) on macOS 14.5: new enough for compute plans, but no Neural Engine. Composed from
    # the documented answers (14.5 is build 23F79; hw.optional.arm64 fails on Intel as above).
    "intel_mac_sonoma": (
        PlatformInfo("Darwin", "23.5.0", "x86_64", "14.5"),
        {
            SW_VERS_VERSION: "14.5",
            SW_VERS_BUILD: "23F79",
            TRANSLATED: "0",
            BRAND: "Intel(R) Xeon(R) W-3245 CPU @ 3.20GHz",
        },
    ),
    "macos_14_3_m2_max": (
        PlatformInfo("Darwin", "23.3.0", "arm64", "14.3"),
        {SW_VERS_VERSION: "14.3", SW_VERS_BUILD: "23D56", ARM64: "1", TRANSLATED: "0", BRAND: "Apple M2 Max"},
    ),
}


class RecordedRunner:
    """Replays one device's answers and records which commands were asked."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, argv):
        self.asked.append(tuple(argv))
        return self.answers.get(tuple(argv))


def recorded(device: str):
    info, answers = DEVICES[device]
    return RecordedRunner(answers), info
