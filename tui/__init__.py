"""The terminal app behind `baco chat`: see tui.app.BacoApp. Nothing is imported here."""
