"""The app's screens: one per mode, plus help, settings and a read-only session view."""

from __future__ import annotations

from .brainstorm import BrainstormScreen
from .chat import ChatScreen
from .compare import CompareScreen
from .models import ModelsScreen
from .sessions import SessionsScreen

SCREEN_CLASSES = {
    "chat": ChatScreen,
    "brainstorm": BrainstormScreen,
    "compare": CompareScreen,
    "sessions": SessionsScreen,
    "models": ModelsScreen,
}

__all__ = [
    "SCREEN_CLASSES",
    "BrainstormScreen",
    "ChatScreen",
    "CompareScreen",
    "ModelsScreen",
    "SessionsScreen",
]
