"""CLI subcommands; see gateway.cli."""
