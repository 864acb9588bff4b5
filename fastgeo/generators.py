"""Generator specs: where a user's torch generator lives, and how to get it.

The command line's ``--generator`` and :func:`fastgeo.interpolate_many` (whose workers each
build the generator once) take the same specs.

``MODULE:ATTR`` imports MODULE (a dotted name, found on sys.path; the current folder is
searched first, as with ``python -m``) and takes ATTR from it (dotted, e.g.
``models:nets.generator``). ``path/to/file.py:ATTR`` runs that file as a module instead
(its folder goes first on sys.path, so it can import its neighbours). Then:

- an ``nn.Module`` instance is the generator (put in eval mode);
- a class is instantiated without arguments;
- ``ATTR()`` (with the parentheses) calls a factory without arguments and uses what it
  returns;
- any other callable is used as is: a function mapping latents (M, D) to outputs (M, ...).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys

from ._errors import one_line


class GeneratorSpecError(ValueError):
    """A generator spec that cannot be turned into a generator; the message is one line."""


def _import_file(path: str):
    if not os.path.isfile(path):
        raise GeneratorSpecError(f"no such file {path!r}")
    name = "_fastgeo_generator_" + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GeneratorSpecError(f"cannot import {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(name, None)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise GeneratorSpecError(f"importing {path!r} failed: {one_line(err)}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _import_module(name: str):
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except BaseException as err:
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise GeneratorSpecError(f"importing module {name!r} failed: {one_line(err)}") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def is_file_spec(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


def load(spec: str):
    """The generator named by ``spec`` (see the module docstring); GeneratorSpecError when it cannot be had."""
    import torch

    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise GeneratorSpecError(f"a generator spec must be MODULE:ATTR or path/to/file.py:ATTR, got {spec!r}")
    factory = attr.endswith("()")
    if factory:
        attr = attr[:-2]
    if not all(part.isidentifier() for part in attr.split(".")):
        raise GeneratorSpecError(f"{attr!r} is not an attribute name (in {spec!r})")
    module = _import_file(where) if is_file_spec(where) else _import_module(where)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GeneratorSpecError(f"{where!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if factory or isinstance(obj, type):
        what = "factory" if factory else "class"
        if not callable(obj):
            raise GeneratorSpecError(f"{attr!r} is not callable, so it cannot be a {what}")
        try:
            obj = obj()
        except Exception as err:
            raise GeneratorSpecError(f"calling the {what} {attr}() failed: {one_line(err)}") from None
    if not callable(obj):
        raise GeneratorSpecError(f"{attr!r} is a {type(obj).__name__}, not a torch module or a function "
                        "(for a factory, write ATTR())")
    if isinstance(obj, torch.nn.Module):
        obj.eval()
    return obj


def file_digest(spec: str):
    """sha256 of the generator's source file for file specs (None for module specs): a resumed
    run refuses to continue after the file changed."""
    where = spec.rpartition(":")[0]
    if not is_file_spec(where) or not os.path.isfile(where):
        return None
    with open(where, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def dtype_and_device(generator):
    """The dtype and device of a torch module's first floating parameter or buffer, else None."""
    import torch

    if isinstance(generator, torch.nn.Module):
        for t in list(generator.parameters()) + list(generator.buffers()):
            if t.is_floating_point():
                return t.dtype, t.device
    return None, None
