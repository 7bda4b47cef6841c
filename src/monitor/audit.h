/*
 * audit.h - the tamper-evident audit log: one append-only file of JSON lines in a hash chain,
 * with periodic Ed25519-signed checkpoints, written by one group-commit thread.
 *
 * What goes in: every authentication result, authorization decision, management change and
 * read of secret material, plus system events. Workload: one record per authenticated request
 * (thousands a second on a busy server), almost all of them "fire and forget"; the few that
 * gate a secret read must be on disk before the secret is sent. So records are queued to a
 * writer thread that appends everything queued in one write(2) and, when the group holds a
 * RP_AUDIT_DURABLE record, one fdatasync for the whole group (group commit). Other records
 * are synced at most RP_AUDIT_SYNC_MS later.
 *
 * File format (one object per line, keys in exactly this order, no spaces, '\n' after each):
 *   {"seq":N,"time":"2026-11-29T05:31:02.123Z","principal":"...","kind":"authn|authz|change|
 *    read|system","action":"...","scope":"...","result":"success|failure|allowed|denied",
 *    "request":"...","client":"...","detail":{...},"prev":"<64 hex>"}
 *   {"seq":N,"time":"...","kind":"checkpoint","count":N-1,"head":"<64 hex>","prev":"<64 hex>",
 *    "sig":"<86 base64url>"}
 * seq counts lines from 1 with no gaps (checkpoints included). prev is SHA-256 over the whole
 * previous line including its '\n' (64 zeros on line 1), so editing, dropping, inserting or
 * reordering any line breaks the chain at the next line. "detail" is optional and always an
 * object. A checkpoint's count is the number of lines it covers (seq - 1) and head repeats
 * prev: both are redundant on purpose, so a checkpoint line copied elsewhere reads on its own.
 * Its sig is Ed25519 over the checkpoint line with the sig member removed, byte for byte: the
 * line up to (excluding) `,"sig":"`, followed by `}`. Both checks need nothing but stock tools:
 *   sed -n 5p audit.log | sha256sum                  == line 6's prev
 *   sed -n 7p audit.log | sed 's/,"sig":"[^"]*"}$/}/' | tr -d '\n' > msg
 *   sed -n 7p audit.log | sed 's/.*"sig":"//; s/"}$/==/' | tr _- /+ | base64 -d > sig
 *   { printf 302a300506032b6570032100 | xxd -r -p;              (Ed25519 SPKI DER header)
 *     printf %s= "$(cat audit.log.pub)" | tr _- /+ | base64 -d; } > pub.der
 *   openssl pkeyutl -verify -pubin -keyform DER -inkey pub.der -rawin -in msg -sigfile sig
 * A checkpoint is written after every RP_AUDIT_CHECKPOINT_EVERY records, RP_AUDIT_CHECKPOINT_MS
 * after the first record it would cover, and at a clean close.
 * A line is valid only in its canonical form: exactly the bytes rampart's serializer produces
 * for its decoded content (rp_audit_parse_line checks this), so one record has one spelling.
 *
 * Keys: the signing key is Ed25519 from the seed rp_rootkey_derive(rk, RP_AUDIT_SIGNING_LABEL).
 * rp_audit_open writes the public key next to the log as "<path>.pub": one line, the 32 raw
 * key bytes in base64url without padding (43 characters) and '\n'. It never changes for an
 * install, so copy it off the host once: anyone who can rewrite the log can also rewrite the
 * .pub beside it, and verifying against that copy proves nothing. rp_audit_public_key
 * recomputes it from the root key.
 *
 * What verification can and cannot show: every line up to the last checkpoint is covered by a
 * signature; lines after it only by the chain, so they can be edited or dropped without a
 * trace by someone with write access (verify reports how many are unsigned). Cutting the file
 * back to an earlier checkpoint is detectable only against an external copy of a later
 * checkpoint (verify reports the last one's seq, time and head for that comparison).
 * Timestamps are the callers' wall clock and are not checked: the order is seq.
 *
 * Untrusted strings: every string field is JSON-escaped here (control characters, DEL, C1
 * controls, U+2028/U+2029 as \uXXXX; invalid UTF-8 bytes become U+FFFD), so a record is always
 * one line. Fields longer than their cap (RP_AUDIT_FIELD_MAX / RP_AUDIT_PATH_MAX escaped bytes)
 * are cut on a character boundary and end in RP_AUDIT_TRUNCATED; a detail object longer than
 * RP_AUDIT_DETAIL_MAX is replaced by {"truncated":true,"bytes":N}. Never put a secret, key,
 * token or credential in any field or in detail: the log is readable through the management
 * API and is kept forever.
 *
 * Torn tail policy: audit data is never truncated. If the file does not end in '\n' (a crash
 * in the middle of a write) or its last line is not a valid record, rp_audit_open refuses with
 * RP_EPARSE. rp_audit_repair (`rampart audit repair`) then terminates the damaged line with
 * '\n', leaving its bytes in place, and appends a "system" record with action
 * RP_AUDIT_REPAIR_ACTION whose prev chains over the damaged line, then a checkpoint. Verify
 * accepts a damaged line only when such a record follows it directly, and counts it.
 *
 * Several writers: each group is appended under an exclusive flock(2) on the log, after
 * re-reading the last line if the file grew behind our back, so another process (the CLI) or
 * another handle may append to the same log and the chain stays one line. Readers take a
 * shared lock only for a moment, to find a size at which no group is half written.
 * Rotation is not supported: the log grows until an operator archives it (after verifying).
 *
 * Usage:
 *     rp_audit_open(path, rootkey, &a);        at start-up (the parent directory exists, 0700)
 *     rp_audit_port_open(a, loop, &p);         once per libuv loop, on that loop's thread
 *     rp_audit_log(p, &rec, flags, done, arg); from that loop: done(status, arg) runs on it
 *     rp_audit_log_sync(a, &rec, flags);       CLI and start-up: blocks
 *     rp_audit_port_close(p); rp_audit_close(a);
 *     rp_audit_verify(path, pub, &res);        `rampart audit verify`; no writer needed
 *     rp_audit_read(path, after, limit, fn);   `rampart audit tail`, GET /api/audit
 *
 * Failure: if a write or an fdatasync fails, the writer stops writing (the file's state is
 * unknown) and every record queued then or later completes with RP_EIO - durable or not -
 * until the log is reopened; non-durable losses are counted in stats and logged once. A caller
 * that gates a secret on a RP_AUDIT_DURABLE record must refuse to answer unless its done gets 0.
 *
 * Ownership and lifetimes (the store's model): the log and each port are ref-counted, so
 * closing them in either order is safe; after rp_audit_close(a) only rp_audit_log and
 * rp_audit_port_close on existing ports may still be called (rp_audit_log then returns
 * RP_ECLOSED). Memory: rp_audit_log allocates one op per record (propagates RP_ENOMEM); the
 * writer thread never allocates through rp_malloc. OpenSSL or pthread failures while opening
 * propagate; nothing here aborts.
 */
#ifndef RP_MONITOR_AUDIT_H
#define RP_MONITOR_AUDIT_H

#include "crypto/rootkey.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define RP_AUDIT_SIGNING_LABEL    "rampart/v1/audit-signing"
#define RP_AUDIT_CHECKPOINT_EVERY 1000  /* records between checkpoints */
#define RP_AUDIT_CHECKPOINT_MS    10000 /* longest a record stays unsigned (default) */
#define RP_AUDIT_SYNC_MS          1000  /* longest a non-durable record stays unsynced (default) */
#define RP_AUDIT_BATCH_MAX        1024  /* records per group */
/* A group that must be synced and has fewer records than this waits up to
 * RP_AUDIT_LINGER_US for more: one fdatasync then covers the records of concurrent requests.
 * Only under concurrency (the previous synced group had company): a lone request never waits. */
#define RP_AUDIT_LINGER_GROUP  32
#define RP_AUDIT_LINGER_US     1000
#define RP_AUDIT_BATCH_BYTES   (1024 * 1024)
#define RP_AUDIT_LINE_MAX      65536 /* longest line verify and read accept, without '\n' */
#define RP_AUDIT_FIELD_MAX     256   /* principal, request, client, kind, result: escaped */
#define RP_AUDIT_PATH_MAX      1024  /* action and scope: escaped bytes */
#define RP_AUDIT_DETAIL_MAX    4096  /* detail, as compact JSON */
#define RP_AUDIT_TRUNCATED     "...[truncated]"
#define RP_AUDIT_REPAIR_ACTION "audit/repair"
#define RP_AUDIT_PUBKEY_LEN    32
#define RP_AUDIT_SIG_LEN       64

/* Flags for rp_audit_log and rp_audit_log_sync. */
#define RP_AUDIT_DURABLE 1u /* complete only once the record is on disk (fdatasync) */

typedef struct rp_audit rp_audit;
typedef struct rp_audit_port rp_audit_port; /* where completions are delivered: one per loop */

/*
 * One event. Strings are borrowed for the call only (the record is serialized before
 * rp_audit_log returns). kind must be "authn", "authz", "change", "read" or "system"; result
 * "success", "failure", "allowed" or "denied". NULL principal becomes "anonymous"; other NULL
 * strings become "". detail is borrowed (not decref'd), may be NULL, and should be an object
 * (anything else is stored as {"value":detail}).
 */
typedef struct rp_audit_rec {
    const char *principal;
    const char *kind;
    const char *action;
    const char *scope;
    const char *result;
    const char *request_id;
    const char *client;
    json_t *detail;
} rp_audit_rec;

/*
 * Completion: runs on the loop of the port the record went through, once the record was
 * written (and, for RP_AUDIT_DURABLE, fdatasync'ed): status 0; or RP_EIO when the log cannot
 * be written. Completions for one port arrive in submission order.
 */
typedef void (*rp_audit_done_fn)(int status, void *arg);

/*
 * Opens or creates the log at path (mode 0600, O_APPEND; an existing file with group/other
 * bits is tightened to 0600), makes sure "<path>.pub" holds this root key's audit public key
 * (writes it if missing), recovers seq and prev from the last line, and starts the writer.
 * rk is only used here. Returns 0 and *out, or RP_EINVAL (bad argument, path is a symlink or
 * not a regular file), RP_EPARSE (torn or invalid last line: see rp_audit_repair),
 * RP_ECONFLICT ("<path>.pub" holds another key: the log was signed with another root key),
 * RP_ENOENT / RP_EPERM / RP_EIO (file system), RP_ECRYPTO, RP_ENOMEM.
 */
int rp_audit_open(const char *path, const rp_rootkey *rk, rp_audit **out);

/*
 * Repairs a log whose last line is torn or invalid (see the file header), never removing a
 * byte: terminates the line, appends a RP_AUDIT_REPAIR_ACTION record chained over it and a
 * checkpoint, fdatasync. *damaged_bytes (may be NULL) gets the damaged line's length, or 0 if
 * the log needed nothing (then nothing is written) or only its final '\n'. For the CLI; safe
 * next to other handles on the log (the flock serializes them). Returns 0 or rp_audit_open's
 * codes; RP_EPARSE if the line before the damaged one is not a valid record either,
 * RP_ETOOBIG if the damaged line is longer than RP_AUDIT_LINE_MAX (both need an operator).
 */
int rp_audit_repair(const char *path, const rp_rootkey *rk, uint64_t *damaged_bytes);

/*
 * Writes every record queued so far (their callbacks are still delivered if their loops run),
 * a final checkpoint if records are unsigned, fdatasync, stops the writer and closes the file.
 * Accepts NULL. Must not be called from a completion callback of this log.
 */
void rp_audit_close(rp_audit *a);

/*
 * Creates a completion port on loop (a uv_async_t inside, which keeps the loop alive until
 * rp_audit_port_close). Must be called on that loop's thread. 0 and *out, RP_EINVAL,
 * RP_ENOMEM, RP_EIO, or RP_ECLOSED if the log is closing.
 */
int rp_audit_port_open(rp_audit *a, uv_loop_t *loop, rp_audit_port **out);

/*
 * Closes the port's handle and forgets p. Safe with records in flight: they are still
 * written, but their callbacks are dropped. Must be called on the port's loop thread, and the
 * loop must run once more to finish the close. Accepts NULL.
 */
void rp_audit_port_close(rp_audit_port *p);

/*
 * Serializes rec now (time = now) and queues it; done(status, arg) (may be NULL) runs later on
 * p's loop. flags: 0 or RP_AUDIT_DURABLE. Returns 0, RP_EINVAL (p or rec NULL, unknown kind or
 * result, unknown flag), RP_ENOMEM, or RP_ECLOSED after rp_audit_close began; on any error
 * done is never called and nothing is logged. Thread-safe, but p must not be closed
 * concurrently.
 */
int rp_audit_log(rp_audit_port *p, const rp_audit_rec *rec, unsigned flags, rp_audit_done_fn done,
                 void *arg);

/*
 * Like rp_audit_log through the same writer, but blocks until the record is written (and
 * synced if RP_AUDIT_DURABLE) and returns what a completion would get, or rp_audit_log's
 * errors. For the CLI and start-up, never on a loop that serves requests. Thread-safe.
 */
int rp_audit_log_sync(rp_audit *a, const rp_audit_rec *rec, unsigned flags);

/* Counters for tests and metrics. */
typedef struct rp_audit_stats {
    uint64_t records;     /* event records written to the file by this handle */
    uint64_t checkpoints; /* checkpoint lines written */
    uint64_t syncs;       /* successful fdatasync calls */
    uint64_t synced;      /* event records known to be on disk (covered by a sync) */
    uint64_t durable;     /* RP_AUDIT_DURABLE records completed with status 0 */
    uint64_t failed;      /* records completed with an error */
    uint64_t lost;        /* of those, non-durable records (nobody waited for them) */
    uint64_t seq;         /* seq of the last line this handle wrote */
} rp_audit_stats;

void rp_audit_get_stats(rp_audit *a, rp_audit_stats *out);

/*
 * Sets the longest time a non-durable record waits for fdatasync and a record waits for a
 * checkpoint (0 keeps the current value). For tests and tuning; takes effect for the next
 * record.
 */
void rp_audit_set_timing(rp_audit *a, unsigned sync_ms, unsigned checkpoint_ms);

/*
 * Test hook, like rp_alloc_fail_after: after n more successful file operations (a group's
 * write or an fdatasync), the next one fails as if the disk returned EIO; -1 turns it off.
 * Thread-safe.
 */
void rp_audit_fail_io_after(rp_audit *a, long n);

/* Computes the audit public key of a root key into pub. 0, RP_EINVAL or RP_ECRYPTO. */
int rp_audit_public_key(const rp_rootkey *rk, unsigned char pub[RP_AUDIT_PUBKEY_LEN]);

/*
 * Reads a public key file (the "<path>.pub" format). 0, RP_ENOENT, RP_EPARSE (not one
 * base64url line of 32 bytes), RP_EIO, RP_ENOMEM.
 */
int rp_audit_pubkey_load(const char *pubpath, unsigned char pub[RP_AUDIT_PUBKEY_LEN]);

/*
 * One parsed line. The strings point into obj and live until rp_audit_entry_clear. Event
 * fields are NULL for a checkpoint; count/head/sig/signed_len are zero for an event.
 */
typedef struct rp_audit_entry {
    uint64_t seq;
    int checkpoint; /* 1 for a checkpoint line */
    const char *time;
    const char *kind;
    const char *principal;
    const char *action;
    const char *scope;
    const char *result;
    const char *request_id;
    const char *client;
    const json_t *detail; /* NULL when the record has none */
    unsigned char prev[32];
    uint64_t count;
    unsigned char head[32];
    unsigned char sig[RP_AUDIT_SIG_LEN];
    size_t signed_len; /* the signed message is line[0..signed_len) followed by '}' */
    json_t *obj;       /* the whole line as a JSON object (owned; hand out with json_incref) */
} rp_audit_entry;

/*
 * Parses one line, line[0..n) without its '\n' (untrusted input). Checks that it is a JSON
 * object with the fields above, valid values, and that it is in canonical form. Does not check
 * the chain or signatures (that needs the neighbours and the key: rp_audit_verify). Returns 0
 * and fills *out (release with rp_audit_entry_clear), or RP_EPARSE / RP_ETOOBIG (over
 * RP_AUDIT_LINE_MAX) / RP_ENOMEM with *out cleared; *why (may be NULL) gets a static reason.
 */
int rp_audit_parse_line(const char *line, size_t n, rp_audit_entry *out, const char **why);

/* Releases what rp_audit_parse_line filled in and zeroes e. Accepts a zeroed entry. */
void rp_audit_entry_clear(rp_audit_entry *e);

typedef struct rp_audit_verify_result {
    int ok;                       /* 1 when the log verified (an unsigned tail still verifies) */
    uint64_t lines;               /* lines read, up to the first bad one */
    uint64_t records;             /* event records among them */
    uint64_t checkpoints;         /* checkpoints among them */
    uint64_t last_seq;            /* seq of the last good line */
    uint64_t bad_line;            /* first bad line, 1-based; 0 when ok */
    uint64_t bad_seq;             /* the seq that belongs at bad_line, 0 if unknown */
    char reason[256];             /* why bad_line is bad; empty when ok */
    uint64_t last_checkpoint_seq; /* 0: no checkpoint */
    char last_checkpoint_time[32];
    char last_checkpoint_head[65]; /* hex of the checkpoint line's own hash: the chain head */
    uint64_t unsigned_records;     /* lines after the last checkpoint: chain-protected only */
    uint64_t repaired;             /* damaged lines closed by rp_audit_repair */
} rp_audit_verify_result;

/*
 * Verifies the whole log at path against pub (NULL: read "<path>.pub", see the file header for
 * why an off-host copy is better). Reads line by line with bounded memory up to the size the
 * file had when the call started. Returns 0 when it verified (res->ok = 1), RP_ECRYPTO when a
 * line is bad (res names the first one and why), or RP_EINVAL / RP_ENOENT / RP_EIO /
 * RP_EPARSE (bad public key file) / RP_ENOMEM when it could not check (res->ok = 0, bad_line
 * 0). res is always filled.
 */
int rp_audit_verify(const char *path, const unsigned char *pub, rp_audit_verify_result *res);

/*
 * Called for each line rp_audit_read delivers; line[0..n) is the raw line without '\n'.
 * Return 0 to go on, anything else to stop (rp_audit_read returns it).
 */
typedef int (*rp_audit_read_fn)(const rp_audit_entry *e, const char *line, size_t n, void *arg);

/*
 * Calls fn for the lines with seq > after_seq, in file order, at most limit of them
 * (checkpoints included; SIZE_MAX for all). Finds the start by binary search over the file
 * (logarithmic in its size). It assumes a well-formed log and checks no chain (that
 * is verify's job); a torn final line is treated as not yet written. *last_seq (may be NULL)
 * gets the seq of the last line delivered, or after_seq. Returns 0, fn's non-zero return,
 * RP_EINVAL (limit 0, path or fn NULL), RP_ENOENT, RP_EIO, RP_ENOMEM, or RP_EPARSE /
 * RP_ETOOBIG at a damaged line (the lines before it were delivered).
 */
int rp_audit_read(const char *path, uint64_t after_seq, size_t limit, rp_audit_read_fn fn,
                  void *arg, uint64_t *last_seq);

#endif
