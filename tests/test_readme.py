"""The README's examples, run as a reader would run them.

The `report` example: the C source, the build command and the output are taken from the
README and the command's output must be exactly what the README shows. The CMake and Meson
sections: their project snippets and shell commands, taken from the README, build and check a
real library.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from buildsys import (
    DEMO_C,
    REPO,
    build_env,
    cmake_dir,
    relrocheck_wrapper,
    require_program,
    run,
)

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def shell_lines(block: str) -> list[str]:
    """Commands of a ```sh block, without comments and `git add` (no repository here)."""
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "git "))]


def test_report_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    require_program("cc")
    text = section("`relrocheck report`: what does a library cost?")
    (source,) = blocks(text, "c")
    build = re.search(r"built with `([^`]+)`", text)
    assert build, "the README says how the library is built"
    shown = re.search(r"```\n\$ (relrocheck report [^\n]+)\n(.*?)```", text, re.S)
    assert shown, "the README shows a report"
    command, expected = shown.groups()
    (tmp_path / "names.c").write_text(source)
    (tmp_path / "build").mkdir()
    env = build_env(tool_bin=relrocheck_wrapper(tmp_path / "bin").parent)
    run(["sh", "-c", build.group(1)], cwd=tmp_path, env=env).expect(0)
    result = run(["sh", "-c", command], cwd=tmp_path, env=env).expect(0)
    assert result.output == expected


def test_cmake_section_builds_and_checks(tmp_path: Path) -> None:
    require_program("cmake")
    require_program("ninja")
    text = section("CMake")
    cmakelists = blocks(text, "cmake")[0]
    commands = shell_lines(blocks(text, "sh")[0])
    assert commands[0] == "cmake -S . -B build", commands
    (tmp_path / "CMakeLists.txt").write_text(cmakelists)
    (tmp_path / "mylib.c").write_text(DEMO_C)
    (tmp_path / "relro.yaml").write_text("# relrocheck's defaults\n")
    env = build_env()
    # The README's way for a relrocheck that find_package cannot find through PATH, such as
    # the editable install of a test run.
    env["relrocheck_ROOT"] = cmake_dir(env)
    env["CMAKE_GENERATOR"] = "Ninja"
    for command in commands:
        run(["sh", "-c", command], cwd=tmp_path, env=env).expect(0)
    assert (tmp_path / "relro-baseline.json").is_file()
    built = run(["cmake", "--build", "build"], cwd=tmp_path, env=env).expect(0)
    assert "relrocheck: checking mylib" in built.output, built.output
    run(["cmake", "--build", "build", "--target", "relro-summary"], cwd=tmp_path,
        env=env).expect(0)
    assert "libmylib.so" in (tmp_path / "build" / "relro-summary.md").read_text()


def test_meson_section_builds_and_checks(tmp_path: Path) -> None:
    meson = require_program("meson")
    require_program("ninja")
    text = section("Meson")
    settings, option = blocks(text, "meson")[:2]
    commands = shell_lines(blocks(text, "sh")[0])
    (tmp_path / "meson.build").write_text(
        "project('mylib', 'c', meson_version: '>=0.62')\n"
        "libmylib = shared_library('mylib', 'mylib.c')\n" + settings)
    (tmp_path / "meson_options.txt").write_text(option)
    (tmp_path / "relro").mkdir()
    shutil.copy(REPO / "meson" / "relro.meson", tmp_path / "relro" / "meson.build")
    (tmp_path / "mylib.c").write_text(DEMO_C)
    (tmp_path / "relro.yaml").write_text("# relrocheck's defaults\n")
    env = build_env(tool_bin=relrocheck_wrapper(tmp_path / "bin").parent)
    env["PATH"] = f"{Path(meson).parent}:{env['PATH']}"
    assert commands[0] == "meson setup build", commands
    for command in commands:
        result = run(["sh", "-c", command], cwd=tmp_path, env=env).expect(0)
        if command == "meson compile -C build":
            assert "relro-check-mylib" in result.output, result.output
    assert (tmp_path / "relro-baseline.json").is_file()
    assert "libmylib.so" in (tmp_path / "build" / "relro-summary.md").read_text()


@pytest.mark.parametrize("snippet", ["CMake", "Meson"])
def test_readme_states_the_minimum_versions_the_integrations_check(snippet: str) -> None:
    if snippet == "CMake":
        config = (REPO / "cmake" / "relrocheckConfig.cmake").read_text()
        assert "CMAKE_VERSION VERSION_LESS 3.20" in config
        assert "CMake 3.20 or newer" in section("CMake")
    else:
        version = re.search(r"_relro_meson = '>=([0-9.]+)'",
                            (REPO / "meson" / "relro.meson").read_text())
        assert version, "the snippet states its minimum Meson"
        assert f"Meson {version.group(1)} or newer" in section("Meson")
