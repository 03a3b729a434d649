"""Constants a caller may need without loading the client (the settings read the default origin; the MCP tasks
extension checks task ids at start-up without the request models)."""

__all__ = ["DEFAULT_BASE_URL", "ID_PATTERN", "TASK_ID_PATTERN"]

DEFAULT_BASE_URL = "https://api.ccapi.ai"
ID_PATTERN = r"^[\w.:-]{1,128}$"  # word characters, dot, colon, dash: never a path or a space
TASK_ID_PATTERN = r"^task_[A-Za-z0-9]{1,64}$"
