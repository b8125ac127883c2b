"""CLI subcommands; see gateway.cli."""

__all__: list[str] = []  # modules only: import what you need from each
