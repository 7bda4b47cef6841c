/*
 * store.h - the embedded state store: one SQLite database, one writer thread, group commit.
 *
 * Workload: many small writes from every loop (event publishes, secret sets, audit rows), each
 * of which must be durable before the client gets its answer, and many more reads. One fsync
 * per write would cap the whole platform at the disk's fsync rate, so writes are queued to a
 * single writer thread that runs everything queued (up to RP_STORE_BATCH_MAX ops) in one
 * transaction with one fsync - group commit. Each op runs inside its own SAVEPOINT, so a
 * failing op is rolled back alone and the rest of its group still commits.
 *
 * The database runs in WAL mode with synchronous=FULL and foreign_keys=ON; readers open their
 * own connections (rp_store_reader_open) and never wait for the writer.
 *
 * Usage:
 *     rp_store_open(path, &s);                  at start-up; migrations run here
 *     rp_store_port_open(s, loop, &p);          once per libuv loop, on that loop's thread
 *     rp_store_submit(p, fn, arg, done);        from that loop: done(status, arg) runs on it
 *                                               once the write is durable or has failed
 *     rp_store_write_sync(s, fn, arg);          CLI and start-up: blocks until durable
 *     rp_store_port_close(p); rp_store_close(s);
 *
 * Ownership: the store owns the writer connection; write functions get it only for the length
 * of the call. A port and the store are ref-counted internally, so closing them in either order
 * is safe; after rp_store_close(s) only rp_store_submit/rp_store_port_close on existing ports
 * may still be called (submit then returns RP_ECLOSED), nothing that takes s.
 * Memory: rp_store_submit allocates one op (propagates RP_ENOMEM); the writer thread itself
 * never allocates through rp_malloc.
 */
#ifndef RP_STORE_STORE_H
#define RP_STORE_STORE_H

#include <sqlite3.h>
#include <stdint.h>
#include <uv.h>

/* Most ops run in one transaction; more wait for the next group. */
#define RP_STORE_BATCH_MAX 256
/* How long a connection waits for a lock held by another process before SQLITE_BUSY. */
#define RP_STORE_BUSY_TIMEOUT_MS 5000

typedef struct rp_store rp_store;
typedef struct rp_store_port rp_store_port; /* where completions are delivered: one per loop */

/*
 * A write: runs on the writer thread inside the group's transaction, inside its own SAVEPOINT.
 * Returns 0 or an RP_E* code; any non-zero return rolls back everything this op did (and only
 * that). It must finalize every statement it prepares, must not BEGIN/COMMIT/ROLLBACK the
 * outer transaction, and must not call rp_store_write_sync (that would deadlock the writer).
 * It should be short: the whole group waits for it.
 */
typedef int (*rp_store_write_fn)(sqlite3 *db, void *arg);

/*
 * Completion: runs on the loop of the port the write was submitted through, after the commit
 * is durable (status 0) or failed (the op's own RP_E* code, or RP_EDB when the group's
 * transaction failed). Completions for one port arrive in submission order.
 */
typedef void (*rp_store_done_fn)(int status, void *arg);

/*
 * Opens or creates the database file at path (created with mode 0600; an existing file with
 * group/other permission bits is tightened to 0600), sets WAL mode, synchronous=FULL,
 * foreign_keys=ON and a busy timeout, applies migrations and starts the writer thread.
 * Returns 0 and *out, or RP_EUNSUPPORTED (database from a newer rampart, or WAL / foreign keys
 * not available), RP_EINVAL (path is a symlink or not a regular file), RP_ENOENT / RP_EPERM /
 * RP_EIO (creating the file), RP_EDB, RP_ENOMEM. The directory should be private to rampart:
 * SQLite creates the -wal and -shm files next to the database, with the database's mode.
 */
int rp_store_open(const char *path, rp_store **out);

/*
 * rp_store_open plus the ciphertext store: a second database file at objects_path (created
 * 0600 like the first), attached to the writer and to every reader as schema "obj" and holding
 * obj.blobs (id TEXT PRIMARY KEY, ct BLOB): the encrypted bytes of customer objects, kept apart
 * from the metadata and wrapped DEKs in the main file (docs/encryption.md). A write may change
 * both in one transaction; a crash can keep one file's part of it without the other's, so a
 * reader trusts a metadata row only when its blob row exists too.
 */
int rp_store_open_ex(const char *path, const char *objects_path, rp_store **out);

/*
 * Runs every write queued so far (their callbacks are still delivered if their loops run),
 * stops the writer thread and closes the writer connection. Accepts NULL. Must not be called
 * from a write function. Reader connections are the caller's and stay valid.
 */
void rp_store_close(rp_store *s);

/*
 * Creates a completion port on loop (a uv_async_t inside, which keeps the loop alive until
 * rp_store_port_close). Must be called on that loop's thread. 0 and *out, RP_ENOMEM, RP_EIO,
 * or RP_ECLOSED if the store is closing.
 */
int rp_store_port_open(rp_store *s, uv_loop_t *loop, rp_store_port **out);

/*
 * Closes the port's handle (uv_close) and forgets p: the caller must not use it afterwards.
 * Safe with writes still in flight for it: they still commit, but their callbacks are dropped.
 * Must be called on the port's loop thread, and the loop must run once more to finish the
 * close. Accepts NULL.
 */
void rp_store_port_close(rp_store_port *p);

/*
 * Queues fn(db, arg) for the writer; done(status, arg) (may be NULL) runs later on p's loop.
 * Returns 0, RP_EINVAL (fn NULL), RP_ENOMEM, or RP_ECLOSED after rp_store_close began; on any
 * error done is never called. Thread-safe, but p must not be closed concurrently.
 */
int rp_store_submit(rp_store_port *p, rp_store_write_fn fn, void *arg, rp_store_done_fn done);

/*
 * Runs fn(db, arg) through the same writer and blocks until it is durable or failed; returns
 * its status (as a completion would get it) or RP_ECLOSED. For the CLI and start-up, never on
 * a loop that serves requests. Thread-safe; must not be called from a write function.
 */
int rp_store_write_sync(rp_store *s, rp_store_write_fn fn, void *arg);

/*
 * Opens a read-only connection for the calling thread's own use (busy timeout set). The caller
 * closes it with sqlite3_close. 0 and *out, or RP_EDB / RP_ENOMEM.
 */
int rp_store_reader_open(rp_store *s, sqlite3 **out);

/* Runs SQL without results (several statements allowed): 0 or RP_EDB. For write functions. */
int rp_store_exec(sqlite3 *db, const char *sql);

/* Distinct statements rp_store_stmt keeps prepared on the writer connection. */
#define RP_STORE_STMT_CACHE 64

/*
 * For write functions on hot paths: a prepared statement for sql, kept prepared on the writer
 * connection between ops (keyed by the address of sql, which must be a string constant), reset
 * and with its bindings cleared. Hand it back with rp_store_stmt_done (never finalize it). Off
 * the writer thread, or when the cache is full, the statement is prepared fresh and
 * rp_store_stmt_done finalizes it. NULL when SQLite cannot prepare it.
 */
sqlite3_stmt *rp_store_stmt(sqlite3 *db, const char *sql);
void rp_store_stmt_done(sqlite3 *db, sqlite3_stmt *st);

/* Counters for tests and metrics. */
typedef struct rp_store_stats {
    uint64_t writes;  /* ops the writer finished, whatever their status */
    uint64_t commits; /* successful COMMITs (one per group) */
    uint64_t failed;  /* ops finished with a non-zero status */
} rp_store_stats;

void rp_store_get_stats(rp_store *s, rp_store_stats *out);

#endif
