-- SPDX-License-Identifier: MIT
-- The roles of a shared ledger on PostgreSQL (docs/ledger-postgresql.md). Run by the ledger's
-- admin role, the owner of its tables, once the first `iotfleet pool import` created them, once
-- per station role:
--   psql "postgresql://iotfleet_admin@db.line1/iotfleet" -v station_role=line1_st1 \
--     -f scripts/ledger-roles.sql
-- The admin role creates and migrates the schema, imports batches and releases triplets. A
-- station role claims, binds and burns: it reads the pool and changes its rows, appends to the
-- audit trail and to the registration and recreation journals, claims and records the shared
-- cloud status check of `iotfleet serve` (status_checks), and can never change or remove
-- what the audit trail holds, delete a row anywhere, or change the schema; nor return a bound or
-- burned triplet to the pool (a trigger of the schema checks for the tables' owner, so `pool
-- release` of one is the admin's). (The triggers refuse changing or removing the audit trail to
-- the admin role too.) The role is created (LOGIN, no password: set one with \password, or use
-- certificates) when it does not exist yet.
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN', :'station_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'station_role') \gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), :'station_role') \gexec
SELECT format('GRANT SELECT ON ledger_schema TO %I', :'station_role') \gexec
SELECT format('GRANT SELECT, INSERT, UPDATE ON triplets, registrations, recreations TO %I',
              :'station_role') \gexec
SELECT format('GRANT SELECT, INSERT ON events TO %I', :'station_role') \gexec
SELECT format('GRANT SELECT, INSERT, UPDATE ON status_checks TO %I', :'station_role') \gexec
