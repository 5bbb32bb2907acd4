"""docs/db/schema.sql is what scripts/export_schema.sh dumps from a freshly migrated database."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from scripts.schema_dump import normalise

SCRIPT = PROJECT_ROOT / "scripts" / "export_schema.sh"
COMMITTED = PROJECT_ROOT / "docs" / "db" / "schema.sql"


def test_normalise_removes_the_volatile_lines():
    dump = "\\restrict abc123\n-- Dumped from database version 15.20\n\n\nCREATE TABLE t ();\n"
    dump += "ALTER TABLE ONLY public.t ALTER COLUMN c SET (pg_attver=68031080);\n\\unrestrict abc123\n"
    assert normalise(dump) == "\nCREATE TABLE t ();\n"


#: The same views as pg_dump prints them from PostgreSQL 15 and from 18 (pg_get_viewdef of each server).
VIEWS_15 = """\
CREATE VIEW public.hourly AS
 SELECT date_bin('01:00:00'::interval, t."timestamp", '2000-01-01'::timestamp with time zone) AS bucket,
    t.sensor_id,
    avg(t.value) AS avg_value,
    'keep t.value' AS s
   FROM public.t
  WHERE (t.sensor_id IN ( SELECT u.sensor_id
           FROM public.u
          WHERE (u.w > t.value)))
  GROUP BY (date_bin('01:00:00'::interval, t."timestamp", '2000-01-01'::timestamp with time zone)), t.sensor_id;

CREATE VIEW public.aliased AS
 SELECT x.id,
    (x.name IS DISTINCT FROM 'a'::text) AS d
   FROM public.t x
  ORDER BY x.id;

CREATE VIEW public.joined AS
 SELECT t.id,
    u.w
   FROM (public.t
     JOIN public.u ON ((u.t_id = t.id)));

CREATE VIEW public.unioned AS
 SELECT t.id
   FROM public.t
UNION
 SELECT u.t_id AS id
   FROM public.u;

CREATE MATERIALIZED VIEW public.mv AS
 SELECT t.id
   FROM public.t
  WITH NO DATA;
"""
VIEWS_18 = """\
CREATE VIEW public.hourly AS
 SELECT date_bin('01:00:00'::interval, "timestamp", '2000-01-01'::timestamp with time zone) AS bucket,
    sensor_id,
    avg(value) AS avg_value,
    'keep t.value' AS s
   FROM public.t
  WHERE (sensor_id IN ( SELECT u.sensor_id
           FROM public.u
          WHERE (u.w > t.value)))
  GROUP BY (date_bin('01:00:00'::interval, "timestamp", '2000-01-01'::timestamp with time zone)), sensor_id;

CREATE VIEW public.aliased AS
 SELECT id,
    (name IS DISTINCT FROM 'a'::text) AS d
   FROM public.t x
  ORDER BY id;

CREATE VIEW public.joined AS
 SELECT t.id,
    u.w
   FROM (public.t
     JOIN public.u ON ((u.t_id = t.id)));

CREATE VIEW public.unioned AS
 SELECT t.id
   FROM public.t
UNION
 SELECT u.t_id AS id
   FROM public.u;

CREATE MATERIALIZED VIEW public.mv AS
 SELECT id
   FROM public.t
  WITH NO DATA;
"""


def test_normalise_prints_views_over_one_table_the_way_postgresql_16_and_later_do():
    """Only the top-level query of a view over one relation loses its qualification (a subquery, a join and a
    set operation keep theirs on every version); a normalised dump is normalised already."""
    assert normalise(VIEWS_15) == VIEWS_18
    assert normalise(VIEWS_18) == VIEWS_18


def test_committed_schema_matches_a_fresh_dump(admin_database_url: str, tmp_path: Path):
    output = tmp_path / "schema.sql"
    env = {**os.environ, "DATABASE_URL": admin_database_url, "TIMESCALEDB": "off"}
    result = subprocess.run(
        ["bash", str(SCRIPT), str(output)],
        check=False,
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fresh = output.read_text()
    assert "\\restrict" not in fresh and "-- Dumped " not in fresh and "pg_attver" not in fresh
    assert "CREATE TABLE public.sensor_readings (" in fresh
    assert "CREATE VIEW public.sensor_readings_hourly AS" in fresh
    if normalise(fresh) != normalise(COMMITTED.read_text()):
        pytest.fail(
            "docs/db/schema.sql is out of date: run scripts/export_schema.sh and commit the result",
            pytrace=False,
        )


def _erd_tables(dbml: str) -> dict[str, dict[str, str | None]]:
    """{table: {column: "ref_table.ref_column" or None}} from the DBML (column lines only)."""
    tables: dict[str, dict[str, str | None]] = {}
    for name, body in re.findall(r"^Table (\w+) \{\n(.*?)^\}", dbml, flags=re.DOTALL | re.MULTILINE):
        columns: dict[str, str | None] = {}
        depth = 0
        for line in body.splitlines():
            if (
                depth == 0
                and (match := re.match(r"^  (\w+) (\"[^\"]+\"|[\w\[\]]+)", line))
                and not line.endswith("{")
            ) and match.group(1) != "Note":
                ref = re.search(r"ref: [<>-] (\w+\.\w+)", line)
                columns[match.group(1)] = ref.group(1) if ref else None
            depth += line.count("{") - line.count("}")
        tables[name] = columns
    return tables


def test_erd_lists_every_table_column_and_foreign_key():
    from core.models import Base  # every domain's tables registered

    erd = _erd_tables((PROJECT_ROOT / "docs" / "db" / "erd.dbml").read_text())
    expected = {
        table.name: {
            column.name: next(
                (f"{fk.column.table.name}.{fk.column.name}" for fk in column.foreign_keys), None
            )
            for column in table.columns
        }
        for table in Base.metadata.sorted_tables
    }
    assert erd == expected
