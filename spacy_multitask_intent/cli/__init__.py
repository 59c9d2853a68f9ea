"""One module per command; each exposes a typer function <command>_cli."""
