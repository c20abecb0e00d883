"""config/settings.py: load_settings from an explicit environment, never os.environ."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Backend, ConfigError, Settings, load_settings

PG_URL = "postgresql://nova:pg-secret-pw@db.internal:5432/nova"
REDIS_URL = "redis://:redis-secret-pw@cache.internal:6379/0"
TOKEN = "operator-secret-token"


def production_env(**extra: str) -> dict[str, str]:
    return {
        "NOVA_DATABASE_URL": PG_URL,
        "NOVA_REDIS_URL": REDIS_URL,
        "NOVA_OPERATOR_TOKEN": TOKEN,
        **extra,
    }


def config_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(environ)
    return str(info.value)


# --- defaults ------------------------------------------------------------------------------


def test_empty_environment_gives_the_embedded_defaults() -> None:
    s = load_settings({})
    assert s.backend is Backend.EMBEDDED
    assert s.data_dir == Path("data")
    assert s.sqlite_path == Path("data") / "nova.sqlite3"
    assert s.database_url is None
    assert s.redis_url is None
    assert s.operator_token is None
    assert s.redis_prefix == "nova"
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)
    assert s.max_batch_events == 100
    assert s.max_body_bytes == 512 * 1024
    assert s.rate_limit_events_per_s == 10_000
    assert s.cors_allow_origins == ["*"]
    assert s.shop_cache_ttl_s == 5.0


def test_sqlite_path_lives_under_the_data_dir() -> None:
    s = load_settings({"NOVA_DATA_DIR": "/var/lib/nova"})
    assert s.data_dir == Path("/var/lib/nova")
    assert s.sqlite_path == Path("/var/lib/nova/nova.sqlite3")
    assert s.backend is Backend.EMBEDDED


def test_model_store_defaults_to_models_under_the_data_dir() -> None:
    assert load_settings({}).model_store == str(Path("data") / "models")
    assert load_settings({"NOVA_DATA_DIR": "/var/lib/nova"}).model_store == "/var/lib/nova/models"
    assert load_settings({"NOVA_MODEL_STORE": ""}).model_store == str(Path("data") / "models")


@pytest.mark.parametrize(
    "store", ["/srv/models", "file:///srv/models", "s3://bucket/nova", "gs://b/m"]
)
def test_model_store_takes_a_path_or_a_supported_url(store: str) -> None:
    assert load_settings({"NOVA_MODEL_STORE": store}).model_store == store


def test_model_store_with_an_unknown_scheme_is_named() -> None:
    message = config_error({"NOVA_MODEL_STORE": "ftp://host/models"})
    assert "NOVA_MODEL_STORE" in message and "ftp://" in message


def test_sqlite_url_names_the_file_and_stays_embedded() -> None:
    s = load_settings({"NOVA_DATABASE_URL": "sqlite:////srv/nova/events.db"})
    assert s.backend is Backend.EMBEDDED
    assert s.sqlite_path == Path("/srv/nova/events.db")


@pytest.mark.parametrize("url", [PG_URL, "postgres://nova@db/nova"])
def test_postgres_url_with_redis_and_token_is_production(url: str) -> None:
    s = load_settings(production_env(NOVA_DATABASE_URL=url))
    assert s.backend is Backend.PRODUCTION
    assert s.database_url is not None
    assert s.database_url.get_secret_value() == url
    assert s.redis_url is not None
    assert s.redis_url.get_secret_value() == REDIS_URL


def test_environment_values_are_parsed_to_their_types() -> None:
    s = load_settings({"NOVA_HTTP_PORT": "9100", "NOVA_SHOP_CACHE_TTL_S": "0.25"})
    assert s.http_port == 9100
    assert s.shop_cache_ttl_s == 0.25


def test_keyword_overrides_win_over_the_environment() -> None:
    s = load_settings({"NOVA_HTTP_PORT": "9100"}, http_port=9200)
    assert s.http_port == 9200


def test_harness_variables_are_not_mistaken_for_settings() -> None:
    s = load_settings(
        {
            "NOVA_TEST_DATABASE_URL": "postgresql://x/y",
            "NOVA_BENCH_SECONDS": "3",
            "NOVA_REQUIRE_SERVICES": "1",
            "UNRELATED": "x",
        }
    )
    assert s.backend is Backend.EMBEDDED


# --- errors name the variable ----------------------------------------------------------------


def test_bad_integer_names_the_variable() -> None:
    message = config_error({"NOVA_HTTP_PORT": "eighty"})
    assert "NOVA_HTTP_PORT" in message
    assert "integer" in message


def test_out_of_range_integer_names_the_variable() -> None:
    message = config_error({"NOVA_MAX_BATCH_EVENTS": "0"})
    assert "NOVA_MAX_BATCH_EVENTS" in message


def test_every_bad_variable_is_named_at_once() -> None:
    message = config_error({"NOVA_HTTP_PORT": "eighty", "NOVA_WRITER_BLOCK_MS": "soon"})
    assert "NOVA_HTTP_PORT" in message
    assert "NOVA_WRITER_BLOCK_MS" in message


def test_unknown_nova_variable_is_a_typo_and_is_named() -> None:
    message = config_error({"NOVA_HTTP_PROT": "8000"})
    assert "NOVA_HTTP_PROT" in message
    assert message.startswith("unknown setting")
    # The message lists the known names so the typo is easy to fix.
    assert "NOVA_HTTP_PORT" in message


def test_database_url_with_wrong_scheme_is_rejected() -> None:
    message = config_error({"NOVA_DATABASE_URL": "mysql://nova@db/nova"})
    assert "NOVA_DATABASE_URL" in message
    assert "postgresql://" in message


def test_postgres_without_redis_names_redis() -> None:
    env = production_env()
    del env["NOVA_REDIS_URL"]
    assert "NOVA_REDIS_URL" in config_error(env)


def test_postgres_without_operator_token_names_the_token() -> None:
    env = production_env()
    del env["NOVA_OPERATOR_TOKEN"]
    assert "NOVA_OPERATOR_TOKEN" in config_error(env)


@pytest.mark.parametrize("database_url", [None, "sqlite:///tmp/nova.db"])
def test_redis_without_postgres_is_rejected(database_url: str | None) -> None:
    env = {"NOVA_REDIS_URL": REDIS_URL}
    if database_url is not None:
        env["NOVA_DATABASE_URL"] = database_url
    message = config_error(env)
    assert "NOVA_REDIS_URL" in message
    assert "NOVA_DATABASE_URL" in message


def test_rate_limit_below_batch_size_is_rejected() -> None:
    message = config_error({"NOVA_MAX_BATCH_EVENTS": "200", "NOVA_RATE_LIMIT_EVENTS_PER_S": "199"})
    assert "NOVA_RATE_LIMIT_EVENTS_PER_S" in message
    assert "NOVA_MAX_BATCH_EVENTS" in message


def test_rate_limit_equal_to_batch_size_is_accepted() -> None:
    s = load_settings({"NOVA_MAX_BATCH_EVENTS": "200", "NOVA_RATE_LIMIT_EVENTS_PER_S": "200"})
    assert (s.max_batch_events, s.rate_limit_events_per_s) == (200, 200)


def test_bad_redis_prefix_names_the_variable() -> None:
    assert "NOVA_REDIS_PREFIX" in config_error({"NOVA_REDIS_PREFIX": "has space"})


def test_list_item_of_wrong_type_names_the_variable() -> None:
    assert "NOVA_CORS_ALLOW_ORIGINS" in config_error({"NOVA_CORS_ALLOW_ORIGINS": "[1]"})


def test_malformed_json_list_is_a_config_error_naming_the_variable() -> None:
    message = config_error({"NOVA_CORS_ALLOW_ORIGINS": '["https://a.example"'})
    assert "NOVA_CORS_ALLOW_ORIGINS" in message


# --- lists ------------------------------------------------------------------------------------


def test_list_from_json() -> None:
    s = load_settings({"NOVA_CORS_ALLOW_ORIGINS": '["https://a.example", "https://b.example"]'})
    assert s.cors_allow_origins == ["https://a.example", "https://b.example"]


def test_list_from_comma_text_is_trimmed() -> None:
    s = load_settings({"NOVA_CORS_ALLOW_ORIGINS": " https://a.example , https://b.example,"})
    assert s.cors_allow_origins == ["https://a.example", "https://b.example"]


def test_empty_json_list() -> None:
    assert load_settings({"NOVA_CORS_ALLOW_ORIGINS": "[]"}).cors_allow_origins == []


def test_blank_comma_item_is_dropped() -> None:
    s = load_settings({"NOVA_CORS_ALLOW_ORIGINS": "https://a.example, ,https://b.example"})
    assert s.cors_allow_origins == ["https://a.example", "https://b.example"]


# --- secrets ----------------------------------------------------------------------------------


def test_secrets_are_secretstr_and_do_not_leak_in_repr_or_str() -> None:
    s = load_settings(production_env())
    assert isinstance(s.database_url, SecretStr)
    assert isinstance(s.redis_url, SecretStr)
    assert isinstance(s.operator_token, SecretStr)
    for text in (repr(s), str(s)):
        assert "pg-secret-pw" not in text
        assert "redis-secret-pw" not in text
        assert TOKEN not in text
        assert "**********" in text


def test_secrets_do_not_leak_in_config_errors() -> None:
    env = production_env(NOVA_HTTP_PORT="eighty")
    message = config_error(env)
    assert "pg-secret-pw" not in message
    assert TOKEN not in message


def test_shopify_secrets_are_optional_secret_and_ordered_current_first() -> None:
    assert load_settings({}).webhook_secrets == []
    s = load_settings(
        {"NOVA_SHOPIFY_API_SECRET": "shpss_new", "NOVA_SHOPIFY_API_SECRET_PREVIOUS": "shpss_old"}
    )
    assert isinstance(s.shopify_api_secret, SecretStr)
    assert s.webhook_secrets == [b"shpss_new", b"shpss_old"]
    assert "shpss_new" not in repr(s) and "shpss_old" not in str(s)
    only_current = load_settings({"NOVA_SHOPIFY_API_SECRET": "shpss_new"})
    assert only_current.webhook_secrets == [b"shpss_new"]


def test_previous_shopify_secret_without_a_current_one_is_named() -> None:
    message = config_error({"NOVA_SHOPIFY_API_SECRET_PREVIOUS": "shpss_old"})
    assert "NOVA_SHOPIFY_API_SECRET_PREVIOUS is set without NOVA_SHOPIFY_API_SECRET" in message
    assert "shpss_old" not in message


@pytest.mark.parametrize("name", ["NOVA_SHOPIFY_API_SECRET", "NOVA_SHOPIFY_API_SECRET_PREVIOUS"])
def test_blank_shopify_secret_is_refused(name: str) -> None:
    # An HMAC keyed with an empty secret is one anybody can compute.
    env = {"NOVA_SHOPIFY_API_SECRET": "shpss_new", name: "  "}
    assert name in config_error(env)


def test_settings_are_frozen() -> None:
    s = load_settings({})
    with pytest.raises(ValueError):
        s.http_port = 1  # type: ignore[misc]


# --- env() round trip -------------------------------------------------------------------------


def test_env_round_trip_of_defaults() -> None:
    s = load_settings({})
    assert load_settings(s.env()) == s


def test_env_round_trip_of_production_settings() -> None:
    s = load_settings(
        production_env(
            NOVA_DATA_DIR="/srv/nova",
            NOVA_REDIS_PREFIX="shop-a",
            NOVA_CORS_ALLOW_ORIGINS="https://a.example,https://b.example",
            NOVA_SHOP_CACHE_TTL_S="0.5",
            NOVA_MAX_BATCH_EVENTS="250",
        )
    )
    env = s.env()
    again = load_settings(env)
    assert again == s
    assert again.database_url is not None
    assert again.database_url.get_secret_value() == PG_URL
    assert again.cors_allow_origins == ["https://a.example", "https://b.example"]


def test_env_carries_secret_values_and_omits_unset_ones() -> None:
    env = load_settings(production_env()).env()
    assert env["NOVA_DATABASE_URL"] == PG_URL
    assert env["NOVA_REDIS_URL"] == REDIS_URL
    assert env["NOVA_OPERATOR_TOKEN"] == TOKEN
    assert env["NOVA_CORS_ALLOW_ORIGINS"] == '["*"]'
    assert all(key.startswith("NOVA_") for key in env)
    embedded = load_settings({}).env()
    assert "NOVA_DATABASE_URL" not in embedded
    assert "NOVA_REDIS_URL" not in embedded


def test_env_names_every_field() -> None:
    s = load_settings(
        production_env(NOVA_SHOPIFY_API_SECRET="s-new", NOVA_SHOPIFY_API_SECRET_PREVIOUS="s-old")
    )
    assert set(s.env()) == {"NOVA_" + name.upper() for name in Settings.model_fields}
