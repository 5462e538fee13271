"""Who is not a person: link previewers, crawlers and scripted clients (shared by delivery and analytics)."""

from __future__ import annotations

import re

BOT_PATTERN = re.compile(
    r"bot\b|crawler|spider|slurp|preview|facebookexternalhit|embedly|whatsapp|skypeuripreview|"
    r"microsoft office|teams/|discord|slack|telegram|linkedin|pinterest|vkshare|redditbot|"
    r"curl/|wget/|python-requests|go-http-client|okhttp",
    re.IGNORECASE,
)


def is_bot(user_agent: str | None) -> bool:
    """Chat unfurlers, crawlers, headless and scripted clients; an empty user agent counts as one."""
    return not user_agent or bool(BOT_PATTERN.search(user_agent))
