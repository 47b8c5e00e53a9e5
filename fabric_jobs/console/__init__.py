"""The operators' web console: a static page and a small JSON and server-sent-events API over the AdminService."""

from fabric_jobs.console.app import ConsoleSettings, create_console_app

__all__ = ["ConsoleSettings", "create_console_app"]
