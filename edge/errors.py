"""The one exception tree of edgewatch.

    EdgewatchError                 anything edgewatch reports to a person
    ├── ConfigError                 bad config file, key or value        (CLI exit 2)
    ├── UsageError                  bad command-line arguments           (CLI exit 2)
    ├── BundleError                 missing, tampered or unsupported model bundle
    ├── InputError                  unreadable image, recording or sensor file
    ├── ExportError                 a checkpoint could not be exported or failed its gate
    ├── SourceError                 a camera could not deliver a frame
    ├── SensorError                 a sensor could not deliver a reading
    ├── CloudError                  the cloud model could not be asked or answered badly
    └── StorageError                history/outbox/profile could not be written (disk full, ...)

Errors from libraries underneath are translated at the boundary that calls them,
with ``raise ... from exc`` so the cause stays in debug logs.
"""

from __future__ import annotations


class EdgewatchError(Exception):
    """Base class: the message is one sentence a person can act on."""

    exit_code = 1


class ConfigError(EdgewatchError):
    exit_code = 2


class UsageError(EdgewatchError):
    exit_code = 2


class BundleError(EdgewatchError):
    pass


class InputError(EdgewatchError):
    pass


class ExportError(EdgewatchError):
    pass


class SourceError(EdgewatchError):
    pass


class SensorError(EdgewatchError):
    pass


class CloudError(EdgewatchError):
    pass


class StorageError(EdgewatchError):
    pass


class ActionRefused(EdgewatchError):
    """A person's action that does not apply now (nothing to acknowledge, not in maintenance...)."""
