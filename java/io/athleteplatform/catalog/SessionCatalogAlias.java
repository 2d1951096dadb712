package io.athleteplatform.catalog;

import org.apache.spark.sql.connector.catalog.CatalogPlugin;
import org.apache.spark.sql.connector.catalog.DelegatingCatalogExtension;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * Registers Spark's session catalog (Delta over the project's metastore server) under a
 * second name, so tables are addressed as {@code uc_athlete_data.schema.table} exactly as
 * on a Unity Catalog deployment. Every call is delegated; nothing is stored here.
 *
 * <p>Configured as {@code spark.sql.catalog.<name>=io.athleteplatform.catalog.SessionCatalogAlias}.
 */
public class SessionCatalogAlias extends DelegatingCatalogExtension {
  private String aliasName;

  @Override
  public void initialize(String name, CaseInsensitiveStringMap options) {
    this.aliasName = name;
    org.apache.spark.sql.classic.SparkSession session =
        (org.apache.spark.sql.classic.SparkSession) org.apache.spark.sql.SparkSession.active();
    CatalogPlugin sessionCatalog = session.sessionState().catalogManager().v2SessionCatalog();
    setDelegateCatalog(sessionCatalog);
  }

  @Override
  public String name() {
    return aliasName;
  }
}
