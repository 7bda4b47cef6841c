/*
 * proc.c - the app process supervisor (proc.h).
 *
 * Threads: callers (loop threads, start-up) queue messages under a mutex and wake the
 * supervisor's loop with a uv_async; everything about a process (spawn, pipes, exit, timers,
 * log files) happens on the supervisor thread only. The lock also guards each entry's port and
 * running flag, the two things loop threads read.
 */
#include "sites/proc.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define NAME_MAX_ 64
#define PATH_CAP  4096

typedef struct entry entry;
struct entry {
    rp_procs *p;
    char name[NAME_MAX_ + 1];
    char command[RP_PROC_COMMAND_MAX + 1];
    char dir[PATH_CAP], log_dir[PATH_CAP], host[300];
    int port;    /* guarded by p->mu */
    int running; /* guarded by p->mu */
    int wanted;  /* supervisor: keep it running */
    int alive;   /* supervisor: a process exists (handle open) */
    int restart; /* supervisor: start again as soon as it has exited */
    unsigned fails;
    uint64_t started_ms;
    uv_process_t proc;
    uv_pipe_t out, err;
    int open_handles;
    uv_timer_t timer;
    int timer_init;
    int log_fd;
    uint64_t log_size; /* bytes in the open log, for rotation */
    int exited;        /* reaped: never signal its pid again */
    entry *next;
};

/* A port handed out before the supervisor has made the app's entry (requests can already wait
 * on it). */
typedef struct reserved {
    char name[NAME_MAX_ + 1];
    int port;
    struct reserved *next;
} reserved;

typedef struct msg {
    int stop;
    char name[NAME_MAX_ + 1];
    char command[RP_PROC_COMMAND_MAX + 1];
    char dir[PATH_CAP], log_dir[PATH_CAP], host[300];
    struct msg *next;
} msg;

struct rp_procs {
    uv_loop_t loop;
    uv_async_t wake;
    uv_thread_t thread;
    uv_mutex_t mu;
    msg *queue, *tail;
    int closing;
    entry *entries;     /* list owned by the thread; port/running read under mu */
    reserved *reserved; /* under mu */
    char bwrap[PATH_CAP];
    int started;
    uv_timer_t kill_timer; /* closing: SIGKILL what SIGTERM did not end */
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

    if (fd < 0)
        return 0;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---------------------------------------------------------------- the log */

static void log_open(entry *e)
{
    char path[PATH_CAP + 16];
    struct stat st;

    if (e->log_fd >= 0)
        return;
    (void)mkdir(e->log_dir, 0700);
    snprintf(path, sizeof(path), "%s/app.log", e->log_dir);
    e->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    e->log_size = e->log_fd >= 0 && fstat(e->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (e->log_fd >= 0 && e->log_size > RP_PROC_LOG_MAX) {
        char old[PATH_CAP + 16];
        snprintf(old, sizeof(old), "%s/app.log.1", e->log_dir);
        close(e->log_fd);
        (void)rename(path, old);
        e->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        e->log_size = 0;
    }
}

/* Appends to the app's log, rotating it once it passes RP_PROC_LOG_MAX. */
static void log_write(entry *e, const char *data, size_t n)
{
    if (e->log_fd >= 0 && e->log_size + n > RP_PROC_LOG_MAX) {
        close(e->log_fd);
        e->log_fd = -1; /* log_open rotates */
    }
    log_open(e);
    if (e->log_fd >= 0 && rp_file_write_all(e->log_fd, data, n) == 0)
        e->log_size += n;
}

/* One line of rampart's own about the process, in the app's log. */
static void log_note(entry *e, const char *what)
{
    char line[512], stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    int n;

    gmtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(line, sizeof(line), "%s [rampart] %s\n", stamp, what);
    if (n > 0)
        log_write(e, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static __thread char chunk[16384];

    (void)h;
    (void)hint;
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    entry *e = s->data;

    if (n <= 0)
        return; /* EOF or error: the exit callback closes the pipe */
    log_write(e, buf->base, (size_t)n);
}

/* ---------------------------------------------------------------- processes */

static void spawn(entry *e);

static void on_closed(uv_handle_t *h)
{
    entry *e = h->data;

    if (--e->open_handles > 0)
        return;
    e->alive = 0;
    if (e->restart) {
        e->restart = 0;
        spawn(e);
    }
}

static void on_timer(uv_timer_t *t)
{
    entry *e = t->data;

    if (e->wanted && !e->alive)
        spawn(e);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    entry *e = proc->data;
    char what[128];
    uint64_t ran = now_ms() - e->started_ms;

    snprintf(what, sizeof(what), "process exited (status %lld, signal %d) after %llu ms",
             (long long)status, sig, (unsigned long long)ran);
    log_note(e, what);
    uv_mutex_lock(&e->p->mu);
    e->running = 0;
    uv_mutex_unlock(&e->p->mu);
    e->exited = 1;
    uv_close((uv_handle_t *)&e->proc, on_closed);
    uv_close((uv_handle_t *)&e->out, on_closed);
    uv_close((uv_handle_t *)&e->err, on_closed);
    if (e->wanted && !e->restart && !e->p->closing) {
        uint64_t delay;
        e->fails = ran > 30000 ? 1 : e->fails + 1;
        delay = 250u << (e->fails < 8 ? e->fails : 8);
        if (delay > RP_PROC_BACKOFF_MAX)
            delay = RP_PROC_BACKOFF_MAX;
        snprintf(what, sizeof(what), "restarting in %llu ms", (unsigned long long)delay);
        log_note(e, what);
        uv_timer_start(&e->timer, on_timer, delay, 0);
    }
}

static void spawn(entry *e)
{
    char port[16], site[NAME_MAX_ + 32], hostenv[330];
    const char *args[96];
    uv_stdio_container_t stdio[3];
    uv_process_options_t o;
    int n = 0, rc, p;

    if (!e->wanted || e->alive || e->p->closing)
        return;
    /* The same port across restarts: requests that wait for the app keep knocking on it. */
    uv_mutex_lock(&e->p->mu);
    p = e->port;
    for (reserved **r = &e->p->reserved; p == 0 && *r != NULL; r = &(*r)->next) {
        if (strcmp((*r)->name, e->name) == 0) {
            reserved *x = *r;
            p = x->port;
            *r = x->next;
            rp_free(x);
            break;
        }
    }
    uv_mutex_unlock(&e->p->mu);
    if (p == 0)
        p = free_port();
    if (p == 0) {
        log_note(e, "no free port on loopback; retrying");
        uv_timer_start(&e->timer, on_timer, 1000, 0);
        return;
    }
    snprintf(port, sizeof(port), "%d", p);
    snprintf(site, sizeof(site), "%s", e->name);
    snprintf(hostenv, sizeof(hostenv), "%s", e->host);
#define A(x) args[n++] = (x)
    A(e->p->bwrap);
    A("--die-with-parent");
    A("--new-session");
    A("--unshare-pid");
    A("--unshare-ipc");
    A("--unshare-uts");
    A("--unshare-cgroup-try");
    A("--cap-drop");
    A("ALL");
    A("--clearenv");
    A("--ro-bind");
    A("/usr");
    A("/usr");
    A("--symlink");
    A("usr/bin");
    A("/bin");
    A("--symlink");
    A("usr/sbin");
    A("/sbin");
    A("--symlink");
    A("usr/lib");
    A("/lib");
    A("--symlink");
    A("usr/lib64");
    A("/lib64");
    A("--ro-bind-try");
    A("/etc/ssl");
    A("/etc/ssl");
    A("--ro-bind-try");
    A("/etc/ca-certificates");
    A("/etc/ca-certificates");
    A("--ro-bind-try");
    A("/etc/hosts");
    A("/etc/hosts");
    A("--ro-bind-try");
    A("/etc/resolv.conf");
    A("/etc/resolv.conf");
    /* Account names (no hashes: those are in /etc/shadow, which stays out). */
    A("--ro-bind-try");
    A("/etc/passwd");
    A("/etc/passwd");
    A("--ro-bind-try");
    A("/etc/group");
    A("/etc/group");
    A("--ro-bind-try");
    A("/etc/nsswitch.conf");
    A("/etc/nsswitch.conf");
    A("--ro-bind");
    A(e->dir);
    A("/home/site/wwwroot");
    A("--tmpfs");
    A("/tmp");
    A("--proc");
    A("/proc");
    A("--dev");
    A("/dev");
    A("--chdir");
    A("/home/site/wwwroot");
    A("--setenv");
    A("PORT");
    A(port);
    A("--setenv");
    A("HOME");
    A("/tmp");
    A("--setenv");
    A("PATH");
    A("/usr/local/bin:/usr/bin:/bin");
    A("--setenv");
    A("WEBSITE_SITE_NAME");
    A(site);
    A("--setenv");
    A("WEBSITE_HOSTNAME");
    A(hostenv);
    A("--");
    A("/bin/sh");
    A("-c");
    A(e->command);
    args[n] = NULL;
#undef A
    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    uv_pipe_init(&e->p->loop, &e->out, 0);
    uv_pipe_init(&e->p->loop, &e->err, 0);
    e->out.data = e->err.data = e->proc.data = e;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&e->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&e->err;
    o.file = e->p->bwrap;
    o.args = (char **)args;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.exit_cb = on_exit_cb;
    /* The port is the app's from now on, whether this start works or not: requests wait on it
     * (and get 502 if nothing ever answers) rather than finding no port at all. */
    uv_mutex_lock(&e->p->mu);
    e->port = p;
    uv_mutex_unlock(&e->p->mu);
    rc = uv_spawn(&e->p->loop, &e->proc, &o);
    e->open_handles = 3;
    e->alive = 1;
    e->exited = rc != 0;
    if (rc != 0) {
        char what[200];
        snprintf(what, sizeof(what), "cannot start the sandbox (%.100s): %s", e->p->bwrap,
                 uv_strerror(rc));
        log_note(e, what);
        uv_close((uv_handle_t *)&e->proc, on_closed);
        uv_close((uv_handle_t *)&e->out, on_closed);
        uv_close((uv_handle_t *)&e->err, on_closed);
        e->fails++;
        uv_timer_start(&e->timer, on_timer, RP_PROC_BACKOFF_MAX, 0);
        return;
    }
    uv_read_start((uv_stream_t *)&e->out, on_alloc, on_output);
    uv_read_start((uv_stream_t *)&e->err, on_alloc, on_output);
    e->started_ms = now_ms();
    uv_mutex_lock(&e->p->mu);
    e->running = 1;
    uv_mutex_unlock(&e->p->mu);
    {
        char what[PATH_CAP + 64];
        snprintf(what, sizeof(what), "started pid %d on port %d: %s", e->proc.pid, p, e->command);
        log_note(e, what);
    }
}

static void terminate(entry *e)
{
    if (e->alive && !e->exited)
        uv_process_kill(&e->proc, SIGTERM);
}

static entry *find(rp_procs *p, const char *name)
{
    for (entry *e = p->entries; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void apply(rp_procs *p, msg *m)
{
    entry *e = find(p, m->name);

    if (m->stop) {
        if (e != NULL) {
            e->wanted = 0;
            e->restart = 0;
            uv_timer_stop(&e->timer);
            terminate(e);
            uv_mutex_lock(&p->mu);
            e->port = 0;
            uv_mutex_unlock(&p->mu);
            /* A new app of the same name logs to a new file (this one may be gone with it). */
            if (e->log_fd >= 0)
                close(e->log_fd);
            e->log_fd = -1;
        }
        return;
    }
    if (e == NULL) {
        e = rp_calloc(1, sizeof(*e));
        if (e == NULL)
            return;
        e->p = p;
        e->log_fd = -1;
        rp_strlcpy(e->name, m->name, sizeof(e->name));
        uv_timer_init(&p->loop, &e->timer);
        e->timer.data = e;
        e->timer_init = 1;
        uv_mutex_lock(&p->mu);
        e->next = p->entries;
        p->entries = e;
        uv_mutex_unlock(&p->mu);
    }
    rp_strlcpy(e->command, m->command, sizeof(e->command));
    rp_strlcpy(e->dir, m->dir, sizeof(e->dir));
    rp_strlcpy(e->host, m->host, sizeof(e->host));
    if (strcmp(e->log_dir, m->log_dir) != 0) {
        if (e->log_fd >= 0)
            close(e->log_fd);
        e->log_fd = -1;
        rp_strlcpy(e->log_dir, m->log_dir, sizeof(e->log_dir));
    }
    e->wanted = 1;
    e->fails = 0;
    uv_timer_stop(&e->timer);
    if (e->alive) {
        e->restart = 1; /* on_closed starts the new one */
        terminate(e);
    } else {
        spawn(e);
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    rp_procs *p = t->data;

    for (entry *e = p->entries; e != NULL; e = e->next)
        if (e->alive && !e->exited)
            uv_process_kill(&e->proc, SIGKILL);
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, NULL);
}

static void on_wake(uv_async_t *a)
{
    rp_procs *p = a->data;
    msg *m;
    int closing;

    uv_mutex_lock(&p->mu);
    m = p->queue;
    p->queue = p->tail = NULL;
    closing = p->closing;
    uv_mutex_unlock(&p->mu);
    while (m != NULL) {
        msg *next = m->next;
        apply(p, m);
        rp_free(m);
        m = next;
    }
    if (closing) {
        for (entry *e = p->entries; e != NULL; e = e->next) {
            e->wanted = 0;
            uv_timer_stop(&e->timer);
            uv_close((uv_handle_t *)&e->timer, NULL);
            e->timer_init = 0;
            terminate(e);
        }
        uv_close((uv_handle_t *)&p->wake, NULL);
        uv_timer_init(&p->loop, &p->kill_timer);
        p->kill_timer.data = p;
        uv_timer_start(&p->kill_timer, on_kill_timer, 3000, 0);
        uv_unref((uv_handle_t *)&p->kill_timer);
    }
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void thread_main(void *arg)
{
    rp_procs *p = arg;

    uv_run(&p->loop, UV_RUN_DEFAULT);
    /* Every process has exited; what is left (the unreferenced kill timer) is closed here, so
     * the loop can be closed. */
    uv_walk(&p->loop, close_any, NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
}

static int post(rp_procs *p, msg *m)
{
    uv_mutex_lock(&p->mu);
    if (p->closing) {
        uv_mutex_unlock(&p->mu);
        rp_free(m);
        return RP_ECLOSED;
    }
    if (p->tail != NULL)
        p->tail->next = m;
    else
        p->queue = m;
    p->tail = m;
    uv_mutex_unlock(&p->mu);
    uv_async_send(&p->wake);
    return 0;
}

int rp_procs_set(rp_procs *p, const char *name, const char *command, const char *dir,
                 const char *log_dir, const char *host)
{
    msg *m;

    if (p == NULL || name == NULL || command == NULL || dir == NULL || log_dir == NULL ||
        strlen(name) > NAME_MAX_ || strlen(command) > RP_PROC_COMMAND_MAX || command[0] == '\0' ||
        dir[0] != '/' || log_dir[0] != '/' || strlen(dir) >= PATH_CAP ||
        strlen(log_dir) >= PATH_CAP || strlen(host) >= 300)
        return RP_EINVAL;
    m = rp_calloc(1, sizeof(*m));
    if (m == NULL)
        return RP_ENOMEM;
    rp_strlcpy(m->name, name, sizeof(m->name));
    rp_strlcpy(m->command, command, sizeof(m->command));
    rp_strlcpy(m->dir, dir, sizeof(m->dir));
    rp_strlcpy(m->log_dir, log_dir, sizeof(m->log_dir));
    rp_strlcpy(m->host, host, sizeof(m->host));
    /* The port is known from now on: a request that comes before the process waits for it. */
    uv_mutex_lock(&p->mu);
    {
        int known = 0;
        for (entry *e = p->entries; e != NULL && !known; e = e->next)
            known = strcmp(e->name, name) == 0 && e->port != 0;
        for (reserved *r = p->reserved; r != NULL && !known; r = r->next)
            known = strcmp(r->name, name) == 0;
        if (!known) {
            reserved *r = rp_calloc(1, sizeof(*r));
            if (r != NULL && (r->port = free_port()) != 0) {
                rp_strlcpy(r->name, name, sizeof(r->name));
                r->next = p->reserved;
                p->reserved = r;
            } else {
                rp_free(r);
            }
        }
    }
    uv_mutex_unlock(&p->mu);
    return post(p, m);
}

void rp_procs_stop(rp_procs *p, const char *name)
{
    msg *m = p != NULL ? rp_calloc(1, sizeof(*m)) : NULL;

    if (m == NULL)
        return;
    m->stop = 1;
    rp_strlcpy(m->name, name, sizeof(m->name));
    (void)post(p, m);
}

int rp_procs_port(rp_procs *p, const char *name, int *running)
{
    int port = 0;

    *running = 0;
    if (p == NULL)
        return 0;
    uv_mutex_lock(&p->mu);
    for (entry *e = p->entries; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            port = e->port;
            *running = e->running;
            break;
        }
    }
    for (reserved *r = p->reserved; port == 0 && r != NULL; r = r->next)
        if (strcmp(r->name, name) == 0)
            port = r->port;
    uv_mutex_unlock(&p->mu);
    return port;
}

int rp_procs_open(const char *bwrap, rp_procs **out)
{
    rp_procs *p = rp_calloc(1, sizeof(*p));

    if (p == NULL)
        return RP_ENOMEM;
    rp_strlcpy(p->bwrap, bwrap ? bwrap : "/usr/bin/bwrap", sizeof(p->bwrap));
    if (uv_mutex_init(&p->mu) != 0) {
        rp_free(p);
        return RP_ENOMEM;
    }
    if (uv_loop_init(&p->loop) != 0 || uv_async_init(&p->loop, &p->wake, on_wake) != 0) {
        uv_mutex_destroy(&p->mu);
        rp_free(p);
        return RP_EIO;
    }
    p->wake.data = p;
    if (uv_thread_create(&p->thread, thread_main, p) != 0) {
        uv_close((uv_handle_t *)&p->wake, NULL);
        uv_run(&p->loop, UV_RUN_DEFAULT);
        uv_loop_close(&p->loop);
        uv_mutex_destroy(&p->mu);
        rp_free(p);
        return RP_EIO;
    }
    p->started = 1;
    *out = p;
    return 0;
}

void rp_procs_close(rp_procs *p)
{
    if (p == NULL)
        return;
    uv_mutex_lock(&p->mu);
    p->closing = 1;
    uv_mutex_unlock(&p->mu);
    uv_async_send(&p->wake);
    uv_thread_join(&p->thread);
    (void)uv_loop_close(&p->loop);
    while (p->entries != NULL) {
        entry *e = p->entries;
        p->entries = e->next;
        if (e->log_fd >= 0)
            close(e->log_fd);
        rp_free(e);
    }
    while (p->queue != NULL) {
        msg *m = p->queue;
        p->queue = m->next;
        rp_free(m);
    }
    while (p->reserved != NULL) {
        reserved *r = p->reserved;
        p->reserved = r->next;
        rp_free(r);
    }
    uv_mutex_destroy(&p->mu);
    rp_free(p);
}
