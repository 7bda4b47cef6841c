/*
 * server.h - `rampart serve`: wires the data directory, store, TLS, router and the loop
 * threads together and runs until SIGTERM/SIGINT.
 *
 * Threads: the main thread owns signals (SIGTERM/SIGINT drain, SIGHUP reloads certificates
 * and credentials) and the ticket-key rotation timer; one worker thread per core runs its own
 * libuv loop with its own SO_REUSEPORT listeners, so a connection never changes threads.
 * Once every listener is bound, one JSON line {"event":"ready",...} is written to stdout:
 * scripts and tests wait for it and read the actual ports from it.
 */
#ifndef RP_SERVER_SERVER_H
#define RP_SERVER_SERVER_H

#include "server/config.h"

#include <stddef.h>

/*
 * Runs the server with cfg (data_dir must be set). Returns 0 after a clean drain, or an RP_E*
 * code with a reason in err when start-up fails.
 */
int rp_server_run(const rp_config *cfg, char *err, size_t errlen);

/*
 * Loads everything serve would load (data directory, keys, certificates, static root) without
 * binding or serving: `rampart serve --check-config`. 0, or an RP_E* code with a reason in err.
 */
int rp_server_check(const rp_config *cfg, char *err, size_t errlen);

#endif
