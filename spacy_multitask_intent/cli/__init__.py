"""Command-line modules, one per command (wired in __main__.py)."""
