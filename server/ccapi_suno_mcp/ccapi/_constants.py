"""Constants a caller may need without loading the client (the settings read the default origin)."""

__all__ = ["DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://api.ccapi.ai"
