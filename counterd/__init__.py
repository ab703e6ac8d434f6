"""counterd: people and vehicle line counter for edge boxes."""

__version__ = "0.1.0"
