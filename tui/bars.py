"""The screen's frame: the status line on top and the key bar at the bottom.

- StatusBar: mode, pair, router and gamma, % base tokens and tokens/s of the last answer.
- KeyBar: every key of the screen's actions, wrapped onto as many lines as it needs.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static


class StatusBar(Widget):
    """What is loaded, how it is dialled, how the last answer went. Parts are joined by
    ' · ' and wrap between parts, never inside one ('44 tok/s' stays whole)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.parts: list[Text] = []

    def show(self, parts: list[Text]) -> None:
        self.parts = list(parts)
        self.refresh(layout=True)

    def render(self) -> Text:
        return Text("\n").join(self._lines(self.size.width))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def _lines(self, width: int) -> list[Text]:
        lines = [Text()]
        for part in self.parts:
            joint = " · " if lines[-1].cell_len and not lines[-1].plain.endswith(" ") else ""
            if lines[-1].cell_len and lines[-1].cell_len + len(joint) + part.cell_len > width:
                lines.append(Text(" "))
                joint = ""
            lines[-1].append(joint)
            lines[-1].append_text(part)
        return lines


class KeyBar(Static):
    """The footer: the key of every action shown on this screen, wrapped to fit."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        self.refresh(layout=True)

    def on_resize(self) -> None:
        self.refresh(layout=True)

    def items(self) -> list[tuple[str, str, bool]]:
        """(keys, description, enabled) per shown action: the focused widget's first,
        then the screen's, then the app's, each in declared order; bindings that share a
        group (F7/F8 for gamma) become one item."""
        chosen = {}
        for node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in chosen:
                chosen[binding.action] = (_rank(node, self.screen, binding), node, binding, enabled)
        items: dict[str, list] = {}
        for _, _node, binding, enabled in sorted(chosen.values(), key=lambda c: c[0]):
            key = self.app.get_key_display(binding)
            name = binding.group.description if binding.group else binding.description
            if name in items:
                items[name][0] += f"/{key}"
            else:
                items[name] = [key, enabled]
        return [(key, name, enabled) for name, (key, enabled) in items.items()]

    def render(self) -> Text:
        return Text("\n").join(self._lines(self.size.width))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def _lines(self, width: int) -> list[Text]:
        lines: list[Text] = [Text()]
        for key, description, enabled in self.items():
            item = Text.assemble((key, "bold reverse"), f" {description}  ")
            if not enabled:
                item.stylize("dim")
            if lines[-1].cell_len and lines[-1].cell_len + item.cell_len - 2 > max(width, 20):
                lines.append(Text())
            lines[-1].append_text(item)
        return [line.rstrip() or line for line in lines]


def _rank(node, screen, binding) -> tuple[int, int]:
    """Sort key: focused widget (0), screen (1), app (2); then declared order."""
    level = 1 if node is screen else 2 if node is screen.app else 0
    declared = [b.action for b in getattr(node, "BINDINGS", []) if isinstance(b, Binding)]
    return level, declared.index(binding.action) if binding.action in declared else 99
