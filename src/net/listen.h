/*
 * listen.h - listening sockets: one per loop with SO_REUSEPORT, so the kernel spreads
 * connections across loops without a shared accept lock.
 */
#ifndef RP_NET_LISTEN_H
#define RP_NET_LISTEN_H

/*
 * Binds a non-blocking, close-on-exec TCP listening socket on host:port with SO_REUSEPORT.
 * host is an IP literal, "localhost" or a resolvable name. When *port is 0 the kernel picks one and *port is
 * updated, so later sockets for the same address can join the group.
 * Returns the fd, or a negative RP_E* code with a reason in err.
 */
int rp_listen_tcp(const char *host, int *port, int backlog, char *err, unsigned long errlen);

#endif
