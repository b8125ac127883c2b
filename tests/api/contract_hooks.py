"""schemathesis hooks for the API contract test (loaded through ``SCHEMATHESIS_HOOKS``).

One rule of the API cannot be written in JSON Schema: a threshold's low must not
exceed its high (``PUT /api/devices/{id}/config`` answers 422). Generated threshold
pairs are put in order, so that a schema-valid request stays valid for the API;
every other check keeps the generated data as drawn.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _ordered(pair: Any) -> Any:
    if (isinstance(pair, list) and len(pair) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in pair)):
        return sorted(pair)
    return pair


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("thresholds"), dict):
        body = {**body, "thresholds": {k: _ordered(v) for k, v in body["thresholds"].items()}}
    return body
