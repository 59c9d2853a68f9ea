"""Command-line commands: one module per command, each exposing `<command>_cli` (wired in __main__.py)."""
