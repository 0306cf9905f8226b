"""LLM backends: the interface in :mod:`.base`; importing this package registers the shipped ones.

Both modules import their heavy libraries (openai, torch, transformers) only when a backend is
built, so listing backends or running ``--help`` stays fast.
"""

from synthlm.entigraph.backends import local_hf, openai_http
from synthlm.entigraph.backends.base import (
    BACKENDS,
    Backend,
    BackendError,
    BackendOptions,
    Completion,
    FatalError,
    TransientError,
    build_backend,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendOptions",
    "Completion",
    "FatalError",
    "TransientError",
    "build_backend",
    "local_hf",
    "openai_http",
    "register_backend",
]
