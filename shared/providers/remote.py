"""What every provider that calls a remote API shares: reading the remote's own words from an error
answer, and turning a status into a ProviderFailed (so a chain hands over to its next provider).
Apart from any one provider, so that using it loads no other provider (segment ships no background
provider)."""

from __future__ import annotations

import json

import httpx

from shared.errors import ProviderFailed


def error_detail(response: httpx.Response) -> str:
    """The remote's own words from a JSON error body ({"errors": [{"title": ...}]} or {"detail"/"error": ...})."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("title") or errors[0].get("detail") or "")
        for key in ("detail", "error", "message"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return ""


def status_failure(response: httpx.Response, who: str) -> ProviderFailed:
    detail = error_detail(response)
    if response.status_code == 429:
        reason = f"{who} is rate-limiting us (429)"
    elif response.status_code >= 500:
        reason = f"{who} answered {response.status_code}"
    else:  # 400 no foreground, 402 no credits, 403 bad key: another provider may still serve
        reason = f"{who} refused the photo ({response.status_code})"
    return ProviderFailed(f"{reason}: {detail}" if detail else reason)
