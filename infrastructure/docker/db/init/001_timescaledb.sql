-- Runs once, when the db container initialises an empty data directory (docker-entrypoint-initdb.d),
-- connected to POSTGRES_DB. The timescale/timescaledb image's own 000_install_timescaledb.sh already does
-- this; keeping it here makes the dependency explicit and survives an image without that script.
-- The platform also runs on plain PostgreSQL: the migrations detect whether the extension exists.
CREATE EXTENSION IF NOT EXISTS timescaledb;
