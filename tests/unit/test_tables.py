from athlete_platform.config import CatalogSettings
from athlete_platform.lakehouse.tables import ATHLETE_PREDICTIONS, SCHEMAS, TableNames


def test_three_level_names_on_embedded_and_unity_backends():
    for backend in ("embedded", "unity"):
        names = TableNames.from_settings(CatalogSettings(backend=backend))
        assert names(ATHLETE_PREDICTIONS) == "uc_athlete_data.gold.athlete_predictions"


def test_catalog_name_comes_from_config():
    names = TableNames.from_settings(CatalogSettings(name="uc_athlete_dev"))
    assert names(ATHLETE_PREDICTIONS) == "uc_athlete_dev.gold.athlete_predictions"
    assert names.schema("bronze") == "uc_athlete_dev.bronze"


def test_session_backend_uses_two_level_names():
    names = TableNames.from_settings(CatalogSettings(backend="session"))
    assert names(ATHLETE_PREDICTIONS) == "gold.athlete_predictions"


def test_schemas_of_the_design():
    assert list(SCHEMAS) == ["bronze", "silver", "feature_store", "gold", "ml"]
