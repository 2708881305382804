"""pydantic-core's compiled validators, without the start-up of its Python package.

``import pydantic_core`` runs the package's ``__init__``, which imports its
``core_schema`` module (thousands of lines of typed dicts) and ``typing_extensions``:
about 20 ms of every process that reads a run, the parse helper's included, and most of
what importing pydantic-core costs. The record models need only the compiled module,
``pydantic_core._pydantic_core``, and build their schemas as plain dicts
(``record_model``). It is loaded here from its file under its own name, so the classes
are the package's very own: code that imports ``pydantic_core`` later gets these same
classes (``pydantic_core.ValidationError is ValidationError``). Should the package be laid
out otherwise, it is imported as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

_COMPILED = "pydantic_core._pydantic_core"


def _compiled() -> ModuleType:
    loaded = sys.modules.get(_COMPILED)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("pydantic_core")  # found, not imported
    for directory in (package.submodule_search_locations or []) if package is not None else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "_pydantic_core" + suffix)
            if not os.path.isfile(path):
                continue
            loader = importlib.machinery.ExtensionFileLoader(_COMPILED, path)
            spec = importlib.util.spec_from_file_location(_COMPILED, path, loader=loader)
            if spec is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[_COMPILED] = module
            try:
                loader.exec_module(module)
            except BaseException:
                del sys.modules[_COMPILED]
                raise
            return module
    import pydantic_core

    return pydantic_core._pydantic_core


_core = _compiled()

SchemaValidator = _core.SchemaValidator
SchemaSerializer = _core.SchemaSerializer
ValidationError = _core.ValidationError
PydanticSerializationError = _core.PydanticSerializationError
