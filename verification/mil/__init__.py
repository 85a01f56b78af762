"""Reference executor for Core ML ML Programs (MIL), so converted models can be checked on any platform."""

from .executor import MODES, MILExecutor, OpInfo, UnsupportedOpError
from .inputs import InputError
from .kernels import KERNELS
from .program import ProgramLoadError, load_program

__all__ = [
    "KERNELS",
    "MODES",
    "InputError",
    "MILExecutor",
    "OpInfo",
    "ProgramLoadError",
    "UnsupportedOpError",
    "load_program",
]
