/*
 * cport.c - completion ports (see cport.h). The store and the audit log each run one writer
 * thread that finishes many small operations for many loops; this is the one place that hands
 * them back.
 */
#include "base/cport.h"
#include "base/alloc.h"
#include "base/err.h"

struct rp_cport {
    uv_async_t async;
    uv_mutex_t mu; /* guards head, tail, refs and closed */
    rp_cport_item *head;
    rp_cport_item *tail;
    unsigned refs; /* the handle until its close callback + one per item in flight */
    int closed;
    void (*release)(void *owner);
    void *owner;
};

void rp_cport_hold(rp_cport *p)
{
    uv_mutex_lock(&p->mu);
    p->refs++;
    uv_mutex_unlock(&p->mu);
}

void rp_cport_drop(rp_cport *p)
{
    int last;

    uv_mutex_lock(&p->mu);
    last = --p->refs == 0;
    uv_mutex_unlock(&p->mu);
    if (last) {
        uv_mutex_destroy(&p->mu);
        p->release(p->owner);
        rp_free(p);
    }
}

/* Takes the whole completion list. */
static rp_cport_item *take(rp_cport *p)
{
    rp_cport_item *list;

    uv_mutex_lock(&p->mu);
    list = p->head;
    p->head = NULL;
    p->tail = NULL;
    uv_mutex_unlock(&p->mu);
    return list;
}

static void async_cb(uv_async_t *h)
{
    rp_cport *p = h->data;
    rp_cport_item *it, *next;

    /* The handle's reference keeps p alive here even if a callback closes the port. */
    for (it = take(p); it != NULL; it = next) {
        next = it->next;
        if (!p->closed && it->done != NULL)
            it->done(it->status, it->arg);
        rp_free(it);
        rp_cport_drop(p);
    }
}

static void close_cb(uv_handle_t *h)
{
    rp_cport *p = h->data;
    rp_cport_item *it, *next;

    for (it = take(p); it != NULL; it = next) {
        next = it->next;
        rp_free(it);
        rp_cport_drop(p);
    }
    rp_cport_drop(p); /* the handle's own reference */
}

int rp_cport_open(uv_loop_t *loop, void (*release)(void *owner), void *owner, rp_cport **out)
{
    rp_cport *p = rp_calloc(1, sizeof(*p));

    if (p == NULL)
        return RP_ENOMEM;
    if (uv_mutex_init(&p->mu) != 0) {
        rp_free(p);
        return RP_EIO;
    }
    if (uv_async_init(loop, &p->async, async_cb) != 0) {
        uv_mutex_destroy(&p->mu);
        rp_free(p);
        return RP_EIO;
    }
    p->async.data = p;
    p->refs = 1;
    p->release = release;
    p->owner = owner;
    *out = p;
    return 0;
}

void *rp_cport_owner(const rp_cport *p)
{
    return p->owner;
}

void rp_cport_close(rp_cport *p)
{
    if (p == NULL)
        return;
    uv_mutex_lock(&p->mu);
    p->closed = 1;
    uv_mutex_unlock(&p->mu);
    uv_close((uv_handle_t *)&p->async, close_cb);
}

void rp_cport_deliver(rp_cport *p, rp_cport_item *it)
{
    int dropped;

    it->next = NULL;
    uv_mutex_lock(&p->mu);
    dropped = p->closed;
    if (!dropped) {
        if (p->tail != NULL)
            p->tail->next = it;
        else
            p->head = it;
        p->tail = it;
        /* Under the mutex: rp_cport_close cannot start uv_close meanwhile. */
        uv_async_send(&p->async);
    }
    uv_mutex_unlock(&p->mu);
    if (dropped) {
        rp_free(it);
        rp_cport_drop(p);
    }
}
