/*
 * gate_test.c - unit tests for src/functions/gate.c: calls under the concurrency run at once,
 * the next ones wait in order, past the outstanding bound they are refused; a leaving call
 * hands its slot to the oldest waiter, also one on another loop thread; a waiter that gives up
 * leaves the line; new bounds apply at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <uv.h>

#include "base/err.h"
#include "functions/gate.h"

typedef struct waiter {
    int went;
    int order;
} waiter;

static int order_seen;

static void go(void *arg)
{
    waiter *w = arg;

    w->went++;
    w->order = ++order_seen;
}

static void test_bounds_and_order(void **state)
{
    uv_loop_t loop;
    rp_fn_gate *g;
    rp_fn_ticket *t[6] = {0};
    waiter w[6];
    int now;
    size_t r, q;

    (void)state;
    memset(w, 0, sizeof(w));
    order_seen = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_fn_gate_new(2, 4, &g), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rp_fn_gate_enter(g, &loop, go, &w[i], &now, &t[i]), 0);
        assert_int_equal(now, i < 2);
        assert_non_null(t[i]);
    }
    /* Two running, two waiting: the fifth is refused. */
    assert_int_equal(rp_fn_gate_enter(g, &loop, go, &w[4], &now, &t[4]), RP_EAGAIN);
    assert_null(t[4]);
    rp_fn_gate_counts(g, &r, &q);
    assert_int_equal(r, 2);
    assert_int_equal(q, 2);
    /* Nothing left: the waiters wait. */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w[2].went + w[3].went, 0);
    /* One leaves: the oldest waiter goes, once. */
    rp_fn_gate_leave(t[0]);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w[2].went, 1);
    assert_int_equal(w[3].went, 0);
    rp_fn_gate_counts(g, &r, &q);
    assert_int_equal(r, 2);
    assert_int_equal(q, 1);
    /* The waiter gives up: it leaves the line, and a new call is let in behind the others. */
    rp_fn_gate_leave(t[3]);
    assert_int_equal(rp_fn_gate_enter(g, &loop, go, &w[5], &now, &t[5]), 0);
    assert_int_equal(now, 0);
    rp_fn_gate_leave(t[1]);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w[3].went, 0);
    assert_int_equal(w[5].went, 1);
    assert_true(w[2].order < w[5].order);
    rp_fn_gate_leave(t[2]);
    rp_fn_gate_leave(t[5]);
    rp_fn_gate_counts(g, &r, &q);
    assert_int_equal(r, 0);
    assert_int_equal(q, 0);
    rp_fn_gate_unref(g);
    uv_run(&loop, UV_RUN_DEFAULT); /* the closed asyncs */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_granted_then_abandoned(void **state)
{
    uv_loop_t loop;
    rp_fn_gate *g;
    rp_fn_ticket *a, *b, *c;
    waiter wa = {0}, wb = {0}, wc = {0};
    int now;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_fn_gate_new(1, 0, &g), 0); /* no bound on waiting */
    assert_int_equal(rp_fn_gate_enter(g, &loop, go, &wa, &now, &a), 0);
    assert_int_equal(now, 1);
    assert_int_equal(rp_fn_gate_enter(g, &loop, go, &wb, &now, &b), 0);
    assert_int_equal(rp_fn_gate_enter(g, &loop, go, &wc, &now, &c), 0);
    assert_int_equal(now, 0);
    /* b is handed the slot, but gives up before its loop ran: the slot goes on to c. */
    rp_fn_gate_leave(a);
    rp_fn_gate_leave(b);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(wb.went, 0);
    assert_int_equal(wc.went, 1);
    rp_fn_gate_leave(c);
    rp_fn_gate_leave(NULL);
    rp_fn_gate_unref(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_unbounded_and_new_limits(void **state)
{
    uv_loop_t loop;
    rp_fn_gate *g;
    rp_fn_ticket *t[40];
    waiter w[40];
    int now;

    (void)state;
    memset(w, 0, sizeof(w));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_fn_gate_new(-1, -1, &g), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rp_fn_gate_enter(g, &loop, go, &w[i], &now, &t[i]), 0);
        assert_int_equal(now, 1);
    }
    for (int i = 0; i < 20; i++)
        rp_fn_gate_leave(t[i]);
    /* One at a time, then a larger bound lets the waiters in at once. */
    rp_fn_gate_limits(g, 1, 10);
    for (int i = 20; i < 25; i++)
        assert_int_equal(rp_fn_gate_enter(g, &loop, go, &w[i], &now, &t[i]), 0);
    rp_fn_gate_limits(g, 3, 10);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(w[21].went + w[22].went + w[23].went + w[24].went, 2);
    for (int i = 20; i < 25; i++)
        rp_fn_gate_leave(t[i]);
    rp_fn_gate_unref(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A slot freed on this thread goes to a waiter on another loop thread. */
typedef struct other {
    uv_loop_t loop;
    rp_fn_gate *g;
    rp_fn_ticket *t;
    waiter w;
    uv_sem_t entered;
    uv_timer_t stop;
} other;

static void other_go(void *arg)
{
    other *o = arg;

    o->w.went++;
    rp_fn_gate_leave(o->t);
    o->t = NULL;
}

static void other_thread(void *arg)
{
    other *o = arg;
    int now;

    assert_int_equal(rp_fn_gate_enter(o->g, &o->loop, other_go, o, &now, &o->t), 0);
    assert_int_equal(now, 0);
    uv_sem_post(&o->entered);
    /* Runs until the async fired and its handle closed (nothing else keeps it alive). */
    uv_run(&o->loop, UV_RUN_DEFAULT);
}

static void test_other_loop(void **state)
{
    uv_loop_t here;
    other o;
    uv_thread_t th;
    rp_fn_ticket *mine;
    waiter w = {0};
    int now;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(uv_loop_init(&here), 0);
    assert_int_equal(uv_loop_init(&o.loop), 0);
    assert_int_equal(uv_sem_init(&o.entered, 0), 0);
    assert_int_equal(rp_fn_gate_new(1, 2, &o.g), 0);
    assert_int_equal(rp_fn_gate_enter(o.g, &here, go, &w, &now, &mine), 0);
    assert_int_equal(now, 1);
    assert_int_equal(uv_thread_create(&th, other_thread, &o), 0);
    uv_sem_wait(&o.entered);
    rp_fn_gate_leave(mine);
    assert_int_equal(uv_thread_join(&th), 0);
    assert_int_equal(o.w.went, 1);
    assert_null(o.t);
    rp_fn_gate_unref(o.g);
    uv_sem_destroy(&o.entered);
    assert_int_equal(uv_loop_close(&o.loop), 0);
    uv_run(&here, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&here), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_and_order),
        cmocka_unit_test(test_granted_then_abandoned),
        cmocka_unit_test(test_unbounded_and_new_limits),
        cmocka_unit_test(test_other_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
