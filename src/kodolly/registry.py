"""The one registry of converters by name.

Built-in converters register exactly the way a third-party package does: through the entry point
group ``kodolly.converters`` (see pyproject.toml). The TOML layouts shipped in ``converters/`` are
registered too, by their names. :func:`register` adds one at run time (tests, notebooks);
:func:`reset` forgets everything so the next lookup reads the entry points again.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from .converters import Converter
from .errors import ConfigError, UnknownConverterError

ENTRY_POINT_GROUP = "kodolly.converters"

_registry: dict[str, Converter] | None = None
_aliases: dict[str, str] = {}


def _load() -> dict[str, Converter]:
    global _registry
    if _registry is None:
        from .layouts import shipped_layouts

        _registry = {}
        for layout in shipped_layouts():
            _add(layout)
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
            obj = ep.load()
            converter = obj if isinstance(obj, Converter) else obj()
            if not isinstance(converter, Converter):
                raise ConfigError(f"entry point {ep.name} = {ep.value} is not a kodolly Converter")
            _add(converter)
    return _registry


def _add(converter: Converter) -> None:
    assert _registry is not None
    _registry[converter.name] = converter
    for alias in converter.aliases:
        _aliases[alias] = converter.name


def reset() -> None:
    """Forget the registry; the next lookup loads the shipped layouts and the entry points again."""
    global _registry
    _registry = None
    _aliases.clear()


def register(converter: Converter) -> Converter:
    """Add (or replace) a converter under its name and aliases (for tests and notebooks)."""
    _load()
    _add(converter)
    return converter


def get_converter(name: str) -> Converter:
    """The converter registered under ``name`` or one of its aliases. An alias that names a source
    with a known licence (``koalpaca``, ``kullm``) gives the converter as that source, with its licence."""
    registry = _load()
    key = _aliases.get(name, name)
    if key not in registry:
        raise UnknownConverterError(name, list(registry) + list(_aliases))
    converter = registry[key]
    return converter.for_alias(name) if key != name else converter


def list_converters() -> list[Converter]:
    """Every registered converter, sorted by name."""
    return sorted(_load().values(), key=lambda c: c.name)
