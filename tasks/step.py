"""What every task does with the engine step it wraps: failures in the user's terms, interruptions as Cancelled.

An engine error about one parameter carries ``field`` (``source.source``);
the task appends `` (request field source.source)`` for runs started from the
UI or a deployment. The command line runs the same flows in its own process
and installs its flag names instead (``--vm``).

After SIGINT/SIGTERM of the command line (``cancel.request_cancel``), the
step's failure, whatever it is (a converter killed along with its process
group fails like a crash), ends the task Cancelled, with no traceback.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prefect.states import Cancelled

from hyperexport import cancel
from hyperexport.errors import HyperExportError
from hyperexport.validate_input import name_field, request_field

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = "interrupted (SIGINT/SIGTERM); run it again to resume the download"

_namer: Callable[[str], str] = request_field


@contextlib.contextmanager
def names(namer: Callable[[str], str]) -> Iterator[None]:
    """How every failure in this process names its field inside the block (the command line: its flags)."""
    global _namer
    previous, _namer = _namer, namer
    try:
        yield
    finally:
        _namer = previous


def named(error: BaseException) -> BaseException:
    return name_field(error, _namer)


def engine_step(fn: F) -> F:
    """Apply beneath ``@task``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            if cancel.cancelled():
                return Cancelled(message=INTERRUPTED)
            if isinstance(error, HyperExportError):
                raise named(error)  # noqa: B904 - the same exception, its message completed
            raise

    return wrapper  # type: ignore[return-value]
