"""Stop signals (Ctrl-C, SIGTERM) around code that must not lose them or be cut by them.

The CLI turns SIGTERM into a ``KeyboardInterrupt`` raised wherever Python happens to be, and a
report has two places where that goes wrong. Pydantic's serializers catch every exception a
Python serializer raises and re-raise it as a ``ValueError`` (``PydanticSerializationError``),
so an interrupt inside one (the objective config's serializer imports torch: seconds) becomes
an ordinary error that a caller tolerating bad configs swallows; the report then carried on,
imported the half-initialised torch again and finished (exit 0) or segfaulted.
:func:`interrupts_kept` raises such a swallowed interrupt again. And moving a finished report
into a folder it shares with other files takes several renames, which one signal must not
split: :func:`interrupts_deferred` holds the signal until they are done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, Any], Any]


@contextlib.contextmanager
def interrupts_kept() -> Iterator[None]:
    """Raise, when the block ends, the interrupt a stop signal raised in it, even if code inside
    caught it. The signal still interrupts at once (an import stops there, not seconds later)."""
    raised: list[BaseException] = []

    def wrap(handler: Handler) -> Handler:
        def noting(signum: int, frame: Any) -> Any:
            try:
                return handler(signum, frame)
            except BaseException as exc:  # KeyboardInterrupt, from the CLI's or Python's handler
                raised.append(exc)
                raise

        return noting

    with _handlers_replaced(wrap):
        yield
    if raised:
        raise raised[0]


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold stop signals until the block ends, then act on the first one as its handler would.

    Only for short blocks (a few renames): the signal waits for the whole block.
    """
    received: list[tuple[Handler, int, Any]] = []

    def wrap(handler: Handler) -> Handler:
        return lambda signum, frame: received.append((handler, signum, frame))

    with _handlers_replaced(wrap):
        yield
    if received:
        handler, signum, frame = received[0]
        handler(signum, frame)


@contextlib.contextmanager
def _handlers_replaced(wrap: Callable[[Handler], Handler]) -> Iterator[None]:
    """Install ``wrap(handler)`` for each stop signal that has a Python handler, and restore the
    handlers after. Signals left to the OS (``SIG_DFL``: a library caller without the CLI) and
    ignored ones stay as they are; only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Handler] = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = handler
            signal.signal(signum, wrap(handler))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
