"""The GSM emulator: a real Secret Manager gRPC server for development and tests.

Production code never imports this package (it is a test and dev adapter); ``omni-secrets dev``
and ``omni-secrets emulator`` start it, and tests drive it through its Python API or, from
another process, through the HTTP control interface documented in
:mod:`omni_secrets.emulator.control`.
"""

from omni_secrets.emulator.faults import RPC_NAMES, CallRecord
from omni_secrets.emulator.seed import Seed, SeedError, load_seed_file, parse_seed
from omni_secrets.emulator.server import GsmEmulator
from omni_secrets.emulator.state import RpcFault

__all__ = [
    "RPC_NAMES",
    "CallRecord",
    "GsmEmulator",
    "RpcFault",
    "Seed",
    "SeedError",
    "load_seed_file",
    "parse_seed",
]
