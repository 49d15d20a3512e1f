"""Rendering simple-API pages: escapes, PEP 592/658/700/714 fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchard.errors import InvalidInput
from orchard.protocols.pypi import names, render
from orchard.protocols.pypi.model import DistFile, ProjectPage
from orchard.protocols.pypi.negotiate import HTML, JSON_V1

SHA = "ab" * 32
META = "cd" * 32


def _page() -> ProjectPage:
    return ProjectPage(
        name="Holy.Grail",
        files=[
            DistFile(filename="holy_grail-1.0-py3-none-any.whl",
                     url="http://h/pypi/p/files/holy-grail/1.0/holy_grail-1.0-py3-none-any.whl",
                     version="1.0", hashes={"sha256": SHA}, size=1337,
                     requires_python='>=3.8,<4"><script>', core_metadata={"sha256": META},
                     upload_time=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
            DistFile(filename="holy_grail-0.9.tar.gz", url="http://h/x/holy_grail-0.9.tar.gz",
                     version="0.9", hashes={"sha256": SHA}, size=2048,
                     yanked="broken <build> & \"quotes\""),
            DistFile(filename="holy_grail-0.8.tar.gz", url="http://h/x/holy_grail-0.8.tar.gz",
                     version="0.8", size=1, yanked=True),
        ],
    )


def test_html_escapes_and_attributes() -> None:
    html = render.project_page(_page(), HTML).decode()
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta name="pypi:repository-version" content="1.1">' in html
    first, second, third = (line for line in html.splitlines() if line.startswith("<a "))
    assert f'#sha256={SHA}"' in first
    assert 'data-requires-python="&gt;=3.8,&lt;4&quot;&gt;&lt;script&gt;"' in first
    assert "<script>" not in html
    assert f'data-core-metadata="sha256={META}"' in first
    assert f'data-dist-info-metadata="sha256={META}"' in first
    assert 'data-yanked="broken &lt;build&gt; &amp; &quot;quotes&quot;"' in second
    assert "data-core-metadata" not in second
    assert 'data-yanked=""' in third
    assert "#" not in third.split('"')[1]  # no hashes, no fragment
    assert first.endswith(">holy_grail-1.0-py3-none-any.whl</a><br>")


def test_json_fields() -> None:
    doc = json.loads(render.project_page(_page(), JSON_V1))
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "holy-grail"
    assert doc["versions"] == ["0.8", "0.9", "1.0"]
    first, second, third = doc["files"]
    assert first["hashes"] == {"sha256": SHA}
    assert first["core-metadata"] == {"sha256": META}
    assert "dist-info-metadata" not in first and "data-dist-info-metadata" not in first
    assert first["upload-time"] == "2024-05-01T12:00:00.123456Z"
    assert first["size"] == 1337
    assert first["yanked"] is False
    assert first["requires-python"] == '>=3.8,<4"><script>'
    assert second["yanked"] == 'broken <build> & "quotes"'
    assert second["core-metadata"] is False
    assert third["hashes"] == {} and third["yanked"] is True
    assert "requires-python" not in third and "upload-time" not in third


def test_upload_time_is_utc() -> None:
    local = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert render.upload_time(local) == "2024-01-01T00:00:00.000000Z"
    assert render.upload_time(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000000Z"


def test_project_list() -> None:
    html = render.project_list(["Zeta_Pkg", "alpha", "<evil>"], HTML).decode()
    assert '<a href="zeta-pkg/">Zeta_Pkg</a>' in html
    assert "&lt;evil&gt;" in html and "<evil>" not in html
    doc = json.loads(render.project_list(["b", "A"], JSON_V1))
    assert doc == {"meta": {"api-version": "1.1"}, "projects": [{"name": "A"}, {"name": "b"}]}


@pytest.mark.parametrize(
    ("filename", "name", "version", "kind"),
    [
        ("Demo_Pkg-1.0-py3-none-any.whl", "demo-pkg", "1.0", "wheel"),
        ("demo_pkg-1.0rc1-1-cp311-cp311-manylinux_2_17_x86_64.whl", "demo-pkg", "1.0rc1",
         "wheel"),
        ("demo_pkg-2.0.tar.gz", "demo-pkg", "2.0", "sdist"),
        ("demo.pkg-2.0.post1.zip", "demo-pkg", "2.0.post1", "sdist"),
    ],
)
def test_filenames(filename: str, name: str, version: str, kind: str) -> None:
    dist = names.parse_filename(filename)
    assert (dist.name, dist.version, dist.kind) == (name, version, kind)


@pytest.mark.parametrize("filename", ["demo-1.0.egg", "demo-1.0.exe", "demo.whl",
                                      "demo-notaversion.tar.gz", "../x-1.0.tar.gz"])
def test_bad_filenames(filename: str) -> None:
    with pytest.raises(InvalidInput):
        names.parse_filename(filename)


def test_names() -> None:
    assert names.normalize("Foo.Bar__Baz") == "foo-bar-baz"
    for bad in ("", "-foo", "foo/bar", "a b", "ünï"):
        with pytest.raises(InvalidInput):
            names.normalize(bad)
    assert names.canonical_version("1.0-RC1") == "1.0rc1"
    with pytest.raises(InvalidInput):
        names.canonical_version("not-a-version")
