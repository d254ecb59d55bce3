"""The trust file: what is accepted, and every mistake reported as file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service.security.trust import TrustedIssuer, load_trust
from cds_service.yamlfile import FileProblems
from tests.security.keys import write_jwks


def _problems(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(FileProblems) as caught:
        load_trust(path)
    for problem in caught.value.problems:
        assert problem.path == path
        assert str(problem).startswith(f"{path}:{problem.line}: ")
    return [(p.line, p.message) for p in caught.value.problems]


def _trust(tmp_path: Path, text: str, name: str = "trust.yaml") -> Path:
    write_jwks(tmp_path / "keys.json")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_trust_file_is_loaded(tmp_path: Path) -> None:
    path = _trust(
        tmp_path,
        """\
# EHRs allowed to call
- iss: https://ehr.example.org
  jwks_file: keys.json
  tenant: example-hospital
- iss: https://sandbox.cds-hooks.org
  jwks_url: https://sandbox.cds-hooks.org/.well-known/jwks.json
  jku:
    - https://sandbox.cds-hooks.org/.well-known/jwks.json
- iss: http://localhost:9000
  jwks_url: http://localhost:9000/jwks.json
""",
    )
    assert load_trust(path) == {
        "https://ehr.example.org": TrustedIssuer(
            "https://ehr.example.org", (tmp_path / "keys.json").resolve(), None, (), "example-hospital"
        ),
        "https://sandbox.cds-hooks.org": TrustedIssuer(
            "https://sandbox.cds-hooks.org",
            None,
            "https://sandbox.cds-hooks.org/.well-known/jwks.json",
            ("https://sandbox.cds-hooks.org/.well-known/jwks.json",),
            None,
        ),
        "http://localhost:9000": TrustedIssuer(
            "http://localhost:9000", None, "http://localhost:9000/jwks.json", (), None
        ),
    }


def test_json_trust_file_is_accepted(tmp_path: Path) -> None:
    entries = [
        {"iss": "https://a.example", "jwks_file": "keys.json", "tenant": "a"},
        {"iss": "https://b.example", "jwks_url": "https://b.example/jwks", "jku": ["https://b.example/k"]},
    ]
    path = _trust(tmp_path, json.dumps(entries, indent=2), name="trust.json")
    issuers = load_trust(path)
    assert sorted(issuers) == ["https://a.example", "https://b.example"]
    assert issuers["https://a.example"].jwks_file == (tmp_path / "keys.json").resolve()
    assert issuers["https://a.example"].tenant == "a"
    assert issuers["https://b.example"].jwks_url == "https://b.example/jwks"
    assert issuers["https://b.example"].jku == ("https://b.example/k",)


def test_relative_jwks_file_is_resolved_against_the_trust_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "config" / "trust"
    (folder / "keys").mkdir(parents=True)
    write_jwks(folder / "keys" / "ehr.json")
    path = folder / "trust.yaml"
    path.write_text("- iss: https://ehr.example.org\n  jwks_file: keys/ehr.json\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the trust file's folder: keys/ehr.json does not exist here
    (issuer,) = load_trust(path).values()
    assert issuer.jwks_file == (folder / "keys" / "ehr.json").resolve()
    assert issuer.jwks_file is not None and issuer.jwks_file.is_absolute()


def test_relative_trust_file_path_also_resolves_its_jwks_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    write_jwks(folder / "keys.json")
    (folder / "trust.yaml").write_text("- iss: https://ehr.example.org\n  jwks_file: keys.json\n")
    monkeypatch.chdir(tmp_path)
    (issuer,) = load_trust(Path("conf/trust.yaml")).values()
    assert issuer.jwks_file == (folder / "keys.json").resolve()


def test_missing_iss_is_reported_at_its_entry(tmp_path: Path) -> None:
    path = _trust(
        tmp_path,
        """\
- iss: https://a.example
  jwks_file: keys.json
- jwks_file: keys.json
  tenant: b
""",
    )
    [(line, message)] = _problems(path)
    assert line == 3
    assert "iss" in message and "required" in message.lower()


@pytest.mark.parametrize(
    "entry",
    [
        "- iss: https://a.example\n  tenant: a\n",
        "- iss: https://a.example\n  jwks_file: keys.json\n  jwks_url: https://a.example/jwks\n",
    ],
    ids=["neither", "both"],
)
def test_exactly_one_of_jwks_file_and_jwks_url(tmp_path: Path, entry: str) -> None:
    path = _trust(tmp_path, "- iss: https://ok.example\n  jwks_file: keys.json\n" + entry)
    [(line, message)] = _problems(path)
    assert line == 3
    assert "exactly one of jwks_file or jwks_url" in message


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("jwks_url", "http://ehr.example.org/jwks.json"),
        ("jwks_url", "http://localhost.evil.example/jwks.json"),
        ("jwks_url", "http://127.0.0.2/jwks.json"),
        ("jwks_url", "file:///etc/jwks.json"),
        ("jwks_url", "https:///jwks.json"),
        ("jku", "http://ehr.example.org/jwks.json"),
    ],
)
def test_plain_http_key_urls_are_refused_unless_on_localhost(tmp_path: Path, field: str, url: str) -> None:
    if field == "jku":
        entry = f"- iss: https://a.example\n  jwks_url: https://a.example/jwks\n  jku: [{url}]\n"
    else:
        entry = f"- iss: https://a.example\n  jwks_url: {url}\n"
    path = _trust(tmp_path, "- iss: https://ok.example\n  jwks_file: keys.json\n" + entry)
    [(line, message)] = _problems(path)
    assert line == 3
    assert url in message and "https" in message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_plain_http_is_allowed_on_localhost(tmp_path: Path, host: str) -> None:
    path = _trust(tmp_path, f"- iss: https://a.example\n  jwks_url: http://{host}:8080/jwks.json\n")
    assert load_trust(path)["https://a.example"].jwks_url == f"http://{host}:8080/jwks.json"


def test_jwks_file_that_does_not_exist(tmp_path: Path) -> None:
    path = _trust(
        tmp_path,
        """\
- iss: https://a.example
  tenant: a
  jwks_file: no-such-keys.json
""",
    )
    [(line, message)] = _problems(path)
    assert line == 3
    assert str((tmp_path / "no-such-keys.json").resolve()) in message


def test_duplicate_iss(tmp_path: Path) -> None:
    path = _trust(
        tmp_path,
        """\
- iss: https://a.example
  jwks_file: keys.json
- iss: https://b.example
  jwks_file: keys.json
- iss: https://a.example
  jwks_url: https://a.example/jwks
""",
    )
    [(line, message)] = _problems(path)
    assert line == 5
    assert "https://a.example" in message and "twice" in message


@pytest.mark.parametrize("text", ["[]\n", "# nobody yet\n[]\n"])
def test_empty_list(tmp_path: Path, text: str) -> None:
    path = _trust(tmp_path, text)
    [(line, message)] = _problems(path)
    assert line == 1
    assert "no trusted issuers" in message


def test_empty_file_and_a_mapping_are_not_lists(tmp_path: Path) -> None:
    for text in ("", "iss: https://a.example\njwks_file: keys.json\n"):
        [(line, message)] = _problems(_trust(tmp_path, text))
        assert line == 1
        assert "list" in message


def test_unknown_key_is_reported_at_its_line(tmp_path: Path) -> None:
    path = _trust(tmp_path, "- iss: https://a.example\n  jwks_file: keys.json\n  jwks: keys.json\n")
    [(line, message)] = _problems(path)
    assert line == 3
    assert "jwks" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _trust(
        tmp_path,
        """\
- iss: https://a.example
  jwks_url: http://a.example/jwks
- tenant: nobody
  jwks_file: keys.json
""",
    )
    assert [line for line, _ in _problems(path)] == [1, 3]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _trust(tmp_path, "- iss: https://a.example\n  jwks_file: [keys.json\n- iss: b\n")
    [(line, message)] = _problems(path)
    assert line >= 2
    assert message.startswith("YAML")


def test_unreadable_trust_file(tmp_path: Path) -> None:
    [(line, message)] = _problems(tmp_path / "absent.yaml")
    assert line == 1
    assert "cannot read" in message


def test_fhir_servers_are_loaded_as_base_urls(tmp_path: Path) -> None:
    path = _trust(
        tmp_path,
        """\
- iss: https://ehr.example.org
  jwks_file: keys.json
  fhir_servers: [https://ehr.example.org/fhir/, http://localhost:8080/fhir]
- iss: https://other.example.org
  jwks_file: keys.json
""",
    )
    issuers = load_trust(path)
    assert issuers["https://ehr.example.org"].fhir_servers == (
        "https://ehr.example.org/fhir",
        "http://localhost:8080/fhir",
    )
    assert issuers["https://other.example.org"].fhir_servers is None  # no key: the default policy


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://ehr.example.org/fhir", "must be https"),
        ("https://ehr.example.org/fhir?tenant=1", "must be a base URL"),
        ("https://user:pw@ehr.example.org/fhir", "must be a base URL"),
        ("https://ehr.example.org/fhir/../admin", "'..' segments"),
    ],
)
def test_bad_fhir_servers_are_reported_at_their_line(tmp_path: Path, url: str, why: str) -> None:
    path = _trust(
        tmp_path, f"- iss: https://ehr.example.org\n  jwks_file: keys.json\n  fhir_servers: ['{url}']\n"
    )
    ((line, message),) = _problems(path)
    assert line in (1, 3) and why in message
