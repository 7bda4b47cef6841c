/*
 * schema.h - the database schema and its versioned migrations.
 *
 * The schema is a list of migrations; migration i (1-based) takes a database from
 * PRAGMA user_version i-1 to i. rp_store_open() calls rp_schema_migrate() on the writer
 * connection before any other write, so every module can rely on the tables of the current
 * version. To change the schema, append a migration in schema.c; never edit a released one.
 */
#ifndef RP_STORE_SCHEMA_H
#define RP_STORE_SCHEMA_H

#include <sqlite3.h>

/* The schema version this binary writes: the number of migrations it knows. */
int rp_schema_version(void);

/*
 * Brings db up to rp_schema_version(). Each migration runs in its own BEGIN IMMEDIATE
 * transaction together with its user_version bump, so a crash leaves the database at a whole
 * version. Returns 0 (also when there was nothing to do), RP_EUNSUPPORTED if the database was
 * written by a newer rampart (user_version above what we know; nothing is changed), or RP_EDB.
 * The caller must not have a transaction open on db.
 */
int rp_schema_migrate(sqlite3 *db);

/* Creates the ciphertext store's tables in the attached schema "obj" if missing. 0 or RP_EDB. */
int rp_schema_objects(sqlite3 *db);

/* Reads PRAGMA user_version into *out. 0 or RP_EDB. */
int rp_schema_current(sqlite3 *db, int *out);

#endif
