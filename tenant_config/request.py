"""The app's request class: form bodies that are not valid UTF-8 are rejected, not silently rewritten."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Request as FlaskRequest
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser


class StrictFormDataParser(FormDataParser):
    """Parse URL-encoded forms strictly.

    Werkzeug re-escapes bytes that are not UTF-8 (``%E4`` stays the text
    ``%E4``), so a password typed in another encoding would be stored changed.
    """

    def _parse_urlencoded(self, stream, mimetype, content_length, options):
        body = stream.read()
        try:
            items = parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise BadRequest("The form contains text that is not valid UTF-8.") from None
        return stream, self.cls(items), self.cls()


class Request(FlaskRequest):
    form_data_parser_class = StrictFormDataParser
