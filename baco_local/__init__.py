"""baco-local: base-aligned model collaboration (BACo) on local GGUF models.

Import what you need; nothing is loaded at import time:

    from baco_local import Pair, GenerationSettings
"""

from .api import Pair
from .core.events import GenerationStats, Result, TokenEvent
from .core.routers import ROUTERS
from .core.settings import GenerationSettings, LoadSettings
from .decoding.requests_many import Finished, Request
from .errors import BacoError
from .pairs.prompt_formats import Message

__all__ = [
    "BacoError",
    "Finished",
    "GenerationSettings",
    "GenerationStats",
    "LoadSettings",
    "Message",
    "Pair",
    "Request",
    "Result",
    "ROUTERS",
    "TokenEvent",
]

__version__ = "0.1.0"
