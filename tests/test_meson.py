"""End to end: the Meson snippet meson/relro.meson in a real Meson + Ninja build.

The test project's meson.build is the snippet itself, verbatim, after a library defined in a
subdirectory; the project lives in a temporary folder whose path holds a space. Meson finds
`relrocheck` on PATH: a wrapper that runs the relrocheck this test run imports.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from buildsys import (
    ADDED_SYMBOL,
    BUILD_DIR,
    DEMO_C,
    EXAMPLES,
    POLICY_YAML,
    PROJECT_DIR,
    REGRESSION_C,
    REPO,
    Result,
    build_env,
    exported_symbols,
    find_library,
    names_symbol,
    relrocheck_wrapper,
    require_program,
    run,
    touch,
)

SNIPPET = REPO / "meson" / "relro.meson"

PROJECT_HEADER = """\
project('relrodemo', 'c', meson_version: '>=0.60')
subdir('lib')  # defines libdemo

"""

CHECK_DESCRIPTION = "relro-check-demo"


class MesonProject:
    def __init__(self, root: Path) -> None:
        self.meson = require_program("meson")
        require_program("ninja")
        self.source = root / PROJECT_DIR
        self.build = self.source / BUILD_DIR
        self.policy = self.source / "relro.yaml"
        self.baseline = self.source / "relro-baseline.json"
        self.library_source = self.source / "lib" / "demo.c"
        self.env = build_env(tool_bin=relrocheck_wrapper(root / "bin").parent)
        (self.source / "lib").mkdir(parents=True)
        (self.source / "meson.build").write_text(PROJECT_HEADER + SNIPPET.read_text())
        (self.source / "lib" / "meson.build").write_text(
            "libdemo = shared_library('demo', 'demo.c')\n")
        self.library_source.write_text(DEMO_C)
        self.policy.write_text(POLICY_YAML)

    def meson_run(self, *args: str) -> Result:
        return run([self.meson, *args], cwd=self.source, env=self.env)

    def compile(self, target: str = "") -> Result:
        return self.meson_run("compile", "-C", BUILD_DIR, *([target] if target else []))


@pytest.fixture
def project(tmp_path: Path) -> MesonProject:
    return MesonProject(tmp_path)


def assert_no_work(result: Result) -> None:
    result.expect(0)
    assert "ninja: no work to do" in result.output, result.output


def assert_checks_once(project: MesonProject) -> None:
    """The next build runs the check and passes; the one after it is a no-op."""
    result = project.compile().expect(0)
    assert CHECK_DESCRIPTION in result.output, result.output
    assert_no_work(project.compile())


def test_check_gates_the_build_and_baseline_update_accepts(project: MesonProject) -> None:
    project.meson_run("setup", BUILD_DIR).expect(0)

    # First baseline, written by the update run_target; then the build passes.
    project.compile("relro-baseline-update").expect(0)
    assert project.baseline.is_file()
    assert_checks_once(project)
    project.meson_run("test", "-C", BUILD_DIR, "--suite", "relro").expect(0)

    # A new exported table of string pointers: the build fails and says which symbol, the new
    # library is kept, and the check keeps failing, in the build and as a test.
    project.library_source.write_text(DEMO_C + REGRESSION_C)
    failed = project.compile().expect_failure()
    assert names_symbol(failed.output, ADDED_SYMBOL), failed.output
    assert ADDED_SYMBOL in exported_symbols(find_library(project.build))
    again = project.compile().expect_failure()
    assert names_symbol(again.output, ADDED_SYMBOL), again.output
    tested = project.meson_run("test", "-C", BUILD_DIR, "--suite", "relro", "--no-rebuild",
                               "--print-errorlogs").expect_failure()
    assert names_symbol(tested.output, ADDED_SYMBOL), tested.output

    # The update accepts the change.
    project.compile("relro-baseline-update").expect(0)
    assert_checks_once(project)

    # With the library unchanged, an edited baseline and an edited policy each run the check
    # again (the depfile names both files). An update that changes nothing leaves the file as
    # it is, and the build a no-op.
    project.compile("relro-baseline-update").expect(0)
    assert_no_work(project.compile())
    touch(project.baseline)
    assert_checks_once(project)
    project.policy.write_text(project.policy.read_text() + "\n# reviewed\n")
    assert_checks_once(project)


def test_example_is_the_snippet() -> None:
    """examples/meson shows the snippet as it is, so copying either gives the same build."""
    assert SNIPPET.read_text() in (EXAMPLES / "meson" / "meson.build").read_text()


def test_example_builds_in_one_command(tmp_path: Path) -> None:
    meson = require_program("meson")
    require_program("ninja")
    source = tmp_path / PROJECT_DIR
    shutil.copytree(EXAMPLES / "meson", source)
    env = build_env(tool_bin=relrocheck_wrapper(tmp_path / "bin").parent)
    run([meson, "setup", BUILD_DIR], cwd=source, env=env).expect(0)
    run([meson, "compile", "-C", BUILD_DIR], cwd=source, env=env).expect(0)
