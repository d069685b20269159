"""The extension's description for the Extensions Index: CMakeLists.txt, LTNet.s4ext and LTNet.json agree, their
URLs into this repository point at files that exist, tests are registered where the README says, and every
Python file of a module is in its CMakeLists file list (a missing one is not installed into Slicer)."""

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAW_PREFIX = "https://raw.githubusercontent.com/ltnet/SlicerLTNet/main/"
#: The keys the index's catalog-entry schema (v1.0.x) allows; it rejects any other.
JSON_SCHEMA_KEYS = {
    "$schema",
    "category",
    "scm_url",
    "scm_revision",
    "scm_type",
    "build_dependencies",
    "dicom_support_rule",
    "build_subdirectory",
    "enabled",
    "tier",
}
#: "Name (Organization)", comma separated, as the index asks.
CONTRIBUTOR = re.compile(r"^[^(),]+ \([^()]+\)$")


def cmake_extension_variables() -> dict[str, str]:
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    quoted = re.findall(r'^set\(EXTENSION_(\w+) "([^"]*)"\)', text, flags=re.M)
    bare = re.findall(r"^set\(EXTENSION_(\w+) ([^\s\")]+)\)", text, flags=re.M)
    return dict(bare + quoted)


def s4ext_fields() -> dict[str, str]:
    fields = {}
    for line in (REPO / "LTNet.s4ext").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
    return fields


def catalog_entry() -> dict:
    return json.loads((REPO / "LTNet.json").read_text(encoding="utf-8"))


def test_the_three_descriptions_agree():
    cmake, s4ext, entry = cmake_extension_variables(), s4ext_fields(), catalog_entry()
    pairs = {
        "HOMEPAGE": "homepage",
        "CATEGORY": "category",
        "CONTRIBUTORS": "contributors",
        "DESCRIPTION": "description",
        "ICONURL": "iconurl",
        "SCREENSHOTURLS": "screenshoturls",
        "DEPENDS": "depends",
    }
    for cmake_name, s4ext_name in pairs.items():
        assert cmake[cmake_name] == s4ext[s4ext_name], f"CMakeLists.txt and LTNet.s4ext differ on {s4ext_name}"
    assert entry["category"] == cmake["CATEGORY"]
    assert entry["build_dependencies"] == cmake["DEPENDS"].split()
    assert entry["scm_url"] == s4ext["scmurl"] and entry["scm_revision"] == s4ext["scmrevision"]
    assert entry["build_subdirectory"] == s4ext["build_subdirectory"] == cmake["BUILD_SUBDIRECTORY"]
    assert set(entry) <= JSON_SCHEMA_KEYS, f"keys the index rejects: {set(entry) - JSON_SCHEMA_KEYS}"


def test_contributors_are_name_and_organization():
    contributors = cmake_extension_variables()["CONTRIBUTORS"]
    for contributor in contributors.split(", "):
        assert CONTRIBUTOR.match(contributor), f"{contributor!r} is not 'Name (Organization)'"
    for module in ("LTNetTransfer", "LTNetTraining"):
        assert module_contributors(module) == contributors.split(", ")


def module_contributors(module: str) -> list[str]:
    """The `self.parent.contributors = [...]` list of a module file, read without importing it."""
    tree = ast.parse((REPO / module / f"{module}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "self.parent.contributors":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module}.py sets no contributors")


def repository_urls() -> list[str]:
    cmake, s4ext = cmake_extension_variables(), s4ext_fields()
    urls = [cmake["ICONURL"], *cmake["SCREENSHOTURLS"].split(), s4ext["iconurl"], *s4ext["screenshoturls"].split()]
    return sorted(set(urls))


@pytest.mark.parametrize("url", repository_urls())
def test_urls_point_at_files_in_the_repository(url):
    assert url.startswith(RAW_PREFIX), f"{url} is not a file of this repository's main branch"
    path = REPO / url[len(RAW_PREFIX) :]
    assert path.is_file(), f"{url}: {path.relative_to(REPO)} is not in the repository"
    if path.suffix == ".png":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size < 300_000, f"{path.name} is {path.stat().st_size} bytes: keep it under 300 KB"


def test_license_is_the_apache_license_pyproject_names():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'license = { text = "Apache-2.0" }' in pyproject
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it
    assert (REPO / "ltnet" / "sample" / "LICENSE-CC-BY-SA-4.0.txt").is_file()  # the sample keeps its own


def test_self_tests_are_registered_for_ctest_from_testing():
    top = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"if\(BUILD_TESTING\)\s*add_subdirectory\(Testing\)\s*endif\(\)", top)
    assert "add_subdirectory(Python)" in (REPO / "Testing" / "CMakeLists.txt").read_text(encoding="utf-8")
    registered = (REPO / "Testing" / "Python" / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"foreach\(module_name LTNetTransfer LTNetTraining\)", registered)
    assert "slicer_add_python_unittest(SCRIPT ${PROJECT_SOURCE_DIR}/${module_name}/${module_name}.py)" in registered
    for module in ("LTNetTransfer", "LTNetTraining"):  # one place only: not again in the module folder
        assert "slicer_add_python_unittest" not in (REPO / module / "CMakeLists.txt").read_text(encoding="utf-8")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'testpaths = \[[^\]]*"Testing/Python"', pyproject)  # the pytest suite runs in `make test`


@pytest.mark.parametrize("module", ["LTNetTransfer", "LTNetTraining"])
def test_every_module_python_file_is_installed(module):
    folder = REPO / module
    listed = set(re.findall(r"^\s*(\S+\.py)\s*$", (folder / "CMakeLists.txt").read_text(encoding="utf-8"), re.M))
    listed = {name.replace("${MODULE_NAME}", module) for name in listed}
    present = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts and path.parent.name != "Scripts"
    }
    assert present - listed == set(), f"{module}/CMakeLists.txt does not install {sorted(present - listed)}"
    assert listed - present == set(), f"{module}/CMakeLists.txt lists missing files {sorted(listed - present)}"
