"""baco-local: base-aligned model collaboration (BACo) on local GGUF models.

Import what you need; nothing is loaded at import time:

    from baco_local import Pair, GenerationSettings
"""

from .api import Pair
from .errors import BacoError
from .events import GenerationStats, Result, TokenEvent
from .prompt_formats import Message
from .routers import ROUTERS
from .settings import GenerationSettings, LoadSettings

__all__ = [
    "BacoError",
    "GenerationSettings",
    "GenerationStats",
    "LoadSettings",
    "Message",
    "Pair",
    "Result",
    "ROUTERS",
    "TokenEvent",
]

__version__ = "0.1.0"
