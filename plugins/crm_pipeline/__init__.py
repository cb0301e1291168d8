"""CRM data pipeline for multi-platform online sellers."""

__version__ = "0.1.0"
