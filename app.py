"""Entry point for ``flask --app app``: builds the app, or stops with a clear configuration error."""

import sys

from flask import Flask

from tenant_config import ConfigError, create_app


def _generating_a_key(argv: list[str]) -> bool:
    """Tell whether this is ``flask ... keys generate``, which must work before any key exists."""
    return any(argv[i:i + 2] == ["keys", "generate"] for i in range(len(argv)))


def _key_tool_app() -> Flask:
    from tenant_config.cli.keys import keys_group

    tool = Flask("tenant_config")
    tool.cli.add_command(keys_group)
    return tool


try:
    app = create_app()
except ConfigError as error:
    if not _generating_a_key(sys.argv):
        sys.exit(f"Configuration error: {error}")
    app = _key_tool_app()
