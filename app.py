"""Entry point for ``flask --app app``: builds the app, or stops with a clear configuration error."""

import sys

from flask import Flask

from tenant_config import ConfigError, create_app

# Flask's own options that take a value, skipped when finding the command name.
_FLASK_OPTIONS_WITH_VALUE = {"--app", "-A", "--env-file", "-e"}

# Commands that skip the check that a configured master key unwraps the stored
# data keys. They never decrypt, and operators use them to find out which key a
# database needs.
_COMMANDS_WITHOUT_KEY_CHECK = {("keys", "generate"), ("keys", "status")}
_GROUPS_WITHOUT_KEY_CHECK = {"db"}


def _command_words(argv: list[str]) -> tuple[str, ...]:
    """Return the group and command names of ``flask [options] GROUP COMMAND ...``, or fewer words."""
    words: list[str] = []
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in _FLASK_OPTIONS_WITH_VALUE:
            next(arguments, None)
        elif not argument.startswith("-"):
            words.append(argument)
            if len(words) == 2:
                break
    return tuple(words)


def _checks_stored_keys(command: tuple[str, ...]) -> bool:
    if command in _COMMANDS_WITHOUT_KEY_CHECK:
        return False
    return not (command and command[0] in _GROUPS_WITHOUT_KEY_CHECK)


def _key_tool_app() -> Flask:
    from tenant_config.cli.keys import keys_group

    tool = Flask("tenant_config")
    tool.cli.add_command(keys_group)
    return tool


command = _command_words(sys.argv)
try:
    app = create_app(check_stored_keys=_checks_stored_keys(command))
except ConfigError as error:
    # `keys generate` must work before any key is configured.
    if command != ("keys", "generate"):
        sys.exit(f"Configuration error: {error}")
    app = _key_tool_app()
