"""Error pages. They show a short message and never the exception or a value."""

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError

logger = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Only the tenant's admins can do this."),
    404: ("Not found", "There is no such page."),
    405: ("Method not allowed", "This page does not accept that kind of request."),
    413: ("Request too large", "The form was larger than this site accepts."),
    429: ("Too many requests", "Too many attempts in a short time. Wait a minute and try again."),
    500: ("Server error", "Something went wrong on our side. The error was logged; please try again."),
}


def _page(status: int, message: str | None = None):
    title, default = MESSAGES[status]
    return render_template("error.html", title=title, message=message or default, status=status), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        logger.info("Rejected %s %s: %s", request.method, request.path, error.description)
        return _page(400, "The form has expired or did not come from this site. Reload the page and try again.")

    for status in (400, 403, 404, 405, 413, 429):
        app.register_error_handler(status, lambda error, status=status: _page(status))

    @app.errorhandler(500)
    def server_error(error):
        # Flask has already logged the exception with its traceback.
        return _page(500)
