/*
 * store.c - the SQLite writer thread with group commit, completion ports and reader connections.
 *
 * Workload: bursts of small writes from every loop thread, each needing durability before its
 * request can be answered. With synchronous=FULL every COMMIT costs an fsync of the WAL, so the
 * number of commits, not the number of writes, bounds throughput. Design:
 *
 *   submitters --(store mutex: FIFO of ops, cond signal)--> writer thread
 *   writer: take up to RP_STORE_BATCH_MAX ops; BEGIN IMMEDIATE; per op SAVEPOINT / fn /
 *           RELEASE (or ROLLBACK TO); COMMIT (one fsync); then hand each op back:
 *   writer --(port mutex: completion FIFO, uv_async_send)--> the op's loop runs done(status)
 *
 * While one group is being committed the next one queues up, so under load the group size
 * grows by itself and no timer is needed; an idle store commits a single write at once.
 *
 * Lifetimes: the store and each port are ref-counted. The store is held by its owner (until
 * rp_store_close), by each port and by each waiting rp_store_write_sync caller; a port is held
 * by its uv handle (until the close callback) and by each of its ops in flight. That is what
 * makes "close the port with writes in flight" and "submit after the store closed" safe.
 * Lock order: never hold the store mutex and a port mutex at the same time.
 */
#include "store/store.h"
#include "base/alloc.h"
#include "base/cport.h"
#include "base/err.h"
#include "base/log.h"
#include "store/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct store_op {
    rp_cport_item item; /* first: next (the writer's queue, then the port's), done, arg, status */
    rp_store_write_fn fn;
    rp_cport *port; /* NULL for rp_store_write_sync: then the op lives on the caller's stack */
    int finished;   /* write_sync only; guarded by the store mutex */
} store_op;

struct rp_store {
    char *path;
    char *objects_path; /* the ciphertext store, attached as "obj" (NULL: none) */
    sqlite3 *db;        /* the writer connection; the writer thread's alone once it runs */
    uv_thread_t thread;
    int sync_ready;     /* mu and the conds exist */
    int thread_started; /* thread must be joined */

    uv_mutex_t mu;     /* guards head, tail, refs, closing, stats, op->finished */
    uv_cond_t work_cv; /* the writer waits here for ops or for closing */
    uv_cond_t sync_cv; /* rp_store_write_sync callers wait here */
    store_op *head;
    store_op *tail;
    unsigned refs;
    int closing;
    rp_store_stats stats;

    store_op *batch[RP_STORE_BATCH_MAX]; /* the group in progress: writer thread only */
    /* Prepared statements of the writer connection, by SQL text address (rp_store_stmt):
     * writer thread only, finalized when it ends. */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[RP_STORE_STMT_CACHE];
    size_t nstmts;
};

/* The store whose writer runs on this thread (NULL elsewhere). */
static __thread rp_store *tl_writer;

/* A store port is a completion port (base/cport.h) whose owner is the store. */
static rp_cport *cport_of(rp_store_port *p)
{
    return (rp_cport *)p;
}

int rp_store_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RP_EDB;
}

sqlite3_stmt *rp_store_stmt(sqlite3 *db, const char *sql)
{
    rp_store *s = tl_writer;
    sqlite3_stmt *st = NULL;

    if (s != NULL && s->db == db) {
        for (size_t i = 0; i < s->nstmts; i++) {
            if (s->stmts[i].sql == sql) {
                sqlite3_reset(s->stmts[i].st);
                sqlite3_clear_bindings(s->stmts[i].st);
                return s->stmts[i].st;
            }
        }
    }
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    if (s != NULL && s->db == db && s->nstmts < RP_STORE_STMT_CACHE) {
        s->stmts[s->nstmts].sql = sql;
        s->stmts[s->nstmts++].st = st;
    }
    return st;
}

void rp_store_stmt_done(sqlite3 *db, sqlite3_stmt *st)
{
    rp_store *s = tl_writer;

    if (st == NULL)
        return;
    if (s != NULL && s->db == db) {
        for (size_t i = 0; i < s->nstmts; i++) {
            if (s->stmts[i].st == st) {
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
                return;
            }
        }
    }
    sqlite3_finalize(st);
}

/* Runs a cached one-statement SQL text without results: 0 or RP_EDB. */
static int exec_cached(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = rp_store_stmt(db, sql);
    int rc;

    if (st == NULL)
        return RP_EDB;
    rc = sqlite3_step(st);
    rp_store_stmt_done(db, st);
    return rc == SQLITE_DONE ? 0 : RP_EDB;
}

/* SQLite's messages name tables and constraints, never values, so they may be logged. */
static void log_db(rp_log_level level, const char *event, sqlite3 *db)
{
    rp_logline l;

    rp_logline_begin(&l, level, event);
    rp_logline_str(&l, "sqlite", sqlite3_errmsg(db));
    rp_logline_int(&l, "code", sqlite3_extended_errcode(db));
    rp_logline_end(&l);
}

/* ---- lifetimes ---- */

static void store_free(rp_store *s)
{
    if (s == NULL)
        return;
    if (s->sync_ready) {
        uv_cond_destroy(&s->sync_cv);
        uv_cond_destroy(&s->work_cv);
        uv_mutex_destroy(&s->mu);
    }
    sqlite3_close(s->db);
    rp_free(s->path);
    rp_free(s->objects_path);
    rp_free(s);
}

/* Takes a reference unless the store is closing: 0 or RP_ECLOSED. */
static int store_ref(rp_store *s)
{
    int rc = 0;

    uv_mutex_lock(&s->mu);
    if (s->closing)
        rc = RP_ECLOSED;
    else
        s->refs++;
    uv_mutex_unlock(&s->mu);
    return rc;
}

static void store_unref(rp_store *s)
{
    int last;

    uv_mutex_lock(&s->mu);
    last = --s->refs == 0;
    uv_mutex_unlock(&s->mu);
    if (last)
        store_free(s);
}

/* ---- the writer thread ---- */

/* Gives every op in ops[from..to) that has not failed on its own the group's error. */
static void fail_ops(store_op **ops, size_t from, size_t to, int err)
{
    for (size_t i = from; i < to; i++) {
        if (ops[i]->item.status == 0)
            ops[i]->item.status = err;
    }
}

/* Runs one op inside its own savepoint; returns its status. */
static int writer_run_op(sqlite3 *db, store_op *op)
{
    int rc;

    if (exec_cached(db, "SAVEPOINT rp_op") != 0)
        return RP_EDB;
    rc = op->fn(db, op->item.arg);
    if (rc > 0)
        rc = RP_EDB; /* a raw SQLite code slipped through */
    if (sqlite3_get_autocommit(db))
        return rc != 0 ? rc : RP_EDB; /* the transaction is gone; the caller sorts it out */
    if (rc == 0 && exec_cached(db, "RELEASE rp_op") == 0)
        return 0;
    if (rc == 0)
        rc = RP_EDB;
    if (rp_store_exec(db, "ROLLBACK TO rp_op") != 0 || rp_store_exec(db, "RELEASE rp_op") != 0) {
        /* This op's changes cannot be undone alone: drop the whole transaction. */
        log_db(RP_LOG_ERROR, "store.rollback_op", db);
        rp_store_exec(db, "ROLLBACK");
    }
    return rc;
}

/*
 * Runs the n ops in s->batch and sets each one's status. Normally one transaction; if an op
 * ends the transaction behind our back (an I/O error, SQLITE_FULL, a stray COMMIT), the ops
 * run so far in it fail with RP_EDB and the rest start a new one. Returns the commits made.
 */
static unsigned writer_run_group(rp_store *s, size_t n)
{
    sqlite3 *db = s->db;
    store_op **ops = s->batch;
    unsigned commits = 0;
    size_t i = 0;

    while (i < n) {
        size_t first;

        if (rp_store_exec(db, "BEGIN IMMEDIATE") != 0) {
            log_db(RP_LOG_ERROR, "store.begin", db);
            fail_ops(ops, i, n, RP_EDB);
            break;
        }
        first = i;
        while (i < n && !sqlite3_get_autocommit(db)) {
            ops[i]->item.status = writer_run_op(db, ops[i]);
            i++;
        }
        if (sqlite3_get_autocommit(db)) {
            log_db(RP_LOG_ERROR, "store.txn_lost", db);
            fail_ops(ops, first, i, RP_EDB);
            continue;
        }
        if (rp_store_exec(db, "COMMIT") != 0) {
            log_db(RP_LOG_ERROR, "store.commit", db);
            if (!sqlite3_get_autocommit(db))
                rp_store_exec(db, "ROLLBACK");
            fail_ops(ops, first, i, RP_EDB);
            continue;
        }
        commits++;
    }
    return commits;
}

/*
 * Publishes the group: counters first (so a test that saw its callbacks sees the counters),
 * then wakes the synchronous callers and passes the rest to their ports. A write_sync op must
 * not be touched once finished is set, so the port ops are compacted into batch[0..k) first.
 */
static void writer_finish(rp_store *s, size_t n, unsigned commits)
{
    size_t i, k = 0;
    int woke = 0;

    uv_mutex_lock(&s->mu);
    s->stats.writes += n;
    s->stats.commits += commits;
    for (i = 0; i < n; i++) {
        store_op *op = s->batch[i];

        if (op->item.status != 0)
            s->stats.failed++;
        if (op->port == NULL) {
            op->finished = 1;
            woke = 1;
        } else {
            s->batch[k++] = op;
        }
    }
    if (woke)
        uv_cond_broadcast(&s->sync_cv);
    uv_mutex_unlock(&s->mu);
    for (i = 0; i < k; i++)
        rp_cport_deliver(s->batch[i]->port, &s->batch[i]->item);
}

static void writer_main(void *arg)
{
    rp_store *s = arg;
    size_t n;

    tl_writer = s;
    uv_mutex_lock(&s->mu);
    for (;;) {
        while (s->head == NULL && !s->closing)
            uv_cond_wait(&s->work_cv, &s->mu);
        if (s->head == NULL)
            break; /* closing and drained */
        for (n = 0; s->head != NULL && n < RP_STORE_BATCH_MAX; n++) {
            s->batch[n] = s->head;
            s->head = (store_op *)s->head->item.next;
        }
        if (s->head == NULL)
            s->tail = NULL;
        uv_mutex_unlock(&s->mu);
        writer_finish(s, n, writer_run_group(s, n));
        uv_mutex_lock(&s->mu);
    }
    uv_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->nstmts; i++)
        sqlite3_finalize(s->stmts[i].st);
    s->nstmts = 0;
    tl_writer = NULL;
}

/* Appends op to the writer's queue: 0 or RP_ECLOSED. Caller holds s->mu. */
static int enqueue_locked(rp_store *s, store_op *op)
{
    if (s->closing)
        return RP_ECLOSED;
    op->item.next = NULL;
    if (s->tail != NULL)
        s->tail->item.next = &op->item;
    else
        s->head = op;
    s->tail = op;
    uv_cond_signal(&s->work_cv);
    return 0;
}

/* ---- open and close ---- */

static int errno_rc(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR: return RP_ENOENT;
    case EACCES:
    case EPERM:
    case EROFS: return RP_EPERM;
    case ELOOP: return RP_EINVAL;
    default: return RP_EIO;
    }
}

/*
 * Makes sure path is a regular file with mode 0600 before SQLite opens it (SQLite would create
 * it 0644). An existing file is never opened here: closing any descriptor of a database file
 * drops the POSIX locks of every SQLite connection in this process on that file.
 */
static int prepare_file(const char *path)
{
    struct stat st;

    for (int tries = 0; tries < 2; tries++) {
        int fd;

        if (lstat(path, &st) == 0) {
            if (!S_ISREG(st.st_mode))
                return RP_EINVAL;
            if ((st.st_mode & 077) != 0) {
                if (chmod(path, S_IRUSR | S_IWUSR) != 0)
                    return errno_rc(errno);
                rp_log_msg(RP_LOG_WARN, "store.mode", "database file mode tightened to 0600");
            }
            return 0;
        }
        if (errno != ENOENT)
            return errno_rc(errno);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
        if (fd < 0) {
            if (errno == EEXIST)
                continue; /* created by someone else meanwhile: check it like any other */
            return errno_rc(errno);
        }
        /* The umask may have narrowed the mode; 0600 exactly is what the docs promise. */
        if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
            close(fd);
            return errno_rc(errno);
        }
        close(fd);
        return 0;
    }
    return RP_EIO;
}

/* Reads a one-row, one-column pragma as an integer. */
static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = RP_EDB;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int set_wal(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;
    int rc = RP_EDB;

    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    mode = sqlite3_column_text(st, 0);
    rc = (mode != NULL && strcmp((const char *)mode, "wal") == 0) ? 0 : RP_EUNSUPPORTED;
out:
    if (rc == RP_EDB)
        log_db(RP_LOG_ERROR, "store.wal", db);
    sqlite3_finalize(st);
    return rc;
}

/*
 * The writer's checkpoints and page cache. Versions are keyed by random ids, so each set dirties
 * random leaves of the version and ciphertext indexes. With SQLite's defaults (a checkpoint in
 * the committing thread every 1,000 WAL pages, a 2 MiB cache) the writer stopped every ~4 MiB
 * to copy pages it had barely changed into the files and fsync them, and as the files grew
 * those stops grew: sets slowed from 4,460 to 3,070/s over three 5 s rounds of bench/vault.
 * Checkpointing every 16,000 pages (64 MiB of WAL per file at most between checkpoints)
 * copies each hot page once per many commits; 16 MiB of cache keeps the interior pages and
 * recent leaves. (A checkpointer thread of its own did worse on two cores: the copy still
 * costs the same CPU, now competing with the requests.)
 */
#define WRITER_CHECKPOINT_PAGES 16000
#define WRITER_CACHE            "-16384"

/*
 * Attaches the ciphertext store as schema "obj". A reader's attachment inherits its read-only
 * open flags. The writer puts it in WAL mode with synchronous=FULL too: a COMMIT that touches
 * both files syncs both before it returns, though a crash inside the COMMIT may keep one
 * file's part and not the other's (WAL commits are atomic per file), which is why readers
 * only trust a metadata row whose ciphertext row exists.
 */
static int attach_objects(rp_store *s, sqlite3 *db, int writer)
{
    sqlite3_stmt *st = NULL;
    int rc = RP_EDB;

    if (s->objects_path == NULL)
        return 0;
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ? AS obj", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, s->objects_path, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = 0;
    if (writer) {
        sqlite3_stmt *wal = NULL;
        const unsigned char *mode;
        rc = RP_EDB;
        if (sqlite3_prepare_v2(db, "PRAGMA obj.journal_mode=WAL", -1, &wal, NULL) == SQLITE_OK &&
            sqlite3_step(wal) == SQLITE_ROW) {
            mode = sqlite3_column_text(wal, 0);
            rc = mode != NULL && strcmp((const char *)mode, "wal") == 0 ? 0 : RP_EUNSUPPORTED;
        }
        sqlite3_finalize(wal);
        if (rc == 0 &&
            rp_store_exec(db, "PRAGMA obj.synchronous=FULL; PRAGMA obj.cache_size=" WRITER_CACHE) !=
                0)
            rc = RP_EDB;
        if (rc == 0)
            rc = rp_schema_objects(db);
    }
out:
    if (rc == RP_EDB)
        log_db(RP_LOG_ERROR, "store.attach", db);
    sqlite3_finalize(st);
    return rc;
}

static int open_writer(rp_store *s)
{
    int v, fk, rc;

    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK)
        return rc == SQLITE_NOMEM ? RP_ENOMEM : RP_EDB;
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_busy_timeout(s->db, RP_STORE_BUSY_TIMEOUT_MS);
    /* Refuse a newer database before changing anything in it (even its journal mode). */
    if (rp_schema_current(s->db, &v) != 0)
        return RP_EDB;
    if (v > rp_schema_version())
        return RP_EUNSUPPORTED;
    rc = set_wal(s->db);
    if (rc != 0)
        return rc;
    if (rp_store_exec(
            s->db,
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=" WRITER_CACHE) !=
            0 ||
        sqlite3_wal_autocheckpoint(s->db, WRITER_CHECKPOINT_PAGES) != SQLITE_OK)
        return RP_EDB;
    if (pragma_int(s->db, "PRAGMA foreign_keys", &fk) != 0)
        return RP_EDB;
    if (fk != 1)
        return RP_EUNSUPPORTED; /* SQLite built without foreign keys */
    rc = attach_objects(s, s->db, 1);
    if (rc != 0)
        return rc;
    return rp_schema_migrate(s->db);
}

int rp_store_open(const char *path, rp_store **out)
{
    return rp_store_open_ex(path, NULL, out);
}

int rp_store_open_ex(const char *path, const char *objects_path, rp_store **out)
{
    rp_store *s;
    int rc;

    if (out == NULL)
        return RP_EINVAL;
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return RP_EINVAL;
    if (!sqlite3_threadsafe())
        return RP_EUNSUPPORTED;
    s = rp_calloc(1, sizeof(*s));
    if (s == NULL)
        return RP_ENOMEM;
    s->refs = 1;
    rc = RP_ENOMEM;
    s->path = rp_strdup(path);
    if (s->path == NULL)
        goto fail;
    if (objects_path != NULL) {
        s->objects_path = rp_strdup(objects_path);
        if (s->objects_path == NULL)
            goto fail;
    }
    rc = RP_EIO;
    if (uv_mutex_init(&s->mu) != 0)
        goto fail;
    if (uv_cond_init(&s->work_cv) != 0) {
        uv_mutex_destroy(&s->mu);
        goto fail;
    }
    if (uv_cond_init(&s->sync_cv) != 0) {
        uv_cond_destroy(&s->work_cv);
        uv_mutex_destroy(&s->mu);
        goto fail;
    }
    s->sync_ready = 1;
    rc = prepare_file(path);
    if (rc == 0 && objects_path != NULL)
        rc = prepare_file(objects_path);
    if (rc != 0)
        goto fail;
    rc = open_writer(s);
    if (rc != 0)
        goto fail;
    if (uv_thread_create(&s->thread, writer_main, s) != 0) {
        rc = RP_EIO;
        goto fail;
    }
    s->thread_started = 1;
    *out = s;
    return 0;
fail:
    if (rc == RP_EDB && s->db != NULL)
        log_db(RP_LOG_ERROR, "store.open", s->db);
    store_free(s);
    return rc;
}

void rp_store_close(rp_store *s)
{
    sqlite3_stmt *st;

    if (s == NULL)
        return;
    uv_mutex_lock(&s->mu);
    s->closing = 1;
    uv_cond_signal(&s->work_cv);
    uv_mutex_unlock(&s->mu);
    if (s->thread_started)
        uv_thread_join(&s->thread);
    /* A write function that leaked a statement would keep the connection (and WAL) open. */
    while ((st = sqlite3_next_stmt(s->db, NULL)) != NULL) {
        rp_log_msg(RP_LOG_WARN, "store.close", "a write function leaked a statement");
        sqlite3_finalize(st);
    }
    sqlite3_close(s->db);
    s->db = NULL;
    store_unref(s);
}

/* ---- ports ---- */

static void port_release(void *owner)
{
    store_unref(owner);
}

int rp_store_port_open(rp_store *s, uv_loop_t *loop, rp_store_port **out)
{
    rp_cport *p;
    int rc;

    if (out == NULL)
        return RP_EINVAL;
    *out = NULL;
    if (s == NULL || loop == NULL)
        return RP_EINVAL;
    rc = store_ref(s);
    if (rc != 0)
        return rc;
    rc = rp_cport_open(loop, port_release, s, &p);
    if (rc != 0) {
        store_unref(s);
        return rc;
    }
    *out = (rp_store_port *)p;
    return 0;
}

void rp_store_port_close(rp_store_port *p)
{
    rp_cport_close(cport_of(p));
}

/* ---- writes ---- */

int rp_store_submit(rp_store_port *p, rp_store_write_fn fn, void *arg, rp_store_done_fn done)
{
    rp_store *s;
    store_op *op;
    int rc;

    if (p == NULL || fn == NULL)
        return RP_EINVAL;
    s = rp_cport_owner(cport_of(p));
    op = rp_calloc(1, sizeof(*op));
    if (op == NULL)
        return RP_ENOMEM;
    op->fn = fn;
    op->item.arg = arg;
    op->item.done = done;
    op->port = cport_of(p);
    rp_cport_hold(op->port);
    uv_mutex_lock(&s->mu);
    rc = enqueue_locked(s, op);
    uv_mutex_unlock(&s->mu);
    if (rc != 0) {
        rp_cport_drop(op->port); /* never the last reference: the handle holds one */
        rp_free(op);
    }
    return rc;
}

int rp_store_write_sync(rp_store *s, rp_store_write_fn fn, void *arg)
{
    store_op op;
    int last, rc;

    if (s == NULL || fn == NULL)
        return RP_EINVAL;
    memset(&op, 0, sizeof(op));
    op.fn = fn;
    op.item.arg = arg;
    uv_mutex_lock(&s->mu);
    rc = enqueue_locked(s, &op);
    if (rc != 0) {
        uv_mutex_unlock(&s->mu);
        return rc;
    }
    s->refs++; /* rp_store_close may run while we wait; the last one out frees */
    while (!op.finished)
        uv_cond_wait(&s->sync_cv, &s->mu);
    last = --s->refs == 0;
    uv_mutex_unlock(&s->mu);
    if (last)
        store_free(s);
    return op.item.status;
}

/* ---- readers and counters ---- */

int rp_store_reader_open(rp_store *s, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc;

    if (out == NULL)
        return RP_EINVAL;
    *out = NULL;
    if (s == NULL)
        return RP_EINVAL;
    rc = sqlite3_open_v2(s->path, &db,
                         SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return rc == SQLITE_NOMEM ? RP_ENOMEM : RP_EDB;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_busy_timeout(db, RP_STORE_BUSY_TIMEOUT_MS);
    rc = attach_objects(s, db, 0);
    if (rc != 0) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void rp_store_get_stats(rp_store *s, rp_store_stats *out)
{
    uv_mutex_lock(&s->mu);
    *out = s->stats;
    uv_mutex_unlock(&s->mu);
}
