"""The API's JSON parser: the body's size, depth and numbers checked as it is parsed."""

import sys

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from webapp.bodylimit import body_limit, declared_length
from webapp.core import limits
from webapp.core.errors import TooLarge


class JSONParser(parsers.JSONParser):
    """DRF's parser reads the stream whole and recurses without bound; this one reads at
    most the limit (a chunked body has no declared length) and refuses deep or non-finite
    JSON with a 400 (webapp/core/limits.py)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = body_limit()
        if limit is None:  # Django's "no limit"
            limit = sys.maxsize - 1
        request = (parser_context or {}).get("request")
        if request is not None and declared_length(request.META) > limit:
            raise TooLarge(f"request body exceeds {limit} bytes")
        raw = stream.read(limit + 1)
        try:
            return limits.load_json(raw, limit)
        except limits.BodyError as error:
            raise ParseError(error.message) from None
