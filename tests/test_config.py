"""Settings: defaults, CDS_* environment parsing, flag precedence, validation and the to_env round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cds_service.config import Settings


def test_defaults_without_environment() -> None:
    settings = Settings.from_env(env={})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///./cds-service.db"
    assert settings.rules_dir == Path("rules")
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.workers == 1
    assert settings.fetch_deadline_seconds == 1.5
    assert settings.fetch_max_pages == 10
    assert settings.fetch_without_token is False
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.cors_origins == ("*",)
    assert settings.log_level == "info"


def test_unrelated_and_empty_variables_are_ignored() -> None:
    settings = Settings.from_env(env={"CDS_PORT": "", "PORT": "9999", "cds_port": "7777", "CDS_HOST": ""})
    assert settings.port == 8080
    assert settings.host == "127.0.0.1"


def test_string_variables() -> None:
    settings = Settings.from_env(
        env={"CDS_DATABASE_URL": "postgresql://db/cds", "CDS_HOST": "0.0.0.0", "CDS_LOG_LEVEL": "debug"}
    )
    assert settings.database_url == "postgresql://db/cds"
    assert settings.host == "0.0.0.0"
    assert settings.log_level == "debug"


def test_int_variables() -> None:
    settings = Settings.from_env(
        env={"CDS_PORT": "9090", "CDS_WORKERS": "4", "CDS_FETCH_MAX_PAGES": "3", "CDS_MAX_BODY_BYTES": "2048"}
    )
    assert (settings.port, settings.workers, settings.fetch_max_pages, settings.max_body_bytes) == (
        9090,
        4,
        3,
        2048,
    )
    assert isinstance(settings.port, int)


def test_float_variable() -> None:
    settings = Settings.from_env(env={"CDS_FETCH_DEADLINE_SECONDS": "0.25"})
    assert settings.fetch_deadline_seconds == 0.25
    assert isinstance(settings.fetch_deadline_seconds, float)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
    ],
)
def test_bool_variable(raw: str, expected: bool) -> None:
    settings = Settings.from_env(env={"CDS_FETCH_WITHOUT_TOKEN": raw})
    assert settings.fetch_without_token is expected


def test_path_variable() -> None:
    settings = Settings.from_env(env={"CDS_RULES_DIR": "/srv/cds/rules"})
    assert settings.rules_dir == Path("/srv/cds/rules")
    assert isinstance(settings.rules_dir, Path)


def test_tuple_variable_splits_on_commas_and_strips() -> None:
    settings = Settings.from_env(env={"CDS_CORS_ORIGINS": "http://a.example, https://b.example:8443 ,,"})
    assert settings.cors_origins == ("http://a.example", "https://b.example:8443")


def test_empty_tuple_variable_means_none() -> None:
    assert Settings.from_env(env={"CDS_CORS_ORIGINS": ""}).cors_origins == ()
    assert Settings.from_env(env={"CDS_CORS_ORIGINS": " , "}).cors_origins == ()


def test_single_value_tuple_variable() -> None:
    settings = Settings.from_env(env={"CDS_CORS_ORIGINS": "https://ehr.example"})
    assert settings.cors_origins == ("https://ehr.example",)


def test_flags_win_over_environment() -> None:
    env = {"CDS_PORT": "9090", "CDS_HOST": "0.0.0.0", "CDS_RULES_DIR": "/env/rules", "CDS_WORKERS": "2"}
    settings = Settings.from_env(env=env, port=7000, host="10.0.0.1", rules_dir=Path("/flag/rules"))
    assert settings.port == 7000
    assert settings.host == "10.0.0.1"
    assert settings.rules_dir == Path("/flag/rules")
    # Not overridden: still from the environment.
    assert settings.workers == 2


def test_none_overrides_are_ignored() -> None:
    env = {"CDS_PORT": "9090", "CDS_LOG_LEVEL": "warning"}
    settings = Settings.from_env(env=env, port=None, log_level=None, workers=None, database_url=None)
    assert settings.port == 9090
    assert settings.log_level == "warning"
    assert settings.workers == 1
    assert settings.database_url == Settings().database_url


def test_flag_without_environment_overrides_default() -> None:
    assert Settings.from_env(env={}, workers=3).workers == 3


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CDS_PORT", "abc"),
        ("CDS_PORT", "80.5"),
        ("CDS_WORKERS", "many"),
        ("CDS_FETCH_MAX_PAGES", "ten"),
        ("CDS_MAX_BODY_BYTES", "5MB"),
        ("CDS_FETCH_DEADLINE_SECONDS", "fast"),
    ],
)
def test_unparseable_values_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env(env={name: raw})
    assert name in str(caught.value)
    assert raw in str(caught.value)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CDS_FETCH_DEADLINE_SECONDS", "0"),
        ("CDS_FETCH_DEADLINE_SECONDS", "-1.5"),
        ("CDS_FETCH_MAX_PAGES", "0"),
        ("CDS_MAX_BODY_BYTES", "1023"),
        ("CDS_WORKERS", "0"),
        ("CDS_WORKERS", "-2"),
        ("CDS_PORT", "0"),
        ("CDS_PORT", "65536"),
        ("CDS_FETCH_DEADLINE_SECONDS", "inf"),
    ],
)
def test_out_of_range_values_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env(env={name: raw})
    assert name in str(caught.value)


def test_not_a_number_deadline_is_rejected() -> None:
    # NaN compares false with everything, so "must be positive" has to be checked as such.
    with pytest.raises(ValueError) as caught:
        Settings.from_env(env={"CDS_FETCH_DEADLINE_SECONDS": "nan"})
    assert "CDS_FETCH_DEADLINE_SECONDS" in str(caught.value)


def test_out_of_range_flag_is_rejected() -> None:
    with pytest.raises(ValueError):
        Settings.from_env(env={}, workers=0)


def test_smallest_valid_values_are_accepted() -> None:
    settings = Settings.from_env(
        env={
            "CDS_PORT": "1",
            "CDS_WORKERS": "1",
            "CDS_FETCH_MAX_PAGES": "1",
            "CDS_MAX_BODY_BYTES": "1024",
            "CDS_FETCH_DEADLINE_SECONDS": "0.001",
        }
    )
    assert (settings.workers, settings.fetch_max_pages, settings.max_body_bytes) == (1, 1, 1024)


def test_to_env_writes_every_set_field_as_a_string() -> None:
    env = Settings(fetch_without_token=True, cors_origins=("http://a", "http://b")).to_env()
    unset = {"CDS_TRUST_FILE", "CDS_PUBLIC_URL"}  # None: not written, so "None" never becomes a path
    assert set(env) == {"CDS_" + f.name.upper() for f in dataclasses.fields(Settings)} - unset
    with_auth = Settings(trust_file=Path("/etc/trust.yaml"), public_url="https://cds.example.org").to_env()
    assert (with_auth["CDS_TRUST_FILE"], with_auth["CDS_PUBLIC_URL"]) == (
        "/etc/trust.yaml",
        "https://cds.example.org",
    )
    assert Settings.from_env(with_auth).trust_file == Path("/etc/trust.yaml")
    assert all(isinstance(value, str) for value in env.values())
    assert env["CDS_FETCH_WITHOUT_TOKEN"] == "1"
    assert env["CDS_CORS_ORIGINS"] == "http://a,http://b"
    assert env["CDS_PORT"] == "8080"
    assert Settings().to_env()["CDS_FETCH_WITHOUT_TOKEN"] == "0"


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        Settings(
            database_url="postgresql+psycopg://u@db:5432/cds",
            rules_dir=Path("/srv/rules"),
            host="0.0.0.0",
            port=9443,
            workers=8,
            fetch_deadline_seconds=0.35,
            fetch_max_pages=2,
            fetch_without_token=True,
            max_body_bytes=4096,
            cors_origins=("https://ehr.example", "http://localhost:3000"),
            log_level="debug",
        ),
        Settings(cors_origins=("https://only.example",), fetch_deadline_seconds=2.0),
        # No origin allowed at all: the workers must not fall back to "*".
        Settings(cors_origins=()),
    ],
    ids=["defaults", "everything-changed", "one-origin", "no-origins"],
)
def test_to_env_round_trips(settings: Settings) -> None:
    assert Settings.from_env(env=settings.to_env()) == settings
