"""Checks of single setting values, each raising one ``ValueError`` line that names the
setting (or the chapter parameter that set it) and ends with the setting's help; the
validator (:mod:`lottery.experiment.validate`) is built from them."""

from __future__ import annotations

from typing import Any, Mapping

from lottery.config import hparams

Labels = Mapping[str, str] | None


class Names:
    """How errors name a setting: ``labels[name]`` (a chapter parameter), else
    ``setting NAME``; a setting's message ends with its help."""

    def __init__(self, labels: Labels = None, helps: bool = True):
        self.labels = dict(labels or {})
        self.helps = helps   # False for a selection: its names are not settings

    def what(self, name: str) -> str:
        return self.labels.get(name) or f"setting {name}"

    def error(self, name: str, problem: str) -> ValueError:
        """``problem`` starts with its separator: ``" must be ..."`` or ``": ..."``."""
        help_text = hparams.setting_help(name) if self.helps else ""
        return ValueError(f"{self.what(name)}{problem}" + (f" ({name}: {help_text})" if help_text else ""))


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(n: Names, name: str, value: Any, minimum: int, even: bool = False) -> None:
    if not is_int(value) or value < minimum or (even and value % 2):
        kind = ("an even integer" if even else "an integer") + f" >= {minimum}"
        why = " (half of it per class, for balance)" if even else ""
        raise n.error(name, f" must be {kind}{why}, got {value!r}")


def check_number(n: Names, name: str, value: Any, minimum: float, strict: bool = False) -> None:
    if not is_number(value) or value < minimum or (strict and value == minimum):
        raise n.error(name, f" must be a number {'>' if strict else '>='} {minimum:g}, got {value!r}")


def check_fraction(n: Names, name: str, value: Any, closed_low: bool, closed_high: bool) -> None:
    low_ok = is_number(value) and (value >= 0 if closed_low else value > 0)
    if not (low_ok and (value <= 1 if closed_high else value < 1)):
        interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
        raise n.error(name, f" must be a number in {interval}, got {value!r}")


def check_bool(n: Names, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise n.error(name, f" must be true or false, got {value!r}")


def check_text(n: Names, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise n.error(name, f" must be a non-empty string, got {value!r}")


def check_choice(n: Names, name: str, value: Any) -> None:
    """One of the values the setting's field declares (``metadata["choices"]``)."""
    f = hparams.setting_field(name)
    choices = f.metadata["choices"] if f is not None else ()
    if value not in choices:
        shown = " or ".join("null" if c is None else f'"{c}"' for c in choices)
        raise n.error(name, f" must be {shown}, got {value!r}")


def check_ints(n: Names, name: str, value: Any, minimum: int, one: bool = False) -> tuple[int, ...]:
    """A non-empty list of distinct integers >= ``minimum`` (``one``: or a single integer)."""
    if one and is_int(value):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise n.error(name, f" must be a non-empty list of integers, got {value!r}")
    for v in value:
        if not is_int(v) or v < minimum:
            raise n.error(name, f": {v!r} is not an integer >= {minimum}")
    if len(set(value)) != len(value):
        raise n.error(name, f" lists a value twice: {list(value)}")
    return tuple(value)
