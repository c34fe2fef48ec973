"""The one exception tree of hyperexport.

    HyperExportError                  every error the engine raises
    ├── PermanentError                retrying cannot help: fix the input first
    │   ├── InvalidInputError         a path, URL, option or file that is wrong
    │   ├── SourceNotFoundError       the VM, disk, file or URL does not exist
    │   ├── AccessDeniedError         credentials refused (401/403, bad keys)
    │   ├── UnsafeArchiveError        an OVA entry escapes its directory
    │   ├── UnsafeImageError          an image that would read or write outside the run
    │   │                             (backing file, data file, extent, href or output path)
    │   ├── ManifestError             an artifact manifest that breaks the v1.0 schema
    │   ├── ProviderDetectionError    the manifest names no provider we know
    │   ├── ConverterNotFoundError    the converter binary is missing or unusable
    │   ├── InsufficientSpaceError    the target filesystem is too small
    │   ├── IntegrityError            bytes that do not match their checksum
    │   ├── ValidationError           the converted disk failed our checks
    │   ├── ConversionTimeoutError    the converter ran past its timeout
    │   ├── ConverterFailedError      the converter exited non-zero on its own
    │   ├── ResourceLimitError        a bounded subprocess ran past its time or memory limit
    │   └── CancelledError            the user interrupted the run (SIGINT/SIGTERM)
    └── TransientError                may heal by itself: retry with backoff
        ├── TransferError             a connection reset, timeout, 5xx or 429
        └── ConversionError           the converter was killed by a signal we did not send, or its
                                      appliance did not start even under TCG (it may heal)

Every message says what went wrong and what to do about it. Secrets never
appear in a message: providers translate SDK errors before raising. A message
does not name a CLI flag: an error about one parameter carries ``field``, its
dotted path in ``MigrationRequest`` (``source.source``, ``export.output_dir``),
and the CLI and the flow each name it in the form their user typed it.
"""

from __future__ import annotations


class HyperExportError(Exception):
    """Base of every error hyperexport raises."""

    retryable: bool = False

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


class PermanentError(HyperExportError):
    """Retrying will not help; the input, credentials or host must change."""

    retryable = False


class TransientError(HyperExportError):
    """The same call may succeed later."""

    retryable = True


class InvalidInputError(PermanentError):
    pass


class SourceNotFoundError(PermanentError):
    pass


class AccessDeniedError(PermanentError):
    pass


class UnsafeArchiveError(PermanentError):
    pass


class UnsafeImageError(PermanentError):
    """The image (or the request) would make us read or write a file outside the run's directories."""


class ManifestError(PermanentError):
    pass


class ProviderDetectionError(PermanentError):
    pass


class ConverterNotFoundError(PermanentError):
    pass


class InsufficientSpaceError(PermanentError):
    pass


class IntegrityError(PermanentError):
    pass


class ValidationError(PermanentError):
    pass


class TransferError(TransientError):
    pass


class ConversionError(TransientError):
    pass


class ConversionTimeoutError(PermanentError):
    """The converter ran past its timeout: the same timeout would cut it off again."""


class ConverterFailedError(PermanentError):
    """The converter ran and exited non-zero: the same input would fail the same way, so no retry."""


class ResourceLimitError(PermanentError):
    """A bounded subprocess (qemu-img, a hash) ran past its time, CPU or memory limit: the input is hostile
    or far larger than declared, and the same limit would cut it off again."""


class CancelledError(PermanentError):
    """The run was interrupted by SIGINT or SIGTERM; partial downloads stay resumable."""
