"""One module per command; `__main__` wires them with typer."""
