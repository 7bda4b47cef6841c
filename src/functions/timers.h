/*
 * timers.h - timer triggers of function apps (docs/functions.md "Timer triggers"): each enabled
 * timerTrigger function is invoked on its schedule (NCRONTAB or TimeSpan, UTC, functions/ncron)
 * with the custom handler protocol's envelope,
 *   POST /FUNCTION  {"Data": {BINDING: {"Schedule": {"AdjustForDST": true},
 *                    "ScheduleStatus": {"Last", "Next", "LastUpdated"}, "IsPastDue": false}},
 *                    "Metadata": {"sys": {"MethodName", "UtcNow", "RandGuid"}}}
 * (functions/invoke), bounded by the app's functionTimeout.
 *
 * A timer never overlaps itself: while one run is in flight, its next occurrences are skipped
 * (logged), and the next run is the first occurrence after the running one ends. runOnStartup
 * runs a function once as soon as its app's timers are installed (a deploy, a settings change,
 * a restart). A schedule "%NAME%" is read from app setting NAME. A run asks for the handler's
 * port when it fires: one that is starting (a deploy, a crash, an app scaled to zero that this
 * very occurrence wakes) is waited for, up to a minute; one that is not meant to run means the
 * occurrence is skipped. useMonitor (default on when occurrences are over a minute apart): the
 * last occurrence run is kept in the app's timers.json, and one missed while down runs once at
 * install time with IsPastDue true.
 *
 * Every run is logged (functions.timer: app, function, outcome, status, duration) and handed to
 * the owner as an invocation record (X-Azure-Functions-InvocationId carries its id). The timers
 * run on a thread of their own with its own libuv loop; rp_fn_timers_set may be called from
 * any thread and copies what it needs.
 */
#ifndef RP_FUNCTIONS_TIMERS_H
#define RP_FUNCTIONS_TIMERS_H

#include "functions/fnapp.h"
#include "functions/invlog.h"

#include <stdint.h>

typedef struct rp_fn_timers rp_fn_timers;

/* The loopback port of the custom handler that runs app's function fn now (the app's, or the
 * function's own worker); 0 while it is starting (the run waits), < 0 when none is meant to
 * run (the occurrence is skipped). Called on the timers' thread. */
typedef int (*rp_fn_port_fn)(void *arg, const char *app, const char *fn);

/* A run ended, or an occurrence was skipped: its invocation record (functions/invlog), for
 * app. Called on the timers' thread; inv is borrowed for the call. */
typedef void (*rp_fn_ran_fn)(void *arg, const char *app, const rp_fn_inv *inv);

/* The owner's housekeeping, about once a second on the timers' thread (function apps that
 * scale to zero when idle). */
typedef void (*rp_fn_tick_fn)(void *arg);

/* Starts the timers' thread; ran and tick may be NULL. 0 and *out, or RP_ENOMEM / RP_EIO. */
int rp_fn_timers_open(rp_fn_port_fn port_of, rp_fn_ran_fn ran, rp_fn_tick_fn tick, void *arg,
                      rp_fn_timers **out);

/* Stops the thread (runs in flight are cancelled) and frees everything. Accepts NULL. */
void rp_fn_timers_close(rp_fn_timers *t);

/*
 * Replaces app's timer functions with the enabled timerTrigger functions of fa (NULL: none, the
 * app is gone or is no function app). A schedule "%NAME%" is the value of app setting NAME in
 * env (nenv "NAME=value" strings, borrowed for the call); one that is not set, or not a
 * schedule, leaves that function unscheduled (logged). state: the app's timers.json for
 * useMonitor (NULL: none). 0, or RP_ENOMEM (the app's old timers stay).
 */
int rp_fn_timers_set(rp_fn_timers *t, const char *app, const rp_fn_app *fa, const char *const *env,
                     size_t nenv, const char *state);

#endif
