"""One APIRouter per area of the API."""

__all__: list[str] = []  # modules only: import what you need from each
