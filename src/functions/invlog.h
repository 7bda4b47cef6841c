/*
 * invlog.h - a function app's invocation log and counters (docs/functions.md "Invocation log
 * and metrics"). Every call of a function (HTTP or timer, answered, refused by the throttle,
 * timed out or abandoned) becomes one record: a sequence number, the invocation id, the
 * function, its trigger, start time, duration, the HTTP status, the outcome, cold or warm, and
 * the Logs lines the handler returned. The newest RP_FN_INVLOG_KEEP records stay in memory for
 * the management API (GET /api/apps/NAME/invocations, `rampart fn logs`); each is also appended
 * as one JSON line to a file, written in batches (DATA/apps/NAME/logs/invocations.log, rotated to .1 past
 * RP_FN_INVLOG_FILE_MAX). Per-function counters (GET /api/apps/NAME/metrics) live as long as
 * the log, that is as long as the app in this run of the server.
 *
 * Records carry no request data (no path, query, headers or body: those hold keys and
 * customer data); the handler's own Logs lines are its author's choice, as in app.log.
 * Thread-safe (loop threads and the timers' thread add); reference-counted.
 */
#ifndef RP_FUNCTIONS_INVLOG_H
#define RP_FUNCTIONS_INVLOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RP_FN_INVLOG_KEEP     512         /* records kept in memory per app */
#define RP_FN_INVLOG_FILE_MAX (10u << 20) /* invocations.log rotates past this */
#define RP_FN_INVLOG_LINES    32          /* Logs lines kept per record ... */
#define RP_FN_INVLOG_LINE_MAX 1024        /* ... bytes each (longer ones are cut) ... */
#define RP_FN_INVLOG_LOGS_MAX 4096        /* ... and bytes of them all together */
#define RP_FN_INVLOG_PAGE_MAX 500         /* records per page of the API */

typedef enum rp_fn_outcome {
    RP_FN_SUCCEEDED = 0, /* the handler answered (whatever status it chose) */
    RP_FN_FAILED,        /* the handler did not answer, or not with a usable answer */
    RP_FN_TIMEDOUT,      /* functionTimeout passed */
    RP_FN_THROTTLED,     /* refused by the throttle (429) */
    RP_FN_CANCELLED,     /* the caller went away first */
    RP_FN_SKIPPED,       /* a timer occurrence that did not run (overlap, handler down) */
    RP_FN_OUTCOMES
} rp_fn_outcome;

/* One invocation, as rp_fn_invlog_add takes it (all borrowed for the call). */
typedef struct rp_fn_inv {
    const char *id;       /* the invocation id (a UUID) */
    const char *function; /* the function's name */
    const char *trigger;  /* "httpTrigger", "timerTrigger" */
    int64_t start_ms;     /* Unix time of its start, ms */
    uint64_t duration_us; /* from start to end (including any wait for a slot or a start) */
    int status;           /* the HTTP status answered (0: none) */
    rp_fn_outcome outcome;
    int cold;           /* it waited for the handler to start */
    const json_t *logs; /* the handler's Logs (an array of strings), or NULL */
} rp_fn_inv;

typedef struct rp_fn_invlog rp_fn_invlog;

/* A log whose file is path (NULL: memory only). 0 and *out, or RP_ENOMEM / RP_EINVAL. */
int rp_fn_invlog_new(const char *path, rp_fn_invlog **out);
rp_fn_invlog *rp_fn_invlog_ref(rp_fn_invlog *l);
void rp_fn_invlog_unref(rp_fn_invlog *l); /* accepts NULL */

/* Records inv. Its file line waits in a buffer (32 KiB) written when half full, by
 * rp_fn_invlog_flush, or when the last reference goes; a file that cannot be written is logged
 * once and the records stay in memory. */
void rp_fn_invlog_add(rp_fn_invlog *l, const rp_fn_inv *inv);
/* Writes the lines waiting for the file (the owner calls it about once a second). */
void rp_fn_invlog_flush(rp_fn_invlog *l);

/*
 * The records after sequence number after (0: from the oldest kept), at most limit (1 ..
 * RP_FN_INVLOG_PAGE_MAX), only function fn's when fn is not NULL:
 * {"value": [{"seq", "id", "function", "trigger", "start", "durationMs", "status", "outcome",
 * "cold", "logs"}...], "next": SEQ to ask after next time}. NULL when out of memory.
 */
json_t *rp_fn_invlog_page(rp_fn_invlog *l, uint64_t after, size_t limit, const char *fn);

/* {"functions": {NAME: {"invocations", "succeeded", "failed", "timedOut", "throttled",
 * "cancelled", "skipped", "cold", "durationMsTotal", "durationMsMax"}}}. NULL when out of
 * memory. */
json_t *rp_fn_invlog_metrics(rp_fn_invlog *l);

/* "Succeeded", "Failed", ... */
const char *rp_fn_outcome_name(rp_fn_outcome o);

#endif
