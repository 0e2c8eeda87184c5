"""Plugin settings: every option has a command-line flag, an environment variable and an ini key.

Precedence, highest first: command line, environment, ini file, built-in default. A bad value is
reported as one sentence naming where it came from (flag, variable or ini key) and the value.

A ``multi`` option takes several values: ``--flag A B`` (or ``--flag A --flag B``), the
environment variable split on ``os.pathsep``, the ini value split on whitespace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..pg.version import DEFAULT_VERSION, SUPPORTED_VERSIONS, Flavour
from .hypothesis_profiles import DEFAULT_PROFILES

__all__ = ["OPTIONS", "Option", "SettingError", "WalredoSettings", "resolve_settings"]


class SettingError(ValueError):
    """A setting has a value we cannot use; the message names its source."""


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"is not a PostgreSQL major version (one of {SUPPORTED_VERSIONS})") from None
    if value not in SUPPORTED_VERSIONS:
        raise ValueError(f"is not a supported PostgreSQL major version (one of {SUPPORTED_VERSIONS})")
    return value


def _flavour(text: str) -> Flavour:
    try:
        return Flavour(text.strip().lower())
    except ValueError:
        raise ValueError("is not a WAL flavour (neon or vanilla)") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is not a number of seconds") from None
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _seconds_or_off(text: str) -> float | None:
    if text.strip().lower() in ("0", "off", "no", "none"):
        return None
    try:
        return _seconds(text)
    except ValueError as exc:
        raise ValueError(f"{exc} (or 0 / off)") from None


def _size_or_off(text: str) -> int | None:
    low = text.strip().lower()
    if low in ("0", "off", "no", "none", "unlimited"):
        return None
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    number, unit = (low[:-1], units[low[-1]]) if low[-1:] in units else (low, 1)
    try:
        value = int(float(number) * unit)
    except ValueError:
        raise ValueError("is not a size in bytes (e.g. 4G, 512M; or off)") from None
    if value < 1:
        raise ValueError("must be a positive size (or off)")
    return value


def _whole_seconds_or_off(text: str) -> int | None:
    seconds = _seconds_or_off(text)
    return None if seconds is None else max(1, round(seconds))


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("is not a whole number") from None
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _profile(text: str) -> str:
    name = text.strip()
    if name not in DEFAULT_PROFILES:
        raise ValueError(f"is not a Hypothesis profile (one of {', '.join(DEFAULT_PROFILES)})")
    return name


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("is empty")
    return Path(text).expanduser()


_OFF = ("off", "none", "no")


def _corpus_source(text: str) -> Path | None:
    """A corpus folder or archive; ``off`` (None) runs no corpus, not even the shipped one."""
    if text.strip().lower() in _OFF:
        return None
    return _path(text)


def _baseline_mask(text: str) -> str:
    low = text.strip().lower()
    if low not in ("none", "auto"):
        raise ValueError("is not a baseline mask (none: byte for byte, auto: the rule of the "
                         "request's last record's rmgr)")
    return low


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("is not a boolean (true/false)")


@dataclass(frozen=True)
class Option:
    """One setting: ``--flag``, ``$ENV`` and ini ``key`` (the dest name)."""

    key: str
    flag: str
    env: str
    help: str
    parse: Callable[[str], Any]
    default: Any = None
    metavar: str | None = None
    is_flag: bool = False
    multi: bool = False
    """Several values (``parse`` is applied to each; the setting is their tuple)."""


OPTIONS: tuple[Option, ...] = (
    Option("walredo_bin", "--walredo-bin", "WALREDO_BIN",
           "walredo binary to test (postgres built with Neon's walredo); "
           "default: the embedded reference walredo", _path, None, "PATH"),
    Option("walredo_lib_dir", "--walredo-lib-dir", "WALREDO_LIB_DIR",
           "LD_LIBRARY_PATH for the walredo process; default: <bin dir>/../lib", _path, None, "DIR"),
    Option("walredo_pg_version", "--walredo-pg-version", "WALREDO_PG_VERSION",
           "PostgreSQL major version of the WAL to generate (14-17)", _version, DEFAULT_VERSION, "N"),
    Option("walredo_flavour", "--walredo-flavour", "WALREDO_FLAVOUR",
           "WAL flavour: neon (Neon's heap record format) or vanilla", _flavour, Flavour.NEON,
           "{neon,vanilla}"),
    Option("walredo_timeout", "--walredo-timeout", "WALREDO_TIMEOUT",
           "seconds a single walredo request may take before the process is killed", _seconds,
           10.0, "SECONDS"),
    Option("walredo_hang_check", "--walredo-hang-check", "WALREDO_HANG_CHECK",
           "while an answer is awaited this long, check whether the process sits idle with "
           "every request consumed, and if so fail the request as hung at once instead of "
           "waiting for the timeout (0 or off: never check; needs Linux /proc)", _seconds_or_off,
           0.2, "SECONDS"),
    Option("walredo_dump_dir", "--walredo-dump-dir", "WALREDO_DUMP_DIR",
           "where failing inputs are saved (a folder per test); default: a folder per session in "
           "<rootdir>/.walredo-dumps", _path, None, "DIR"),
    Option("walredo_dump_keep", "--walredo-dump-keep", "WALREDO_DUMP_KEEP",
           "sessions kept in <rootdir>/.walredo-dumps (older ones are removed)", _count, 5, "N"),
    Option("walredo_hypothesis_profile", "--walredo-hypothesis-profile", "WALREDO_HYPOTHESIS_PROFILE",
           "Hypothesis profile for every property test of the session: dev, ci or thorough; "
           "default: ci when $CI is set, else dev", _profile, None, "NAME"),
    Option("walredo_require_seccomp", "--walredo-require-seccomp", "WALREDO_REQUIRE_SECCOMP",
           "fail (instead of skip) the seccomp check when the binary runs without seccomp",
           _bool, False, None, True),
    Option("walredo_rlimit_as", "--walredo-rlimit-as", "WALREDO_RLIMIT_AS",
           "address-space limit of the binary under test (RLIMIT_AS), e.g. 4G; default off",
           _size_or_off, None, "SIZE"),
    Option("walredo_rlimit_cpu", "--walredo-rlimit-cpu", "WALREDO_RLIMIT_CPU",
           "CPU-time limit of each walredo process in seconds (RLIMIT_CPU); default off",
           _whole_seconds_or_off, None, "SECONDS"),
    Option("walredo_core_dumps", "--walredo-core-dumps", "WALREDO_CORE_DUMPS",
           "let a crashing walredo write a core file (default: RLIMIT_CORE 0)",
           _bool, False, None, True),
    Option("walredo_no_new_privs", "--walredo-no-new-privs", "WALREDO_NO_NEW_PRIVS",
           "run the binary under test with no_new_privs (on/off)", _bool, True, "on|off"),
    Option("walredo_corpus", "--walredo-corpus", "WALREDO_CORPUS",
           "corpus folders or tar archives whose entries the conformance suite judges, one test "
           "each; default: the corpus shipped for --walredo-pg-version; off: none", _corpus_source,
           None, "DIR", multi=True),
    Option("walredo_baseline_bin", "--walredo-baseline-bin", "WALREDO_BASELINE_BIN",
           "differential mode: every request the conformance suite sends also runs on this "
           "walredo binary, which must answer the same pages and fail the same requests",
           _path, None, "PATH"),
    Option("walredo_baseline_lib_dir", "--walredo-baseline-lib-dir", "WALREDO_BASELINE_LIB_DIR",
           "LD_LIBRARY_PATH for the baseline binary; default: <baseline bin dir>/../lib", _path,
           None, "DIR"),
    Option("walredo_baseline_mask", "--walredo-baseline-mask", "WALREDO_BASELINE_MASK",
           "how pages are compared with the baseline's: none (byte for byte) or auto (under "
           "the masking rule of the request's last record's rmgr)", _baseline_mask, "none",
           "{none,auto}"),
)


@dataclass(frozen=True)
class WalredoSettings:
    """The resolved plugin settings."""

    bin: Path | None
    lib_dir: Path | None
    pg_version: int
    flavour: Flavour
    timeout: float
    hang_check: float | None
    dump_dir: Path | None
    hypothesis_profile: str | None
    require_seccomp: bool
    rlimit_as: int | None = None
    rlimit_cpu: int | None = None
    core_dumps: bool = False
    no_new_privs: bool = True
    corpus: tuple[Path, ...] | None = None
    """Corpora to judge; None: the shipped corpus of ``pg_version``; empty: none."""
    baseline_bin: Path | None = None
    baseline_lib_dir: Path | None = None
    baseline_mask: str = "none"
    dump_keep: int = 5


def resolve_settings(
    cli: Callable[[str], Any],
    ini: Callable[[str], Any],
    environ: dict[str, str] | None = None,
) -> WalredoSettings:
    """Resolve every option from ``cli(key)``, the environment and ``ini(key)``.

    ``cli`` and ``ini`` return ``None`` (or an empty string for ini) when the setting is absent.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        if opt.multi:
            values[opt.key] = _resolve_multi(opt, cli(opt.key), env, ini(opt.key))
            continue
        raw: Any = cli(opt.key)
        source = f"{opt.flag}"
        if raw is None or (raw is False and opt.is_flag):
            raw = env.get(opt.env) or None
            source = f"${opt.env}"
        if raw is None:
            ini_value = ini(opt.key)
            raw = ini_value if ini_value not in (None, "", []) else None
            source = f"ini option {opt.key}"
        if raw is None:
            values[opt.key] = opt.default
            continue
        if isinstance(raw, bool):
            values[opt.key] = raw
            continue
        try:
            values[opt.key] = opt.parse(str(raw))
        except ValueError as exc:
            raise SettingError(f"{source} value {str(raw)!r} {exc}") from None
    return WalredoSettings(
        bin=values["walredo_bin"],
        lib_dir=values["walredo_lib_dir"],
        pg_version=values["walredo_pg_version"],
        flavour=values["walredo_flavour"],
        timeout=values["walredo_timeout"],
        hang_check=values["walredo_hang_check"],
        dump_dir=values["walredo_dump_dir"],
        hypothesis_profile=values["walredo_hypothesis_profile"],
        require_seccomp=values["walredo_require_seccomp"],
        rlimit_as=values["walredo_rlimit_as"],
        rlimit_cpu=values["walredo_rlimit_cpu"],
        core_dumps=values["walredo_core_dumps"],
        no_new_privs=values["walredo_no_new_privs"],
        corpus=values["walredo_corpus"],
        baseline_bin=values["walredo_baseline_bin"],
        baseline_lib_dir=values["walredo_baseline_lib_dir"],
        baseline_mask=values["walredo_baseline_mask"],
        dump_keep=values["walredo_dump_keep"],
    )


def _resolve_multi(opt: Option, cli_value: Any, env: Any, ini_value: Any) -> Any:
    """A ``multi`` option: the tuple of its parsed values, without the ones that parse to None
    (``off``); the default when no source gives any value."""
    if cli_value:
        raw, source = [str(v) for v in cli_value], opt.flag
    elif env.get(opt.env):
        raw, source = [v for v in env[opt.env].split(os.pathsep) if v.strip()], f"${opt.env}"
    elif ini_value not in (None, "", []):
        items = ini_value if isinstance(ini_value, list) else str(ini_value).split()
        raw, source = [str(v) for v in items], f"ini option {opt.key}"
    else:
        return opt.default
    out = []
    for text in raw:
        try:
            value = opt.parse(text)
        except ValueError as exc:
            raise SettingError(f"{source} value {text!r} {exc}") from None
        if value is not None:
            out.append(value)
    return tuple(out)
