"""Plugin hooks and the registry every plugin name is looked up in.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named as
the hookspecs below. Each returns a mapping ``{name: class}``. Built-in plugins and
third-party ones are found the same way: through the ``s2s`` entry-point group::

    [project.entry-points.s2s]
    my_plugin = "my_package.my_module"

Modules that are not installed (a test's, a notebook's) can be added with the
``S2S_PLUGINS`` environment variable, a comma-separated list of importable module
names; child processes of ``s2s run`` see them too.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from .errors import PluginError

PROJECT = "s2s"
ENTRY_POINT_GROUP = "s2s"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

KINDS = ("task", "encoder", "decoder", "attention")

#: Environment variable naming extra plugin modules, comma-separated.
PLUGINS_VARIABLE = "S2S_PLUGINS"


class HookSpecs:
    """The hooks a plugin may implement; each returns ``{name: class}``."""

    @hookspec
    def s2s_tasks(self) -> dict[str, type]:
        """Task classes (subclasses of :class:`s2s_core.interfaces.Task`)."""

    @hookspec
    def s2s_encoders(self) -> dict[str, type]:
        """Encoder classes (subclasses of :class:`s2s_core.interfaces.Encoder`)."""

    @hookspec
    def s2s_decoders(self) -> dict[str, type]:
        """Decoder classes (subclasses of :class:`s2s_core.interfaces.Decoder`)."""

    @hookspec
    def s2s_attentions(self) -> dict[str, type]:
        """Attention classes (subclasses of :class:`s2s_core.interfaces.Attention`)."""


_HOOK_OF_KIND = {
    "task": "s2s_tasks",
    "encoder": "s2s_encoders",
    "decoder": "s2s_decoders",
    "attention": "s2s_attentions",
}


def make_plugin_manager(extra_plugins: Iterable[Any] = ()) -> pluggy.PluginManager:
    """A plugin manager with every installed plugin (entry points), the modules named
    in ``S2S_PLUGINS`` and ``extra_plugins``."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in [*_modules_from_environment(), *extra_plugins]:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    return pm


def _modules_from_environment() -> list:
    modules = []
    for name in os.environ.get(PLUGINS_VARIABLE, "").split(","):
        name = name.strip()
        if not name:
            continue
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            raise PluginError(f"{PLUGINS_VARIABLE}: cannot import plugin module '{name}': {exc}") from None
    return modules


@attrs.frozen
class Entry:
    """One registered plugin class: its kind and name, and where it came from."""

    kind: str
    name: str
    cls: type
    plugin: str  # the plugin's name in the plugin manager (entry-point name or module)
    distribution: str  # "package 1.2" when it came from an installed distribution


class Registry:
    """Every task, encoder, decoder and attention contributed through the hooks, by name."""

    def __init__(self, pm: pluggy.PluginManager | None = None):
        self.pm = pm if pm is not None else make_plugin_manager()
        dists = {id(plugin): f"{dist.project_name} {dist.version}"
                 for plugin, dist in self.pm.list_plugin_distinfo()}
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind, hook_name in _HOOK_OF_KIND.items():
            hook = getattr(self.pm.hook, hook_name)
            # Call each implementation on its own so a clash can name both plugins.
            for impl in hook.get_hookimpls():  # in registration order
                contributed = impl.function()
                if not contributed:
                    continue
                if not isinstance(contributed, dict):
                    raise PluginError(f"plugin '{impl.plugin_name}': {hook_name}() must return a dict "
                                      f"of name -> class, got {type(contributed).__name__}")
                for name, cls in contributed.items():
                    known = self._entries[kind].get(name)
                    if known is not None:
                        raise PluginError(f"{kind} '{name}' is registered twice: by plugin "
                                          f"'{known.plugin}' and by plugin '{impl.plugin_name}'")
                    self._entries[kind][name] = Entry(
                        kind, name, cls, impl.plugin_name,
                        dists.get(id(impl.plugin), "(not from a distribution)"))

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str) -> list[Entry]:
        return [self._entries[kind][name] for name in self.names(kind)]

    def get(self, kind: str, name: str) -> type:
        try:
            return self._entries[kind][name].cls
        except KeyError:
            known = ", ".join(self.names(kind)) or "none"
            raise PluginError(f"unknown {kind} {name!r} (registered {kind}s: {known})") from None
