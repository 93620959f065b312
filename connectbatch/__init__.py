"""ConnectBatch: batch file ingestion for performance-marketing data."""

from connectbatch import settings as _settings

_settings.quiet_blas()  # before anything of ours imports numpy

__version__ = "0.1.0"
