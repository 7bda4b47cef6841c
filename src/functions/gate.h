/*
 * gate.h - a function app's HTTP throttle (docs/functions.md "Concurrency and throttling"):
 * host.json extensions.http.maxConcurrentRequests calls run at once, and at most
 * maxOutstandingRequests are in the host at all (running plus waiting). A call over that bound is
 * refused at once (the host answers 429 with Retry-After, Azure's "Too Busy"); a call under it
 * but over the concurrency waits in a FIFO queue until a running call leaves.
 *
 * One gate serves every loop thread of the server: a waiting call is woken on its own loop
 * (a uv_async of its own), so a slot freed on one thread goes to the oldest waiter whatever
 * thread it is on. Thread-safe; reference-counted (each ticket holds a reference, so a gate
 * outlives the app that dropped it until its last call has left).
 */
#ifndef RP_FUNCTIONS_GATE_H
#define RP_FUNCTIONS_GATE_H

#include <stddef.h>
#include <uv.h>

typedef struct rp_fn_gate rp_fn_gate;
typedef struct rp_fn_ticket rp_fn_ticket;

/* A waiting call's slot came free: called on the loop it entered from. */
typedef void (*rp_fn_gate_go)(void *arg);

/* concurrent / outstanding: a count >= 1, or <= 0 for no bound. 0 and *out, or RP_ENOMEM. */
int rp_fn_gate_new(long concurrent, long outstanding, rp_fn_gate **out);
rp_fn_gate *rp_fn_gate_ref(rp_fn_gate *g);
void rp_fn_gate_unref(rp_fn_gate *g); /* accepts NULL */

/* New bounds (a deploy changed host.json). Calls already running keep their slots; a larger
 * concurrency lets waiters in at once. */
void rp_fn_gate_limits(rp_fn_gate *g, long concurrent, long outstanding);

/*
 * Asks for a slot, from loop's thread. 0: *t is the call's ticket and *now says whether it may
 * run at once (1), or waits (0) until go(arg) runs on loop. RP_EAGAIN: the gate is full (429);
 * *t is NULL. RP_ENOMEM. Every ticket is ended once with rp_fn_gate_leave, from the same loop
 * thread: when the call finished, or when a waiting call gave up (go then never runs).
 */
int rp_fn_gate_enter(rp_fn_gate *g, uv_loop_t *loop, rp_fn_gate_go go, void *arg, int *now,
                     rp_fn_ticket **t);
void rp_fn_gate_leave(rp_fn_ticket *t); /* accepts NULL */

/* 1 when a call entering now would be refused (a hint: another thread may enter or leave). */
int rp_fn_gate_full(rp_fn_gate *g);

/* Calls running and waiting now (for metrics). */
void rp_fn_gate_counts(rp_fn_gate *g, size_t *running, size_t *waiting);

#endif
