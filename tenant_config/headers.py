"""Security headers added to every response."""

from flask import Response, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# Each is added unless the view set its own.
DEFAULT_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def add_security_headers(response: Response) -> Response:
    # One pass over the names, because Werkzeug's Headers.setdefault raises and catches an exception for each absent header.
    present = {name.lower() for name in response.headers.keys()}
    for name, value in DEFAULT_HEADERS:
        if name.lower() not in present:
            response.headers.add(name, value)

    if not request.path.startswith("/static/"):
        # Pages show who changed which secret, so no browser or proxy may keep them.
        response.headers["Cache-Control"] = "no-store"
    return response
