"""Flask CLI commands for operators: ``flask --app app GROUP COMMAND``."""

from flask import Flask

from .demo import demo_command
from .devsinks import dev_sinks_command
from .jobs import jobs_group
from .keys import keys_group
from .tenants import tenants_group
from .users import users_group
from .values import config_group


def register_commands(app: Flask) -> None:
    for command in (
        keys_group, tenants_group, users_group, config_group, jobs_group, demo_command, dev_sinks_command,
    ):
        app.cli.add_command(command)
