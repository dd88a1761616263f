"""The console's form posts, read with a cap, a deadline and once per request.

Starlette's ``request.form()`` reads any size (1,000 fields of up to a megabyte each), before the
console knows who is asking: a 190 MB post to a sign-in-only page took the receiver from 130 to
300 MB. A client that hung up mid-body raised ``ClientDisconnect`` out of it, a 500 with a
traceback. Every other body the receiver reads is capped (receiver/body.py); the console's forms
are a few fields of text, so :data:`FORM_MAX` is far beyond what a person types.
"""

from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request

from receiver.body import BodyTooLarge, BodyTooSlow, read_capped
from receiver.console.refused import Refused

__all__ = ["FORM_FIELDS_MAX", "FORM_MAX", "read_form"]

#: The largest form the console reads (its largest field, a note or a comment, is 2,000 characters).
FORM_MAX = 64 * 1024
#: The most fields one form may carry (the console's have fewer than ten).
FORM_FIELDS_MAX = 100
_URLENCODED = "application/x-www-form-urlencoded"
#: How long a form may take to arrive in full.
FORM_SECONDS = 10.0


async def read_form(request: Request) -> FormData:
    """The request's form (URL-encoded, as the console's pages send it), read once: the CSRF
    check and the page's handler share it. A form over :data:`FORM_MAX` is 413, a slow one 408,
    one cut off by its sender 400, too many fields 413, another media type (multipart) 415, as
    :class:`Refused`."""
    kept = getattr(request.state, "console_form", None)
    if isinstance(kept, FormData):
        return kept
    media = request.headers.get("content-type", _URLENCODED).split(";")[0].strip().lower()
    if media != _URLENCODED:
        raise Refused(415, "unsupported_media_type", f"the console's forms are {_URLENCODED}")
    try:
        raw = await read_capped(request, FORM_MAX, FORM_SECONDS)
    except BodyTooLarge:
        raise Refused(413, "too_large", f"the form is over {FORM_MAX} bytes") from None
    except BodyTooSlow:
        raise Refused(408, "body_timeout", "the form did not arrive in time") from None
    except ClientDisconnect:
        raise Refused(400, "client_disconnected", "the form was not received in full") from None
    try:
        fields: list[tuple[str, str | UploadFile]] = []
        fields += parse_qsl(
            raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX
        )
    except ValueError:
        raise Refused(413, "too_many_fields", f"the form has over {FORM_FIELDS_MAX} fields") from None
    form = FormData(fields)
    request.state.console_form = form
    return form
