"""End to end: add_relro_check() in real CMake builds (Ninja, Unix Makefiles, Ninja Multi-Config).

Each test writes a small C library project into a temporary folder whose path holds a space,
configures it with the CMake package that `relrocheck --cmake-dir` names, and builds it; the
build runs the real relrocheck. The library is defined in a subdirectory added after the
add_relro_check() call, so the check must resolve a target of another directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
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
    cmake_dir,
    exported_symbols,
    find_library,
    names_symbol,
    relrocheck_command,
    require_program,
    run,
    run_pasted,
    summary_of_grown_demo,
    touch,
)

import relrocheck

PROJECT_CMAKELISTS = """\
cmake_minimum_required(VERSION 3.20)
project(relrodemo C)
enable_testing()

find_package(relrocheck 0.1 CONFIG REQUIRED)
message(STATUS "relrocheck command: ${relrocheck_COMMAND}")

# The target is defined in lib/, added below: the check resolves it at generate time.
add_relro_check(demo
  POLICY "policy/relro policy.yaml"
  BASELINE "policy/relro baseline.json"
  TEST)
add_subdirectory(lib)
"""

CHECK_COMMENT = "relrocheck: checking demo"


class CMakeProject:
    """A checked library project and its build tree, both under a folder with a space."""

    def __init__(self, root: Path, generator: str) -> None:
        self.generator = generator
        self.source = root / PROJECT_DIR
        self.build = root / PROJECT_DIR / BUILD_DIR
        self.policy = self.source / "policy" / "relro policy.yaml"
        self.baseline = self.source / "policy" / "relro baseline.json"
        self.library_source = self.source / "lib" / "demo.c"
        self.env = build_env()
        (self.source / "lib").mkdir(parents=True)
        self.policy.parent.mkdir()
        (self.source / "CMakeLists.txt").write_text(PROJECT_CMAKELISTS)
        (self.source / "lib" / "CMakeLists.txt").write_text("add_library(demo SHARED demo.c)\n")
        self.library_source.write_text(DEMO_C)
        self.policy.write_text(POLICY_YAML)

    @property
    def multi_config(self) -> bool:
        return self.generator == "Ninja Multi-Config"

    def configure(self, *options: str) -> Result:
        return run(
            ["cmake", "-S", self.source, "-B", self.build, "-G", self.generator,
             f"-Drelrocheck_DIR={cmake_dir(self.env)}",
             "-DRELROCHECK_COMMAND=" + ";".join(relrocheck_command()), *options],
            env=self.env,
        )

    def build_target(self, target: str = "") -> Result:
        argv: list[str | os.PathLike[str]] = ["cmake", "--build", self.build]
        if self.multi_config:
            argv += ["--config", "Release"]
        if target:
            argv += ["--target", target]
        return run(argv, env=self.env)

    def library(self) -> Path:
        return find_library(self.build)


GENERATORS = {
    "Ninja": "ninja",
    "Unix Makefiles": "make",
    "Ninja Multi-Config": "ninja",
}


@pytest.fixture(params=list(GENERATORS))
def project(request: pytest.FixtureRequest, tmp_path: Path) -> CMakeProject:
    require_program("cmake")
    require_program(GENERATORS[request.param])
    return CMakeProject(tmp_path, request.param)


def assert_no_work(project: CMakeProject, result: Result) -> None:
    result.expect(0)
    if project.generator == "Unix Makefiles":
        assert CHECK_COMMENT not in result.output, result.output
    else:
        assert "ninja: no work to do" in result.output, result.output


def assert_ctest_names_the_regression(project: CMakeProject) -> None:
    """After a new exported string table, the library alone builds and its relro test fails
    naming the symbol."""
    project.library_source.write_text(DEMO_C + REGRESSION_C)
    project.build_target("demo").expect(0)  # the library alone, without its check
    failed = run(["ctest", "--test-dir", project.build, "-L", "relro", "--output-on-failure"],
                 env=project.env).expect_failure()
    assert names_symbol(failed.output, ADDED_SYMBOL), failed.output


def assert_checks_once(project: CMakeProject) -> None:
    """The next build runs the check and passes; the one after it is a no-op."""
    result = project.build_target().expect(0)
    assert CHECK_COMMENT in result.output, result.output
    assert_no_work(project, project.build_target())


def test_check_gates_the_build_and_baseline_update_accepts(project: CMakeProject) -> None:
    project.configure().expect(0)

    # First baseline, written by the aggregate update target; then the build passes.
    project.build_target("relro-baseline-update").expect(0)
    assert project.baseline.is_file()
    assert_checks_once(project)

    # A new exported table of string pointers: the build fails and says which symbol.
    project.library_source.write_text(DEMO_C + REGRESSION_C)
    failed = project.build_target().expect_failure()
    assert names_symbol(failed.output, ADDED_SYMBOL), failed.output
    # The new library is kept: only the check's stamp is an output of the failed step.
    assert ADDED_SYMBOL in exported_symbols(project.library())
    # And it keeps failing: a failed check leaves nothing behind that would make it pass.
    again = project.build_target().expect_failure()
    assert names_symbol(again.output, ADDED_SYMBOL), again.output

    # The per-target update accepts the change.
    project.build_target("relro-baseline-update-demo").expect(0)
    assert_checks_once(project)

    # With the library unchanged, a baseline update (it removes the stamp), a baseline edited
    # outside the build (it did not exist at configure time: only relrocheck's depfile names
    # it) and an edited policy each run the check again.
    project.build_target("relro-baseline-update").expect(0)
    assert_checks_once(project)
    touch(project.baseline)
    assert_checks_once(project)
    project.policy.write_text(project.policy.read_text() + "\n# reviewed\n")
    assert_checks_once(project)


def test_ctest_runs_the_check(tmp_path: Path) -> None:
    require_program("cmake")
    require_program("ctest")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    project.configure().expect(0)
    project.build_target("relro-baseline-update").expect(0)
    project.build_target().expect(0)
    run(["ctest", "--test-dir", project.build, "-L", "relro", "--output-on-failure"],
        env=project.env).expect(0)
    assert_ctest_names_the_regression(project)


def test_no_all_and_extra_args(tmp_path: Path) -> None:
    """NO_ALL keeps the check out of the default build; ARGS reach `relrocheck check`."""
    require_program("cmake")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    cmakelists = project.source / "CMakeLists.txt"
    cmakelists.write_text(cmakelists.read_text().replace(
        "  TEST)", '  NO_ALL\n  ARGS --format json)'))
    project.configure().expect(0)
    project.build_target("relro-baseline-update").expect(0)
    assert CHECK_COMMENT not in project.build_target().expect(0).output
    checked = project.build_target("relro-check-demo").expect(0)
    assert '"status": "ok"' in checked.output, checked.output


def test_a_relrocheck_that_does_not_run_fails_find_package(tmp_path: Path) -> None:
    require_program("cmake")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    broken = tmp_path / "broken relrocheck"
    broken.write_text("#!/bin/sh\necho 'No module named relrocheck' >&2\nexit 1\n")
    broken.chmod(0o755)
    result = project.configure(f"-DRELROCHECK_COMMAND={broken}").expect_failure()
    assert "No module named relrocheck" in result.output, result.output
    assert "RELROCHECK_COMMAND" in result.output, result.output


def test_finds_relrocheck_without_command_override(tmp_path: Path) -> None:
    """No RELROCHECK_COMMAND: the package finds a relrocheck that runs, and the build uses it."""
    require_program("cmake")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    result = run(["cmake", "-S", project.source, "-B", project.build, "-G", "Ninja",
                  f"-Drelrocheck_DIR={cmake_dir(project.env)}"], env=project.env).expect(0)
    found = re.search(r"relrocheck command: (.*)", result.output)
    assert found and found.group(1).strip(), result.output
    project.build_target("relro-baseline-update").expect(0)
    project.build_target().expect(0)


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with relrocheck installed the way `pip install .` does it.

    Returns the environment's prefix. Its dependencies come from this test run's environment
    (a .pth file), so nothing is downloaded.
    """
    require_program("cmake")
    if "share/cmake/relrocheck" not in (REPO / "pyproject.toml").read_text():
        pytest.skip("pyproject.toml does not install the CMake package to share/cmake/relrocheck")
    root = tmp_path_factory.mktemp("wheel install")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, source / name)
    for name in ("relrocheck", "cmake"):
        shutil.copytree(REPO / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    prefix = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", prefix]).expect(0)
    python = prefix / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    outer_site = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    Path(purelib.expect(0).output.strip(), "_outer_environment.pth").write_text(
        "".join(f"{p}\n" for p in outer_site))
    # Build with this environment's setuptools where it can make wheels by itself (70.1 and
    # later, or with `wheel`); otherwise pip fetches them into an isolated build environment.
    isolation = ["--no-build-isolation", "--no-index"] if _can_build_wheels() else []
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", *isolation, source]).expect(0)
    return prefix


def _can_build_wheels() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(part) for part in re.findall(r"\d+", setuptools.__version__)[:2])
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_wheel_install_is_found_through_path(wheel_install: Path, tmp_path: Path) -> None:
    """With the environment's bin/ on PATH, find_package() alone finds the package and the
    relrocheck beside it: no relrocheck_DIR, no RELROCHECK_COMMAND."""
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    project.env["PATH"] = os.pathsep.join((str(wheel_install / "bin"), project.env["PATH"]))
    del project.env["PYTHONPATH"]  # the build must run the installed relrocheck
    result = run(["cmake", "-S", project.source, "-B", project.build, "-G", "Ninja"],
                 env=project.env).expect(0)
    assert f"relrocheck command: {wheel_install / 'bin' / 'relrocheck'}" in result.output
    cache = (project.build / "CMakeCache.txt").read_text()
    assert f"relrocheck_DIR:PATH={wheel_install / 'share' / 'cmake' / 'relrocheck'}" in cache
    project.build_target("relro-baseline-update").expect(0)
    project.build_target().expect(0)


def test_wheel_install_cmake_dir_is_package_data(wheel_install: Path, tmp_path: Path) -> None:
    """`relrocheck --cmake-dir` of an installed wheel names the package's own copy, and that
    copy finds the relrocheck script of its environment even when PATH does not lead there."""
    require_program("ninja")
    relrocheck_script = wheel_install / "bin" / "relrocheck"
    folder = run([relrocheck_script, "--cmake-dir"]).expect(0).output.strip()
    assert Path(folder).parts[-2:] == ("relrocheck", "cmake"), folder
    assert "site-packages" in Path(folder).parts, folder
    project = CMakeProject(tmp_path, "Ninja")
    del project.env["PYTHONPATH"]
    result = run(["cmake", "-S", project.source, "-B", project.build, "-G", "Ninja",
                  f"-Drelrocheck_DIR={folder}"], env=project.env).expect(0)
    assert f"relrocheck command: {relrocheck_script}" in result.output


def test_config_version_matches_the_package() -> None:
    text = (REPO / "cmake" / "relrocheckConfigVersion.cmake").read_text()
    version = re.search(r'set\(PACKAGE_VERSION "([^"]+)"\)', text)
    assert version and version.group(1) == relrocheck.__version__


@pytest.mark.parametrize(
    "requested, compatible",
    [("", True), ("0.1", True), ("0.1.0", True), ("0", False), ("0.2", False),
     ("1.0", False), ("0.0.9...0.3", True), ("0.2...<0.4", False)],
)
def test_config_version_compatibility(tmp_path: Path, requested: str, compatible: bool) -> None:
    require_program("cmake")
    script = tmp_path / "probe.cmake"
    major_minor = requested.split("...")[0].split(".") + ["0", "0"]
    script.write_text(
        f'set(PACKAGE_FIND_VERSION "{requested.split("...")[0]}")\n'
        f'set(PACKAGE_FIND_VERSION_MAJOR "{major_minor[0] or 0}")\n'
        f'set(PACKAGE_FIND_VERSION_MINOR "{major_minor[1]}")\n'
        + _range_variables(requested)
        + f'include("{REPO / "cmake" / "relrocheckConfigVersion.cmake"}")\n'
        'message("compatible=${PACKAGE_VERSION_COMPATIBLE}")\n'
    )
    result = run(["cmake", "-P", script]).expect(0)
    assert f"compatible={'TRUE' if compatible else 'FALSE'}" in result.output, result.output


def _range_variables(requested: str) -> str:
    if "..." not in requested:
        return ""
    low, high = requested.split("...")
    upper = "EXCLUDE" if high.startswith("<") else "INCLUDE"
    return (f'set(PACKAGE_FIND_VERSION_RANGE "{requested}")\n'
            'set(PACKAGE_FIND_VERSION_RANGE_MIN "INCLUDE")\n'
            f'set(PACKAGE_FIND_VERSION_RANGE_MAX "{upper}")\n'
            f'set(PACKAGE_FIND_VERSION_MIN "{low}")\n'
            f'set(PACKAGE_FIND_VERSION_MAX "{high.lstrip("<")}")\n')


def test_example_builds_in_one_command(tmp_path: Path) -> None:
    require_program("cmake")
    require_program("ninja")
    source = tmp_path / PROJECT_DIR
    shutil.copytree(EXAMPLES / "cmake", source)
    build = tmp_path / BUILD_DIR
    env = build_env()
    run(["cmake", "-S", source, "-B", build, "-G", "Ninja",
         f"-Drelrocheck_DIR={cmake_dir(env)}",
         "-DRELROCHECK_COMMAND=" + ";".join(relrocheck_command())], env=env).expect(0)
    run(["cmake", "--build", build], env=env).expect(0)



MIXED_LIBRARIES = """\
add_library(demo SHARED demo.c)
add_library(demo_static STATIC demo.c)
add_library(demo_objects OBJECT demo.c)
add_library(demo_headers INTERFACE)
"""


@pytest.mark.parametrize("generator", ["Ninja", "Unix Makefiles"])
def test_static_object_and_interface_targets_are_skipped(tmp_path: Path, generator: str) -> None:
    require_program("cmake")
    require_program(GENERATORS[generator])
    project = CMakeProject(tmp_path, generator)
    cmakelists = project.source / "CMakeLists.txt"
    cmakelists.write_text(cmakelists.read_text().replace(
        "add_subdirectory(lib)",
        "add_relro_check(demo_static)\nadd_relro_check(demo_objects)\n"
        "add_relro_check(demo_headers)\nadd_subdirectory(lib)"))
    (project.source / "lib" / "CMakeLists.txt").write_text(MIXED_LIBRARIES)
    configured = project.configure().expect(0)
    for target, kind in (("demo_static", "STATIC_LIBRARY"), ("demo_objects", "OBJECT_LIBRARY"),
                         ("demo_headers", "INTERFACE_LIBRARY")):
        lines = [line for line in configured.output.splitlines()
                 if f"not checking {target}:" in line]
        assert len(lines) == 1 and kind in lines[0], configured.output
    project.build_target("relro-baseline-update").expect(0)
    assert set(json.loads(project.baseline.read_text())["libraries"]) == {"libdemo.so"}
    assert_checks_once(project)


@pytest.mark.parametrize("generator", ["Ninja", "Unix Makefiles"])
@pytest.mark.parametrize("which", [0, 1], ids=["cmake --build", "relrocheck"])
def test_printed_accept_commands_work_pasted_from_the_root(tmp_path: Path, generator: str,
                                                          which: int) -> None:
    require_program("cmake")
    require_program(GENERATORS[generator])
    project = CMakeProject(tmp_path, generator)
    project.configure().expect(0)
    project.build_target("relro-baseline-update").expect(0)
    project.library_source.write_text(DEMO_C + REGRESSION_C)
    failed = project.build_target().expect_failure()
    # The build's log shows relrocheck's command, not CMake's depfile plumbing.
    assert "cmake_transform_depfile" not in failed.output, failed.output
    commands = accept_commands(failed.output)
    assert commands[0] == (f"cmake --build '{project.build}' "
                           "--target relro-baseline-update-demo"), failed.output
    assert commands[1].startswith("relrocheck --baseline update "), commands
    run_pasted(commands[which], project.env).expect(0)
    assert_checks_once(project)


def test_relrocheck_enable_off_checks_nothing(tmp_path: Path) -> None:
    """RELROCHECK_ENABLE=OFF: no check, no relrocheck run at configure (a broken one is fine)."""
    require_program("cmake")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    broken = tmp_path / "broken relrocheck"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    configured = project.configure(f"-DRELROCHECK_COMMAND={broken}",
                                   "-DRELROCHECK_ENABLE=OFF").expect(0)
    assert configured.output.count("RELROCHECK_ENABLE is OFF") == 1, configured.output
    built = project.build_target().expect(0)
    assert CHECK_COMMENT not in built.output
    assert project.library().is_file()
    assert project.build_target("relro-baseline-update").returncode != 0  # no such target


OPTIONAL_CMAKELISTS = """\
cmake_minimum_required(VERSION 3.20)
project(relrodemo C)
add_subdirectory(lib)

find_package(relrocheck 0.1 CONFIG QUIET)
if(COMMAND add_relro_check)
  add_relro_check(demo POLICY "policy/relro policy.yaml" BASELINE "policy/relro baseline.json")
else()
  message(STATUS "relrocheck not found: libraries are not checked")
endif()
"""


def test_optional_pattern_without_relrocheck(tmp_path: Path) -> None:
    """The README's optional pattern: a contributor without relrocheck builds the library."""
    require_program("cmake")
    ninja = require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    (project.source / "CMakeLists.txt").write_text(OPTIONAL_CMAKELISTS)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ninja").symlink_to(ninja)
    cmake = shutil.which("cmake", path=project.env["PATH"])
    assert cmake is not None
    path = [str(tools)] + [p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (Path(p) / "relrocheck").exists()
                           and not Path(p, "..", "share", "cmake", "relrocheck").exists()]
    project.env["PATH"] = os.pathsep.join(path)
    del project.env["PYTHONPATH"]
    assert shutil.which("relrocheck", path=project.env["PATH"]) is None
    configured = run([cmake, "-S", project.source, "-B", project.build, "-G", "Ninja"],
                     env=project.env).expect(0)
    assert "relrocheck not found: libraries are not checked" in configured.output
    built = run([cmake, "--build", project.build], env=project.env).expect(0)
    assert CHECK_COMMENT not in built.output
    assert project.library().is_file()

    # The same project with relrocheck found checks the library.
    project.env = build_env()
    shutil.rmtree(project.build)
    project.configure().expect(0)
    project.build_target("relro-baseline-update").expect(0)
    assert_checks_once(project)


def test_test_without_enable_testing(tmp_path: Path) -> None:
    """TEST registers a test ctest finds although the project never called enable_testing()."""
    require_program("cmake")
    require_program("ctest")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    cmakelists = project.source / "CMakeLists.txt"
    cmakelists.write_text(cmakelists.read_text().replace("enable_testing()\n", ""))
    assert "enable_testing" not in cmakelists.read_text()
    project.configure().expect(0)
    project.build_target("relro-baseline-update").expect(0)
    project.build_target().expect(0)
    listed = run(["ctest", "--test-dir", project.build, "-N", "-L", "relro"], env=project.env)
    assert "Total Tests: 1" in listed.expect(0).output, listed.output
    run(["ctest", "--test-dir", project.build, "-L", "relro"], env=project.env).expect(0)
    assert_ctest_names_the_regression(project)


def test_summary_covers_every_checked_target(tmp_path: Path) -> None:
    require_program("cmake")
    require_program("ninja")
    project = CMakeProject(tmp_path, "Ninja")
    cmakelists = project.source / "CMakeLists.txt"
    # A second library, checked against relrocheck's defaults: no policy, its own baseline.
    cmakelists.write_text(cmakelists.read_text().replace(
        "add_subdirectory(lib)", "add_relro_check(other BASELINE other-baseline.json)\n"
        "add_subdirectory(lib)"))
    (project.source / "lib" / "other.c").write_text(DEMO_C)
    (project.source / "lib" / "CMakeLists.txt").write_text(
        "add_library(demo SHARED demo.c)\nadd_library(other SHARED other.c)\n")
    project.configure().expect(0)
    project.build_target("relro-baseline-update").expect(0)
    assert (project.source / "other-baseline.json").is_file()
    project.build_target("relro-summary").expect(0)
    project.library_source.write_text(DEMO_C + REGRESSION_C)
    project.build_target("relro-summary").expect_failure()  # its verdict: libdemo.so grew
    by_name = summary_of_grown_demo(project.build, ADDED_SYMBOL)
    assert by_name["libother.so"]["baseline_file"] == str(project.source / "other-baseline.json")


def test_cmake_root_entry_point_finds_the_package(wheel_install: Path, tmp_path: Path) -> None:
    """scikit-build-core sets <name>_ROOT from the `cmake.root` entry points of the build
    environment: this does the same with the installed wheel's entry point."""
    require_program("ninja")
    python = wheel_install / "bin" / "python"
    found = run([python, "-c",
                 "from importlib.metadata import entry_points\n"
                 "import importlib.util\n"
                 "(ep,) = [e for e in entry_points(group='cmake.root') if e.name == 'relrocheck']\n"
                 "print(list(importlib.util.find_spec(ep.value).submodule_search_locations)[0])"
                 ], cwd=tmp_path).expect(0)  # not the source tree: its egg-info would answer
    root = found.output.strip()
    assert Path(root, "relrocheckConfig.cmake").is_file(), root
    project = CMakeProject(tmp_path, "Ninja")
    project.env["relrocheck_ROOT"] = root
    del project.env["PYTHONPATH"]
    run(["cmake", "-S", project.source, "-B", project.build, "-G", "Ninja"],
        env=project.env).expect(0)
    cache = (project.build / "CMakeCache.txt").read_text()
    assert f"relrocheck_DIR:PATH={root}" in cache
