"""CUDA backend (GPU kernels): not part of this build yet."""


def unavailable_reason():
    return "the CUDA backend is not built yet"


def make():  # pragma: no cover
    raise RuntimeError(unavailable_reason())
