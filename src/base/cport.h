/*
 * cport.h - completion ports: how work finished on a background thread (the store's writer,
 * the audit log's writer) gets back to the libuv loop that asked for it.
 *
 * A port belongs to one loop. A worker thread hands it finished items (rp_cport_deliver); the
 * port queues them under its mutex and wakes its loop with a uv_async_t, where each item's
 * done(status, arg) runs, in delivery order. Closing the port (on its loop) drops items not yet
 * run and every item delivered later, without calling them.
 *
 * Items are the first member of the caller's own operation struct, allocated with rp_malloc:
 * the port frees the whole operation (rp_free on the item) once it has run or been dropped.
 *
 * Lifetime: the port counts one reference for its uv handle (until the close callback) and one
 * per item in flight (rp_cport_hold when the item is queued for the worker, released when the
 * port frees it, or with rp_cport_drop if it never reaches the worker). When the last one goes,
 * the owner's release function runs (the store or the log drops its own reference) and the
 * port is freed, so a port and its owner may be closed in either order.
 */
#ifndef RP_BASE_CPORT_H
#define RP_BASE_CPORT_H

#include <uv.h>

typedef struct rp_cport_item {
    struct rp_cport_item *next; /* free for the owner's own queue until delivered */
    void (*done)(int status, void *arg);
    void *arg;
    int status;
} rp_cport_item;

typedef struct rp_cport rp_cport;

/*
 * Opens a port on loop (call on the loop's thread). release(owner) runs once when the last
 * reference goes, on whichever thread drops it. 0 and *out, RP_ENOMEM or RP_EIO.
 */
int rp_cport_open(uv_loop_t *loop, void (*release)(void *owner), void *owner, rp_cport **out);
/* The owner given to rp_cport_open. */
void *rp_cport_owner(const rp_cport *p);
/* Closes the handle (on the loop's thread; the loop must run once more). Accepts NULL. */
void rp_cport_close(rp_cport *p);
/* One more item in flight (before it is queued for the worker). Thread-safe. */
void rp_cport_hold(rp_cport *p);
/* Undoes rp_cport_hold for an item that was never queued (it is not freed here). */
void rp_cport_drop(rp_cport *p);
/*
 * From any thread: queues the finished item for the port's loop, or frees it at once if the
 * port is closed. Either way the caller must not touch it again.
 */
void rp_cport_deliver(rp_cport *p, rp_cport_item *it);

#endif
