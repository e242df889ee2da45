"""TOML task files -> validated ``attrs`` objects.

A task file has three parts::

    [task]                 # type = a registered task; other keys = that task's Params
    [model.encoder]        # type = a registered encoder; other keys = its Params
    [model.decoder]        # likewise
    [model.attention]      # optional; likewise
    [training]             # TrainingConfig below

The core knows no plugin's parameters: each plugin class carries a ``Params`` attrs
class and :func:`build_params` checks a TOML table against it, exactly as it checks
the core's own ``[training]`` table. Every problem is one :class:`ConfigError` line
naming the file, the key and what was expected.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from .errors import ConfigError, PluginError, S2SError, one_line
from .hooks import Registry

OPTIMIZERS = ("adam", "rmsprop", "sgd", "nag", "adagrad", "adadelta", "adamax", "nadam", "ftml", "signum")
INITIALIZERS = ("xavier", "uniform", "normal", "orthogonal", "msraprelu")
ENGINES = ("threaded", "naive")


def _optional_positive(instance, attribute, value):
    if value is not None and not value > 0:
        raise ValueError(f"must be > 0, got {value!r}")


@attrs.define
class TrainingConfig:
    """The ``[training]`` table."""

    epochs: int = attrs.field(default=10, validator=[v.ge(1), v.le(1_000_000)])
    batch_size: int = attrs.field(default=128, validator=[v.ge(1), v.le(1_000_000)])
    optimizer: str = attrs.field(default="adam", validator=v.in_(OPTIMIZERS))
    optimizer_params: dict = attrs.field(factory=dict)
    #: The learning rate is multiplied by this after every epoch (1.0: constant).
    lr_decay: float = attrs.field(default=1.0, validator=[v.gt(0.0), v.le(1.0)])
    initializer: str = attrs.field(default="xavier", validator=v.in_(INITIALIZERS))
    initializer_params: dict = attrs.field(factory=dict)
    seed: int = attrs.field(default=0, validator=[v.ge(0), v.lt(2**32)])
    hybridize: bool = True
    engine: str = attrs.field(default="threaded", validator=v.in_(ENGINES))
    clip_gradient: float | None = attrs.field(default=None, validator=_optional_positive)
    #: Print random validation samples every this many epochs (0: never).
    sample_every: int = attrs.field(default=1, validator=[v.ge(0), v.le(1_000_000)])
    samples: int = attrs.field(default=10, validator=[v.ge(0), v.le(10_000)])


@attrs.define
class PluginChoice:
    """A ``type = "name"`` table: the registered class and its validated parameters."""

    kind: str
    name: str
    cls: type
    params: Any

    def build(self, *args, **kwargs):
        return self.cls(self.params, *args, **kwargs)

    def to_dict(self) -> dict:
        return {"type": self.name, **attrs.asdict(self.params, recurse=True, filter=_not_none)}


@attrs.define
class Config:
    """A whole task file, validated."""

    path: str
    task: PluginChoice
    encoder: PluginChoice
    decoder: PluginChoice
    attention: PluginChoice | None
    training: TrainingConfig

    def to_dict(self) -> dict:
        """The resolved configuration (every default filled in), as TOML would hold it."""
        model = {"encoder": self.encoder.to_dict(), "decoder": self.decoder.to_dict()}
        if self.attention is not None:
            model["attention"] = self.attention.to_dict()
        return {"task": self.task.to_dict(), "model": model,
                "training": attrs.asdict(self.training, filter=_not_none)}

    def model_dict(self) -> dict:
        """The part of the configuration that decides the model's shape and vocabulary."""
        return {k: v for k, v in self.to_dict().items() if k in ("task", "model")}


def _not_none(attribute, value) -> bool:
    return value is not None


# -- generic checking of a table against an attrs class ---------------------------------

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             dict: "a table", list: "an array"}


def _key(name: str) -> str:
    """A key from the document as a message shows it: quoted unless it is a bare TOML key
    (a quoted key may hold newlines and other characters that would break the line)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else repr(name)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` if TOML can mean that; raises TypeError with what was expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            try:
                return _coerce(value, option)
            except TypeError:
                pass
        raise TypeError(" or ".join(_EXPECTED.get(o, str(o)) for o in options))
    if origin is not None:
        tp = origin
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError("a finite number")
        return value
    if tp in (int, float) and isinstance(value, bool):
        raise TypeError(_EXPECTED[tp])
    if tp in _EXPECTED and not isinstance(value, tp):
        raise TypeError(_EXPECTED[tp])
    return value


def build_params(cls: type, table: Any, where: str, path: str) -> Any:
    """Build attrs class ``cls`` from TOML ``table``; ``where`` is the table's dotted key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: expected a table, got {_describe(table)}")
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        key = _key(unknown[0])
        known = ", ".join(fields) or "none"
        raise ConfigError(f"{path}: {where}.{key}: unknown key (known keys: {known})")
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in table:
            if field.default is attrs.NOTHING:
                raise ConfigError(f"{path}: {key}: missing (expected {_EXPECTED.get(field.type, 'a value')})")
            continue
        try:
            value = _coerce(table[name], field.type)
        except TypeError as exc:
            raise ConfigError(f"{path}: {key}: expected {exc}, got {_describe(table[name])}") from None
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{path}: {key}: {_validator_message(exc, name)}") from None
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # cross-field checks in __attrs_post_init__
        raise ConfigError(f"{path}: {where}: {_validator_message(exc, '')}") from None


def _validator_message(exc: Exception, name: str) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    # attrs' messages start with "'name' must be ..."; the key is already named.
    prefix = f"'{name}' "
    if text.startswith(prefix):
        text = text[len(prefix):]
    return text.split("\n")[0]


def _plugin_choice(kind: str, table: Any, where: str, path: str, registry: Registry) -> PluginChoice:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: expected a table, got {_describe(table)}")
    name = table.get("type")
    if name is None:
        raise ConfigError(f"{path}: {where}.type: missing (expected the name of a registered {kind}: "
                          f"{', '.join(registry.names(kind)) or 'none'})")
    if not isinstance(name, str):
        raise ConfigError(f"{path}: {where}.type: expected a string, got {_describe(name)}")
    try:
        cls = registry.get(kind, name)
    except PluginError as exc:
        raise ConfigError(f"{path}: {where}.type: {exc}") from None
    params_cls = getattr(cls, "Params", None)
    if params_cls is None or not attrs.has(params_cls):
        raise PluginError(f"{kind} '{name}': its class has no attrs 'Params' class")
    rest = {k: val for k, val in table.items() if k != "type"}
    return PluginChoice(kind, name, cls, build_params(params_cls, rest, where, path))


def parse_config(data: dict, path: str, registry: Registry) -> Config:
    """Validate a TOML document (already parsed) into a :class:`Config`."""
    unknown = sorted(set(data) - {"task", "model", "training"})
    if unknown:
        raise ConfigError(f"{path}: {_key(unknown[0])}: unknown section (known: task, model, training)")
    for section in ("task", "model"):
        if section not in data:
            raise ConfigError(f"{path}: [{section}]: missing section")
    task = _plugin_choice("task", data["task"], "task", path, registry)
    model = data["model"]
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: model: expected a table, got {_describe(model)}")
    unknown = sorted(set(model) - {"encoder", "decoder", "attention"})
    if unknown:
        raise ConfigError(f"{path}: model.{_key(unknown[0])}: unknown key (known keys: encoder, decoder, attention)")
    for part in ("encoder", "decoder"):
        if part not in model:
            raise ConfigError(f"{path}: [model.{part}]: missing section")
    encoder = _plugin_choice("encoder", model["encoder"], "model.encoder", path, registry)
    decoder = _plugin_choice("decoder", model["decoder"], "model.decoder", path, registry)
    attention = None
    table = model.get("attention")
    if table is not None and not (isinstance(table, dict) and table.get("type") == "none"):
        attention = _plugin_choice("attention", model["attention"], "model.attention", path, registry)
    training = build_params(TrainingConfig, data.get("training", {}), "training", path)
    _check_mxnet_names(training, path)
    return Config(path, task, encoder, decoder, attention, training)


def _check_mxnet_names(training: TrainingConfig, path: str) -> None:
    """Optimizer and initializer parameters are checked by building them once."""
    import mxnet as mx

    for kind, name, params, create in (
            ("optimizer", training.optimizer, training.optimizer_params, mx.optimizer.create),
            ("initializer", training.initializer, training.initializer_params, mx.init.create)):
        for key, value in params.items():
            if not isinstance(value, (int, float, bool, str)):
                raise ConfigError(f"{path}: training.{kind}_params.{_key(key)}: expected a number, string or "
                                  f"boolean, got {_describe(value)}")
        try:
            create(name, **params)
        except Exception as exc:  # noqa: BLE001 - MXNet raises TypeError, ValueError, MXNetError...
            raise ConfigError(f"{path}: training.{kind}_params: not accepted by {kind} '{name}': "
                              f"{one_line(exc)}") from None


def read_toml(path: str | Path) -> dict:
    """Parse a TOML file; any problem becomes a one-line ConfigError naming the file."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def load_config(path: str | Path, registry: Registry | None = None) -> Config:
    """Read and validate a task file."""
    registry = registry if registry is not None else Registry()
    try:
        return parse_config(read_toml(path), str(path), registry)
    except S2SError:
        raise
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
