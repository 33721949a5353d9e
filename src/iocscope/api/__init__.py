"""The HTTP API of service mode."""

from iocscope.api.app import create_app

__all__ = ["create_app"]
