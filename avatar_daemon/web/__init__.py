"""The daemon's HTTP interface: the JSON API, the status WebSocket, metrics and plugin routes."""

from .common import Route, WebHost
from .server import HttpServer

__all__ = ["HttpServer", "Route", "WebHost"]
