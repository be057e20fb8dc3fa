"""The ``url_for`` of the templates, which builds each link path once per process.

Flask's ``url_for`` took about 9 µs per link on the machine of
docs/benchmarks.md, and the settings page has fourteen links: about 6% of
the page's time in-process. Within one process, the path of a link depends only on
its endpoint, its values and the request's script root, because the app
sets no URL defaults, subdomains or server name. So the templates get a
``url_for`` that remembers the paths it built. Anything else, such as an
external URL, an anchor, a relative endpoint or a value that is not a
string, goes to Flask's ``url_for`` every time.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Flask, has_request_context, request

# Distinct links remembered per process: about fifteen per tenant page.
MAX_LINKS = 4096


def install(app: Flask) -> None:
    """Give the app's templates the remembering ``url_for``."""
    build = app.url_for

    @lru_cache(maxsize=MAX_LINKS)
    def path_of(script_root: str, endpoint: str, values: tuple[tuple[str, str], ...]) -> str:
        return build(endpoint, **dict(values))

    def url_for(endpoint: str, **values) -> str:
        if not _is_plain_link(endpoint, values) or not has_request_context():
            return build(endpoint, **values)
        return path_of(request.script_root, endpoint, tuple(sorted(values.items())))

    app.jinja_env.globals["url_for"] = url_for


def _is_plain_link(endpoint: str, values: dict) -> bool:
    """Return True for a link with an absolute endpoint and only string values, the ones whose path can be kept."""
    if endpoint.startswith("."):
        return False
    return all(not name.startswith("_") and type(value) is str for name, value in values.items())
