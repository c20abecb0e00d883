"""Configuration: the Settings object, Serve config and training TOML files."""

from config.settings import Backend, ConfigError, Settings, load_settings

__all__ = ["Backend", "ConfigError", "Settings", "load_settings"]
