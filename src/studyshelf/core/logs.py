"""Logging: structlog renders every record (ours and the libraries' stdlib ones) as one JSON line, or for a person
at a terminal as a readable line; the request's id and route are bound per request (contextvars).

Personal data stays out unless a setting asks for it: fields that name a person or a client are dropped, and
e-mail and IP addresses inside any message or field are replaced, so a log shipped elsewhere holds none.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]
PERSONAL_FIELDS = frozenset({"client_ip", "ip", "remote_addr", "user_agent", "email", "learner", "learner_id"})
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6_CANDIDATE = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:])")
# Fields whose values StudyShelf itself makes (ids, templates, times): never personal, so not scanned.
OWN_FIELDS = frozenset({"timestamp", "level", "logger", "request_id", "route", "method", "status", "org_id"})
_HANDLER_NAME = "studyshelf"
# httpx logs every request's full URL at INFO: a webhook's URL is its secret (Slack, Teams), a JWKS or discovery URL
# may carry a token. Our own lines name what they reach without the secret part.
URL_LOGGERS = ("httpx", "httpcore")


def _replace_addresses(text: str) -> str:
    def ip_or_text(match: re.Match[str]) -> str:
        try:
            ipaddress.ip_address(match.group(0).split("%", 1)[0])
        except ValueError:
            return match.group(0)  # a time (12:30:05), a version (1.2.3.400): not an address
        return "[ip]"

    if "@" in text:
        text = EMAIL.sub("[email]", text)
    if "." in text:
        text = IPV4.sub(ip_or_text, text)
    if ":" in text:
        text = IPV6_CANDIDATE.sub(ip_or_text, text)
    return text


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return _replace_addresses(value)
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    return value


def drop_personal_data(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Remove fields that identify a person or client, and replace e-mail and IP addresses in every other one."""
    for name in PERSONAL_FIELDS & event_dict.keys():
        del event_dict[name]
    for name, value in event_dict.items():
        if name not in OWN_FIELDS and not isinstance(value, int | float | bool | type(None)):
            event_dict[name] = _scrub(value if isinstance(value, str | list | tuple | Mapping) else str(value))
    return event_dict


def _renderer(log_format: LogFormat, stream: TextIO) -> Processor:
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer(serializer=_json)


def _json(event_dict: object, **_options: object) -> str:
    return orjson.dumps(event_dict, default=str).decode()


def configure_logging(
    *,
    log_format: LogFormat = "auto",
    personal_data: bool = False,
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record, through the root logger, to `stream` (stderr) as structlog renders it; return the handler.

    Called once when a process starts (serve's workers, `studyshelf worker`, the CLI). Calling it again replaces
    the handler it installed before, so a test can capture a run."""
    stream = stream or sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
    ]
    if not personal_data:
        rendering.append(drop_personal_data)  # after format_exc_info: a traceback's messages are scrubbed too
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=[*rendering, _renderer(log_format, stream)]
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in URL_LOGGERS:
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


def bind_request(**fields: object) -> Callable[[], None]:
    """Bind fields into every log line of the current request; return what unbinds them."""
    tokens = structlog.contextvars.bind_contextvars(**fields)
    return lambda: structlog.contextvars.reset_contextvars(**tokens)
