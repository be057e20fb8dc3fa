"""The HTTP floor: a bare Flask app whose one endpoint renders a static template, served like the product.

Run as ``gunicorn bench.floor_app:app``. It has no database, session,
login, CSRF or security headers, so it shows what gunicorn, Werkzeug, Flask
and Jinja cost per request on this machine before the product does any work.
"""

from pathlib import Path

from flask import Flask, render_template

app = Flask(__name__, template_folder=str(Path(__file__).resolve().parent / "templates"))


@app.get("/")
def page():
    """Render the static page."""
    return render_template("floor.html")
