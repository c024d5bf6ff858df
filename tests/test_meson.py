"""End to end: the Meson snippet meson/relro.meson in real Meson + Ninja builds.

Each test project uses the snippet as its README says: copied unchanged to relro/meson.build,
included with subdir('relro') after meson.build set relro_libraries, relro_policy and
relro_baseline, with the `relrocheck` feature option declared in meson_options.txt. The projects
live in temporary folders whose paths hold a space. Meson finds `relrocheck` on PATH: a wrapper
that runs the relrocheck this test run imports.
"""

from __future__ import annotations

import json
import os
import shlex
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
    accept_commands,
    build_env,
    exported_symbols,
    find_library,
    names_symbol,
    relrocheck_wrapper,
    require_program,
    run,
    run_pasted,
    summary_of_grown_demo,
    touch,
)

SNIPPET = REPO / "meson" / "relro.meson"

OPTIONS = """\
option('relrocheck', type: 'feature', value: 'auto',
       description: 'check shared libraries with relrocheck after they link')
"""

PROJECT = """\
project('relrodemo', 'c', meson_version: '>=0.62')
subdir('lib')  # defines libdemo

relro_libraries = {'demo': libdemo}
relro_policy = files('relro.yaml')
relro_baseline = meson.current_source_dir() / 'relro-baseline.json'
subdir('relro')
"""

CHECK_DESCRIPTION = "relro-check-demo"


def write_project(source: Path, meson_build: str, lib_meson_build: str) -> None:
    (source / "lib").mkdir(parents=True)
    (source / "relro").mkdir()
    (source / "meson.build").write_text(meson_build)
    (source / "meson_options.txt").write_text(OPTIONS)
    shutil.copy(SNIPPET, source / "relro" / "meson.build")
    (source / "lib" / "meson.build").write_text(lib_meson_build)
    (source / "lib" / "demo.c").write_text(DEMO_C)
    (source / "relro.yaml").write_text(POLICY_YAML)


class MesonProject:
    def __init__(self, root: Path, meson_build: str = PROJECT,
                 lib_meson_build: str = "libdemo = shared_library('demo', 'demo.c')\n",
                 with_relrocheck: bool = True) -> None:
        self.meson = require_program("meson")
        require_program("ninja")
        self.source = root / PROJECT_DIR
        self.build = self.source / BUILD_DIR
        self.policy = self.source / "relro.yaml"
        self.baseline = self.source / "relro-baseline.json"
        self.library_source = self.source / "lib" / "demo.c"
        if with_relrocheck:
            self.env = build_env(tool_bin=relrocheck_wrapper(root / "bin").parent)
        else:
            self.env = build_env()
            self.env["PATH"] = path_without_relrocheck(root, self.meson, require_program("ninja"))
        write_project(self.source, meson_build, lib_meson_build)

    def meson_run(self, *args: str) -> Result:
        return run([self.meson, *args], cwd=self.source, env=self.env)

    def setup(self, *options: str) -> Result:
        return self.meson_run("setup", BUILD_DIR, *options)

    def compile(self, target: str = "") -> Result:
        return self.meson_run("compile", "-C", BUILD_DIR, *([target] if target else []))


def path_without_relrocheck(root: Path, *programs: str) -> str:
    """A PATH with the compilers and `programs` but no relrocheck anywhere on it."""
    tools = root / "tools-without-relrocheck"
    tools.mkdir(parents=True, exist_ok=True)
    for program in programs:
        (tools / Path(program).name).symlink_to(program)
    path = [str(tools)] + [p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (Path(p) / "relrocheck").exists()]
    assert shutil.which("relrocheck", path=os.pathsep.join(path)) is None
    return os.pathsep.join(path)


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
    project.setup().expect(0)

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
    # Without --print-errorlogs: the failing test shows relrocheck's reasons by itself.
    tested = project.meson_run("test", "-C", BUILD_DIR, "--suite", "relro",
                               "--no-rebuild").expect_failure()
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


@pytest.mark.parametrize("which", [0, 1], ids=["meson compile", "relrocheck"])
def test_printed_accept_commands_work_pasted_from_the_root(project: MesonProject,
                                                          which: int) -> None:
    """Each command the failure offers, run from `/`, makes the next build pass."""
    project.setup().expect(0)
    project.compile("relro-baseline-update").expect(0)
    project.library_source.write_text(DEMO_C + REGRESSION_C)
    failed = project.compile().expect_failure()
    commands = accept_commands(failed.output)
    assert commands[0] == f"meson compile -C '{project.build}' relro-baseline-update"
    raw = shlex.split(commands[1])
    assert raw[:3] == ["relrocheck", "--baseline", "update"], commands
    paths = [a for a in raw[3:] if not a.startswith("--")]
    assert paths and all(os.path.isabs(p) and ".." not in Path(p).parts for p in paths), raw
    run_pasted(commands[which], project.env).expect(0)
    assert_checks_once(project)


def test_static_library_is_skipped_and_both_libraries_checks_the_shared_one(
        tmp_path: Path) -> None:
    project = MesonProject(
        tmp_path,
        PROJECT.replace("{'demo': libdemo}", "{'demo': libdemo, 'archive': libarchive}"),
        "libdemo = both_libraries('demo', 'demo.c')\n"
        "libarchive = static_library('archive', 'demo.c')\n")
    setup = project.setup().expect(0)
    skipped = [line for line in setup.output.splitlines() if "not checking archive" in line]
    assert len(skipped) == 1 and "static library" in skipped[0], setup.output
    project.compile("relro-baseline-update").expect(0)
    recorded = json.loads(project.baseline.read_text())
    assert set(recorded["libraries"]) == {"libdemo.so"}, recorded
    assert_checks_once(project)


def test_feature_option_and_a_missing_relrocheck(tmp_path: Path) -> None:
    """auto without relrocheck builds the library and checks nothing; enabled requires it;
    disabled checks nothing even where relrocheck is installed."""
    absent = MesonProject(tmp_path / "absent", with_relrocheck=False)
    setup = absent.setup().expect(0)
    assert "relrocheck: not on PATH" in setup.output, setup.output
    built = absent.compile().expect(0)
    assert CHECK_DESCRIPTION not in built.output, built.output
    assert find_library(absent.build).is_file()
    shutil.rmtree(absent.build)
    required = absent.setup("-Drelrocheck=enabled").expect_failure()
    assert "relrocheck" in required.output and "not found" in required.output, required.output

    off = MesonProject(tmp_path / "off")
    off.setup("-Drelrocheck=disabled").expect(0)
    assert CHECK_DESCRIPTION not in off.compile().expect(0).output
    assert off.compile("relro-baseline-update").returncode != 0  # no such target


SUBPROJECT = """\
project('libsub', 'c', meson_version: '>=0.62')
libdemo = library('demo', 'demo.c')
libsub_dep = declare_dependency(link_with: libdemo)

relro_libraries = {'demo': libdemo}
relro_policy = files('relro.yaml')
relro_baseline = meson.current_source_dir() / 'relro-baseline.json'
subdir('relro')
"""

PARENT = """\
project('parent', 'c', meson_version: '>=0.62')
sub = subproject('libsub', default_options: [DEFAULTS])
libparent = shared_library('parent', 'parent.c', dependencies: sub.get_variable('libsub_dep'))

relro_libraries = {'parent': libparent}
relro_policy = files('relro.yaml')
relro_baseline = meson.current_source_dir() / 'relro-baseline.json'
subdir('relro')
"""


def _parent_with_subproject(root: Path, defaults: str) -> MesonProject:
    project = MesonProject(root, PARENT.replace("DEFAULTS", defaults))
    (project.source / "parent.c").write_text(
        "extern const char *demo_color(unsigned long);\n"
        "const char *parent_name(void) { return demo_color(0); }\n")
    sub = project.source / "subprojects" / "libsub"
    sub.mkdir(parents=True)
    write_project(sub, SUBPROJECT, "")
    (sub / "lib").rename(sub / "unused")
    shutil.copy(project.library_source, sub / "demo.c")
    return project


@pytest.mark.parametrize("kind", ["static", "shared"])
def test_parent_and_subproject_both_using_the_snippet(tmp_path: Path, kind: str) -> None:
    # A subproject checks nothing unless its parent asks.
    quiet = _parent_with_subproject(tmp_path / "quiet", f"'default_library={kind}'")
    setup = quiet.setup().expect(0)
    assert "not checking libsub, a subproject" in setup.output, setup.output
    quiet.compile("relro-baseline-update").expect(0)
    assert set(json.loads(quiet.baseline.read_text())["libraries"]) == {"libparent.so"}
    quiet.compile().expect(0)

    # The parent asks: a static subproject skips its library with one message, a shared one
    # checks it under target names of its own, so that the parent's stay unambiguous.
    asked = _parent_with_subproject(
        tmp_path / "asked", f"'default_library={kind}', 'relrocheck=enabled'")
    setup = asked.setup().expect(0)
    sub_baseline = asked.source / "subprojects" / "libsub" / "relro-baseline.json"
    asked.compile("relro-baseline-update").expect(0)
    assert set(json.loads(asked.baseline.read_text())["libraries"]) == {"libparent.so"}
    if kind == "static":
        assert setup.output.count("not checking demo: a static library") == 1, setup.output
        assert asked.compile("relro-baseline-update-libsub").returncode != 0
        assert not sub_baseline.exists()
    else:
        # The subproject's check fails without a baseline and names the command that works.
        failed = asked.compile().expect_failure()
        command = accept_commands(failed.output)[0]
        assert command == (f"ninja -C '{asked.build}' "
                           "libsub@@relro-baseline-update-libsub"), failed.output
        run_pasted(command, asked.env).expect(0)
        assert set(json.loads(sub_baseline.read_text())["libraries"]) == {"libdemo.so"}
    asked.compile().expect(0)
    asked.meson_run("test", "-C", BUILD_DIR, "--suite", "relro").expect(0)


def test_summary_covers_every_checked_library(tmp_path: Path) -> None:
    project = MesonProject(
        tmp_path,
        PROJECT.replace("{'demo': libdemo}", "{'demo': libdemo, 'other': libother}"),
        "libdemo = shared_library('demo', 'demo.c')\n"
        "libother = shared_library('other', 'other.c')\n")
    (project.source / "lib" / "other.c").write_text(DEMO_C)
    project.setup().expect(0)
    project.compile("relro-baseline-update").expect(0)
    (project.source / "lib" / "demo.c").write_text(DEMO_C + REGRESSION_C)
    project.compile("relro-summary").expect_failure()  # its verdict: libdemo.so grew
    summary_of_grown_demo(project.build, ADDED_SYMBOL)


def test_example_is_the_snippet() -> None:
    """examples/meson uses the snippet unchanged, as the README tells users to."""
    assert (EXAMPLES / "meson" / "relro" / "meson.build").read_text() == SNIPPET.read_text()


def test_example_builds_in_one_command(tmp_path: Path) -> None:
    meson = require_program("meson")
    require_program("ninja")
    source = tmp_path / PROJECT_DIR
    shutil.copytree(EXAMPLES / "meson", source)
    env = build_env(tool_bin=relrocheck_wrapper(tmp_path / "bin").parent)
    run([meson, "setup", BUILD_DIR], cwd=source, env=env).expect(0)
    run([meson, "compile", "-C", BUILD_DIR], cwd=source, env=env).expect(0)
