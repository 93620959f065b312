"""ConnectBatch: batch file ingestion for performance-marketing data."""

__version__ = "0.1.0"
