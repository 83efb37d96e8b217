"""Bolt listeners, one module per kind; each listener acks first, then works."""

from . import actions, commands, views


def register_listeners(app, command: str) -> None:
    commands.register(app, command)
    views.register(app)
    actions.register(app)
