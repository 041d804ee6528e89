"""Reading catalog files: the values `yaml.safe_load` would give, minus what it lets pass."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
import yaml

from cli.catalog_file import CatalogFileError, load_catalog_file
from tests.support import write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def loaded(tmp_path: Path, content: str, name: str = "catalog.yaml") -> object:
    return load_catalog_file(write(tmp_path, name, content))


def refusal(tmp_path: Path, content: str, name: str = "catalog.yaml") -> str:
    with pytest.raises(CatalogFileError) as caught:
        loaded(tmp_path, content, name)
    return str(caught.value).removeprefix(str(tmp_path / name) + ": ")


@pytest.mark.parametrize(
    "content",
    [
        EXAMPLE.read_text(encoding="utf-8"),
        "a: 1\nb: [1, 2.5, null, ~, true, no, 2001-12-14, 0x1f, 1e3, '1', !!str 7, !!int '8']\n",
        "base: &base {x: 1, y: 2}\nm: {<<: *base, y: 3}\nn: {<<: [*base, {x: 9, z: 1}], w: 0}\n",
        "a: &list [1, 2]\nb: *list\nc: !!binary aGVsbG8=\n",
        "s:\n  - - - a\n    - b\n  - c\nt: |\n  line\n  two\nu: >-\n  folded\n  text\n",
        "---\nk: v\n...\n",
        "? complex key\n: value\n1: one\n",
    ],
)
def test_yaml_gives_what_safe_load_gives(tmp_path: Path, content: str) -> None:
    assert loaded(tmp_path, content) == yaml.safe_load(content)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: 1\nb:\n  c: 2\n  c: 3\n", 'duplicate key "c" at line 4, column 3: keep one of them'),
        ("a: 1\n'a': 2\n", 'duplicate key "a" at line 2, column 1'),
        ("{1: a, 1.0: b}\n", "duplicate key 1.0 at line 1, column 8"),
        ("<<: {a: 1}\n<<: {b: 2}\n", 'duplicate key "<<" at line 2, column 1'),
        (
            "x: " + "[" * 100 + "]" * 100 + "\n",
            "nested more than 100 levels deep at line 1, column 103",
        ),
        (
            "a: b\n---\nc: d\n",
            "malformed YAML: expected a single document, found another at line 2",
        ),
        ("a: *nope\n", "malformed YAML: found undefined alias 'nope' at line 1, column 4"),
        ("a: &r [*r]\n", "malformed YAML: found undefined alias 'r' at line 1, column 8"),
        ("a: &x 1\nb: &x 2\n", "malformed YAML: found duplicate anchor 'x' at line 2, column 4"),
        ("a: !!set {x}\n", "malformed YAML: the tag tag:yaml.org,2002:set is not supported here"),
        ("a: !!timestamp x\n", "malformed YAML: 'x' is not a valid tag:yaml.org,2002:timestamp"),
        ("? [a]\n: 1\n", "malformed YAML: a list or mapping cannot be a key at line 1, column 6"),
        (
            "<<: 5\n",
            "malformed YAML: << merges a mapping or a list of mappings at line 1, column 1",
        ),
    ],
)
def test_yaml_refusals_say_what_and_where(tmp_path: Path, content: str, message: str) -> None:
    assert refusal(tmp_path, content).startswith(message)


def test_yaml_nests_up_to_the_limit(tmp_path: Path) -> None:
    content = "x: " + "[" * 99 + "]" * 99 + "\n"
    assert loaded(tmp_path, content) == yaml.safe_load(content)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1, "b": {"c": 1,\n  "c" : 2}}', 'duplicate key "c" at line 2, column 3'),
        # A string value that reads like a key is not one.
        (
            '{"x": "\\"a\\": 1", "y": ["a", "a"], "a": 1, "a": 2}',
            'duplicate key "a" at line 1, column 44',
        ),
        ('{"x": ' + "[" * 100 + "]" * 100 + "}", "nested more than 100 levels deep"),
    ],
)
def test_json_refusals(tmp_path: Path, content: str, message: str) -> None:
    assert refusal(tmp_path, content, "catalog.json").startswith(message)


def test_json_keys_may_repeat_across_objects_and_a_bom_is_dropped(tmp_path: Path) -> None:
    content = '\ufeff{"markets": [{"code": "a"}, {"code": "b"}]}'
    assert loaded(tmp_path, content, "catalog.json") == {"markets": [{"code": "a"}, {"code": "b"}]}


def test_a_large_yaml_file_takes_memory_for_its_values_only(tmp_path: Path) -> None:
    entries = "".join(
        f"  - code: m{i:06d}\n    name: Märket {i:06d}\n    phone_region: US\n" for i in range(5000)
    )
    path = Path(write(tmp_path, "large.yaml", "markets:\n" + entries))
    tracemalloc.start()
    try:
        document = load_catalog_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(document["markets"]) == 5000  # type: ignore[arg-type]
    # Building a node tree first (yaml.safe_load) peaks at about 80 times the file's size.
    assert peak < 20 * path.stat().st_size
