"""One module per command, each exposing a typer function `<command>_cli`; `__main__` wires them."""
