from __future__ import annotations

import pytest

from core.settings import SettingsError, load_settings


def _load(**overrides: object):
    return load_settings(_env_file=None, **overrides)


def test_defaults_run_the_platform_locally() -> None:
    settings = _load()
    assert settings.environment == "development"
    assert settings.database_url is None
    assert settings.temporal_host_port == ("127.0.0.1", 7233)
    assert settings.elasticsearch_url is None


def test_invalid_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_API_PORT", "eighty")
    with pytest.raises(SettingsError) as raised:
        _load()
    message = str(raised.value)
    assert message.startswith("invalid setting EMPORIUM_API_PORT:")
    assert "\n" not in message


def test_out_of_range_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_API_PORT", "70000")
    with pytest.raises(SettingsError, match=r"^invalid setting EMPORIUM_API_PORT: "):
        _load()


def test_json_setting_that_is_not_json_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMPORIUM_JWT_KEYS", "not-json")
    with pytest.raises(SettingsError, match=r"^invalid setting EMPORIUM_JWT_KEYS: not valid JSON$"):
        _load()


def test_database_url_must_be_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_DATABASE_URL", "mysql://root@localhost/shop")
    with pytest.raises(SettingsError, match=r"^invalid setting EMPORIUM_DATABASE_URL: .*mysql"):
        _load()


def test_temporal_address_must_be_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_TEMPORAL_ADDRESS", "temporal")
    with pytest.raises(SettingsError, match=r"^invalid setting EMPORIUM_TEMPORAL_ADDRESS: "):
        _load()


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://shop:pw@db:5432/shop",
        "postgres://shop:pw@db:5432/shop",
        "postgresql+psycopg://shop:pw@db:5432/shop",
    ],
)
def test_database_url_gets_the_psycopg_driver(given: str) -> None:
    assert _load(database_url=given).sqlalchemy_url == "postgresql+psycopg://shop:pw@db:5432/shop"


def test_sqlalchemy_url_without_a_database_says_which_variable() -> None:
    with pytest.raises(SettingsError, match="EMPORIUM_DATABASE_URL is not set"):
        _ = _load().sqlalchemy_url


def test_production_requires_database_and_signing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="EMPORIUM_DATABASE_URL is required in production"):
        _load()
    monkeypatch.setenv("EMPORIUM_DATABASE_URL", "postgresql://db/shop")
    with pytest.raises(SettingsError, match="EMPORIUM_JWT_KEYS is required in production"):
        _load()
    monkeypatch.setenv("EMPORIUM_JWT_KEYS", '{"k1": "a-long-random-secret"}')
    assert _load().jwt_keys["k1"].get_secret_value() == "a-long-random-secret"


def test_active_key_must_be_one_of_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_JWT_KEYS", '{"k1": "secret"}')
    monkeypatch.setenv("EMPORIUM_JWT_ACTIVE_KID", "k2")
    with pytest.raises(SettingsError, match="EMPORIUM_JWT_ACTIVE_KID='k2' is not a key"):
        _load()


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_STRIPE_SECRET_KEY", "sk_test_very_secret")
    monkeypatch.setenv("EMPORIUM_SMTP_PASSWORD", "hunter2")
    text = repr(_load())
    assert "sk_test_very_secret" not in text
    assert "hunter2" not in text


def test_unprefixed_elasticsearch_url_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://es:9200")
    assert _load().elasticsearch_url == "http://es:9200"


def test_cors_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_CORS_ORIGINS", "https://shop.example, https://admin.example")
    assert _load().cors_origins == ["https://shop.example", "https://admin.example"]
