/*
 * cport_test.c - completion ports with real threads and a real loop: items delivered from
 * another thread run on the loop in delivery order; items delivered after close are dropped
 * without being called; the owner is released exactly once, after the last item, whichever of
 * the port and its items goes last. (The store and the audit log tests drive it harder.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/cport.h"

#define N 500

typedef struct fx {
    rp_cport *port;
    int released;
    int seen[N];
    int order_ok;
    int last;
} fx;

typedef struct item {
    rp_cport_item it;
    int n;
} item;

static void release(void *owner)
{
    ((fx *)owner)->released++;
}

static fx *g;

static void done_n(int status, void *arg)
{
    int n = (int)(intptr_t)arg;

    assert_int_equal(status, n * 2);
    if (n != g->last + 1)
        g->order_ok = 0;
    g->last = n;
    g->seen[n]++;
}

static void producer(void *arg)
{
    fx *f = arg;

    for (int i = 0; i < N; i++) {
        item *x = rp_calloc(1, sizeof(*x));
        assert_non_null(x);
        x->it.done = done_n;
        x->it.arg = (void *)(intptr_t)i;
        x->it.status = i * 2;
        rp_cport_deliver(f->port, &x->it);
    }
}

static void stop_when_done(uv_idle_t *h)
{
    fx *f = h->data;

    if (f->last == N - 1) {
        uv_idle_stop(h);
        uv_stop(h->loop); /* the port's handle would keep the loop running */
    }
}

static void test_delivery_in_order(void **state)
{
    uv_loop_t loop;
    uv_thread_t t;
    uv_idle_t idle;
    fx f = {0};

    (void)state;
    g = &f;
    f.order_ok = 1;
    f.last = -1;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_cport_open(&loop, release, &f, &f.port), 0);
    assert_ptr_equal(rp_cport_owner(f.port), &f);
    for (int i = 0; i < N; i++)
        rp_cport_hold(f.port);
    assert_int_equal(uv_thread_create(&t, producer, &f), 0);
    uv_idle_init(&loop, &idle);
    idle.data = &f;
    uv_idle_start(&idle, stop_when_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_thread_join(&t);
    assert_true(f.order_ok);
    for (int i = 0; i < N; i++)
        assert_int_equal(f.seen[i], 1);
    assert_int_equal(f.released, 0); /* the handle still holds the port */
    rp_cport_close(f.port);
    uv_close((uv_handle_t *)&idle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(f.released, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void never(int status, void *arg)
{
    (void)status;
    (void)arg;
    fail_msg("an item delivered after close ran");
}

static void test_after_close(void **state)
{
    uv_loop_t loop;
    fx f = {0};
    item *x;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_cport_open(&loop, release, &f, &f.port), 0);
    rp_cport_hold(f.port); /* an item in flight */
    rp_cport_hold(f.port); /* one that never reaches the worker */
    rp_cport_drop(f.port);
    rp_cport_close(f.port);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(f.released, 0); /* the item in flight keeps it */
    x = rp_calloc(1, sizeof(*x));
    assert_non_null(x);
    x->it.done = never;
    rp_cport_deliver(f.port, &x->it); /* dropped, freed, last reference */
    assert_int_equal(f.released, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_in_order),
        cmocka_unit_test(test_after_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
