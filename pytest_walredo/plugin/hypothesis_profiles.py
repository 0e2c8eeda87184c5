"""Hypothesis profiles for walredo properties: ``dev``, ``ci`` and ``thorough``.

Selected with ``--walredo-hypothesis-profile`` (or ``$WALREDO_HYPOTHESIS_PROFILE``, or ini
``walredo_hypothesis_profile``); without one, ``ci`` when ``$CI`` is set, else ``dev``. The plugin
calls :func:`load_profile` at configure time, so the profile applies to every property test of
the session, the conformance suite's and the user's own alike (unless Hypothesis's own
``--hypothesis-profile`` is given and no walredo profile was chosen explicitly).

=============  ============  ===========  ==================================================
profile        max_examples  derandomize  use
=============  ============  ===========  ==================================================
``dev``        40            no           quick local runs (the conformance suite against the
                                          reference walredo finishes in well under a minute)
``ci``         40            yes          the same budget with a fixed seed per test, so CI
                                          failures reproduce by rerunning
``thorough``   400           no           nightly / before a release
=============  ============  ===========  ==================================================

All profiles: no deadline (a walredo round trip's time depends on the machine, and a
relaunch after a failure takes a moment), ``print_blob=True`` (a failure prints the
``@reproduce_failure`` line that replays it), and the ``function_scoped_fixture`` health check
off, because the conformance suite deliberately keeps one process per test and reuses it across
examples (its process pool relaunches the process after a failing example itself); the
``large_base_example`` / ``data_too_large`` / ``too_slow`` checks are off too, since every page is
8 KiB by nature and drawing coherent records runs the redo model. No ``explain`` phase (see
``_COMMON``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

__all__ = ["DEFAULT_PROFILES", "load_profile", "register_profiles", "resolve_profile_name"]

DEFAULT_PROFILES = ("dev", "ci", "thorough")

_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
    # No explain phase: it reports which lines of the *test process* only failing examples ran,
    # while the code under test runs in the walredo process, and it re-runs the minimal example
    # with every part varied: hundreds of examples, each a process launch once a failure has
    # poisoned the process (measured: 280 examples instead of 12 for a two-integer property).
    phases=[p for p in Phase if p is not Phase.explain],
)


def register_profiles() -> None:
    """Register the three profiles with Hypothesis (idempotent).

    Each is based on Hypothesis's ``default`` profile, not on whatever profile is active:
    Hypothesis loads its own ``ci`` profile (derandomized) when ``$CI`` is present, and ``dev``
    or ``thorough`` must not inherit that."""
    base = settings.get_profile("default")
    settings.register_profile("dev", base, max_examples=40, **_COMMON)
    settings.register_profile("ci", base, max_examples=40, derandomize=True, **_COMMON)
    settings.register_profile("thorough", base, max_examples=400, **_COMMON)


def resolve_profile_name(name: str | None, environ: dict[str, str] | None = None) -> str:
    """The profile to use: ``name``, else ``ci`` when ``$CI`` is set (non-empty), else ``dev``.

    Raises ValueError naming the option when ``name`` is not a known profile.
    """
    env = os.environ if environ is None else environ
    if name is None or not str(name).strip():
        return "ci" if env.get("CI") else "dev"
    name = str(name).strip()
    if name not in DEFAULT_PROFILES:
        raise ValueError(
            f"--walredo-hypothesis-profile value {name!r} is not a profile; "
            f"expected one of {', '.join(DEFAULT_PROFILES)}"
        )
    return name


def load_profile(name: str | None) -> str:
    """Register the profiles and make ``name`` (resolved by :func:`resolve_profile_name`) the
    active Hypothesis profile; return its name."""
    register_profiles()
    chosen = resolve_profile_name(name)
    settings.load_profile(chosen)
    return chosen
