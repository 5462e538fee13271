"""Receive a multipart upload straight into the blob store, never holding the file in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from studyshelf.core.errors import Invalid, TooLarge
from studyshelf.library.sniff import sniff_content_type
from studyshelf.storage import BlobStore, BlobWriter, StoredBlob
from studyshelf.web.body_limit import lift_body_limit

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

T = TypeVar("T")
FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
MULTIPART_OVERHEAD = 64 * 1024


@dataclass
class ReceivedFile:
    """An upload whose bytes are durable but not yet published under their digest."""

    filename: str
    writer: BlobWriter
    content_type: str
    fields: dict[str, str]

    @property
    def blob(self) -> StoredBlob:
        return StoredBlob(sha256=self.writer.sha256, size=self.writer.size)

    def publish_with(self, record: Callable[[StoredBlob], T]) -> T:
        """Run `record` (which writes the rows in a transaction of its own) and publish the bytes
        just before that transaction commits; if anything fails, the bytes are thrown away."""
        try:
            return record(self.blob)
        except BaseException:
            self.writer.abort()
            raise


@dataclass
class _PartState:
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    field_name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _Receiver:
    """Multipart callbacks: the `file` part goes to a BlobWriter, small fields to a dict."""

    def __init__(self, writer: BlobWriter, max_bytes: int) -> None:
        self.writer = writer
        self.max_bytes = max_bytes
        self.part = _PartState()
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self.file_parts = 0
        self.ended = False

    def on_part_begin(self) -> None:
        self.part = _PartState()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.part.header_field.lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self.part.header_value))
            self.part.field_name = options.get(b"name", b"").decode("utf-8", "replace")
            raw_filename = options.get(b"filename")
            # Browsers escape a quote in a file name as %22 (WHATWG multipart/form-data encoding).
            filename = raw_filename.decode("utf-8", "replace").replace("%22", '"') if raw_filename is not None else None
            self.part.filename = filename
        self.part.header_field.clear()
        self.part.header_value.clear()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.field_name == FILE_FIELD and self.part.filename is not None:
            if self.file_parts > 1:
                raise Invalid("Send one file per request.")
            self.writer.write(data[start:end])
            if self.writer.size > self.max_bytes:
                raise TooLarge(f"The file is larger than the limit of {self.max_bytes} bytes.")
        else:
            self.part.value += data[start:end]
            if len(self.part.value) > MAX_FIELD_BYTES:
                raise Invalid(f"The form field {self.part.field_name!r} is too long.")

    def on_headers_finished(self) -> None:
        if self.part.field_name == FILE_FIELD and self.part.filename is not None:
            self.file_parts += 1
            self.filename = self.part.filename

    def on_end(self) -> None:
        self.ended = True

    def on_part_end(self) -> None:
        if not (self.part.field_name == FILE_FIELD and self.part.filename is not None) and self.part.field_name:
            self.fields[self.part.field_name] = self.part.value.decode("utf-8", "replace")


async def receive_upload(request: Request, blobs: BlobStore, *, max_bytes: int) -> ReceivedFile:
    """Stream the request's `file` part into a durable temporary blob; on any failure nothing stays behind."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise Invalid("Send the file as multipart/form-data with a field named 'file'.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
        raise TooLarge(f"The file is larger than the limit of {max_bytes} bytes.")
    lift_body_limit(request)  # the app's cap is for JSON and forms; this stream has max_bytes
    writer = blobs.writer()
    receiver = _Receiver(writer, max_bytes)
    parser = MultipartParser(options[b"boundary"], callbacks=_callbacks(receiver))
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if not receiver.ended:
            raise Invalid("The multipart body ended before its closing boundary (was the upload cut short?).")
        if receiver.filename is None or receiver.file_parts != 1:
            raise Invalid("The form has no file in a field named 'file'.")
        await anyio.to_thread.run_sync(writer.sync)
    except MultipartParseError as exc:
        writer.abort()
        raise Invalid(f"The multipart body is malformed: {exc}") from exc
    except (ClientDisconnect, Exception):
        writer.abort()
        raise
    except BaseException:  # cancellation when the client goes away
        writer.abort()
        raise
    content_type_sniffed = sniff_content_type(writer.head, receiver.filename)
    return ReceivedFile(
        filename=receiver.filename, writer=writer, content_type=content_type_sniffed, fields=receiver.fields
    )


def _callbacks(receiver: _Receiver) -> MultipartCallbacks:
    return {
        "on_part_begin": receiver.on_part_begin,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
        "on_end": receiver.on_end,
    }
