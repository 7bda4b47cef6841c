/*
 * proc.h - the supervisor of app processes (docs/sites.md "App processes"): one thread with
 * its own libuv loop starts each app's command in a bubblewrap sandbox, gives it a PORT on
 * loopback, keeps its stdout/stderr as the app's log, and restarts it with back-off when it
 * exits. Loop threads ask it which port an app answers on (a lock, a lookup).
 *
 * The sandbox (bwrap): new pid, ipc, uts and cgroup namespaces, all capabilities dropped, no
 * new privileges, a new session, dies with rampart; the file system is /usr (and the few /etc
 * files a runtime needs) read-only, the release read-only at /home/site/wwwroot, a private
 * /tmp, its own /proc and a minimal /dev - nothing of the data directory. The environment is
 * only PORT, HOME, PATH, WEBSITE_SITE_NAME and WEBSITE_HOSTNAME. Not yet: a uid per app,
 * resource limits, a network namespace (the app listens on the host's loopback).
 */
#ifndef RP_SITES_PROC_H
#define RP_SITES_PROC_H

#include <stddef.h>

#define RP_PROC_COMMAND_MAX 1024
#define RP_PROC_LOG_MAX     (10u << 20) /* app.log rotates to app.log.1 past this */
#define RP_PROC_BACKOFF_MAX 30000       /* ms between restarts of a crashing app, at most */

typedef struct rp_procs rp_procs;

/* Starts the supervisor thread; bwrap is the sandbox binary (NULL: "bwrap" on PATH). */
int rp_procs_open(const char *bwrap, rp_procs **out);
/* Stops every process (SIGTERM, SIGKILL after 3 s) and the thread. Accepts NULL. */
void rp_procs_close(rp_procs *p);

/*
 * Runs command (by /bin/sh -c) for app name from the release directory dir (absolute), with
 * its log in log_dir (created 0700), host = the app's host name. An app that runs already is
 * stopped and started again with these (a deploy, a rollback, a changed command). 0,
 * RP_EINVAL (bad name, command or path), RP_ENOMEM.
 */
int rp_procs_set(rp_procs *p, const char *name, const char *command, const char *dir,
                 const char *log_dir, const char *host);
/* Stops app name's process for good (the app was deleted or has no command any more). */
void rp_procs_stop(rp_procs *p, const char *name);
/*
 * The loopback port app name's current process was given, and whether it is running: 0 when
 * the app has no process. *running is 0 while it waits to be restarted.
 */
int rp_procs_port(rp_procs *p, const char *name, int *running);

#endif
