/*
 * proc.c - the app process supervisor (proc.h).
 *
 * Threads: callers (loop threads, start-up) queue messages under a mutex and wake the
 * supervisor's loop with a uv_async; everything about a process (spawn, pipes, exit, timers,
 * readiness and health probes, log files) happens on the supervisor thread only. The lock also
 * guards what loop threads and the API read: each entry's target (port, socket path), whether
 * it is ready, and its rp_proc_state.
 *
 * A start asks the privileged helper (sandbox/helper.h) to spawn rampart's own binary as the
 * sandbox launcher (sandbox/sandbox.h) with an empty environment, the command and variables in
 * a sealed memfd and the app's log pipes; the launcher executes bubblewrap in place, so the
 * helper's child is bubblewrap and its exit, which the helper reports on its exit channel
 * (polled here), is the app's. Signals, cgroup leaves and run directories go through the
 * helper too: the supervisor runs as the unprivileged service user.
 *
 * Instances: an app (entry) has at most one serving process, at most one starting one
 * (pending) and any number being stopped (retiring), each an `inst` in a slot 0-9 of its own.
 * The slot names what two live processes of one app must not share: the cgroup leaf (the
 * launcher ends whatever is left in the leaf it enters, so a shared leaf would kill the old
 * process; the price is twice the app's limits for a few seconds during a replacement) and,
 * for the isolated tier, the run directory bound at /home/site/run (RUN_DIR for slot 0,
 * RUN_DIR.N otherwise: the launcher removes a stale app.sock in the directory it prepares,
 * which must not be the serving process's). A process started while none serves takes the
 * app's current address (its port or socket is kept across restarts, so waiting requests keep
 * knocking on it); one started beside a serving process gets a new one. Leaves and run
 * directories of ended instances are removed once no live instance holds their slot.
 *
 * Probes (readiness and health) run on the supervisor's loop: one connection per probe, a
 * GET with Connection: close when there is a health check path, and only the status line of
 * the answer read (at most PROBE_READ_MAX bytes), all bounded by RP_PROC_HEALTH_TIMEOUT_MS.
 */
#include "sites/proc.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "sandbox/helper.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

_Static_assert(RP_PROC_LAYER_UID == RP_SANDBOX_UID && RP_PROC_LAYER_MEMORY == RP_SANDBOX_MEMORY &&
                   RP_PROC_LAYER_PIDS == RP_SANDBOX_PIDS && RP_PROC_LAYER_CPU == RP_SANDBOX_CPU &&
                   RP_PROC_LAYER_SECCOMP == RP_SANDBOX_SECCOMP &&
                   RP_PROC_LAYER_BWRAP == RP_SANDBOX_BWRAP,
               "proc.h repeats sandbox.h's layer bits");
_Static_assert(RP_PROC_ENV_MAX + RP_PROC_COMMAND_MAX + 1024 <= RP_SANDBOX_BLOB_MAX,
               "the variables and the command fit the launcher's blob");

#define NAME_MAX_      200 /* an app, or "APP~FUNCTION" for a function's own worker */
#define SITE_MAX_      64  /* an app's name (the helper's limit) */
#define PATH_CAP       4096
#define HOST_CAP       300
#define SLOTS          10  /* instances of one app alive at once, at most (one digit) */
#define READY_POLL_MS  250 /* between readiness probes of a starting process, at most ... */
#define READY_FIRST_MS 5   /* ... and the first, the interval doubling from there */
#define PROBE_READ_MAX 512 /* bytes of an answer a probe reads: the status line is enough */
#define SLOT_SUFFIX    ".9"
#define SOCK_NAME      "/app.sock"

/* Health check failures that restart a process: WEBSITE_HEALTHCHECK_MAXPINGFAILURES's range. */
#define FAILS_MIN 2
#define FAILS_MAX 10

/* What one start needs, owned (msg and entry both hold one). */
typedef struct pspec {
    char name[NAME_MAX_ + 1];
    char site[SITE_MAX_ + 1]; /* the app it belongs to: WEBSITE_SITE_NAME, the helper's name */
    char command[RP_PROC_COMMAND_MAX + 1];
    char dir[PATH_CAP], log_dir[PATH_CAP], run_dir[PATH_CAP], host[HOST_CAP];
    char health[RP_PROC_HEALTH_PATH_MAX + 1]; /* "" for none */
    uint32_t uid, memory_mb, pids, cpu_percent;
    int tier;
    char *env; /* nenv "K=V\0" strings, env_len bytes; wiped when freed */
    size_t env_len, nenv;
} pspec;

typedef struct entry entry;
typedef struct inst inst;

enum { I_STARTING, I_SERVING, I_RETIRING };
enum { P_IDLE, P_BUSY, P_CLOSING };

/* One process of an app, from its spawn until its last handle has closed. */
struct inst {
    entry *e;
    int slot;
    int tier;
    int port;                          /* shared tier */
    char sock[RP_PROC_SOCKET_MAX + 1]; /* isolated tier: the socket's host path */
    char run[PATH_CAP];                /* isolated tier: the slot's run directory */
    int state;                         /* I_* */
    int not_ready; /* being stopped for not becoming ready in time: its exit is a failure */
    int spawned;   /* the helper started it: pid is its */
    int exited;    /* reaped: never signal its pid again */
    int pid;
    int handles; /* open handles; the instance is freed when the last one has closed */
    uint64_t started_ms;
    uint64_t poll_ms;             /* the next readiness probe's delay (ready_poll) */
    char why[RP_PROC_REASON_MAX]; /* the last probe's failure */
    uv_pipe_t out, err;
    uv_timer_t timer;  /* readiness polls, health checks, drain, SIGKILL */
    uv_timer_t ptimer; /* the running probe's deadline */
    /* The probe: one connection at a time. */
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } ph;
    int pstate; /* P_* */
    uv_connect_t pconn;
    uv_write_t pwrite;
    char preq[RP_PROC_HEALTH_PATH_MAX + HOST_CAP + 128];
    char pbuf[PROBE_READ_MAX];
    size_t plen;
    inst *next;
};

struct entry {
    rp_procs *p;
    pspec s;
    uint64_t ready_ms;  /* WEBSITES_CONTAINER_START_TIME_LIMIT, or RP_PROC_READY_MS */
    unsigned max_fails; /* WEBSITE_HEALTHCHECK_MAXPINGFAILURES, or RP_PROC_HEALTH_FAILS */
    int port;           /* guarded by p->mu; 0 for an isolated app */
    char unix_path[RP_PROC_SOCKET_MAX + 1]; /* guarded by p->mu; "" for a shared app */
    rp_proc_state st;                       /* guarded by p->mu */
    int wanted;                             /* supervisor: keep it running */
    int tslot;                              /* supervisor: the slot of the target address */
    inst *insts;                            /* supervisor: every live instance */
    inst *serving, *pending;                /* supervisor: in insts, or NULL */
    inst *after;           /* supervisor: start once this one has gone (it holds the address) */
    int again;             /* supervisor: a newer start waits for the pending process's probe */
    unsigned fails;        /* failed starts in a row, for the back-off */
    unsigned health_fails; /* failed health checks of the serving process in a row */
    uv_timer_t timer;      /* back-off before a start */
    uv_timer_t reap;       /* removal of the cgroup leaves of ended instances */
    unsigned reap_mask;    /* slots whose leaf is to go */
    unsigned reap_tries;
    int timers_init;
    int log_fd;
    uint64_t log_size; /* bytes in the open log, for rotation */
    entry *next;
};

/* Where an app will answer, handed out before the supervisor has made its entry (requests can
 * already wait on it). */
typedef struct reserved {
    char name[NAME_MAX_ + 1];
    int port;
    char unix_path[RP_PROC_SOCKET_MAX + 1];
    struct reserved *next;
} reserved;

typedef struct msg {
    int stop;
    pspec s;
    struct msg *next;
} msg;

struct rp_procs {
    uv_loop_t loop;
    uv_async_t wake;
    uv_thread_t thread;
    uv_mutex_t mu;
    msg *queue, *tail;
    int closing;
    entry *entries;     /* list owned by the thread; the guarded fields read under mu */
    reserved *reserved; /* under mu */
    rp_helper *helper;  /* borrowed: starts, signals and cleans up for us */
    uv_poll_t exits;    /* the helper's exit channel */
    int exits_open;
    unsigned layers;  /* what the machine offers (the helper's probe; constant) */
    unsigned require; /* layers a start must have */
    char missing[512];
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

static void env_free(pspec *s)
{
    if (s->env != NULL) {
        OPENSSL_cleanse(s->env, s->env_len);
        rp_free(s->env);
    }
    s->env = NULL;
    s->env_len = s->nenv = 0;
}

/* The built-in variables' names: an extra variable of the same name is dropped. */
static const char *const builtin[] = {"PORT", "HOME", "PATH", "WEBSITE_SITE_NAME",
                                      "WEBSITE_HOSTNAME"};

static int is_builtin(const char *kv)
{
    size_t k = strcspn(kv, "=");

    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (strlen(builtin[i]) == k && memcmp(builtin[i], kv, k) == 0)
            return 1;
    return 0;
}

/* The value of the extra variable name in s, or NULL. */
static const char *env_value(const pspec *s, const char *name)
{
    size_t k = strlen(name);

    for (size_t i = 0, off = 0; i < s->nenv && off < s->env_len; i++) {
        const char *kv = s->env + off;
        off += strlen(kv) + 1;
        if (strncmp(kv, name, k) == 0 && kv[k] == '=')
            return kv + k + 1;
    }
    return NULL;
}

/*
 * A supervisor setting from the app's settings: the decimal value of variable name in lo..hi,
 * else deflt (*bad set when a value was there but not valid, so the log can say so).
 */
static uint64_t env_number(const pspec *s, const char *name, uint64_t lo, uint64_t hi,
                           uint64_t deflt, int *bad)
{
    const char *v = env_value(s, name);
    uint64_t n;

    if (v == NULL)
        return deflt;
    if (rp_parse_u64(v, strlen(v), hi, &n) != 0 || n < lo) {
        *bad = 1;
        return deflt;
    }
    return n;
}

/* A health check path as rp_proc_spec wants it: 1 or 0. */
static int health_path_ok(const char *path)
{
    size_t n = strlen(path);

    if (n == 0 || n > RP_PROC_HEALTH_PATH_MAX || path[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f || path[i] == '#')
            return 0;
    return 1;
}

/*
 * The status of an HTTP/1.x answer from its first n bytes: 1 and *status, 0 when more bytes
 * are needed, -1 when it is not an HTTP/1.x status line. Only the line's start is read
 * ("HTTP/1.1 200 OK"): the reason phrase and what follows do not matter to a probe.
 */
static int status_line(const char *b, size_t n, int *status)
{
    static const char pat[] = "HTTP/1.# ###_"; /* '#' a digit, '_' SP, CR or LF */

    for (size_t i = 0; i < sizeof(pat) - 1; i++) {
        char c;
        int ok;
        if (i >= n)
            return 0;
        c = b[i];
        if (pat[i] == '#')
            ok = c >= '0' && c <= '9';
        else if (pat[i] == '_')
            ok = c == ' ' || c == '\r' || c == '\n';
        else
            ok = c == pat[i];
        if (!ok)
            return -1;
    }
    *status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    return 1;
}

/* ---------------------------------------------------------------- the log */

static void log_open(entry *e)
{
    char path[PATH_CAP + 16];
    struct stat st;

    if (e->log_fd >= 0)
        return;
    (void)mkdir(e->s.log_dir, 0700);
    snprintf(path, sizeof(path), "%s/app.log", e->s.log_dir);
    e->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    e->log_size = e->log_fd >= 0 && fstat(e->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (e->log_fd >= 0 && e->log_size > RP_PROC_LOG_MAX) {
        char old[PATH_CAP + 16];
        snprintf(old, sizeof(old), "%s/app.log.1", e->s.log_dir);
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
    char line[1536], stamp[32];
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
    inst *i = s->data;

    if (n <= 0)
        return; /* EOF or error: the exit callback closes the pipe */
    log_write(i->e, buf->base, (size_t)n);
}

/* ---------------------------------------------------------------- state for the API */

/* Publishes what the supervisor knows (under the lock; the supervisor's fields are its own). */
static void state_sync(entry *e)
{
    uv_mutex_lock(&e->p->mu);
    e->st.running = e->serving != NULL || e->pending != NULL;
    e->st.ready = e->serving != NULL;
    e->st.healthy = e->serving != NULL && e->health_fails == 0;
    uv_mutex_unlock(&e->p->mu);
}

/* A failure worth showing. */
static void state_fail(entry *e, const char *why)
{
    uv_mutex_lock(&e->p->mu);
    rp_strlcpy(e->st.last_failure, why, sizeof(e->st.last_failure));
    uv_mutex_unlock(&e->p->mu);
}

static void state_restarted(entry *e)
{
    uv_mutex_lock(&e->p->mu);
    e->st.restarts++;
    uv_mutex_unlock(&e->p->mu);
}

/* Requests go to i's address from now on. */
static void publish(entry *e, const inst *i)
{
    uv_mutex_lock(&e->p->mu);
    e->port = i->tier == RP_PROC_SHARED ? i->port : 0;
    rp_strlcpy(e->unix_path, i->tier == RP_PROC_ISOLATED ? i->sock : "", sizeof(e->unix_path));
    uv_mutex_unlock(&e->p->mu);
    e->tslot = i->slot;
}

/* ---------------------------------------------------------------- slots */

/* The run directory of slot k: RUN_DIR, or RUN_DIR.k. 0 or RP_ETOOBIG. */
static int slot_run(const entry *e, int k, char *out, size_t cap)
{
    int n = k == 0 ? snprintf(out, cap, "%s", e->s.run_dir)
                   : snprintf(out, cap, "%s.%d", e->s.run_dir, k);

    return n > 0 && (size_t)n < cap ? 0 : RP_ETOOBIG;
}

static int slot_busy(const entry *e, int k)
{
    for (const inst *i = e->insts; i != NULL; i = i->next)
        if (i->slot == k)
            return 1;
    return 0;
}

static void on_reap_timer(uv_timer_t *t)
{
    entry *e = t->data;
    char run[PATH_CAP];

    for (int k = 0; k < SLOTS; k++) {
        if (!(e->reap_mask & (1u << k)))
            continue;
        /* A new instance in the slot owns the leaf again: its end removes it. */
        if (slot_busy(e, k) || !(e->p->layers & RP_SANDBOX_UID) ||
            slot_run(e, k, run, sizeof(run)) != 0 ||
            rp_helper_uncgroup(e->p->helper, e->s.site, run) != RP_EAGAIN)
            e->reap_mask &= ~(1u << k);
    }
    /* Tasks may take a moment to go after bubblewrap has exited: a few seconds of tries. */
    if (e->reap_mask != 0 && ++e->reap_tries < 50)
        uv_timer_start(&e->reap, on_reap_timer, 100, 0);
    else
        e->reap_mask = 0;
}

/* Removes the leaves of slots (bits) that no live instance holds, now and for a few seconds. */
static void reap(entry *e, unsigned slots)
{
    if (e->p->closing || !e->timers_init)
        return; /* rp_procs_close removes every slot's leaf */
    e->reap_mask |= slots;
    e->reap_tries = 0;
    on_reap_timer(&e->reap);
}

/*
 * The run directory of an ended instance in slot k > 0 (isolated tier) goes with all in it.
 * The directory is the app's uid's: the helper removes it, never following a link.
 */
static void run_remove(const entry *e, int k)
{
    char run[PATH_CAP];

    if (k == 0 || e->s.tier != RP_PROC_ISOLATED || slot_run(e, k, run, sizeof(run)) != 0)
        return;
    (void)rp_helper_rmrun(e->p->helper, run);
}

/* ---------------------------------------------------------------- instances */

static void spawn(entry *e, int restart);
static void probe_result(inst *i, int ok, const char *why);
static void on_inst_timer(uv_timer_t *t);
static void replace_pending(entry *e);

static void inst_free(inst *i)
{
    entry *e = i->e;

    for (inst **pp = &e->insts; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == i) {
            *pp = i->next;
            break;
        }
    }
    if (!e->p->closing && !slot_busy(e, i->slot)) {
        reap(e, 1u << i->slot);
        run_remove(e, i->slot);
    }
    if (e->after == i) {
        e->after = NULL;
        spawn(e, 0);
    }
    rp_free(i);
}

static void on_inst_closed(uv_handle_t *h)
{
    inst *i = h->data;

    if (--i->handles == 0)
        inst_free(i);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_inst_closed);
}

/* ---------------------------------------------------------------- probes */

static void on_probe_closed(uv_handle_t *h)
{
    inst *i = h->data;

    i->pstate = P_IDLE;
    on_inst_closed(h);
}

/* Ends the running probe without a result (the instance is being stopped). */
static void probe_cancel(inst *i)
{
    if (i->pstate != P_BUSY)
        return;
    i->pstate = P_CLOSING;
    uv_timer_stop(&i->ptimer);
    uv_close(&i->ph.h, on_probe_closed);
}

static void probe_finish(inst *i, int ok, const char *why)
{
    if (i->pstate != P_BUSY)
        return;
    probe_cancel(i);
    probe_result(i, ok, why);
}

static void on_probe_timeout(uv_timer_t *t)
{
    char why[64];

    snprintf(why, sizeof(why), "no answer within %d s", RP_PROC_HEALTH_TIMEOUT_MS / 1000);
    probe_finish(t->data, 0, why);
}

static void on_probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    inst *i = h->data;

    (void)hint;
    buf->base = i->pbuf + i->plen;
    buf->len = sizeof(i->pbuf) - i->plen;
}

static void on_probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    inst *i = s->data;
    char why[64];
    int status = 0, r;

    (void)buf;
    if (i->pstate != P_BUSY || n == 0)
        return;
    if (n < 0) {
        probe_finish(i, 0,
                     n == UV_EOF ? "the connection closed without an answer" : uv_strerror((int)n));
        return;
    }
    i->plen += (size_t)n;
    r = status_line(i->pbuf, i->plen, &status);
    if (r == 0 && i->plen < sizeof(i->pbuf))
        return;
    if (r != 1) {
        probe_finish(i, 0, "the answer is not HTTP/1.x");
        return;
    }
    snprintf(why, sizeof(why), "status %d", status);
    probe_finish(i, status >= 200 && status < 400, why);
}

static void on_probe_write(uv_write_t *w, int status)
{
    inst *i = w->data;

    if (status < 0)
        probe_finish(i, 0, uv_strerror(status));
}

static void on_probe_connect(uv_connect_t *c, int status)
{
    inst *i = c->data;
    uv_buf_t b;
    int rc;

    if (i->pstate != P_BUSY)
        return; /* cancelled */
    if (status < 0) {
        probe_finish(i, 0,
                     status == UV_ECONNREFUSED || status == UV_ENOENT
                         ? "nothing accepts connections on PORT"
                         : uv_strerror(status));
        return;
    }
    if (i->tier == RP_PROC_ISOLATED) {
        uv_os_fd_t fd;
        if (uv_fileno(&i->ph.h, &fd) != 0 || rp_file_socket_peer_ok(fd, i->sock) != 0) {
            probe_finish(i, 0, "the app's socket is not the app's");
            return;
        }
    }
    if (!i->e->s.health[0]) {
        probe_finish(i, 1, "");
        return;
    }
    b = uv_buf_init(i->preq, (unsigned)strlen(i->preq));
    i->pwrite.data = i;
    rc = uv_write(&i->pwrite, &i->ph.s, &b, 1, on_probe_write);
    if (rc == 0)
        rc = uv_read_start(&i->ph.s, on_probe_alloc, on_probe_read);
    if (rc != 0)
        probe_finish(i, 0, uv_strerror(rc));
}

/*
 * Asks i whether it answers: a connection, and with a health check path a GET of it (Azure's
 * user agent, the app's host name, nothing else). The result comes to probe_result, once.
 */
static void probe_start(inst *i)
{
    entry *e = i->e;
    int rc, n;

    if (i->pstate != P_IDLE) { /* the last one's connection is still closing */
        uv_timer_start(&i->timer, on_inst_timer, READY_POLL_MS, 0);
        return;
    }
    n = snprintf(i->preq, sizeof(i->preq),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ReadyForRequest/1.0 (HealthCheck)\r\n"
                 "Connection: close\r\n\r\n",
                 e->s.health, e->s.host);
    if (n < 0 || (size_t)n >= sizeof(i->preq)) {
        probe_result(i, 0, "the health check request is too long");
        return;
    }
    i->plen = 0;
    rc = i->tier == RP_PROC_ISOLATED ? uv_pipe_init(&e->p->loop, &i->ph.pipe, 0)
                                     : uv_tcp_init(&e->p->loop, &i->ph.tcp);
    if (rc != 0) {
        probe_result(i, 0, uv_strerror(rc));
        return;
    }
    i->ph.h.data = i;
    i->pconn.data = i;
    i->handles++;
    i->pstate = P_BUSY;
    uv_timer_start(&i->ptimer, on_probe_timeout, RP_PROC_HEALTH_TIMEOUT_MS, 0);
    if (i->tier == RP_PROC_ISOLATED) {
        /* Not through a symlink the app may have put in its own directory; whoever listens is
         * checked once connected. */
        char via[40];
        int fd = -1;
        if (rp_file_socket_ref(i->sock, &fd, via, sizeof(via)) == RP_EPERM) {
            probe_finish(i, 0, "the app's socket is not a socket");
            return;
        }
        uv_pipe_connect(&i->pconn, &i->ph.pipe, via, on_probe_connect);
        if (fd >= 0)
            close(fd);
    } else {
        struct sockaddr_in a;
        rc = uv_ip4_addr("127.0.0.1", i->port, &a);
        if (rc == 0)
            rc = uv_tcp_connect(&i->pconn, &i->ph.tcp, (const struct sockaddr *)&a,
                                on_probe_connect);
        if (rc != 0)
            probe_finish(i, 0, uv_strerror(rc));
    }
}

/* ---------------------------------------------------------------- processes */

/* The back-off after the failures so far (fails >= 1): 0.5 s doubling to RP_PROC_BACKOFF_MAX. */
static uint64_t backoff_ms(unsigned fails)
{
    uint64_t delay = 250u << (fails < 8 ? fails : 8);

    return delay > RP_PROC_BACKOFF_MAX ? RP_PROC_BACKOFF_MAX : delay;
}

static void on_timer(uv_timer_t *t)
{
    entry *e = t->data;

    spawn(e, 1);
}

static void on_kill(uv_timer_t *t)
{
    inst *i = t->data;
    char what[128];

    if (i->exited)
        return;
    snprintf(what, sizeof(what), "pid %d did not stop within %d s: killing it", i->pid,
             RP_PROC_GRACE_MS / 1000);
    log_note(i->e, what);
    (void)rp_helper_kill(i->e->p->helper, i->pid, SIGKILL);
}

/* SIGTERM now, SIGKILL after the grace period. */
static void terminate(inst *i)
{
    if (!i->spawned || i->exited)
        return;
    (void)rp_helper_kill(i->e->p->helper, i->pid, SIGTERM);
    uv_timer_start(&i->timer, on_kill, RP_PROC_GRACE_MS, 0);
}

static void on_drained(uv_timer_t *t)
{
    terminate(t->data);
}

/*
 * Stops i for good: no restart follows its exit. drain: it was serving, and requests that
 * already chose it get RP_PROC_DRAIN_MS to finish before the SIGTERM.
 */
static void retire(inst *i, int drain)
{
    entry *e = i->e;

    if (i->state == I_RETIRING)
        return;
    if (e->pending == i)
        e->pending = NULL;
    if (e->serving == i)
        e->serving = NULL;
    i->state = I_RETIRING;
    probe_cancel(i);
    uv_timer_stop(&i->timer);
    if (drain && !i->exited && !e->p->closing)
        uv_timer_start(&i->timer, on_drained, RP_PROC_DRAIN_MS, 0);
    else
        terminate(i);
}

/* Closes everything of an instance whose process has ended (or never started). */
static void teardown(inst *i)
{
    probe_cancel(i);
    close_handle((uv_handle_t *)&i->timer);
    close_handle((uv_handle_t *)&i->ptimer);
    close_handle((uv_handle_t *)&i->out);
    close_handle((uv_handle_t *)&i->err);
}

/*
 * A start that failed (the process exited, was not ready in time, or could not be spawned):
 * the reason is logged and shown, and the start is tried again after the back-off. A serving
 * process meanwhile keeps the requests.
 */
static void start_again(entry *e, const char *why, uint64_t delay)
{
    char what[RP_PROC_REASON_MAX + 128];

    state_fail(e, why);
    state_sync(e);
    if (!e->wanted || e->p->closing)
        return;
    if (e->serving != NULL)
        snprintf(what, sizeof(what),
                 "the new process did not take over (%s); pid %d keeps serving; retrying in "
                 "%llu ms",
                 why, e->serving->pid, (unsigned long long)delay);
    else
        snprintf(what, sizeof(what), "restarting in %llu ms", (unsigned long long)delay);
    log_note(e, what);
    uv_timer_start(&e->timer, on_timer, delay, 0);
}

static void on_exit_cb(inst *i, int64_t status, int sig)
{
    entry *e = i->e;
    char what[RP_PROC_REASON_MAX];
    uint64_t ran = now_ms() - i->started_ms;

    snprintf(what, sizeof(what), "process exited (status %lld, signal %d) after %llu ms",
             (long long)status, sig, (unsigned long long)ran);
    log_note(e, what);
    i->exited = 1;
    teardown(i);
    if (i->state == I_RETIRING)
        return;
    if (i->not_ready)
        rp_strlcpy(what, i->why, sizeof(what));
    e->fails = ran > 30000 ? 1 : e->fails + 1;
    if (e->serving == i) {
        e->serving = NULL;
        state_fail(e, what);
        if (e->pending != NULL) {
            /* The new one is on its way: requests wait for it rather than for a restart. */
            publish(e, e->pending);
            state_sync(e);
            log_note(e, "requests wait for the process being started");
            return;
        }
    } else if (e->pending == i) {
        e->pending = NULL;
        if (e->again) { /* the newer start goes ahead now, not after a back-off */
            e->again = 0;
            e->fails = 0;
            spawn(e, 0);
            return;
        }
    }
    start_again(e, what, backoff_ms(e->fails));
}

/*
 * The memfd with the command and the whole environment: the built-in variables, then the
 * caller's (those named like a built-in dropped). -1 when it cannot be made.
 */
static int make_blob(entry *e, int port)
{
    char vport[32 + RP_PROC_SOCKET_MAX], vsite[NAME_MAX_ + 32], vhost[HOST_CAP + 32];
    const char **list;
    size_t n = 0;
    int fd = -1;

    list = rp_calloc(e->s.nenv + 5, sizeof(*list));
    if (list == NULL)
        return -1;
    if (e->s.tier == RP_PROC_ISOLATED)
        snprintf(vport, sizeof(vport), "PORT=%s", RP_SANDBOX_SOCKET);
    else
        snprintf(vport, sizeof(vport), "PORT=%d", port);
    snprintf(vsite, sizeof(vsite), "WEBSITE_SITE_NAME=%s", e->s.site);
    snprintf(vhost, sizeof(vhost), "WEBSITE_HOSTNAME=%s", e->s.host);
    list[n++] = vport;
    list[n++] = "HOME=/tmp";
    list[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    list[n++] = vsite;
    list[n++] = vhost;
    for (size_t k = 0, off = 0; k < e->s.nenv; k++) {
        const char *kv = e->s.env + off;
        off += strlen(kv) + 1;
        if (!is_builtin(kv))
            list[n++] = kv;
    }
    if (rp_sandbox_blob(e->s.command, list, n, &fd) != 0)
        fd = -1;
    rp_free(list);
    return fd;
}

/* A start that did not get as far as a process: logged, and tried again after the longest
 * back-off (what failed is the machine or the paths, not the app). */
static void start_failed(inst *i, const char *why)
{
    entry *e = i->e;
    char what[300];

    snprintf(what, sizeof(what), "cannot start the sandbox: %s", why);
    log_note(e, what);
    i->exited = 1;
    i->state = I_RETIRING;
    if (e->pending == i)
        e->pending = NULL;
    teardown(i);
    e->fails++;
    start_again(e, what, RP_PROC_BACKOFF_MAX);
}

/* The slot and address of a new instance: 0, or -1 when every slot is taken. */
static int place(entry *e, inst *i)
{
    rp_procs *ps = e->p;
    int beside = e->serving != NULL, k = -1, port = 0;

    uv_mutex_lock(&ps->mu);
    /* Nothing serves: the app's current address, which waiting requests knock on. */
    if (!beside && e->s.tier == RP_PROC_SHARED)
        port = e->port;
    for (reserved **r = &ps->reserved; *r != NULL; r = &(*r)->next) {
        if (strcmp((*r)->name, e->s.name) == 0) {
            reserved *x = *r;
            if (!beside && port == 0 && e->s.tier == RP_PROC_SHARED)
                port = x->port;
            *r = x->next;
            rp_free(x);
            break;
        }
    }
    uv_mutex_unlock(&ps->mu);
    if (!beside && !slot_busy(e, e->tslot))
        k = e->tslot;
    for (int s = 0; s < SLOTS && k < 0; s++)
        if (!slot_busy(e, s))
            k = s;
    if (k < 0)
        return -1;
    i->slot = k;
    i->tier = e->s.tier;
    i->port = e->s.tier == RP_PROC_SHARED ? (port != 0 ? port : free_port()) : 0;
    if (slot_run(e, k, i->run, sizeof(i->run)) != 0)
        i->run[0] = '\0'; /* the helper refuses it: the start fails with a reason */
    if (e->s.tier == RP_PROC_ISOLATED &&
        (size_t)snprintf(i->sock, sizeof(i->sock), "%s%s", i->run, SOCK_NAME) >= sizeof(i->sock))
        i->run[0] = '\0';
    return 0;
}

/* A pipe whose read end h takes over (it closes it); *wr gets the write end, for the process. */
static int log_pipe(uv_pipe_t *h, int *wr)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    if (uv_pipe_open(h, fds[0]) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    *wr = fds[1];
    return 0;
}

/*
 * Starts a process of e: beside the serving one if there is one (it takes over when ready),
 * else on the app's address. restart: nobody asked for it (a crash, a failed start, failed
 * health checks).
 */
/*
 * The next readiness probe of a starting process: 5 ms after the start, the interval doubling
 * up to READY_POLL_MS. A handler that listens within tens of ms takes calls (a cold start has
 * them waiting) within tens of ms, not at the first 250 ms tick; one that takes seconds costs
 * a few probes more (a refused connection is cheap).
 */
static void ready_poll(inst *i)
{
    uint64_t ms = i->poll_ms ? i->poll_ms : READY_POLL_MS;

    i->poll_ms = ms * 2 > READY_POLL_MS ? READY_POLL_MS : ms * 2;
    uv_timer_start(&i->timer, on_inst_timer, ms, 0);
}

static void spawn(entry *e, int restart)
{
    rp_helper_spawn hs;
    char why[RP_HELPER_WHY_MAX];
    int rc, blob, po[2] = {-1, -1}, pe[2] = {-1, -1}, pid = 0; /* [1]: the process's ends */
    unsigned require;
    rp_procs *ps = e->p;
    inst *i;

    if (!e->wanted || ps->closing || e->pending != NULL || e->after != NULL)
        return;
    uv_timer_stop(&e->timer);
    i = rp_calloc(1, sizeof(*i));
    if (i == NULL) {
        log_note(e, "out of memory for a start; retrying");
        uv_timer_start(&e->timer, on_timer, 1000, 0);
        return;
    }
    i->e = e;
    if (place(e, i) != 0 || (i->tier == RP_PROC_SHARED && i->port == 0)) {
        log_note(e, i->port == 0 && i->tier == RP_PROC_SHARED
                        ? "no free port on loopback; retrying"
                        : "too many processes of the app are still stopping; retrying");
        rp_free(i);
        uv_timer_start(&e->timer, on_timer, 1000, 0);
        return;
    }
    if (uv_pipe_init(&ps->loop, &i->out, 0) != 0 || uv_pipe_init(&ps->loop, &i->err, 0) != 0 ||
        uv_timer_init(&ps->loop, &i->timer) != 0 || uv_timer_init(&ps->loop, &i->ptimer) != 0)
        abort(); /* cannot fail on Linux (no allocation); a failure would leave handles open */
    i->handles = 4;
    i->out.data = i->err.data = i->timer.data = i->ptimer.data = i;
    i->state = I_STARTING;
    i->next = e->insts;
    e->insts = i;
    e->pending = i;
    if (restart)
        state_restarted(e);
    if (e->serving == NULL)
        publish(e, i);
    state_sync(e);
    uv_mutex_lock(&ps->mu);
    require = ps->require;
    uv_mutex_unlock(&ps->mu);
    blob = make_blob(e, i->port);
    if (blob < 0) {
        start_failed(i, "cannot hand over the environment");
        return;
    }
    if (log_pipe(&i->out, &po[1]) != 0 || log_pipe(&i->err, &pe[1]) != 0) {
        if (po[1] >= 0)
            close(po[1]);
        close(blob);
        start_failed(i, "cannot make the log pipes");
        return;
    }
    memset(&hs, 0, sizeof(hs));
    hs.name = e->s.site;
    hs.release = e->s.dir;
    hs.run = i->run;
    hs.isolated = i->tier == RP_PROC_ISOLATED;
    hs.uid = e->s.uid;
    hs.memory_mb = e->s.memory_mb;
    hs.pids = e->s.pids;
    hs.cpu_percent = e->s.cpu_percent;
    hs.layers = ps->layers;
    hs.require = require;
    rc = rp_helper_spawn_process(ps->helper, &hs, blob, po[1], pe[1], &pid, why, sizeof(why));
    close(blob);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        char what[RP_HELPER_WHY_MAX + 64];
        snprintf(what, sizeof(what), "the privileged helper: %s", why);
        start_failed(i, what);
        return;
    }
    i->spawned = 1;
    i->pid = pid;
    if (uv_read_start((uv_stream_t *)&i->out, on_alloc, on_output) != 0 ||
        uv_read_start((uv_stream_t *)&i->err, on_alloc, on_output) != 0)
        log_note(e, "cannot read the process's output");
    i->started_ms = now_ms();
    {
        char what[RP_PROC_COMMAND_MAX + 300], where[64];
        if (i->tier == RP_PROC_ISOLATED)
            snprintf(where, sizeof(where), "on %s (isolated)", RP_SANDBOX_SOCKET);
        else
            snprintf(where, sizeof(where), "on port %d", i->port);
        snprintf(what, sizeof(what), "started pid %d %s as uid %u: %s", i->pid, where,
                 (ps->layers & RP_SANDBOX_UID) ? e->s.uid : (unsigned)geteuid(), e->s.command);
        log_note(e, what);
    }
    i->poll_ms = READY_FIRST_MS;
    ready_poll(i);
}

/* ---------------------------------------------------------------- readiness and health */

/* i is ready: it takes the requests, and the process it replaces is stopped after a drain. */
static void make_ready(inst *i)
{
    entry *e = i->e;
    inst *old = e->serving;
    char what[200];

    e->pending = NULL;
    e->serving = i;
    i->state = I_SERVING;
    e->health_fails = 0;
    publish(e, i);
    state_sync(e);
    snprintf(what, sizeof(what), "pid %d is ready after %llu ms%s", i->pid,
             (unsigned long long)(now_ms() - i->started_ms),
             e->s.health[0] ? " (its health check passed)" : "");
    log_note(e, what);
    if (old != NULL) {
        snprintf(what, sizeof(what), "pid %d takes the requests; stopping pid %d in %d ms", i->pid,
                 old->pid, RP_PROC_DRAIN_MS);
        log_note(e, what);
        retire(old, 1);
    }
    if (e->s.health[0])
        uv_timer_start(&i->timer, on_inst_timer, RP_PROC_HEALTH_INTERVAL_MS, 0);
    if (e->again) {
        e->again = 0;
        spawn(e, 0);
    }
}

/* i was not ready in time: stopped, and its exit counts as a failed start (on_exit_cb). */
static void not_ready(inst *i)
{
    entry *e = i->e;
    char what[RP_PROC_REASON_MAX + 64];

    if (!i->why[0])
        rp_strlcpy(i->why, "no answer", sizeof(i->why));
    snprintf(what, sizeof(what), "not ready within %llu s (%s)",
             (unsigned long long)(e->ready_ms / 1000), i->why);
    rp_strlcpy(i->why, what, sizeof(i->why));
    snprintf(what, sizeof(what), "pid %d was %s: stopping it", i->pid, i->why);
    log_note(e, what);
    i->not_ready = 1;
    terminate(i);
}

static void on_inst_timer(uv_timer_t *t)
{
    inst *i = t->data;
    entry *e = i->e;

    if (i->exited || i->not_ready || i->state == I_RETIRING)
        return;
    if (i->state == I_STARTING && now_ms() - i->started_ms >= e->ready_ms) {
        not_ready(i);
        return;
    }
    probe_start(i);
}

/* The answer of a probe of i: readiness while it starts, health while it serves. */
static void probe_result(inst *i, int ok, const char *why)
{
    entry *e = i->e;
    char what[RP_PROC_REASON_MAX + 128];

    if (i->exited || i->not_ready || i->state == I_RETIRING)
        return;
    if (i->state == I_STARTING) {
        if (ok) {
            make_ready(i);
            return;
        }
        rp_strlcpy(i->why, why, sizeof(i->why));
        if (e->again) {
            replace_pending(e);
            return;
        }
        ready_poll(i);
        return;
    }
    if (ok) {
        if (e->health_fails > 0)
            log_note(e, "the health check passes again");
        e->health_fails = 0;
        state_sync(e);
    } else {
        e->health_fails++;
        snprintf(what, sizeof(what),
                 "health check GET %s of pid %d failed (%u in a row; %u restart it): %s",
                 e->s.health, i->pid, e->health_fails, e->max_fails, why);
        log_note(e, what);
        snprintf(what, sizeof(what), "health check failed: %s", why);
        state_fail(e, what);
        state_sync(e);
        /* Replaced the zero-downtime way; a replacement already on its way (or waiting for
         * its back-off) is not doubled. */
        if (e->health_fails >= e->max_fails && e->pending == NULL && e->after == NULL &&
            !uv_is_active((uv_handle_t *)&e->timer)) {
            snprintf(what, sizeof(what), "pid %d is unhealthy: starting a new process", i->pid);
            log_note(e, what);
            spawn(e, 1);
        }
    }
    uv_timer_start(&i->timer, on_inst_timer, RP_PROC_HEALTH_INTERVAL_MS, 0);
}

/* ---------------------------------------------------------------- messages */

static entry *find(rp_procs *p, const char *name)
{
    for (entry *e = p->entries; e != NULL; e = e->next)
        if (strcmp(e->s.name, name) == 0)
            return e;
    return NULL;
}

static void stop_entry(rp_procs *p, entry *e)
{
    unsigned all = 0;

    e->wanted = 0;
    e->after = NULL;
    e->again = 0;
    uv_timer_stop(&e->timer);
    for (inst *i = e->insts; i != NULL; i = i->next)
        retire(i, 0);
    uv_mutex_lock(&p->mu);
    e->port = 0;
    e->unix_path[0] = '\0';
    memset(&e->st, 0, sizeof(e->st));
    uv_mutex_unlock(&p->mu);
    e->health_fails = 0;
    /* Leaves an earlier run (or a crash of rampart) left; live instances remove their own. */
    for (int k = 0; k < SLOTS; k++)
        all |= 1u << k;
    reap(e, all);
    env_free(&e->s); /* its secrets go now, not when the entry does */
    /* A new app of the same name logs to a new file (this one may be gone with it). */
    if (e->log_fd >= 0)
        close(e->log_fd);
    e->log_fd = -1;
}

/* The supervisor's own settings from the app's settings, with a note for a bad value. */
static void tune(entry *e)
{
    int bad = 0;
    char what[200];

    e->ready_ms = 1000u * env_number(&e->s, "WEBSITES_CONTAINER_START_TIME_LIMIT", 1,
                                     RP_PROC_READY_MS_MAX / 1000, RP_PROC_READY_MS / 1000, &bad);
    if (bad) {
        snprintf(what, sizeof(what),
                 "WEBSITES_CONTAINER_START_TIME_LIMIT is not a number of seconds from 1 to %d: "
                 "using %d",
                 RP_PROC_READY_MS_MAX / 1000, RP_PROC_READY_MS / 1000);
        log_note(e, what);
    }
    bad = 0;
    e->max_fails = (unsigned)env_number(&e->s, "WEBSITE_HEALTHCHECK_MAXPINGFAILURES", FAILS_MIN,
                                        FAILS_MAX, RP_PROC_HEALTH_FAILS, &bad);
    if (bad) {
        snprintf(what, sizeof(what),
                 "WEBSITE_HEALTHCHECK_MAXPINGFAILURES is not a number from %d to %d: using %d",
                 FAILS_MIN, FAILS_MAX, RP_PROC_HEALTH_FAILS);
        log_note(e, what);
    }
}

/* The pending process gives way to a newer start at once. */
static void replace_pending(entry *e)
{
    inst *old = e->pending;
    char what[128];

    e->again = 0;
    snprintf(what, sizeof(what), "a newer start replaces pid %d, which was not ready yet",
             old->pid);
    log_note(e, what);
    retire(old, 0);
    /* Nothing serves: the new process takes the app's address once the old has let go. */
    if (e->serving == NULL && !old->exited)
        e->after = old;
    spawn(e, 0);
}

/*
 * A newer start while the first process is still starting: that process has the app's address
 * and may be answering already (requests reach it before its readiness poll comes round). One
 * probe decides: ready, it serves and the new one starts beside it with the usual switch; not,
 * it gives way. Beside a serving process, a pending one gives way at once.
 */
static void supersede(entry *e)
{
    inst *i = e->pending;
    char what[128];

    if (e->serving != NULL || i->exited || i->not_ready || i->state != I_STARTING) {
        replace_pending(e);
        return;
    }
    if (!e->again) {
        snprintf(what, sizeof(what), "a newer start: asking whether pid %d is ready first", i->pid);
        log_note(e, what);
    }
    e->again = 1;
    if (i->pstate == P_IDLE) {
        uv_timer_stop(&i->timer);
        probe_start(i);
    } /* else a probe is under way (its answer decides) or closing (the timer is set) */
}

static void apply(rp_procs *p, msg *m)
{
    entry *e = find(p, m->s.name);

    if (m->stop) {
        if (e != NULL)
            stop_entry(p, e);
        return;
    }
    if (e == NULL) {
        e = rp_calloc(1, sizeof(*e));
        if (e == NULL)
            return;
        e->p = p;
        e->log_fd = -1;
        rp_strlcpy(e->s.name, m->s.name, sizeof(e->s.name));
        if (uv_timer_init(&p->loop, &e->timer) != 0 || uv_timer_init(&p->loop, &e->reap) != 0)
            abort(); /* cannot fail on Linux; a half-made entry would leak a handle */
        e->timer.data = e->reap.data = e;
        e->timers_init = 1;
        uv_mutex_lock(&p->mu);
        e->next = p->entries;
        p->entries = e;
        uv_mutex_unlock(&p->mu);
    }
    if (strcmp(e->s.log_dir, m->s.log_dir) != 0 && e->log_fd >= 0) {
        close(e->log_fd);
        e->log_fd = -1;
    }
    env_free(&e->s);
    e->s = m->s; /* the variables move to the entry */
    m->s.env = NULL;
    m->s.env_len = m->s.nenv = 0;
    tune(e);
    e->wanted = 1;
    e->fails = 0;
    e->health_fails = 0;
    uv_timer_stop(&e->timer);
    if (e->pending != NULL)
        supersede(e);
    else
        spawn(e, 0);
}

static void on_kill_timer(uv_timer_t *t)
{
    rp_procs *p = t->data;

    for (entry *e = p->entries; e != NULL; e = e->next)
        for (inst *i = e->insts; i != NULL; i = i->next)
            if (i->spawned && !i->exited)
                (void)rp_helper_kill(p->helper, i->pid, SIGKILL);
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, NULL);
}

/* Closing: the exit channel goes once no process of ours is left to report. */
static void exits_close_if_done(rp_procs *p)
{
    if (!p->closing || !p->exits_open)
        return;
    for (entry *e = p->entries; e != NULL; e = e->next)
        for (inst *i = e->insts; i != NULL; i = i->next)
            if (i->spawned && !i->exited)
                return;
    p->exits_open = 0;
    uv_close((uv_handle_t *)&p->exits, NULL);
}

static inst *find_pid(rp_procs *p, int pid)
{
    for (entry *e = p->entries; e != NULL; e = e->next)
        for (inst *i = e->insts; i != NULL; i = i->next)
            if (i->spawned && !i->exited && i->pid == pid)
                return i;
    return NULL;
}

/* The helper reports ended processes: each is the exit of one of our instances. */
static void on_exits(uv_poll_t *h, int status, int events)
{
    rp_procs *p = h->data;
    int pid, sig, rc;
    int64_t code;

    (void)status;
    (void)events;
    while ((rc = rp_helper_next_exit(p->helper, &pid, &code, &sig)) == 0) {
        inst *i = find_pid(p, pid);
        if (i != NULL)
            on_exit_cb(i, code, sig);
    }
    if (rc == RP_ECLOSED && p->exits_open) {
        /* The helper has gone (it kills what it started when it goes): all ended. */
        rp_log_msg(RP_LOG_ERROR, "sites.helper", "the privileged helper has gone");
        uv_poll_stop(&p->exits);
        for (entry *e = p->entries; e != NULL; e = e->next) {
            for (inst *i = e->insts, *next; i != NULL; i = next) {
                next = i->next;
                if (i->spawned && !i->exited)
                    on_exit_cb(i, 0, SIGKILL);
            }
        }
        p->exits_open = 0;
        uv_close((uv_handle_t *)&p->exits, NULL);
        return;
    }
    exits_close_if_done(p);
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
        env_free(&m->s);
        rp_free(m);
        m = next;
    }
    if (closing) {
        for (entry *e = p->entries; e != NULL; e = e->next) {
            e->wanted = 0;
            e->after = NULL;
            if (e->timers_init) {
                uv_close((uv_handle_t *)&e->timer, NULL);
                uv_close((uv_handle_t *)&e->reap, NULL);
                e->timers_init = 0;
            }
            for (inst *i = e->insts; i != NULL; i = i->next) {
                i->state = I_RETIRING;
                probe_cancel(i);
                close_handle((uv_handle_t *)&i->timer);
                close_handle((uv_handle_t *)&i->ptimer);
                if (i->spawned && !i->exited)
                    (void)rp_helper_kill(p->helper, i->pid, SIGTERM);
            }
            e->serving = e->pending = NULL;
        }
        uv_close((uv_handle_t *)&p->wake, NULL);
        exits_close_if_done(p);
        if (uv_timer_init(&p->loop, &p->kill_timer) == 0) {
            p->kill_timer.data = p;
            uv_timer_start(&p->kill_timer, on_kill_timer, 3000, 0);
            uv_unref((uv_handle_t *)&p->kill_timer);
        }
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
        env_free(&m->s);
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

/* Copies spec's variables into s (one wiped allocation). 0, RP_EINVAL, RP_ETOOBIG, RP_ENOMEM. */
static int env_copy(pspec *s, const rp_proc_spec *spec)
{
    size_t total = 0, off = 0;

    for (size_t i = 0; i < spec->nenv; i++) {
        const char *kv = spec->env[i];
        size_t k;
        if (kv == NULL)
            return RP_EINVAL;
        k = strcspn(kv, "=");
        if (k == 0 || kv[k] != '=')
            return RP_EINVAL;
        for (size_t j = 0; j < k; j++)
            if ((unsigned char)kv[j] <= 0x20 || kv[j] == 0x7f)
                return RP_EINVAL;
        if (rp_size_add(total, strlen(kv) + 1, &total) != 0 || total > RP_PROC_ENV_MAX)
            return RP_ETOOBIG;
    }
    if (total == 0)
        return 0;
    s->env = rp_malloc(total);
    if (s->env == NULL)
        return RP_ENOMEM;
    for (size_t i = 0; i < spec->nenv; i++) {
        size_t n = strlen(spec->env[i]) + 1;
        memcpy(s->env + off, spec->env[i], n);
        off += n;
    }
    s->env_len = total;
    s->nenv = spec->nenv;
    return 0;
}

int rp_procs_set(rp_procs *p, const rp_proc_spec *spec)
{
    msg *m;
    int rc, isolated;
    size_t n;

    if (p == NULL || spec == NULL || spec->name == NULL || spec->command == NULL ||
        spec->dir == NULL || spec->log_dir == NULL || spec->host == NULL)
        return RP_EINVAL;
    isolated = spec->tier == RP_PROC_ISOLATED;
    n = strlen(spec->name);
    if (n == 0 || n > NAME_MAX_ || strchr(spec->name, '/') != NULL || spec->name[0] == '.' ||
        strlen(spec->site ? spec->site : spec->name) > SITE_MAX_ ||
        strlen(spec->command) > RP_PROC_COMMAND_MAX || spec->command[0] == '\0' ||
        spec->dir[0] != '/' || spec->log_dir[0] != '/' || strlen(spec->dir) >= PATH_CAP ||
        strlen(spec->log_dir) >= PATH_CAP || strlen(spec->host) >= HOST_CAP || spec->uid == 0 ||
        (spec->tier != RP_PROC_SHARED && !isolated) ||
        (isolated && (spec->run_dir == NULL || spec->run_dir[0] != '/')) ||
        (spec->run_dir != NULL && strlen(spec->run_dir) + sizeof(SLOT_SUFFIX) > PATH_CAP) ||
        (spec->nenv > 0 && spec->env == NULL) ||
        (spec->health_path != NULL && spec->health_path[0] && !health_path_ok(spec->health_path)))
        return RP_EINVAL;
    /* The longest socket path: that of a process started beside another (slot 9). */
    if (isolated && strlen(spec->run_dir) + sizeof(SLOT_SUFFIX SOCK_NAME) - 1 > RP_PROC_SOCKET_MAX)
        return RP_ETOOBIG;
    m = rp_calloc(1, sizeof(*m));
    if (m == NULL)
        return RP_ENOMEM;
    rc = env_copy(&m->s, spec);
    if (rc != 0) {
        rp_free(m);
        return rc;
    }
    rp_strlcpy(m->s.name, spec->name, sizeof(m->s.name));
    rp_strlcpy(m->s.site, spec->site ? spec->site : spec->name, sizeof(m->s.site));
    rp_strlcpy(m->s.command, spec->command, sizeof(m->s.command));
    rp_strlcpy(m->s.dir, spec->dir, sizeof(m->s.dir));
    rp_strlcpy(m->s.log_dir, spec->log_dir, sizeof(m->s.log_dir));
    /* The cgroup's name is made from the run directory (unique per app and installation), so
     * it is always set, for the shared tier too. */
    if (spec->run_dir != NULL)
        rp_strlcpy(m->s.run_dir, spec->run_dir, sizeof(m->s.run_dir));
    else
        snprintf(m->s.run_dir, sizeof(m->s.run_dir), "%.4000s/../run", spec->log_dir);
    rp_strlcpy(m->s.host, spec->host, sizeof(m->s.host));
    rp_strlcpy(m->s.health, spec->health_path ? spec->health_path : "", sizeof(m->s.health));
    m->s.uid = spec->uid;
    m->s.tier = spec->tier;
    m->s.memory_mb = spec->memory_mb ? spec->memory_mb : RP_PROC_MEMORY_MB_DEFAULT;
    m->s.pids = spec->pids ? spec->pids : RP_PROC_PIDS_DEFAULT;
    m->s.cpu_percent = spec->cpu_percent ? spec->cpu_percent : RP_PROC_CPU_DEFAULT;
    /* Where it answers is known from now on: a request that comes before the process waits. */
    uv_mutex_lock(&p->mu);
    {
        reserved *r = NULL;
        entry *e = NULL;
        for (e = p->entries; e != NULL; e = e->next)
            if (strcmp(e->s.name, spec->name) == 0)
                break;
        for (r = p->reserved; r != NULL; r = r->next)
            if (strcmp(r->name, spec->name) == 0)
                break;
        if (r == NULL && (e == NULL || (e->port == 0 && !e->unix_path[0]))) {
            r = rp_calloc(1, sizeof(*r));
            if (r != NULL) {
                rp_strlcpy(r->name, spec->name, sizeof(r->name));
                r->next = p->reserved;
                p->reserved = r;
            }
        }
        if (r != NULL && isolated) {
            r->port = 0;
            snprintf(r->unix_path, sizeof(r->unix_path), "%s%s", spec->run_dir, SOCK_NAME);
        } else if (r != NULL) {
            r->unix_path[0] = '\0';
            if (r->port == 0)
                r->port = free_port();
        }
    }
    uv_mutex_unlock(&p->mu);
    return post(p, m);
}

void rp_procs_stop(rp_procs *p, const char *name)
{
    msg *m =
        p != NULL && name != NULL && strlen(name) <= NAME_MAX_ ? rp_calloc(1, sizeof(*m)) : NULL;

    if (m == NULL)
        return;
    m->stop = 1;
    rp_strlcpy(m->s.name, name, sizeof(m->s.name));
    uv_mutex_lock(&p->mu);
    for (reserved **r = &p->reserved; *r != NULL; r = &(*r)->next) {
        if (strcmp((*r)->name, name) == 0) {
            reserved *x = *r;
            *r = x->next;
            rp_free(x);
            break;
        }
    }
    uv_mutex_unlock(&p->mu);
    (void)post(p, m);
}

int rp_procs_target(rp_procs *p, const char *name, int *port, char *unix_path, size_t cap,
                    int *running)
{
    int found = 0;

    *running = 0;
    *port = 0;
    if (cap > 0)
        unix_path[0] = '\0';
    if (p == NULL || name == NULL)
        return RP_ENOENT;
    uv_mutex_lock(&p->mu);
    for (entry *e = p->entries; e != NULL && !found; e = e->next) {
        if (strcmp(e->s.name, name) == 0 && (e->port != 0 || e->unix_path[0])) {
            *port = e->port;
            rp_strlcpy(unix_path, e->unix_path, cap);
            *running = e->st.ready;
            found = 1;
        }
    }
    for (reserved *r = p->reserved; r != NULL && !found; r = r->next) {
        if (strcmp(r->name, name) == 0 && (r->port != 0 || r->unix_path[0])) {
            *port = r->port;
            rp_strlcpy(unix_path, r->unix_path, cap);
            found = 1;
        }
    }
    uv_mutex_unlock(&p->mu);
    return found ? 0 : RP_ENOENT;
}

int rp_procs_port(rp_procs *p, const char *name, int *running)
{
    char path[RP_PROC_SOCKET_MAX + 1];
    int port;

    if (rp_procs_target(p, name, &port, path, sizeof(path), running) != 0)
        return 0;
    return port;
}

int rp_procs_state(rp_procs *p, const char *name, rp_proc_state *out)
{
    int found = 0;

    memset(out, 0, sizeof(*out));
    if (p == NULL || name == NULL)
        return RP_ENOENT;
    uv_mutex_lock(&p->mu);
    for (entry *e = p->entries; e != NULL && !found; e = e->next) {
        if (strcmp(e->s.name, name) == 0) {
            *out = e->st;
            found = 1;
        }
    }
    uv_mutex_unlock(&p->mu);
    return found ? 0 : RP_ENOENT;
}

unsigned rp_procs_layers(rp_procs *p, char *missing, size_t cap)
{
    if (cap > 0)
        rp_strlcpy(missing, p->missing, cap);
    return p->layers;
}

void rp_procs_require(rp_procs *p, unsigned layers)
{
    uv_mutex_lock(&p->mu);
    p->require = layers;
    uv_mutex_unlock(&p->mu);
}

int rp_procs_open(rp_helper *helper, rp_procs **out)
{
    rp_procs *p;

    if (helper == NULL)
        return RP_EINVAL;
    p = rp_calloc(1, sizeof(*p));
    if (p == NULL)
        return RP_ENOMEM;
    p->helper = helper;
    p->layers = rp_helper_layers(helper, p->missing, sizeof(p->missing));
    if (p->missing[0]) {
        char line[700];
        snprintf(line, sizeof(line), "app processes start without: %s", p->missing);
        rp_log_msg(RP_LOG_WARN, "sites.sandbox", line);
    }
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
    if (uv_poll_init(&p->loop, &p->exits, rp_helper_event_fd(helper)) != 0)
        goto fail_wake;
    p->exits.data = p;
    p->exits_open = 1;
    if (uv_poll_start(&p->exits, UV_READABLE, on_exits) != 0 ||
        uv_thread_create(&p->thread, thread_main, p) != 0)
        goto fail_poll;
    p->started = 1;
    *out = p;
    return 0;
fail_poll:
    uv_close((uv_handle_t *)&p->exits, NULL);
fail_wake:
    uv_close((uv_handle_t *)&p->wake, NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    uv_mutex_destroy(&p->mu);
    rp_free(p);
    return RP_EIO;
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
    /* Every bubblewrap has exited; the kernel may still be ending the tasks of their pid
     * namespaces, so the cgroups (every slot's) go within a bounded wait (2 s for all). */
    for (int round = 0; round < 40 && (p->layers & RP_SANDBOX_UID); round++) {
        int busy = 0;
        for (entry *e = p->entries; e != NULL; e = e->next) {
            for (int k = 0; k < SLOTS; k++) {
                char run[PATH_CAP];
                if (slot_run(e, k, run, sizeof(run)) == 0)
                    busy |= rp_helper_uncgroup(p->helper, e->s.site, run) == RP_EAGAIN;
            }
        }
        if (!busy)
            break;
        uv_sleep(50);
    }
    while (p->entries != NULL) {
        entry *e = p->entries;
        p->entries = e->next;
        /* The loop ran until every instance's handles had closed; none is left to free. */
        if (e->log_fd >= 0)
            close(e->log_fd);
        env_free(&e->s);
        rp_free(e);
    }
    while (p->queue != NULL) {
        msg *m = p->queue;
        p->queue = m->next;
        env_free(&m->s);
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
