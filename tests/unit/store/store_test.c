/*
 * store_test.c - the store against real SQLite files under $RP_TEST_TMP: pragmas and file mode,
 * migrations, group commit from one and from several loops, per-op failure isolation, a failed
 * COMMIT, synchronous writes, closing with writes in flight, and allocation failure.
 * Every test closes its uv handles and checks uv_loop_close so the leak checker sees zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/alloc.h"
#include "base/err.h"
#include "store/schema.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BURST 1000

/* ---- helpers ---- */

/* A fresh database path for one test: the file and its -wal/-shm are removed. */
static void db_path(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("RP_TEST_TMP");
    char side[600];

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp/rampart-test";
    rp_test_mkdir_p(dir);
    snprintf(out, cap, "%s/store_%s.db", dir, name);
    unlink(out);
    snprintf(side, sizeof(side), "%s-wal", out);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", out);
    unlink(side);
}

static int query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int v;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *t;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    t = sqlite3_column_text(st, 0);
    assert_non_null(t);
    snprintf(out, cap, "%s", (const char *)t);
    sqlite3_finalize(st);
}

/* Counts rows with a plain connection of our own (not through the store). */
static int count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int v;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    v = query_int(db, sql);
    sqlite3_close(db);
    return v;
}

static int meta_rows(const char *path)
{
    return count_rows(path, "SELECT count(*) FROM meta");
}

static int insert_key(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db, "INSERT INTO meta (key, value) VALUES (?1, 'v')", -1, &st, NULL) !=
        SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return RP_EEXIST;
    return rc == SQLITE_DONE ? 0 : RP_EDB;
}

/* ---- write functions ---- */

typedef struct burst burst;

typedef struct wr {
    burst *b;
    int key;
    int status;
    int calls;
} wr;

struct burst {
    rp_store *s;
    rp_store_port *port;
    uv_loop_t loop;
    const char *prefix;
    wr *w;
    int total;
    int done;
    int bad;
    int submit_rc;
    int loop_close_rc;
};

static int insert_fn(sqlite3 *db, void *arg)
{
    wr *w = arg;
    char key[64];

    snprintf(key, sizeof(key), "%s%d", w->b != NULL ? w->b->prefix : "k", w->key);
    return insert_key(db, key);
}

static void burst_done(int status, void *arg)
{
    wr *w = arg;
    burst *b = w->b;

    w->status = status;
    w->calls++;
    if (status != 0 || w->calls != 1)
        b->bad++;
    if (++b->done == b->total)
        rp_store_port_close(b->port);
}

/* Opens a loop and a port, submits b->total inserts, runs the loop until all are back. */
static void run_burst(burst *b)
{
    b->loop_close_rc = -1;
    b->submit_rc = uv_loop_init(&b->loop);
    if (b->submit_rc != 0)
        return;
    b->submit_rc = rp_store_port_open(b->s, &b->loop, &b->port);
    if (b->submit_rc != 0)
        goto out;
    b->w = calloc((size_t)b->total, sizeof(*b->w));
    for (int i = 0; i < b->total && b->submit_rc == 0; i++) {
        b->w[i].b = b;
        b->w[i].key = i;
        b->submit_rc = rp_store_submit(b->port, insert_fn, &b->w[i], burst_done);
    }
    if (b->submit_rc != 0)
        rp_store_port_close(b->port);
    uv_run(&b->loop, UV_RUN_DEFAULT);
out:
    b->loop_close_rc = uv_loop_close(&b->loop);
}

static void burst_thread(void *arg)
{
    run_burst(arg);
}

typedef struct pragmas {
    char journal[16];
    int synchronous;
    int foreign_keys;
    int busy_timeout;
} pragmas;

static int pragmas_fn(sqlite3 *db, void *arg)
{
    pragmas *p = arg;

    query_text(db, "PRAGMA journal_mode", p->journal, sizeof(p->journal));
    p->synchronous = query_int(db, "PRAGMA synchronous");
    p->foreign_keys = query_int(db, "PRAGMA foreign_keys");
    p->busy_timeout = query_int(db, "PRAGMA busy_timeout");
    return 0;
}

static int einval_fn(sqlite3 *db, void *arg)
{
    (void)arg;
    assert_int_equal(insert_key(db, "rolled-back"), 0);
    return RP_EINVAL;
}

static int bad_sql_fn(sqlite3 *db, void *arg)
{
    (void)arg;
    return rp_store_exec(db, "INSERT INTO no_such_table VALUES (1)");
}

static int dup_fn(sqlite3 *db, void *arg)
{
    (void)arg;
    return insert_key(db, "k1"); /* inserted by an earlier op of the same group */
}

static int orphan_fn(sqlite3 *db, void *arg)
{
    (void)arg;
    return rp_store_exec(db, "INSERT INTO child (pid) VALUES (42)");
}

/* Holds the writer inside a group until the test has queued the next one. */
typedef struct gate {
    uv_sem_t started;
    uv_sem_t release;
} gate;

static int gate_fn(sqlite3 *db, void *arg)
{
    gate *g = arg;

    (void)db;
    uv_sem_post(&g->started);
    uv_sem_wait(&g->release);
    return 0;
}

/* One op of a gated group: what to run and what came back. */
typedef struct opcase {
    rp_store_write_fn fn;
    void *arg;
    int status;
    int calls;
    int *left;
    rp_store_port *port;
} opcase;

static int opcase_fn(sqlite3 *db, void *arg)
{
    opcase *c = arg;

    return c->fn(db, c->arg);
}

static void opcase_done(int status, void *arg)
{
    opcase *c = arg;

    c->status = status;
    c->calls++;
    if (--*c->left == 0)
        rp_store_port_close(c->port);
}

/*
 * Runs c[0..n) from a loop so that c[1..n) form exactly one group: c[0] must be the gate,
 * which holds the writer until all the others are queued behind it.
 */
static void run_gated(rp_store *s, gate *g, opcase *c, int n)
{
    rp_store_port *p = NULL;
    uv_loop_t loop;
    int left = n;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_store_port_open(s, &loop, &p), 0);
    assert_int_equal(uv_sem_init(&g->started, 0), 0);
    assert_int_equal(uv_sem_init(&g->release, 0), 0);
    for (int i = 0; i < n; i++) {
        c[i].left = &left;
        c[i].port = p;
    }
    assert_true(c[0].fn == gate_fn);
    assert_int_equal(rp_store_submit(p, opcase_fn, &c[0], opcase_done), 0);
    uv_sem_wait(&g->started);
    for (int i = 1; i < n; i++)
        assert_int_equal(rp_store_submit(p, opcase_fn, &c[i], opcase_done), 0);
    uv_sem_post(&g->release);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(left, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    uv_sem_destroy(&g->started);
    uv_sem_destroy(&g->release);
    for (int i = 0; i < n; i++)
        assert_int_equal(c[i].calls, 1);
}

static int parent_child_fn(sqlite3 *db, void *arg)
{
    (void)arg;
    return rp_store_exec(db, "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                             "CREATE TABLE child (pid INTEGER REFERENCES parent (id)"
                             " DEFERRABLE INITIALLY DEFERRED);");
}

/* ---- tests ---- */

static void test_open_pragmas_and_mode(void **state)
{
    char path[512];
    rp_store *s = NULL;
    sqlite3 *r = NULL;
    pragmas p;
    struct stat st;

    (void)state;
    db_path("open", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    memset(&p, 0, sizeof(p));
    assert_int_equal(rp_store_write_sync(s, pragmas_fn, &p), 0);
    assert_string_equal(p.journal, "wal");
    assert_int_equal(p.synchronous, 2); /* FULL */
    assert_int_equal(p.foreign_keys, 1);
    assert_int_equal(p.busy_timeout, RP_STORE_BUSY_TIMEOUT_MS);

    assert_int_equal(rp_store_reader_open(s, &r), 0);
    assert_int_equal(query_int(r, "PRAGMA user_version"), rp_schema_version());
    assert_int_not_equal(sqlite3_db_readonly(r, "main"), 0);
    sqlite3_close(r);
    rp_store_close(s);
    /* The -wal file, when present, inherits the database's mode. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_schema_exact(void **state)
{
    char path[512], sql[256];
    rp_store *s = NULL;
    sqlite3 *r = NULL;

    (void)state;
    db_path("schema", path, sizeof(path));
    assert_int_equal(rp_schema_version(), 8);
    assert_int_equal(rp_store_open(path, &s), 0);
    assert_int_equal(rp_store_reader_open(s, &r), 0);
    assert_int_equal(query_int(r, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 17);
    query_text(r, "SELECT sql FROM sqlite_master WHERE name = 'meta'", sql, sizeof(sql));
    assert_string_equal(sql, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    query_text(r, "SELECT sql FROM sqlite_master WHERE name = 'admin_credentials'", sql,
               sizeof(sql));
    assert_string_equal(sql, "CREATE TABLE admin_credentials (id TEXT PRIMARY KEY, hash BLOB NOT "
                             "NULL, created_at INTEGER NOT NULL)");
    sqlite3_close(r);
    rp_store_close(s);
}

static int objects_write(sqlite3 *db, void *arg)
{
    (void)arg;
    return rp_store_exec(db, "INSERT INTO meta (key, value) VALUES ('k', 'v');"
                             "INSERT INTO obj.blobs (id, ct) VALUES ('x/1', X'0102');");
}

/* The ciphertext store: a second file, 0600, attached to the writer and to readers (read-only),
 * written in the same transaction as the main file. */
static void test_objects_attached(void **state)
{
    char path[512], objects[600];
    rp_store *s = NULL;
    sqlite3 *r = NULL;
    struct stat st;

    (void)state;
    db_path("objmain", path, sizeof(path));
    db_path("objects", objects, sizeof(objects));
    assert_int_equal(rp_store_open_ex(path, objects, &s), 0);
    assert_int_equal(stat(objects, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rp_store_write_sync(s, objects_write, NULL), 0);
    assert_int_equal(rp_store_reader_open(s, &r), 0);
    assert_int_equal(query_int(r, "SELECT count(*) FROM obj.blobs WHERE id = 'x/1'"), 1);
    assert_int_equal(query_int(r, "SELECT count(*) FROM meta WHERE key = 'k'"), 1);
    assert_int_not_equal(sqlite3_db_readonly(r, "obj"), 0);
    assert_int_not_equal(sqlite3_exec(r, "DELETE FROM obj.blobs", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(r);
    /* A failing op rolls back its part of both files. */
    assert_int_not_equal(rp_store_write_sync(s, objects_write, NULL), 0);
    rp_store_close(s);
    s = NULL;
    /* Reopening finds the blobs again (created once, kept). */
    assert_int_equal(rp_store_open_ex(path, objects, &s), 0);
    assert_int_equal(rp_store_reader_open(s, &r), 0);
    assert_int_equal(query_int(r, "SELECT count(*) FROM obj.blobs"), 1);
    sqlite3_close(r);
    rp_store_close(s);
}

static void test_reopen_idempotent(void **state)
{
    char path[512];
    rp_store *s = NULL;
    wr w = {.key = 7};

    (void)state;
    db_path("reopen", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    assert_int_equal(rp_store_write_sync(s, insert_fn, &w), 0);
    rp_store_close(s);
    for (int i = 0; i < 2; i++) {
        s = NULL;
        assert_int_equal(rp_store_open(path, &s), 0);
        rp_store_close(s);
        assert_int_equal(count_rows(path, "PRAGMA user_version"), rp_schema_version());
        assert_int_equal(meta_rows(path), 1);
    }
}

static void test_newer_version_refused(void **state)
{
    char path[512], sql[64], mode[16];
    sqlite3 *db = NULL;
    rp_store *s = (rp_store *)&s; /* any non-NULL value: open must reset it */

    (void)state;
    db_path("newer", path, sizeof(path));
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", rp_schema_version() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(rp_store_open(path, &s), RP_EUNSUPPORTED);
    assert_null(s);
    /* Nothing was changed in the newer database, not even its journal mode. */
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    query_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "delete");
    assert_int_equal(query_int(db, "PRAGMA user_version"), rp_schema_version() + 1);
    sqlite3_close(db);
}

static void test_file_checks(void **state)
{
    char path[512], link[600];
    rp_store *s = NULL;
    struct stat st;
    FILE *f;

    (void)state;
    /* A pre-existing world-readable file is tightened to 0600. */
    db_path("loose", path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rp_store_open(path, &s), 0);
    rp_store_close(s);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A symlink is refused. */
    snprintf(link, sizeof(link), "%s.link", path);
    unlink(link);
    assert_int_equal(symlink(path, link), 0);
    s = NULL;
    assert_int_equal(rp_store_open(link, &s), RP_EINVAL);
    assert_null(s);
    unlink(link);

    assert_int_equal(rp_store_open("", &s), RP_EINVAL);
}

static void test_group_commit_one_loop(void **state)
{
    char path[512];
    burst b;
    rp_store_stats st;

    (void)state;
    db_path("burst", path, sizeof(path));
    memset(&b, 0, sizeof(b));
    b.prefix = "k";
    b.total = BURST;
    assert_int_equal(rp_store_open(path, &b.s), 0);
    run_burst(&b);
    assert_int_equal(b.submit_rc, 0);
    assert_int_equal(b.loop_close_rc, 0);
    assert_int_equal(b.done, BURST);
    assert_int_equal(b.bad, 0);
    rp_store_get_stats(b.s, &st);
    assert_int_equal(st.writes, BURST);
    assert_int_equal(st.failed, 0);
    assert_true(st.commits >= BURST / RP_STORE_BATCH_MAX);
    assert_true(st.commits < BURST / 4);
    rp_store_close(b.s);
    free(b.w);

    b.s = NULL;
    assert_int_equal(rp_store_open(path, &b.s), 0);
    rp_store_close(b.s);
    assert_int_equal(meta_rows(path), BURST);
}

static void test_group_commit_two_threads(void **state)
{
    char path[512];
    rp_store *s = NULL;
    burst b[2];
    uv_thread_t t[2];
    rp_store_stats st;

    (void)state;
    db_path("threads", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 2; i++) {
        b[i].s = s;
        b[i].prefix = i == 0 ? "a" : "b";
        b[i].total = BURST;
        assert_int_equal(uv_thread_create(&t[i], burst_thread, &b[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(uv_thread_join(&t[i]), 0);
        assert_int_equal(b[i].submit_rc, 0);
        assert_int_equal(b[i].loop_close_rc, 0);
        assert_int_equal(b[i].done, BURST);
        assert_int_equal(b[i].bad, 0);
        free(b[i].w);
    }
    rp_store_get_stats(s, &st);
    assert_int_equal(st.writes, 2 * BURST);
    assert_int_equal(st.failed, 0);
    assert_true(st.commits < 2 * BURST / 4);
    rp_store_close(s);

    s = NULL;
    assert_int_equal(rp_store_open(path, &s), 0);
    rp_store_close(s);
    assert_int_equal(meta_rows(path), 2 * BURST);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM meta WHERE key LIKE 'a%'"), BURST);
}

static void test_failing_ops_isolated(void **state)
{
    char path[512];
    rp_store *s = NULL;
    rp_store_stats st;
    gate g;
    wr ok[4] = {{.key = 1}, {.key = 2}, {.key = 3}, {.key = 4}};
    opcase c[8] = {
        {.fn = gate_fn, .arg = &g},
        {.fn = insert_fn, .arg = &ok[0]},
        {.fn = einval_fn},
        {.fn = insert_fn, .arg = &ok[1]},
        {.fn = bad_sql_fn},
        {.fn = insert_fn, .arg = &ok[2]},
        {.fn = dup_fn},
        {.fn = insert_fn, .arg = &ok[3]},
    };
    int want[8] = {0, 0, RP_EINVAL, 0, RP_EDB, 0, RP_EEXIST, 0};

    (void)state;
    db_path("isolated", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    run_gated(s, &g, c, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(c[i].status, want[i]);
    rp_store_get_stats(s, &st);
    assert_int_equal(st.writes, 8);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.commits, 2); /* the gate, then the seven others together */
    rp_store_close(s);
    assert_int_equal(meta_rows(path), 4); /* k1..k4; the failing ops left nothing */
    assert_int_equal(count_rows(path, "SELECT count(*) FROM meta WHERE key = 'rolled-back'"), 0);
}

static void test_failed_commit_fails_group(void **state)
{
    char path[512];
    rp_store *s = NULL;
    rp_store_stats st;
    gate g;
    wr ok[3] = {{.key = 1}, {.key = 2}, {.key = 3}};
    opcase c[4] = {
        {.fn = gate_fn, .arg = &g},
        {.fn = insert_fn, .arg = &ok[0]},
        {.fn = orphan_fn}, /* fine until COMMIT checks the deferred foreign key */
        {.fn = insert_fn, .arg = &ok[1]},
    };

    (void)state;
    db_path("commitfail", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    assert_int_equal(rp_store_write_sync(s, parent_child_fn, NULL), 0);
    run_gated(s, &g, c, 4);
    assert_int_equal(c[0].status, 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(c[i].status, RP_EDB);
    /* The writer recovers: the next group commits. */
    assert_int_equal(rp_store_write_sync(s, insert_fn, &ok[2]), 0);
    rp_store_get_stats(s, &st);
    assert_int_equal(st.writes, 6);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.commits, 3);
    rp_store_close(s);
    assert_int_equal(meta_rows(path), 1);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM child"), 0);
}

static void test_write_sync_and_reader(void **state)
{
    char path[512];
    rp_store *s = NULL;
    sqlite3 *r = NULL;
    wr w = {.key = 5};

    (void)state;
    db_path("sync", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    assert_int_equal(rp_store_reader_open(s, &r), 0);
    assert_int_equal(query_int(r, "SELECT count(*) FROM meta"), 0);
    assert_int_equal(rp_store_write_sync(s, insert_fn, &w), 0);
    assert_int_equal(query_int(r, "SELECT count(*) FROM meta WHERE key = 'k5'"), 1);
    /* A failing synchronous write returns the op's own code and leaves nothing behind. */
    assert_int_equal(rp_store_write_sync(s, einval_fn, NULL), RP_EINVAL);
    assert_int_equal(query_int(r, "SELECT count(*) FROM meta"), 1);
    /* The reader really is read-only. */
    assert_int_not_equal(sqlite3_exec(r, "DELETE FROM meta", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(rp_store_write_sync(s, NULL, NULL), RP_EINVAL);
    sqlite3_close(r);
    rp_store_close(s);
}

static void test_close_with_writes_in_flight(void **state)
{
    char path[512];
    burst b;

    (void)state;
    db_path("inflight", path, sizeof(path));
    memset(&b, 0, sizeof(b));
    b.prefix = "k";
    b.total = 300;
    assert_int_equal(rp_store_open(path, &b.s), 0);
    assert_int_equal(uv_loop_init(&b.loop), 0);
    assert_int_equal(rp_store_port_open(b.s, &b.loop, &b.port), 0);
    b.w = calloc((size_t)b.total, sizeof(*b.w));
    assert_non_null(b.w);
    for (int i = 0; i < b.total; i++) {
        b.w[i].b = &b;
        b.w[i].key = i;
        assert_int_equal(rp_store_submit(b.port, insert_fn, &b.w[i], burst_done), 0);
    }
    rp_store_close(b.s); /* drains all 300 before it returns */
    assert_int_equal(rp_store_submit(b.port, insert_fn, &b.w[0], burst_done), RP_ECLOSED);
    assert_int_equal(b.done, 0); /* the loop has not run yet */
    uv_run(&b.loop, UV_RUN_DEFAULT);
    assert_int_equal(b.done, 300);
    assert_int_equal(b.bad, 0);
    assert_int_equal(uv_loop_close(&b.loop), 0);
    free(b.w);
    assert_int_equal(meta_rows(path), 300);
}

static void test_port_close_drops_callbacks(void **state)
{
    char path[512];
    burst b;

    (void)state;
    db_path("portclose", path, sizeof(path));
    memset(&b, 0, sizeof(b));
    b.prefix = "k";
    b.total = 100;
    assert_int_equal(rp_store_open(path, &b.s), 0);
    assert_int_equal(uv_loop_init(&b.loop), 0);
    assert_int_equal(rp_store_port_open(b.s, &b.loop, &b.port), 0);
    b.w = calloc((size_t)b.total, sizeof(*b.w));
    assert_non_null(b.w);
    for (int i = 0; i < b.total; i++) {
        b.w[i].b = &b;
        b.w[i].key = i;
        assert_int_equal(rp_store_submit(b.port, insert_fn, &b.w[i], burst_done), 0);
    }
    rp_store_port_close(b.port);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&b.loop), 0);
    rp_store_close(b.s); /* the writes still commit; their callbacks are gone */
    assert_int_equal(b.done, 0);
    free(b.w);
    assert_int_equal(meta_rows(path), 100);
}

static void test_close_order_and_null(void **state)
{
    char path[512];
    rp_store *s = NULL;
    rp_store_port *p = NULL;
    uv_loop_t loop;

    (void)state;
    /* Store closed first, port later: the port keeps what it needs alive. */
    db_path("order", path, sizeof(path));
    assert_int_equal(rp_store_open(path, &s), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_store_port_open(s, &loop, &p), 0);
    rp_store_close(s);
    assert_int_equal(rp_store_submit(p, insert_fn, NULL, NULL), RP_ECLOSED);
    rp_store_port_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    rp_store_close(NULL);
    rp_store_port_close(NULL);
    assert_int_equal(rp_store_submit(NULL, insert_fn, NULL, NULL), RP_EINVAL);
}

static void test_alloc_failure(void **state)
{
    char path[512];
    rp_store *s = NULL;
    rp_store_port *p = NULL;
    uv_loop_t loop;
    burst b;
    int rc = RP_ENOMEM, n;

    (void)state;
    db_path("oom", path, sizeof(path));
    /* Every allocation in open fails cleanly until there are enough. */
    for (n = 0; n < 16 && rc == RP_ENOMEM; n++) {
        rp_alloc_fail_after(n);
        rc = rp_store_open(path, &s);
        rp_alloc_fail_after(-1);
        if (rc != 0)
            assert_null(s);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 1);

    assert_int_equal(uv_loop_init(&loop), 0);
    rp_alloc_fail_after(0);
    assert_int_equal(rp_store_port_open(s, &loop, &p), RP_ENOMEM);
    rp_alloc_fail_after(-1);
    assert_null(p);
    assert_int_equal(rp_store_port_open(s, &loop, &p), 0);

    memset(&b, 0, sizeof(b));
    b.prefix = "k";
    b.total = 1;
    b.port = p;
    b.w = calloc(1, sizeof(*b.w));
    assert_non_null(b.w);
    b.w[0].b = &b;
    rp_alloc_fail_after(0);
    assert_int_equal(rp_store_submit(p, insert_fn, &b.w[0], burst_done), RP_ENOMEM);
    rp_alloc_fail_after(-1);
    /* The store is unaffected: the next submit goes through. */
    assert_int_equal(rp_store_submit(p, insert_fn, &b.w[0], burst_done), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.w[0].calls, 1);
    assert_int_equal(b.w[0].status, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    rp_store_close(s);
    free(b.w);
    assert_int_equal(meta_rows(path), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_pragmas_and_mode),
        cmocka_unit_test(test_schema_exact),
        cmocka_unit_test(test_reopen_idempotent),
        cmocka_unit_test(test_newer_version_refused),
        cmocka_unit_test(test_file_checks),
        cmocka_unit_test(test_group_commit_one_loop),
        cmocka_unit_test(test_group_commit_two_threads),
        cmocka_unit_test(test_failing_ops_isolated),
        cmocka_unit_test(test_failed_commit_fails_group),
        cmocka_unit_test(test_write_sync_and_reader),
        cmocka_unit_test(test_close_with_writes_in_flight),
        cmocka_unit_test(test_port_close_drops_callbacks),
        cmocka_unit_test(test_close_order_and_null),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_objects_attached),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
