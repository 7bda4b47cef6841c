/*
 * invlog.c - see invlog.h. The ring holds finished JSON records (what the API sends and the
 * file gets), so a page is a few increfs under the lock.
 */
#include "functions/invlog.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "functions/fnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define COUNTERS_MAX 1024        /* functions with counters (a deploy may rename them all) */
#define FILE_BUF_MAX (32u << 10) /* lines waiting for the file; written when full or flushed */

typedef struct counters {
    struct counters *next;
    char *name;
    uint64_t n[RP_FN_OUTCOMES];
    uint64_t total, cold, dur_us, dur_max_us;
} counters;

/* One record as kept: plain fields (JSON is made only for the API and the file). */
typedef struct rec {
    uint64_t seq; /* 0: empty slot */
    char id[37];
    char fn[RP_FN_NAME_MAX + 1];
    char trigger[16];
    int64_t start_ms;
    uint64_t dur_us;
    int status;
    unsigned char outcome, cold;
    json_t *logs; /* the bounded copy, or NULL */
} rec;

struct rp_fn_invlog {
    atomic_int refs;
    uv_mutex_t mu;
    char *path; /* NULL: memory only */
    int fd;     /* -1 until the first write (and after a failed one) */
    uint64_t size;
    int warned;
    char *fbuf; /* lines not yet in the file */
    size_t flen;
    uint64_t seq; /* of the newest record */
    rec ring[RP_FN_INVLOG_KEEP];
    counters *fns;
    size_t nfns;
};

static const char *const outcome_names[RP_FN_OUTCOMES] = {"Succeeded", "Failed",    "TimedOut",
                                                          "Throttled", "Cancelled", "Skipped"};

const char *rp_fn_outcome_name(rp_fn_outcome o)
{
    return (unsigned)o < RP_FN_OUTCOMES ? outcome_names[o] : "Failed";
}

int rp_fn_invlog_new(const char *path, rp_fn_invlog **out)
{
    rp_fn_invlog *l = rp_calloc(1, sizeof(*l));

    *out = NULL;
    if (l == NULL)
        return RP_ENOMEM;
    if ((path != NULL && (l->path = rp_strdup(path)) == NULL) ||
        (path != NULL && (l->fbuf = rp_malloc(FILE_BUF_MAX)) == NULL)) {
        rp_free(l->path);
        rp_free(l);
        return RP_ENOMEM;
    }
    if (uv_mutex_init(&l->mu) != 0) {
        rp_free(l->fbuf);
        rp_free(l->path);
        rp_free(l);
        return RP_ENOMEM;
    }
    atomic_init(&l->refs, 1);
    l->fd = -1;
    *out = l;
    return 0;
}

rp_fn_invlog *rp_fn_invlog_ref(rp_fn_invlog *l)
{
    atomic_fetch_add(&l->refs, 1);
    return l;
}

static void flush_locked(rp_fn_invlog *l);

void rp_fn_invlog_unref(rp_fn_invlog *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    flush_locked(l); /* the last reference: nobody else holds the lock */
    for (size_t i = 0; i < RP_FN_INVLOG_KEEP; i++)
        json_decref(l->ring[i].logs);
    while (l->fns != NULL) {
        counters *c = l->fns;
        l->fns = c->next;
        rp_free(c->name);
        rp_free(c);
    }
    if (l->fd >= 0)
        close(l->fd);
    uv_mutex_destroy(&l->mu);
    rp_free(l->fbuf);
    rp_free(l->path);
    rp_free(l);
}

/* "2026-11-29T21:53:00.123Z" */
static void iso_ms(int64_t ms, char out[48])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
        rp_strlcpy(out, "1970-01-01T00:00:00.000Z", 48);
        return;
    }
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* The handler's Logs, bounded: strings only, each cut on a character boundary. NULL when there
 * are none (or no memory). */
static json_t *logs_copy(const json_t *logs)
{
    json_t *a;
    size_t i, total = 0;
    const json_t *v;

    if (!json_is_array(logs) || json_array_size(logs) == 0 || (a = json_array()) == NULL)
        return NULL;
    json_array_foreach(logs, i, v)
    {
        const char *s = json_string_value(v);
        size_t n;
        if (s == NULL)
            continue;
        if (json_array_size(a) >= RP_FN_INVLOG_LINES || total >= RP_FN_INVLOG_LOGS_MAX)
            break;
        n = json_string_length(v);
        if (n > RP_FN_INVLOG_LINE_MAX)
            n = RP_FN_INVLOG_LINE_MAX;
        if (n > RP_FN_INVLOG_LOGS_MAX - total)
            n = RP_FN_INVLOG_LOGS_MAX - total;
        while (n > 0 && n < json_string_length(v) && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* jansson strings are UTF-8: back up to a character's first byte */
        if (json_array_append_new(a, json_stringn(s, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        total += n;
    }
    return a;
}

/* A record as the API and the file show it. NULL when out of memory. */
static json_t *rec_json(const rec *r)
{
    char start[48];

    iso_ms(r->start_ms, start);
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:f,s:i,s:s,s:b,s:o}", "seq", (json_int_t)r->seq, "id",
                     r->id, "function", r->fn, "trigger", r->trigger, "start", start, "durationMs",
                     (double)r->dur_us / 1000.0, "status", r->status, "outcome",
                     outcome_names[r->outcome], "cold", r->cold != 0, "logs",
                     r->logs != NULL ? json_incref(r->logs) : json_array());
}

static counters *counters_of(rp_fn_invlog *l, const char *fn)
{
    counters *c;

    for (c = l->fns; c != NULL; c = c->next)
        if (strcmp(c->name, fn) == 0)
            return c;
    if (l->nfns >= COUNTERS_MAX || (c = rp_calloc(1, sizeof(*c))) == NULL)
        return NULL;
    if ((c->name = rp_strdup(fn)) == NULL) {
        rp_free(c);
        return NULL;
    }
    c->next = l->fns;
    l->fns = c;
    l->nfns++;
    return c;
}

/* Writes the waiting lines to the file, rotating it first when it would pass the limit. Caller
 * holds mu (or has the last reference). */
static void flush_locked(rp_fn_invlog *l)
{
    struct stat st;
    ssize_t w;

    if (l->path == NULL || l->flen == 0)
        return;
    if (l->fd >= 0 && l->size + l->flen > RP_FN_INVLOG_FILE_MAX) {
        char old[4096];
        close(l->fd);
        l->fd = -1;
        if ((size_t)snprintf(old, sizeof(old), "%s.1", l->path) < sizeof(old))
            (void)rename(l->path, old);
    }
    if (l->fd < 0) {
        l->fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (l->fd >= 0 && fstat(l->fd, &st) == 0)
            l->size = (uint64_t)st.st_size;
        else if (l->fd >= 0)
            l->size = 0;
    }
    /* One write on an O_APPEND file: whole lines land together. */
    w = l->fd >= 0 ? write(l->fd, l->fbuf, l->flen) : -1;
    if (w == (ssize_t)l->flen) {
        l->size += l->flen;
        l->flen = 0;
        return;
    }
    l->flen = 0; /* dropped: the records stay in memory */
    if (!l->warned) {
        rp_logline g;
        l->warned = 1;
        rp_logline_begin(&g, RP_LOG_WARN, "functions.invlog");
        rp_logline_str(&g, "file", l->path);
        rp_logline_str(&g, "message",
                       "the invocation log file cannot be written; records "
                       "stay in memory only");
        rp_logline_str(&g, "error", strerror(w < 0 ? errno : ENOSPC));
        rp_logline_end(&g);
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}

void rp_fn_invlog_flush(rp_fn_invlog *l)
{
    uv_mutex_lock(&l->mu);
    flush_locked(l);
    uv_mutex_unlock(&l->mu);
}

/* Appends r's line to the file buffer (flushed first when it would not fit). Caller holds mu. */
static void line_locked(rp_fn_invlog *l, const rec *r)
{
    char head[512], start[48], *logs = NULL;
    size_t hn, ln = 0;

    if (l->path == NULL)
        return;
    iso_ms(r->start_ms, start);
    /* The fields are server-made (a UUID, a checked function name, fixed words): no escaping. */
    hn = (size_t)snprintf(head, sizeof(head),
                          "{\"seq\":%llu,\"id\":\"%s\",\"function\":\"%s\",\"trigger\":\"%s\","
                          "\"start\":\"%s\",\"durationMs\":%.3f,\"status\":%d,\"outcome\":\"%s\","
                          "\"cold\":%s",
                          (unsigned long long)r->seq, r->id, r->fn, r->trigger, start,
                          (double)r->dur_us / 1000.0, r->status, outcome_names[r->outcome],
                          r->cold ? "true" : "false");
    if (hn >= sizeof(head))
        return;
    if (r->logs != NULL && (logs = json_dumps(r->logs, JSON_COMPACT)) != NULL)
        ln = strlen(logs);
    if (l->flen + hn + ln + 16 > FILE_BUF_MAX)
        flush_locked(l);
    if (l->flen + hn + ln + 16 <= FILE_BUF_MAX) {
        memcpy(l->fbuf + l->flen, head, hn);
        l->flen += hn;
        if (logs != NULL) {
            memcpy(l->fbuf + l->flen, ",\"logs\":", 8);
            memcpy(l->fbuf + l->flen + 8, logs, ln);
            l->flen += 8 + ln;
        }
        memcpy(l->fbuf + l->flen, "}\n", 2);
        l->flen += 2;
    }
    free(logs); /* jansson's allocator */
}

void rp_fn_invlog_add(rp_fn_invlog *l, const rp_fn_inv *inv)
{
    unsigned o = (unsigned)inv->outcome < RP_FN_OUTCOMES ? (unsigned)inv->outcome : RP_FN_FAILED;
    json_t *logs = logs_copy(inv->logs), *old;
    counters *c;
    rec *r;

    uv_mutex_lock(&l->mu);
    if ((c = counters_of(l, inv->function ? inv->function : "")) != NULL) {
        c->total++;
        c->n[o]++;
        c->cold += inv->cold != 0;
        c->dur_us += inv->duration_us;
        if (inv->duration_us > c->dur_max_us)
            c->dur_max_us = inv->duration_us;
    }
    l->seq++;
    r = &l->ring[l->seq % RP_FN_INVLOG_KEEP];
    old = r->logs;
    r->seq = l->seq;
    rp_strlcpy(r->id, inv->id ? inv->id : "", sizeof(r->id));
    rp_strlcpy(r->fn, inv->function ? inv->function : "", sizeof(r->fn));
    rp_strlcpy(r->trigger, inv->trigger ? inv->trigger : "", sizeof(r->trigger));
    r->start_ms = inv->start_ms;
    r->dur_us = inv->duration_us;
    r->status = inv->status;
    r->outcome = (unsigned char)o;
    r->cold = inv->cold != 0;
    r->logs = logs;
    line_locked(l, r);
    if (l->flen >= FILE_BUF_MAX / 2)
        flush_locked(l);
    uv_mutex_unlock(&l->mu);
    json_decref(old);
}

json_t *rp_fn_invlog_page(rp_fn_invlog *l, uint64_t after, size_t limit, const char *fn)
{
    json_t *arr = json_array(), *o;
    uint64_t first, s, next;

    if (arr == NULL)
        return NULL;
    if (limit == 0 || limit > RP_FN_INVLOG_PAGE_MAX)
        limit = RP_FN_INVLOG_PAGE_MAX;
    uv_mutex_lock(&l->mu);
    first = l->seq >= RP_FN_INVLOG_KEEP ? l->seq - RP_FN_INVLOG_KEEP + 1 : 1;
    s = after + 1 > first ? after + 1 : first;
    next = after > l->seq ? l->seq : after; /* a log that started again (a restart) */
    if (after > l->seq)
        s = first;
    for (; s <= l->seq && json_array_size(arr) < limit; s++) {
        const rec *r = &l->ring[s % RP_FN_INVLOG_KEEP];
        next = s;
        if (r->seq != s || (fn != NULL && strcmp(r->fn, fn) != 0))
            continue;
        if (json_array_append_new(arr, rec_json(r)) != 0) {
            uv_mutex_unlock(&l->mu);
            json_decref(arr);
            return NULL;
        }
    }
    uv_mutex_unlock(&l->mu);
    o = json_pack("{s:o,s:I}", "value", arr, "next", (json_int_t)next);
    return o;
}
json_t *rp_fn_invlog_metrics(rp_fn_invlog *l)
{
    json_t *fns = json_object(), *o;

    if (fns == NULL)
        return NULL;
    uv_mutex_lock(&l->mu);
    for (counters *c = l->fns; c != NULL; c = c->next) {
        json_t *m = json_pack(
            "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "invocations", (json_int_t)c->total,
            "succeeded", (json_int_t)c->n[RP_FN_SUCCEEDED], "failed",
            (json_int_t)c->n[RP_FN_FAILED], "timedOut", (json_int_t)c->n[RP_FN_TIMEDOUT],
            "throttled", (json_int_t)c->n[RP_FN_THROTTLED], "cancelled",
            (json_int_t)c->n[RP_FN_CANCELLED], "skipped", (json_int_t)c->n[RP_FN_SKIPPED], "cold",
            (json_int_t)c->cold, "durationMsTotal", (double)c->dur_us / 1000.0, "durationMsMax",
            (double)c->dur_max_us / 1000.0);
        if (m == NULL || json_object_set_new(fns, c->name, m) != 0) {
            uv_mutex_unlock(&l->mu);
            json_decref(fns);
            return NULL;
        }
    }
    uv_mutex_unlock(&l->mu);
    o = json_pack("{s:o}", "functions", fns);
    return o;
}
