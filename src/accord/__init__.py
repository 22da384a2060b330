"""Accord: the central customer management platform."""

__version__ = "0.1.0"
