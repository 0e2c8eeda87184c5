"""The pytest plugin itself, tested with pytester: options, fixtures, bad binaries, dumps, Allure."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_walredo.plugin.settings import SettingError, resolve_settings
from pytest_walredo.process.quiescence import supported as quiescence_supported

pytest_plugins = ["pytester"]

ASYNCIO_INI = "asyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _quiet_pytest_asyncio(request: pytest.FixtureRequest) -> None:
    """Sub-runs get pytest-asyncio's loop scope set, as our own pyproject sets it."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester").makeini("[pytest]\n" + ASYNCIO_INI)


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*walredo process under test*",
            "*--walredo-bin=PATH*",
            "*--walredo-lib-dir=DIR*",
            "*--walredo-pg-version=N*",
            "*--walredo-flavour=*",
            "*--walredo-timeout=SECONDS*",
            "*--walredo-dump-dir=DIR*",
            "*--walredo-corpus=DIR ?DIR ...?*",
            "*--walredo-baseline-bin=PATH*",
            "*--walredo-baseline-lib-dir=DIR*",
            "*--walredo-baseline-mask={none,auto}*",
        ]
    )


def _resolve(cli: dict[str, object], ini: dict[str, object], env: dict[str, str]):
    return resolve_settings(lambda k: cli.get(k), lambda k: ini.get(k), env)


def test_settings_precedence_cli_env_ini_default() -> None:
    assert _resolve({}, {}, {}).pg_version == 17
    assert _resolve({}, {"walredo_pg_version": "14"}, {}).pg_version == 14
    assert _resolve({}, {"walredo_pg_version": "14"}, {"WALREDO_PG_VERSION": "15"}).pg_version == 15
    assert (
        _resolve({"walredo_pg_version": "16"}, {"walredo_pg_version": "14"}, {"WALREDO_PG_VERSION": "15"})
        .pg_version
        == 16
    )
    assert _resolve({}, {}, {"WALREDO_TIMEOUT": "2.5"}).timeout == 2.5
    assert _resolve({}, {}, {"WALREDO_FLAVOUR": "Vanilla"}).flavour.value == "vanilla"
    assert _resolve({"walredo_require_seccomp": True}, {}, {}).require_seccomp is True
    assert _resolve({"walredo_require_seccomp": False}, {}, {"WALREDO_REQUIRE_SECCOMP": "yes"}).require_seccomp
    assert _resolve({}, {}, {}).hang_check == 0.2
    assert _resolve({"walredo_hang_check": "off"}, {}, {}).hang_check is None
    assert _resolve({}, {"walredo_hang_check": "0"}, {}).hang_check is None
    assert _resolve({}, {}, {"WALREDO_HANG_CHECK": "0.05"}).hang_check == 0.05
    default = _resolve({}, {}, {})
    assert (default.rlimit_as, default.rlimit_cpu, default.core_dumps, default.no_new_privs) == (
        None, None, False, True)
    assert _resolve({"walredo_rlimit_as": "4G"}, {}, {}).rlimit_as == 4 << 30
    assert _resolve({}, {"walredo_rlimit_as": "512m"}, {}).rlimit_as == 512 << 20
    assert _resolve({}, {}, {"WALREDO_RLIMIT_AS": "off"}).rlimit_as is None
    assert _resolve({"walredo_rlimit_cpu": "90"}, {}, {}).rlimit_cpu == 90
    assert _resolve({"walredo_core_dumps": True}, {}, {}).core_dumps is True
    assert _resolve({}, {}, {"WALREDO_NO_NEW_PRIVS": "off"}).no_new_privs is False


@pytest.mark.parametrize(
    ("cli", "env", "needle"),
    [
        ({"walredo_pg_version": "13"}, {}, "--walredo-pg-version value '13' is not a supported"),
        ({}, {"WALREDO_TIMEOUT": "-1"}, "$WALREDO_TIMEOUT value '-1' must be a positive"),
        ({}, {"WALREDO_FLAVOUR": "mysql"}, "$WALREDO_FLAVOUR value 'mysql' is not a WAL flavour"),
        ({"walredo_hang_check": "soon"}, {}, "--walredo-hang-check value 'soon' is not a number"),
        ({"walredo_rlimit_as": "4X"}, {}, "--walredo-rlimit-as value '4X' is not a size in bytes"),
        ({}, {"WALREDO_RLIMIT_CPU": "-2"}, "$WALREDO_RLIMIT_CPU value '-2' must be a positive"),
    ],
)
def test_bad_setting_names_its_source(cli, env, needle) -> None:
    with pytest.raises(SettingError) as info:
        _resolve(cli, {}, env)
    assert needle in str(info.value)


def test_corpus_and_baseline_settings() -> None:
    assert _resolve({}, {}, {}).corpus is None  # the shipped corpus of the selected version
    assert _resolve({"walredo_corpus": ["a", "b.tar.xz"]}, {"walredo_corpus": "x"}, {"WALREDO_CORPUS": "y"}).corpus \
        == (Path("a"), Path("b.tar.xz"))
    assert _resolve({}, {"walredo_corpus": "x"}, {"WALREDO_CORPUS": f"y{os.pathsep}z"}).corpus == (Path("y"), Path("z"))
    assert _resolve({}, {"walredo_corpus": "x\n  w"}, {}).corpus == (Path("x"), Path("w"))
    assert _resolve({"walredo_corpus": ["off"]}, {}, {}).corpus == ()
    default = _resolve({}, {}, {})
    assert (default.baseline_bin, default.baseline_lib_dir, default.baseline_mask) == (None, None, "none")
    s = _resolve({"walredo_baseline_bin": "/b", "walredo_baseline_mask": "AUTO"}, {},
                 {"WALREDO_BASELINE_LIB_DIR": "/l"})
    assert (s.baseline_bin, s.baseline_lib_dir, s.baseline_mask) == (Path("/b"), Path("/l"), "auto")
    for bad, needle in [({"walredo_corpus": ["a", " "]}, "--walredo-corpus value ' ' is empty"),
                        ({"walredo_baseline_mask": "heap"}, "--walredo-baseline-mask value 'heap' is not a "
                                                            "baseline mask")]:
        with pytest.raises(SettingError, match=needle):
            _resolve(bad, {}, {})


def test_a_bad_corpus_or_baseline_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    bad = pytester.path / "bad-corpus"
    bad.mkdir()
    (bad / "e.json").write_text("{}")
    (bad / "e.walredo").write_bytes(b"")
    for args, needle in [
        (["--walredo-corpus", str(pytester.path / "nope")], f"--walredo-corpus {pytester.path / 'nope'}: no such "
                                                           "corpus folder or archive"),
        (["--walredo-corpus", str(bad)], f"--walredo-corpus: {bad}/e.json: missing key(s) pg_version"),
        (["--walredo-baseline-bin", str(pytester.path / "nope")], f"--walredo-baseline-bin {pytester.path / 'nope'}: "
                                                                 "no such file"),
        (["--walredo-baseline-bin", str(_script(pytester.path / "exits", "exit 3\n"))],
         f"--walredo-baseline-bin {pytester.path / 'exits'}: exited with status 3 before answering a ping"),
    ]:
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        err = result.stderr.str()
        assert needle in err and err.count("\n") <= 2 and "Traceback" not in err + result.stdout.str(), err


def test_bad_option_value_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--walredo-pg-version=12")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--walredo-pg-version value '12' is not a supported*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_ini_option_is_used(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwalredo_pg_version = 15\nwalredo_flavour = vanilla\n" + ASYNCIO_INI)
    pytester.makepyfile(
        """
        def test_settings(walredo_settings, walredo_bin):
            assert walredo_settings.pg_version == 15
            assert walredo_bin.is_reference
            assert "--pg-version" in walredo_bin.args and "15" in walredo_bin.args
            assert "vanilla" in walredo_bin.args
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# ------------------------------------------------------------------------------------------
# Bad binaries: one clear error at session start
# ------------------------------------------------------------------------------------------


def _bad_binary_run(pytester: pytest.Pytester, binary: Path):
    pytester.makepyfile(
        """
        def test_one(walredo): walredo.ping()
        def test_two(walredo): walredo.ping()
        """
    )
    return pytester.runpytest_subprocess(f"--walredo-bin={binary}", "--walredo-timeout=2")


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("missing", "no such file"),
        ("not-executable", "is not executable"),
        ("exits", "exited with status 3"),
        ("silent", "did not answer a ping"),
        ("directory", "is a directory"),
    ],
)
def test_bad_binary_is_one_error_naming_the_path(pytester: pytest.Pytester, kind: str, needle: str) -> None:
    path = pytester.path / f"bad-{kind}"
    if kind == "not-executable":
        path.write_text("#!/bin/sh\n")
    elif kind == "exits":
        _script(path, "echo 'FATAL:  not a walredo build' >&2\nexit 3\n")
    elif kind == "silent":
        _script(path, "exec sleep 30\n")
    elif kind == "directory":
        path.mkdir()
    result = _bad_binary_run(pytester, path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert str(path) in err and needle in err, err
    assert "Traceback" not in err + result.stdout.str()
    assert "test_one" not in result.stdout.str()


def test_explicit_good_binary_is_used(pytester: pytest.Pytester, tmp_path: Path) -> None:
    from pytest_walredo.target import reference_binary

    ref = reference_binary(tmp_path / "ref")
    pytester.makepyfile(
        f"""
        def test_uses_it(walredo_bin, walredo):
            assert str(walredo_bin.path) == {str(ref.path)!r}
            assert not walredo_bin.is_reference
            assert len(walredo.ping()) == 8192
        """
    )
    pytester.runpytest_subprocess(f"--walredo-bin={ref.path}").assert_outcomes(passed=1)


# ------------------------------------------------------------------------------------------
# Fixture lifecycle: processes never outlive their test
# ------------------------------------------------------------------------------------------


def test_processes_are_gone_after_passing_and_failing_tests(pytester: pytest.Pytester) -> None:
    pidfile = pytester.path / "pids.txt"
    pytester.makepyfile(
        f"""
        import pytest

        def _record(pid):
            with open({str(pidfile)!r}, "a") as f:
                f.write(f"{{pid}}\\n")

        def test_sync_passes(walredo):
            walredo.ping()
            _record(walredo.process.pid)

        def test_sync_fails(walredo):
            walredo.ping()
            _record(walredo.process.pid)
            assert False, "deliberate"

        @pytest.mark.asyncio
        async def test_async_and_factory(walredo_process, walredo_factory):
            await walredo_process.ping()
            _record(walredo_process.process.pid)
            more = [walredo_factory() for _ in range(3)]
            for client in more:
                await client.ping()
                _record(client.process.pid)
            raise RuntimeError("deliberate")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=2)
    pids = [int(x) for x in pidfile.read_text().split()]
    assert len(pids) == 6 and len(set(pids)) == 6
    assert not [p for p in pids if _alive(p)]


def test_process_is_sandboxed_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os

        def test_sandbox(walredo, tmp_path):
            walredo.ping()
            pid = walredo.process.pid
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
            names = sorted(e.split(b"=")[0].decode() for e in env if e)
            assert set(names) <= {"LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS"}
            assert sorted(os.listdir(f"/proc/{pid}/fd")) == ["0", "1", "2"]
            cwd = os.readlink(f"/proc/{pid}/cwd")
            assert cwd.startswith(str(tmp_path))
            assert os.getpgid(pid) == pid
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_resource_limits_reach_the_process_and_the_test_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_limits(walredo):
            walredo.ping()
            pid = walredo.process.pid
            limits = {line[:26].strip(): line[26:].split()[:2]
                      for line in open(f"/proc/{pid}/limits").read().splitlines()[1:]}
            assert limits["Max address space"] == [str(3 << 30)] * 2
            assert limits["Max cpu time"] == ["120", "121"]
            assert limits["Max core file size"] == ["0", "0"]
            assert "NoNewPrivs:\t1" in open(f"/proc/{pid}/status").read()
        """
    )
    result = pytester.runpytest_subprocess("--walredo-rlimit-as=3G", "--walredo-rlimit-cpu=120")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["walredo: embedded reference walredo; limits: address space 3 GiB, "
                                 "CPU time 120 s, core files off, no_new_privs on; *"])


# ------------------------------------------------------------------------------------------
# Failing inputs: dump file first, Allure attachment, summary
# ------------------------------------------------------------------------------------------


_CRASHING_TEST = """
from pytest_walredo.protocol import RedoRequest, RelTag

def test_crash(walredo_factory):
    client = walredo_factory(faults=["crash-after:0"], sync=True)
    client.apply(RedoRequest(RelTag(1663, 5, 16384), 7, bytes(range(256)) * 32, ()))
"""


def test_failing_request_is_dumped_and_attached_to_allure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_CRASHING_TEST)
    dumps = pytester.path / "dumps"
    alluredir = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess(f"--walredo-dump-dir={dumps}", f"--alluredir={alluredir}")
    result.assert_outcomes(failed=1)
    files = list(dumps.rglob("*.walredo"))
    assert len(files) == 1, files
    dump = files[0]
    name_parts = dump.stem.split("-")
    assert name_parts[0] == "walredo" and int(name_parts[2]) == dump.stat().st_size
    expected = RedoRequestBytes.crash_request()
    assert dump.read_bytes() == expected
    out = result.stdout.str()
    assert dump.name in out  # the failure message names the file
    assert "walredo failure artifacts" in out and str(dumps) in out

    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    assert len(results) == 1
    attachments = results[0].get("attachments", [])
    walredo_att = [a for a in attachments if a["name"] == dump.name]
    assert walredo_att, attachments
    assert walredo_att[0]["type"] == "application/octet-stream"
    assert walredo_att[0]["source"].endswith(".walredo")
    assert (alluredir / walredo_att[0]["source"]).read_bytes() == expected
    assert any(a["type"] == "text/plain" and "stderr" in a["name"] for a in attachments)


def test_dump_without_allure_still_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_CRASHING_TEST)
    result = pytester.runpytest_subprocess("-p", "no:allure_pytest")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*walredo-*.walredo*", "*walredo failure artifacts*", "*test_crash*"])


class RedoRequestBytes:
    @staticmethod
    def crash_request() -> bytes:
        from pytest_walredo.protocol import RedoRequest, RelTag

        return RedoRequest(RelTag(1663, 5, 16384), 7, bytes(range(256)) * 32, ()).encode()


# ------------------------------------------------------------------------------------------
# kill -9 of pytest leaves no walredo behind
# ------------------------------------------------------------------------------------------


def test_kill_9_of_pytest_leaves_no_walredo(pytester: pytest.Pytester) -> None:
    import signal
    import subprocess
    import time

    pidfile = pytester.path / "child.pid"
    pytester.makepyfile(
        f"""
        import time

        def test_hangs(walredo):
            walredo.ping()
            with open({str(pidfile)!r}, "w") as f:
                f.write(str(walredo.process.pid))
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(pytester.path)],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pidfile.read_text())
        assert _alive(child)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), f"walredo {child} survived kill -9 of pytest"
    finally:
        proc.kill()
        proc.wait()


def test_conftest_fixture_factory(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_walredo.factories import walredo_fixture
        crashing = walredo_fixture(faults=["crash-after:1"], sync=True)
        """
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            from pytest_walredo.process import WalredoError

            def test_crashes_on_second(crashing):
                crashing.ping()
                with pytest.raises(WalredoError):
                    crashing.ping()
            """
        )
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_seccomp_mode_after_first_request_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_seccomp(walredo):
            walredo.ping()
            assert walredo.seccomp_mode_after_first_request == 2

        def test_no_seccomp(walredo_factory):
            walredo_factory(args=["--disable-seccomp"], sync=True).ping()
        """
    )
    xml = pytester.path / "junit.xml"
    pytester.runpytest_subprocess(f"--junitxml={xml}").assert_outcomes(passed=2)
    text = xml.read_text()
    assert '<property name="walredo_seccomp_mode" value="2"' in text
    assert '<property name="walredo_seccomp_mode" value="0"' in text


@pytest.mark.skipif(not quiescence_supported(), reason="this system does not report where a process "
                    "sleeps (/proc/<pid>/wchan): no hang check")
def test_a_hanging_walredo_fails_the_test_at_once_as_a_hang(pytester: pytest.Pytester) -> None:
    """With the default hang check, a dropped answer fails the test as a hang long before the
    (here: two-minute) request timeout; with the check off, the timeout is what ends it."""
    pytester.makeconftest(
        """
        from pytest_walredo.factories import walredo_fixture
        dropping = walredo_fixture(faults=["drop-response:1"], sync=True)
        """
    )
    pytester.makepyfile(
        """
        def test_ping(dropping):
            dropping.ping()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--walredo-timeout=120")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*WalredoHang: walredo request #0 (ping) will never be answered*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--walredo-timeout=1", "--walredo-hang-check=off")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*WalredoTimeout: walredo request #0 (ping) waited more than 1s*"])


# ------------------------------------------------------------------------------------------
# The Hypothesis profile applies to every property test of the session
# ------------------------------------------------------------------------------------------

_USER_PROPERTY = """
from hypothesis import given, settings, strategies as st

calls = []

@given(st.binary())
def test_users_own_property(data):
    calls.append(data)

def test_report():
    s = settings()
    print(f"\\nPROFILE examples={len(calls)} max_examples={s.max_examples} "
          f"derandomize={s.derandomize} deadline={s.deadline}")
"""


@pytest.mark.parametrize(("args", "ci", "want"), [
    ((), "", "examples=40 max_examples=40 derandomize=False deadline=None"),
    ((), "true", "examples=40 max_examples=40 derandomize=True deadline=None"),
    (("--walredo-hypothesis-profile", "thorough"), "", "examples=400 max_examples=400 derandomize=False"),
    # in CI Hypothesis loads its own derandomized profile; thorough must not inherit it
    (("--walredo-hypothesis-profile", "thorough"), "true", "examples=400 max_examples=400 derandomize=False"),
    (("--walredo-hypothesis-profile", "ci"), "", "examples=40 max_examples=40 derandomize=True"),
])
def test_hypothesis_profile_applies_to_a_users_own_property(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], ci: str,
        want: str) -> None:
    # A plain user test file, outside the conformance suite: no conftest loads any profile.
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("WALREDO_HYPOTHESIS_PROFILE", raising=False)
    pytester.makepyfile(_USER_PROPERTY)
    result = pytester.runpytest_subprocess("-s", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*PROFILE {want}*"])


def test_hypothesis_own_profile_option_wins_when_no_walredo_profile_is_chosen(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("WALREDO_HYPOTHESIS_PROFILE", raising=False)
    pytester.makeconftest("from hypothesis import settings\n"
                          "settings.register_profile('mine', max_examples=7)\n")
    pytester.makepyfile(_USER_PROPERTY)
    result = pytester.runpytest_subprocess("-s", "--hypothesis-profile", "mine")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PROFILE examples=7 max_examples=7*"])


def test_unknown_profile_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--walredo-hypothesis-profile", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--walredo-hypothesis-profile value 'fast' is not a Hypothesis profile "
                                 "(one of dev, ci, thorough)*"])
