"""Fast JSON responses (orjson)."""

from typing import Any

import orjson
from starlette.responses import Response


class JSON(Response):
    """JSON via orjson: numpy scalars, datetimes and non-string keys handled."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_fallback, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def _fallback(o: Any) -> str:
    if isinstance(o, (bytes, bytearray)):
        return o[:200].decode("utf-8", "replace")
    return str(o)
