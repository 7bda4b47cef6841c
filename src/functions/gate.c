/*
 * gate.c - see gate.h. One mutex guards the counts and the FIFO of waiters; a slot is handed
 * to the oldest waiter while the lock is held (it counts as running from then on), and the
 * waiter's own uv_async tells its loop. A waiter that leaves before its async ran gives the
 * slot straight to the next one.
 */
#include "functions/gate.h"

#include "base/alloc.h"
#include "base/err.h"

#include <stdatomic.h>

enum { T_RUNNING, T_WAITING, T_GRANTED };

struct rp_fn_ticket {
    rp_fn_gate *g;
    int state;     /* T_*, under g->mu */
    int has_async; /* async is initialised (waiters only) */
    uv_async_t async;
    rp_fn_gate_go go;
    void *arg;
    rp_fn_ticket *prev, *next; /* the FIFO, while waiting */
};

struct rp_fn_gate {
    atomic_int refs;
    uv_mutex_t mu;
    long concurrent, outstanding; /* <= 0: no bound */
    size_t running, waiting;
    rp_fn_ticket *head, *tail;
};

int rp_fn_gate_new(long concurrent, long outstanding, rp_fn_gate **out)
{
    rp_fn_gate *g = rp_calloc(1, sizeof(*g));

    *out = NULL;
    if (g == NULL)
        return RP_ENOMEM;
    if (uv_mutex_init(&g->mu) != 0) {
        rp_free(g);
        return RP_ENOMEM;
    }
    atomic_init(&g->refs, 1);
    g->concurrent = concurrent;
    g->outstanding = outstanding;
    *out = g;
    return 0;
}

rp_fn_gate *rp_fn_gate_ref(rp_fn_gate *g)
{
    atomic_fetch_add(&g->refs, 1);
    return g;
}

void rp_fn_gate_unref(rp_fn_gate *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    uv_mutex_destroy(&g->mu);
    rp_free(g);
}

/* Hands free slots to the oldest waiters. Caller holds mu. */
static void grant_locked(rp_fn_gate *g)
{
    while (g->head != NULL && (g->concurrent <= 0 || g->running < (size_t)g->concurrent)) {
        rp_fn_ticket *w = g->head;
        g->head = w->next;
        if (g->head != NULL)
            g->head->prev = NULL;
        else
            g->tail = NULL;
        w->next = w->prev = NULL;
        g->waiting--;
        g->running++;
        w->state = T_GRANTED;
        /* Cannot fail for an initialised, open handle. */
        (void)uv_async_send(&w->async);
    }
}

void rp_fn_gate_limits(rp_fn_gate *g, long concurrent, long outstanding)
{
    uv_mutex_lock(&g->mu);
    g->concurrent = concurrent;
    g->outstanding = outstanding;
    grant_locked(g);
    uv_mutex_unlock(&g->mu);
}

static void on_granted(uv_async_t *a)
{
    rp_fn_ticket *t = a->data;
    int go;

    uv_mutex_lock(&t->g->mu);
    go = t->state == T_GRANTED;
    if (go)
        t->state = T_RUNNING;
    uv_mutex_unlock(&t->g->mu);
    if (go)
        t->go(t->arg);
}

int rp_fn_gate_enter(rp_fn_gate *g, uv_loop_t *loop, rp_fn_gate_go go, void *arg, int *now,
                     rp_fn_ticket **t)
{
    rp_fn_ticket *k = rp_calloc(1, sizeof(*k));
    int rc = 0;

    *t = NULL;
    *now = 0;
    if (k == NULL)
        return RP_ENOMEM;
    k->g = g;
    k->go = go;
    k->arg = arg;
    uv_mutex_lock(&g->mu);
    if (g->outstanding > 0 && g->running + g->waiting >= (size_t)g->outstanding) {
        rc = RP_EAGAIN;
    } else if (g->head == NULL && (g->concurrent <= 0 || g->running < (size_t)g->concurrent)) {
        g->running++;
        k->state = T_RUNNING;
        *now = 1;
    } else if (uv_async_init(loop, &k->async, on_granted) != 0) {
        rc = RP_ENOMEM;
    } else {
        k->has_async = 1;
        k->async.data = k;
        k->state = T_WAITING;
        k->prev = g->tail;
        if (g->tail != NULL)
            g->tail->next = k;
        else
            g->head = k;
        g->tail = k;
        g->waiting++;
    }
    uv_mutex_unlock(&g->mu);
    if (rc != 0) {
        rp_free(k);
        return rc;
    }
    rp_fn_gate_ref(g);
    *t = k;
    return 0;
}

static void ticket_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

void rp_fn_gate_leave(rp_fn_ticket *t)
{
    rp_fn_gate *g;

    if (t == NULL)
        return;
    g = t->g;
    uv_mutex_lock(&g->mu);
    if (t->state == T_WAITING) {
        if (t->prev != NULL)
            t->prev->next = t->next;
        else
            g->head = t->next;
        if (t->next != NULL)
            t->next->prev = t->prev;
        else
            g->tail = t->prev;
        g->waiting--;
    } else {
        /* Running, or granted and not yet told: either way it holds a slot. */
        g->running--;
        grant_locked(g);
    }
    uv_mutex_unlock(&g->mu);
    rp_fn_gate_unref(g);
    if (t->has_async)
        uv_close((uv_handle_t *)&t->async, ticket_closed); /* no callback after this */
    else
        rp_free(t);
}

int rp_fn_gate_full(rp_fn_gate *g)
{
    int full;

    uv_mutex_lock(&g->mu);
    full = g->outstanding > 0 && g->running + g->waiting >= (size_t)g->outstanding;
    uv_mutex_unlock(&g->mu);
    return full;
}

void rp_fn_gate_counts(rp_fn_gate *g, size_t *running, size_t *waiting)
{
    uv_mutex_lock(&g->mu);
    *running = g->running;
    *waiting = g->waiting;
    uv_mutex_unlock(&g->mu);
}
