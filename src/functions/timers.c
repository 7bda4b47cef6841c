/*
 * timers.c - timer triggers (see timers.h for the contract).
 *
 * Workload: a few timer functions per app, firing at most once a second each. One thread, one
 * libuv loop, one uv_timer per timer function, armed for its next occurrence. Changes arrive
 * as whole replacement lists per app through a mutex-guarded queue and a uv_async wake-up, so
 * the entries themselves are only ever touched by the timers' thread.
 */
#include "functions/timers.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "base/time.h"
#include "functions/invoke.h"
#include "functions/ncron.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

#define APP_MAX          64
#define STARTUP_RETRY_MS 250
#define STARTUP_TRIES    240 /* a minute for the handler to come up */

typedef struct entry {
    struct entry *next;
    rp_fn_timers *t;
    char app[APP_MAX + 1];
    char fn[RP_FN_NAME_MAX + 1];
    char binding[RP_FN_BINDING_NAME_MAX + 1];
    rp_ncron sched;
    unsigned timeout_s;
    int run_on_startup;
    uv_timer_t timer;
    int timer_ready, dead;
    int startup_tries;      /* waits left for the handler to come up (0: done) */
    int monitor;            /* useMonitor: its last occurrence is kept, a missed one runs late */
    int past_due;           /* the run being started is a missed occurrence */
    char state[4096];       /* useMonitor's file (the app's timers.json), "" for none */
    rp_invoke *inv;         /* the run in flight, or NULL */
    char inv_id[37];        /* its invocation id */
    int64_t started_wall;   /* its start, Unix ms */
    int64_t last_s, next_s; /* the last run's and the next occurrence's time (0: none) */
    uint64_t started_ms;
} entry;

typedef struct update {
    struct update *next;
    char app[APP_MAX + 1];
    char state[4096];
    entry *list;
} update;

struct rp_fn_timers {
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_mutex_t mu; /* guards pending and stopping */
    update *pending;
    int stopping;
    entry *entries; /* the timers' thread only */
    rp_fn_port_fn port_of;
    rp_fn_ran_fn ran;
    rp_fn_tick_fn tick;
    uv_timer_t ticker; /* tick, once a second */
    void *arg;
};

static int64_t now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void log_run(const entry *e, const char *outcome, int status, int64_t ms)
{
    rp_logline l;

    rp_logline_begin(&l, !strcmp(outcome, "success") ? RP_LOG_INFO : RP_LOG_WARN,
                     "functions.timer");
    rp_logline_str(&l, "app", e->app);
    rp_logline_str(&l, "function", e->fn);
    rp_logline_str(&l, "outcome", outcome);
    if (status > 0)
        rp_logline_int(&l, "status", status);
    if (ms >= 0)
        rp_logline_int(&l, "duration_ms", ms);
    rp_logline_end(&l);
}

/* Hands one run (or skipped occurrence) to the owner's invocation log. */
static void report(const entry *e, rp_fn_outcome o, int status, uint64_t took_us, int64_t start,
                   const json_t *logs)
{
    char id[37];
    rp_fn_inv inv = {.function = e->fn,
                     .trigger = "timerTrigger",
                     .start_ms = start,
                     .duration_us = took_us,
                     .status = status,
                     .outcome = o,
                     .logs = logs};

    if (e->t->ran == NULL)
        return;
    if (o == RP_FN_SKIPPED || e->inv_id[0] == '\0') {
        if (rp_random_uuid(id) != 0)
            id[0] = '\0';
        inv.id = id;
    } else {
        inv.id = e->inv_id;
    }
    e->t->ran(e->t->arg, e->app, &inv);
}

static void entries_free(entry *e)
{
    while (e != NULL) {
        entry *n = e->next;
        rp_free(e);
        e = n;
    }
}

static void on_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

/* Drops e: its run (if any) is cancelled, its memory goes with its timer's close. */
static void entry_drop(entry *e)
{
    if (e->inv != NULL) { /* replaced (a deploy) or stopping: the run is abandoned */
        uint64_t took = uv_now(&e->t->loop) - e->started_ms;
        report(e, RP_FN_CANCELLED, 0, took * 1000u, e->started_wall, NULL);
        rp_invoke_cancel(e->inv);
    }
    e->inv = NULL;
    e->dead = 1;
    if (e->timer_ready) {
        uv_timer_stop(&e->timer);
        uv_close((uv_handle_t *)&e->timer, on_closed);
    } else {
        rp_free(e);
    }
}

static void on_fire(uv_timer_t *h);
static void state_save(const entry *e);
static void state_save(const entry *e);

/* Arms e's timer for its next occurrence after now (none: logged, left unarmed). */
static void schedule(entry *e)
{
    int64_t ms, next, from;

    /* The loop's cached time may be behind: a timer armed from it fires early by the wall
     * clock. Whatever the clock says, the occurrence that just fired is done: the next one
     * comes after it, never the same one again. */
    uv_update_time(&e->t->loop);
    ms = now_ms();
    from = ms / 1000 > e->next_s ? ms / 1000 : e->next_s;
    if (rp_ncron_next(&e->sched, from, &next) != 0) {
        log_run(e, "no next occurrence", 0, -1);
        return;
    }
    e->next_s = next;
    uv_timer_start(&e->timer, on_fire, (uint64_t)(next * 1000 - ms > 0 ? next * 1000 - ms : 0), 0);
}

static void on_done(int rc, const rp_invoke_result *res, void *arg)
{
    entry *e = arg;
    int64_t took = (int64_t)(uv_now(&e->t->loop) - e->started_ms);

    uint64_t took_us = took > 0 ? (uint64_t)took * 1000u : 0;
    json_t *a = NULL;

    e->inv = NULL;
    if (rc == RP_ETIMEDOUT) {
        log_run(e, "timeout", 0, took);
        report(e, RP_FN_TIMEDOUT, 0, took_us, e->started_wall, NULL);
    } else if (rc != 0) {
        log_run(e, "handler unreachable", 0, took);
        report(e, RP_FN_FAILED, 0, took_us, e->started_wall, NULL);
    } else {
        int ok = res->status >= 200 && res->status <= 299;
        log_run(e, ok ? "success" : "failure", res->status, took);
        if (ok && res->body != NULL)
            a = json_loadb(res->body, res->body_len, 0, NULL);
        report(e, ok ? RP_FN_SUCCEEDED : RP_FN_FAILED, res->status, took_us, e->started_wall,
               json_object_get(a, "Logs"));
        json_decref(a);
    }
}

static json_t *envelope(const entry *e, int64_t fired)
{
    char last[21], next[21], now[21], guid[37];

    rp_iso_time(e->last_s > 0 ? e->last_s : fired, last);
    rp_iso_time(e->next_s > fired ? e->next_s : fired, next);
    rp_iso_time(fired, now);
    if (rp_random_uuid(guid) != 0)
        return NULL;
    return json_pack("{s:{s:{s:{s:b},s:{s:s,s:s,s:s},s:b}},s:{s:{s:s,s:s,s:s}}}", "Data",
                     e->binding, "Schedule", "AdjustForDST", 1, "ScheduleStatus", "Last", last,
                     "Next", next, "LastUpdated", now, "IsPastDue", e->past_due, "Metadata", "sys",
                     "MethodName", e->fn, "UtcNow", now, "RandGuid", guid);
}

/* Starts a run now. 0, or RP_EAGAIN when the handler is not running (nothing started). */
static int fire(entry *e)
{
    rp_fn_timers *t = e->t;
    int64_t fired = now_ms() / 1000;
    char path[RP_FN_NAME_MAX + 2], *js = NULL;
    rp_invoke_opts o = {0};
    rp_invoke_header hdr[1];
    json_t *env;
    int port;

    if (e->next_s > fired && e->next_s - fired <= 1)
        fired = e->next_s; /* armed from a loop clock a little behind the wall clock */
    if (e->inv != NULL) {  /* never overlaps itself */
        log_run(e, "skipped: the previous run is still going", 0, -1);
        report(e, RP_FN_SKIPPED, 0, 0, now_ms(), NULL);
        return 0;
    }
    port = t->port_of(t->arg, e->app, e->fn);
    if (port == 0)
        return RP_EAGAIN; /* starting (a deploy, a restart, scale from zero): wait for it */
    if (port < 0)
        return RP_ENOENT;
    snprintf(path, sizeof(path), "/%s", e->fn);
    env = envelope(e, fired);
    if (env == NULL || (js = json_dumps(env, JSON_COMPACT)) == NULL) {
        json_decref(env);
        log_run(e, "out of memory", 0, -1);
        return 0;
    }
    json_decref(env);
    o.port = port;
    o.path = path;
    o.body = js;
    o.body_len = strlen(js);
    o.timeout_ms = (uint64_t)e->timeout_s * 1000u;
    e->started_ms = uv_now(&t->loop);
    e->started_wall = now_ms();
    if (rp_random_uuid(e->inv_id) != 0)
        e->inv_id[0] = '\0';
    hdr[0] = (rp_invoke_header){"X-Azure-Functions-InvocationId", e->inv_id};
    o.extra = hdr;
    o.nextra = e->inv_id[0] != '\0';
    if (rp_invoke_start(&t->loop, &o, on_done, e, &e->inv) != 0) {
        e->inv = NULL;
        log_run(e, "the run could not be started", 0, -1);
        report(e, RP_FN_FAILED, 0, 0, e->started_wall, NULL);
    } else {
        e->last_s = fired;
        state_save(e);
    }
    e->past_due = 0;
    free(js); /* jansson's allocator */
    return 0;
}

static void on_fire(uv_timer_t *h)
{
    entry *e = h->data;
    int rc;

    if (e->startup_tries == 0)
        e->startup_tries = STARTUP_TRIES; /* a new occurrence: its own wait */
    rc = fire(e);
    if (rc == RP_EAGAIN && --e->startup_tries > 0) {
        /* The handler is starting (with the release that installed these timers, after a
         * crash, or from zero for this very run): the occurrence waits for it. */
        uv_timer_start(&e->timer, on_fire, STARTUP_RETRY_MS, 0);
        return;
    }
    if (rc != 0) {
        log_run(e, "skipped: the handler is not running", 0, -1);
        report(e, RP_FN_SKIPPED, 0, 0, now_ms(), NULL);
    }
    e->startup_tries = 0;
    e->past_due = 0;
    schedule(e);
}

/*
 * useMonitor (Azure keeps the schedule status in storage): the last occurrence each monitored
 * function ran is kept in the app's timers.json, {"FUNCTION": UNIX_SECONDS}, rewritten whole
 * (a temporary file renamed over it) after each run. An occurrence missed while the server or
 * the app was down runs once as soon as the timers are installed, with IsPastDue true.
 */
static void state_save(const entry *e)
{
    char tmp[4200];
    json_t *doc;
    int ok = 0;

    if (!e->monitor || e->state[0] == '\0')
        return;
    doc = json_load_file(e->state, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = json_object();
    }
    for (const entry *x = e->t->entries; doc != NULL && x != NULL; x = x->next)
        if (strcmp(x->app, e->app) == 0 && x->monitor && !x->dead && x->last_s > 0)
            (void)json_object_set_new(doc, x->fn, json_integer((json_int_t)x->last_s));
    if (doc != NULL && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", e->state) < sizeof(tmp) &&
        json_dump_file(doc, tmp, JSON_COMPACT) == 0)
        ok = rename(tmp, e->state) == 0;
    json_decref(doc);
    if (!ok)
        log_run(e, "the schedule status (timers.json) could not be saved", 0, -1);
}

/* Was an occurrence after the saved last run missed? Then e runs now, past due. */
static void past_due_check(entry *e, const json_t *saved)
{
    json_t *v = json_object_get(saved, e->fn);
    int64_t next;

    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return;
    e->last_s = (int64_t)json_integer_value(v);
    if (rp_ncron_next(&e->sched, e->last_s, &next) == 0 && next < now_ms() / 1000)
        e->past_due = 1;
}

/* Installs u's entries for its app in place of the old ones. */
static void apply(rp_fn_timers *t, update *u)
{
    entry **pp = &t->entries;
    json_t *saved = u->state[0] ? json_load_file(u->state, 0, NULL) : NULL;

    while (*pp != NULL) {
        entry *e = *pp;
        if (strcmp(e->app, u->app) == 0) {
            *pp = e->next;
            entry_drop(e);
        } else {
            pp = &e->next;
        }
    }
    while (u->list != NULL) {
        entry *e = u->list;
        u->list = e->next;
        e->t = t;
        e->timer.data = e;
        if (uv_timer_init(&t->loop, &e->timer) != 0) {
            log_run(e, "the timer could not be set", 0, -1);
            rp_free(e);
            continue;
        }
        e->timer_ready = 1;
        e->next = t->entries;
        t->entries = e;
        rp_strlcpy(e->state, u->state, sizeof(e->state));
        if (e->monitor)
            past_due_check(e, saved);
        if (e->run_on_startup || e->past_due)
            uv_timer_start(&e->timer, on_fire, 0, 0);
        else
            schedule(e);
    }
    json_decref(saved);
}

static void on_wake(uv_async_t *h)
{
    rp_fn_timers *t = h->data;
    update *list, *rev = NULL;
    int stopping;

    uv_mutex_lock(&t->mu);
    list = t->pending;
    t->pending = NULL;
    stopping = t->stopping;
    uv_mutex_unlock(&t->mu);
    while (list != NULL) { /* oldest first */
        update *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev != NULL) {
        update *n = rev->next;
        if (!stopping)
            apply(t, rev);
        entries_free(rev->list);
        rp_free(rev);
        rev = n;
    }
    if (stopping) {
        while (t->entries != NULL) {
            entry *e = t->entries;
            t->entries = e->next;
            entry_drop(e);
        }
        rp_invoke_loop_stop(); /* this loop's idle connections to handlers */
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_close((uv_handle_t *)&t->ticker, NULL);
    }
}

static void on_tick(uv_timer_t *h)
{
    rp_fn_timers *t = h->data;

    if (t->tick != NULL)
        t->tick(t->arg);
}

static void run(void *arg)
{
    rp_fn_timers *t = arg;

    uv_run(&t->loop, UV_RUN_DEFAULT);
}

int rp_fn_timers_open(rp_fn_port_fn port_of, rp_fn_ran_fn ran, rp_fn_tick_fn tick, void *arg,
                      rp_fn_timers **out)
{
    rp_fn_timers *t = rp_calloc(1, sizeof(*t));

    *out = NULL;
    if (t == NULL)
        return RP_ENOMEM;
    t->port_of = port_of;
    t->ran = ran;
    t->tick = tick;
    t->arg = arg;
    if (uv_loop_init(&t->loop) != 0) {
        rp_free(t);
        return RP_EIO;
    }
    if (uv_mutex_init(&t->mu) != 0) {
        uv_loop_close(&t->loop);
        rp_free(t);
        return RP_ENOMEM;
    }
    t->wake.data = t;
    if (uv_async_init(&t->loop, &t->wake, on_wake) != 0) {
        uv_mutex_destroy(&t->mu);
        uv_loop_close(&t->loop);
        rp_free(t);
        return RP_EIO;
    }
    t->ticker.data = t;
    if (uv_timer_init(&t->loop, &t->ticker) != 0 ||
        uv_timer_start(&t->ticker, on_tick, 1000, 1000) != 0 ||
        uv_thread_create(&t->thread, run, t) != 0) {
        if (t->ticker.loop == &t->loop) /* initialised */
            uv_close((uv_handle_t *)&t->ticker, NULL);
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        uv_mutex_destroy(&t->mu);
        rp_free(t);
        return RP_EIO;
    }
    *out = t;
    return 0;
}

void rp_fn_timers_close(rp_fn_timers *t)
{
    if (t == NULL)
        return;
    uv_mutex_lock(&t->mu);
    t->stopping = 1;
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
    uv_thread_join(&t->thread);
    (void)uv_loop_close(&t->loop);
    while (t->pending != NULL) { /* queued after the last wake-up */
        update *n = t->pending->next;
        entries_free(t->pending->list);
        rp_free(t->pending);
        t->pending = n;
    }
    uv_mutex_destroy(&t->mu);
    rp_free(t);
}

/* A schedule as written, or the value of the app setting %NAME% names (Azure's rule): into
 * out[cap]. 0, or -1 with why. */
static int schedule_text(const char *sched, const char *const *env, size_t nenv, char *out,
                         size_t cap, char *why, size_t wcap)
{
    size_t n = strlen(sched);

    if (n < 2 || sched[0] != '%' || sched[n - 1] != '%')
        return rp_strlcpy(out, sched, cap) == 0 ? 0 : -1;
    for (size_t i = 0; i < nenv; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq != NULL && (size_t)(eq - env[i]) == n - 2 && memcmp(env[i], sched + 1, n - 2) == 0) {
            if (rp_strlcpy(out, eq + 1, cap) != 0) {
                snprintf(why, wcap, "the app setting %.*s is too long for a schedule",
                         (int)(n - 2 > 64 ? 64 : n - 2), sched + 1);
                return -1;
            }
            return 0;
        }
    }
    snprintf(why, wcap, "the schedule names the app setting %.*s, which is not set",
             (int)(n - 2 > 64 ? 64 : n - 2), sched + 1);
    return -1;
}

int rp_fn_timers_set(rp_fn_timers *t, const char *app, const rp_fn_app *fa, const char *const *env,
                     size_t nenv, const char *state)
{
    update *u = rp_calloc(1, sizeof(*u));
    size_t n = fa != NULL ? rp_fn_app_count(fa) : 0;

    if (u == NULL)
        return RP_ENOMEM;
    if (rp_strlcpy(u->app, app, sizeof(u->app)) != 0 ||
        rp_strlcpy(u->state, state != NULL ? state : "", sizeof(u->state)) != 0) {
        rp_free(u);
        return RP_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const rp_fn_function *f = rp_fn_app_function(fa, i);
        const rp_fn_binding *b = &f->bindings[f->trigger];
        char why[160], text[RP_FN_SCHEDULE_MAX + 1];
        int64_t n1 = 0, n2 = 0;
        entry *e;
        if (f->disabled || b->type != RP_FN_TIMER_TRIGGER)
            continue;
        if ((e = rp_calloc(1, sizeof(*e))) == NULL) {
            entries_free(u->list);
            rp_free(u);
            return RP_ENOMEM;
        }
        rp_strlcpy(e->app, app, sizeof(e->app));
        rp_strlcpy(e->fn, f->name, sizeof(e->fn));
        rp_strlcpy(e->binding, b->name, sizeof(e->binding));
        e->timeout_s = rp_fn_app_host(fa)->timeout_s;
        e->run_on_startup = b->run_on_startup;
        int bad = schedule_text(b->schedule, env, nenv, text, sizeof(text), why, sizeof(why));
        if (bad == 0 && rp_ncron_parse(text, strlen(text), &e->sched, why, sizeof(why)) != 0) {
            bad = 1;
            /* The parser quotes what it read: not a setting's value (it could be a secret). */
            if (b->schedule[0] == '%')
                snprintf(why, sizeof(why), "the app setting %.64s does not hold a schedule",
                         b->schedule + 1);
        }
        if (bad) {
            rp_logline l;
            rp_logline_begin(&l, RP_LOG_ERROR, "functions.timer");
            rp_logline_str(&l, "app", app);
            rp_logline_str(&l, "function", f->name);
            rp_logline_str(&l, "message", why);
            rp_logline_str(&l, "outcome", "not scheduled");
            rp_logline_end(&l);
            rp_free(e);
            continue;
        }
        /* useMonitor's default, as Azure's: on when occurrences are more than a minute apart. */
        e->monitor = b->use_monitor >= 0
                         ? b->use_monitor
                         : rp_ncron_next(&e->sched, now_ms() / 1000, &n1) == 0 &&
                               rp_ncron_next(&e->sched, n1, &n2) == 0 && n2 - n1 > 60;
        e->next = u->list;
        u->list = e;
    }
    uv_mutex_lock(&t->mu);
    u->next = t->pending;
    t->pending = u;
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
    return 0;
}
