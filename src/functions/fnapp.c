/*
 * fnapp.c - a function app's index (fnapp.h): host.json, the function folders, the route table,
 * and the custom handler's command line, read once per release.
 *
 * Workload: a load reads at most 1 + RP_FN_FUNCTIONS_MAX small files and compiles at most as
 * many routes, once per deployment or start-up; it favours simple code (one reused read buffer,
 * quadratic conflict and duplicate checks over at most 256 functions, an insertion sort). A
 * match, on every request, walks the sorted route table without allocating.
 *
 * The release is the app owner's input, and may hold links an attacker put there. So every path
 * is opened one component at a time relative to the release's directory descriptor with
 * O_NOFOLLOW, and what was opened is checked with fstat: the kernel never resolves more than one
 * component of a name this module builds, and a link is refused where it is met, not followed.
 * Files are opened O_NONBLOCK so that a FIFO put in the place of function.json cannot stall the
 * loader before fstat refuses it.
 *
 * Errors are decided in a fixed order, so that a release with several problems always gets the
 * same message: host.json, the handler's files, links in the root, the number of functions,
 * then each function in name order (its file, then its route, then conflicts with the functions
 * before it).
 */
#include "functions/fnapp.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* One entry of the route table: an enabled function with an httpTrigger. */
typedef struct fnapp_route {
    rp_route_tmpl *tmpl;
    const rp_fn_function *fn;
    const rp_fn_binding *trigger;
} fnapp_route;

struct rp_fn_app {
    rp_fn_host *host;     /* handler never NULL */
    rp_fn_function **fns; /* nfns, sorted by name (strcmp) */
    size_t nfns;
    fnapp_route *routes; /* nroutes, in rp_route_order, stable */
    size_t nroutes;
    int exe_local; /* the handler's exe is a file in the app, not a PATH lookup */
};

/* What rp_fn_app_load carries around. */
typedef struct loader {
    int dirfd;
    char *buf; /* RP_FN_FILE_MAX + 1 bytes, reused for every file */
    char *err;
    size_t cap;
} loader;

typedef char qbuf[RP_QUOTE_MAX + 4];

static const char *q(const char *s, qbuf b)
{
    return rp_quote(s, strlen(s), b);
}

static int oom(loader *l)
{
    return rp_errf(l->err, l->cap, RP_ENOMEM, "out of memory");
}

/* ---- reading files ------------------------------------------------------------------------ */

/*
 * Reads name (one component, in the directory dfd) whole into l->buf. label names the file in
 * messages ("host.json", "orders/function.json"). 0 and *n; RP_ENOENT with no message (the
 * caller decides what a missing file means); RP_EPARSE (a link, a directory or anything but a
 * regular file), RP_ETOOBIG, RP_EIO with a message.
 */
static int read_file(loader *l, int dfd, const char *name, const char *label, size_t *n)
{
    struct stat st;
    size_t len = 0;
    int fd, rc;

    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return RP_ENOENT;
        /* ELOOP: the name is a symbolic link (O_NOFOLLOW). */
        if (errno == ELOOP)
            return rp_errf(l->err, l->cap, RP_EPARSE, "%s: not a regular file", label);
        return rp_errf(l->err, l->cap, RP_EIO, "%s: cannot open it (errno %d)", label, errno);
    }
    if (fstat(fd, &st) != 0) {
        rc = rp_errf(l->err, l->cap, RP_EIO, "%s: cannot stat it (errno %d)", label, errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rp_errf(l->err, l->cap, RP_EPARSE, "%s: not a regular file", label);
        goto out;
    }
    if ((uintmax_t)st.st_size > RP_FN_FILE_MAX) {
        rc = rp_errf(l->err, l->cap, RP_ETOOBIG, "%s: the file is %jd bytes; at most %u", label,
                     (intmax_t)st.st_size, RP_FN_FILE_MAX);
        goto out;
    }
    /* Read one byte past the limit: a file that grew after fstat is caught, not cut. */
    while (len <= RP_FN_FILE_MAX) {
        ssize_t r = read(fd, l->buf + len, RP_FN_FILE_MAX + 1 - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = rp_errf(l->err, l->cap, RP_EIO, "%s: read failed (errno %d)", label, errno);
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > RP_FN_FILE_MAX) {
        rc = rp_errf(l->err, l->cap, RP_ETOOBIG, "%s: the file is over %u bytes", label,
                     RP_FN_FILE_MAX);
        goto out;
    }
    *n = len;
    rc = 0;
out:
    close(fd);
    return rc;
}

/* ---- paths of the handler ----------------------------------------------------------------- */

enum { WALK_OK = 0, WALK_MISSING, WALK_REFUSED };

/*
 * Opens the relative path rel (fnconfig's normalised form) from dirfd one component at a time
 * without following links, and fstats the last one into *st. Returns WALK_OK; WALK_MISSING (a
 * component does not exist); WALK_REFUSED (a link, or a component before the last that is not a
 * directory: why says which); RP_EIO (why says what failed). A final component that is a link
 * is WALK_REFUSED too: nothing at the end of a walk is ever followed.
 */
static int walk(int dirfd, const char *rel, struct stat *st, char *why, size_t cap)
{
    char comp[RP_FN_PATH_MAX + 1];
    int cur = dirfd, rc = WALK_OK;
    const char *p = rel;
    qbuf b;

    why[0] = '\0';
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t k = slash != NULL ? (size_t)(slash - p) : strlen(p);
        int last, fd;

        if (k >= sizeof(comp)) {
            rc = rp_errf(why, cap, WALK_REFUSED, "the path is too long");
            goto out;
        }
        memcpy(comp, p, k);
        comp[k] = '\0';
        last = slash == NULL;
        if (k == 0 || strcmp(comp, ".") == 0) {
            /* fnconfig drops these; tolerate them rather than open "" */
            if (last) {
                rc = fstat(cur, st) == 0
                         ? WALK_OK
                         : rp_errf(why, cap, RP_EIO, "stat failed (errno %d)", errno);
                goto out;
            }
            p = slash + 1;
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            rc = rp_errf(why, cap, WALK_REFUSED, "it leaves the app");
            goto out;
        }
        /* O_PATH|O_NOFOLLOW opens a link itself, so fstat can say that it is one. */
        fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                rc = WALK_MISSING;
            else
                rc = rp_errf(why, cap, RP_EIO, "cannot open '%s' (errno %d)", q(comp, b), errno);
            goto out;
        }
        if (cur != dirfd)
            close(cur);
        cur = fd;
        if (fstat(cur, st) != 0) {
            rc = rp_errf(why, cap, RP_EIO, "cannot stat '%s' (errno %d)", q(comp, b), errno);
            goto out;
        }
        if (S_ISLNK(st->st_mode)) {
            rc = last ? rp_errf(why, cap, WALK_REFUSED, "a symbolic link")
                      : rp_errf(why, cap, WALK_REFUSED, "'%s' is a symbolic link", q(comp, b));
            goto out;
        }
        if (last)
            goto out;
        if (!S_ISDIR(st->st_mode)) {
            rc = rp_errf(why, cap, WALK_REFUSED, "'%s' is not a directory", q(comp, b));
            goto out;
        }
        p = slash + 1;
    }
out:
    if (cur != dirfd)
        close(cur);
    return rc;
}

enum { WANT_EXEC, WANT_FILE, WANT_DIR };

/* Checks that rel names what want asks for in the app: 0, or RP_EPARSE or RP_EIO with why. */
static int check_path(int dirfd, const char *rel, int want, char *why, size_t cap)
{
    struct stat st;
    int rc = walk(dirfd, rel, &st, why, cap);

    if (rc < 0)
        return rc;
    if (rc == WALK_MISSING)
        return rp_errf(why, cap, RP_EPARSE, "not found");
    if (rc == WALK_REFUSED)
        return RP_EPARSE;
    if (want == WANT_DIR && !S_ISDIR(st.st_mode))
        return rp_errf(why, cap, RP_EPARSE, "not a directory");
    if (want != WANT_DIR && !S_ISREG(st.st_mode))
        return rp_errf(why, cap, RP_EPARSE, "not a regular file");
    if (want == WANT_EXEC && (st.st_mode & 0111) == 0)
        return rp_errf(why, cap, RP_EPARSE, "no execute permission");
    return 0;
}

static int count_command(const rp_fn_app *a, size_t *len);

/* The handler's files (fnapp.h, rp_fn_app_load); sets a->exe_local. */
static int check_handler(loader *l, rp_fn_app *a)
{
    const rp_fn_handler *hd = a->host->handler;
    const char *sec = hd->legacy ? "httpWorker" : "customHandler";
    char why[RP_QUOTE_MAX * 2 + 64];
    size_t len;
    qbuf b;
    int rc, found;

    if (hd->exe_in_app) {
        rc = check_path(l->dirfd, hd->exe, WANT_EXEC, why, sizeof(why));
        found = 1;
    } else {
        /* A bare name: the file in the root if there is one (Azure's File.Exists, which is
         * false for a directory), else PATH. A link of that name is refused, not passed over
         * to PATH: the owner meant the file it points to. */
        struct stat st;
        rc = walk(l->dirfd, hd->exe, &st, why, sizeof(why));
        found = rc == WALK_OK && S_ISREG(st.st_mode);
        if (found && (st.st_mode & 0111) == 0)
            rc = rp_errf(why, sizeof(why), RP_EPARSE, "no execute permission");
        else if (rc == WALK_OK || rc == WALK_MISSING)
            rc = 0;
        else if (rc == WALK_REFUSED)
            rc = RP_EPARSE;
    }
    if (rc != 0)
        return rp_errf(l->err, l->cap, rc,
                       "host.json: %s.description.defaultExecutablePath: '%s' is not an "
                       "executable file in the app (%s)",
                       sec, q(hd->exe, b), why);
    a->exe_local = found;

    if (hd->workdir[0] != '\0' &&
        (rc = check_path(l->dirfd, hd->workdir, WANT_DIR, why, sizeof(why))) != 0)
        return rp_errf(l->err, l->cap, rc,
                       "host.json: %s.description.workingDirectory: '%s' is not a directory in "
                       "the app (%s)",
                       sec, q(hd->workdir, b), why);
    if (hd->worker_path != NULL &&
        (rc = check_path(l->dirfd, hd->worker_path, WANT_FILE, why, sizeof(why))) != 0)
        return rp_errf(l->err, l->cap, rc,
                       "host.json: %s.description.defaultWorkerPath: '%s' is not a regular file "
                       "in the app (%s)",
                       sec, q(hd->worker_path, b), why);
    /* So that RP_FN_COMMAND_MAX + 1 bytes hold the command whenever settings do not grow it. */
    if (count_command(a, &len) != 0 || len > RP_FN_COMMAND_MAX)
        return rp_errf(l->err, l->cap, RP_ETOOBIG,
                       "host.json: %s.description: the handler's command line is over %d bytes",
                       sec, RP_FN_COMMAND_MAX);
    return 0;
}

/* ---- the function folders ----------------------------------------------------------------- */

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_free(names *s)
{
    for (size_t i = 0; i < s->n; i++)
        rp_free(s->v[i]);
    rp_free(s->v);
}

static int names_add(names *s, const char *name)
{
    if (s->n == s->cap) {
        size_t cap = s->cap == 0 ? 16 : s->cap * 2;
        char **v = rp_realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return RP_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if ((s->v[s->n] = rp_strdup(name)) == NULL)
        return RP_ENOMEM;
    s->n++;
    return 0;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/*
 * Looks at one entry of the root: a link is remembered (the smallest name, so the message does
 * not depend on readdir's order), a directory with something named function.json is a function
 * folder. *count counts them all; out keeps the first RP_FN_FUNCTIONS_MAX names (more are
 * refused anyway).
 */
static int scan_entry(loader *l, const struct dirent *de, names *out, size_t *count, char **link)
{
    struct stat st;
    unsigned char type = de->d_type;
    int sub, rc = 0;
    qbuf b;

    if (type == DT_UNKNOWN) {
        if (fstatat(l->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            goto io;
        type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
    }
    if (type == DT_LNK) {
        if (*link == NULL || strcmp(de->d_name, *link) < 0) {
            char *s = rp_strdup(de->d_name);
            if (s == NULL)
                return oom(l);
            rp_free(*link);
            *link = s;
        }
        return 0;
    }
    if (type != DT_DIR)
        return 0;
    sub = openat(l->dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        goto io;
    /* A folder without function.json is not a function: skipped before its name is judged. */
    if (fstatat(sub, "function.json", &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            rc = rp_errf(l->err, l->cap, RP_EIO, "%s/function.json: cannot stat it (errno %d)",
                         q(de->d_name, b), errno);
        close(sub);
        return rc;
    }
    close(sub);
    (*count)++;
    if (out->n < RP_FN_FUNCTIONS_MAX && names_add(out, de->d_name) != 0)
        return oom(l);
    return 0;
io:
    /* The entry went away since readdir: nothing to index. */
    if (errno == ENOENT)
        return 0;
    return rp_errf(l->err, l->cap, RP_EIO, "%s: cannot open it (errno %d)", q(de->d_name, b),
                   errno);
}

/* The function folders of the root, sorted by name, in *out. */
static int scan_root(loader *l, names *out)
{
    char *link = NULL;
    size_t count = 0;
    struct dirent *de;
    DIR *d = NULL;
    qbuf b;
    int fd, rc = 0;

    /* A description of its own: fdopendir on dirfd would move (and end) the caller's. */
    fd = openat(l->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        rc = rp_errf(l->err, l->cap, RP_EIO, "the app root: cannot list it (errno %d)", errno);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            if (errno != 0)
                rc = rp_errf(l->err, l->cap, RP_EIO, "the app root: cannot list it (errno %d)",
                             errno);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((rc = scan_entry(l, de, out, &count, &link)) != 0)
            break;
    }
    if (rc != 0)
        goto out;
    if (link != NULL) {
        rc = rp_errf(l->err, l->cap, RP_EPARSE,
                     "%s: a symbolic link in the app root; links are not followed (a function "
                     "folder must be a real folder)",
                     q(link, b));
        goto out;
    }
    if (count > RP_FN_FUNCTIONS_MAX) {
        rc = rp_errf(l->err, l->cap, RP_ETOOBIG,
                     "the app has %zu function folders (with a function.json); at most %d", count,
                     RP_FN_FUNCTIONS_MAX);
        goto out;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_names);
out:
    rp_free(link);
    closedir(d);
    return rc;
}

/* Reads and parses NAME/function.json into *f; 0 with *f NULL when it is gone (skipped). */
static int load_function(loader *l, const char *name, rp_fn_function **f)
{
    char label[RP_QUOTE_MAX + 32];
    size_t n = 0;
    int sub, rc;
    qbuf b;

    *f = NULL;
    snprintf(label, sizeof(label), "%s/function.json", q(name, b));
    sub = openat(l->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP || errno == ENOTDIR)
            return rp_errf(l->err, l->cap, RP_EPARSE, "%s: not a folder", q(name, b));
        return rp_errf(l->err, l->cap, RP_EIO, "%s: cannot open it (errno %d)", q(name, b), errno);
    }
    rc = read_file(l, sub, "function.json", label, &n);
    close(sub);
    if (rc == RP_ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    return rp_fn_function_parse(name, l->buf, n, f, l->err, l->cap);
}

static int load_functions(loader *l, rp_fn_app *a)
{
    names dirs = {0};
    int rc = scan_root(l, &dirs);

    if (rc != 0)
        goto out;
    if (dirs.n > 0 && (a->fns = rp_calloc(dirs.n, sizeof(*a->fns))) == NULL) {
        rc = oom(l);
        goto out;
    }
    for (size_t i = 0; i < dirs.n; i++) {
        rp_fn_function *f;
        if ((rc = load_function(l, dirs.v[i], &f)) != 0)
            goto out;
        if (f == NULL)
            continue;
        a->fns[a->nfns++] = f;
        /* Azure looks functions up ignoring case (and so does rp_fn_app_find): two folders
         * that differ only in case would make a name mean two functions. */
        for (size_t j = 0; j + 1 < a->nfns; j++)
            if (strcasecmp(a->fns[j]->name, f->name) == 0) {
                rc = rp_errf(l->err, l->cap, RP_EPARSE,
                             "%s/function.json: function '%s' has the same name ignoring case "
                             "(function names ignore case)",
                             f->name, a->fns[j]->name);
                goto out;
            }
    }
out:
    names_free(&dirs);
    return rc;
}

/* ---- the route table ---------------------------------------------------------------------- */

static int build_routes(loader *l, rp_fn_app *a)
{
    char why[256];
    int rc;

    if (a->nfns > 0 && (a->routes = rp_calloc(a->nfns, sizeof(*a->routes))) == NULL)
        return oom(l);
    for (size_t i = 0; i < a->nfns; i++) {
        const rp_fn_function *f = a->fns[i];
        const rp_fn_binding *t = &f->bindings[f->trigger];
        fnapp_route *r = &a->routes[a->nroutes];

        if (f->disabled || t->type != RP_FN_HTTP_TRIGGER)
            continue;
        rc = rp_route_compile(t->route, strlen(t->route), &r->tmpl, why, sizeof(why));
        if (rc == RP_ENOMEM)
            return oom(l);
        if (rc != 0)
            return rp_errf(l->err, l->cap, RP_EPARSE, "%s/function.json: bindings[%zu].route: %s",
                           f->name, f->trigger, why);
        r->fn = f;
        r->trigger = t;
        a->nroutes++;
        /* Report on the later function, naming the earlier one: byte order, as loaded. */
        for (size_t j = 0; j + 1 < a->nroutes; j++) {
            const fnapp_route *o = &a->routes[j];
            if ((o->trigger->methods & t->methods) != 0 && rp_route_conflict(o->tmpl, r->tmpl))
                return rp_errf(l->err, l->cap, RP_EPARSE,
                               "%s/function.json: bindings[%zu].route: conflicts with the route "
                               "of function '%s'",
                               f->name, f->trigger, o->fn->name);
        }
    }
    /* Insertion sort: stable, so ties keep name order; n is at most RP_FN_FUNCTIONS_MAX. */
    for (size_t i = 1; i < a->nroutes; i++) {
        fnapp_route x = a->routes[i];
        size_t j = i;
        while (j > 0 && rp_route_order(a->routes[j - 1].tmpl, x.tmpl) > 0) {
            a->routes[j] = a->routes[j - 1];
            j--;
        }
        a->routes[j] = x;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

int rp_fn_app_load(int dirfd, rp_fn_app **out, char *err, size_t cap)
{
    loader l = {.dirfd = dirfd, .err = err, .cap = cap};
    rp_fn_app *a = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if ((l.buf = rp_malloc(RP_FN_FILE_MAX + 1)) == NULL || (a = rp_calloc(1, sizeof(*a))) == NULL) {
        rc = oom(&l);
        goto out;
    }
    rc = read_file(&l, dirfd, "host.json", "host.json", &n);
    if (rc == RP_ENOENT)
        rc = rp_errf(err, cap, RP_ENOENT, "host.json: not found: a function app needs one");
    if (rc != 0)
        goto out;
    if ((rc = rp_fn_host_parse(l.buf, n, &a->host, err, cap)) != 0)
        goto out;
    if (a->host->handler == NULL) {
        rc = rp_errf(err, cap, RP_EPARSE,
                     "host.json: customHandler: required (rampart runs custom handlers only)");
        goto out;
    }
    if ((rc = check_handler(&l, a)) != 0 || (rc = load_functions(&l, a)) != 0 ||
        (rc = build_routes(&l, a)) != 0)
        goto out;
    *out = a;
    a = NULL;
out:
    rp_fn_app_free(a);
    rp_free(l.buf);
    return rc;
}

void rp_fn_app_free(rp_fn_app *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nroutes; i++)
        rp_route_free(a->routes[i].tmpl);
    rp_free(a->routes);
    for (size_t i = 0; i < a->nfns; i++)
        rp_fn_function_free(a->fns[i]);
    rp_free(a->fns);
    rp_fn_host_free(a->host);
    rp_free(a);
}

/* ---- lookups ------------------------------------------------------------------------------ */

const rp_fn_host *rp_fn_app_host(const rp_fn_app *a)
{
    return a->host;
}

size_t rp_fn_app_count(const rp_fn_app *a)
{
    return a->nfns;
}

const rp_fn_function *rp_fn_app_function(const rp_fn_app *a, size_t i)
{
    return i < a->nfns ? a->fns[i] : NULL;
}

const rp_fn_function *rp_fn_app_find(const rp_fn_app *a, const char *name)
{
    for (size_t i = 0; i < a->nfns; i++)
        if (strcasecmp(a->fns[i]->name, name) == 0)
            return a->fns[i];
    return NULL;
}

const char *rp_fn_app_workdir(const rp_fn_app *a)
{
    return a->host->handler->workdir;
}

/*
 * Strips prefix's segments from path[0..n) ignoring ASCII case: 1 with the rest in *rest /
 * *rn ("" or starting with '/'), or 0 when the path is not under the prefix.
 */
static int strip_prefix(const char *prefix, const char *path, size_t n, const char **rest,
                        size_t *rn)
{
    size_t i = 0;

    if (prefix[0] == '\0') {
        *rest = path;
        *rn = n;
        return 1;
    }
    for (const char *s = prefix;;) {
        size_t k = strcspn(s, "/");
        /* the '/' is optional before the first segment only, as in rp_route_match */
        if (i < n && path[i] == '/')
            i++;
        else if (s != prefix)
            return 0;
        if (n - i < k)
            return 0;
        for (size_t j = 0; j < k; j++)
            if (rp_lower(path[i + j]) != rp_lower(s[j]))
                return 0;
        i += k;
        /* a whole segment: "/apix" is not under "api" */
        if (i < n && path[i] != '/')
            return 0;
        if (s[k] == '\0')
            break;
        s += k + 1;
    }
    *rest = path + i;
    *rn = n - i;
    return 1;
}

int rp_fn_app_match(const rp_fn_app *a, unsigned method, const char *path, size_t n, rp_fn_match *m)
{
    const char *rest;
    size_t rn;

    m->fn = NULL;
    m->trigger = NULL;
    m->nparams = 0;
    if (path == NULL || !strip_prefix(a->host->route_prefix, path, n, &rest, &rn))
        return 0;
    for (size_t i = 0; i < a->nroutes; i++) {
        const fnapp_route *r = &a->routes[i];
        if ((r->trigger->methods & method) == 0)
            continue;
        if (rp_route_match(r->tmpl, rest, rn, m->params, RP_ROUTE_MAX_PARAMS, &m->nparams) == 1) {
            m->fn = r->fn;
            m->trigger = r->trigger;
            return 1;
        }
    }
    m->nparams = 0;
    return 0;
}

/* ---- the command line --------------------------------------------------------------------- */

/* Writes into out[cap] while it fits; with out NULL it only counts. */
typedef struct writer {
    char *out;
    size_t cap, len;
    int full;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->full)
        return;
    if (w->out == NULL) {
        w->full = rp_size_add(w->len, n, &w->len) != 0;
        return;
    }
    /* keep a byte for the NUL */
    if (n >= w->cap - w->len) {
        w->full = 1;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

/* s[0..n) inside a single-quoted word: the shell reads everything literally but a quote,
 * which is written as end quote, escaped quote, new quote. */
static void put_quoted(writer *w, const char *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\'')
            continue;
        put(w, s + run, i - run);
        put(w, "'\\''", 4);
        run = i + 1;
    }
    put(w, s + run, n - run);
}

static void word_begin(writer *w)
{
    if (w->len > 0)
        put(w, " ", 1);
    put(w, "'", 1);
}

static void word_end(writer *w)
{
    put(w, "'", 1);
}

/* A path in the app (relative to the root) as the handler's working directory reaches it:
 * "./x" from the root, "../x" from one level down, and so on (workdir has no link, "." or ".."
 * segment: load walked it, fnconfig normalised it). */
static void put_app_path(writer *w, const char *workdir, const char *rel)
{
    int depth = 0;

    for (const char *s = workdir; *s != '\0';) {
        size_t k = strcspn(s, "/");
        if (k > 0 && !(k == 1 && s[0] == '.'))
            depth++;
        s += k;
        if (*s == '/')
            s++;
    }
    word_begin(w);
    if (depth == 0)
        put(w, "./", 2);
    for (int i = 0; i < depth; i++)
        put(w, "../", 3);
    put_quoted(w, rel, strlen(rel));
    word_end(w);
}

/* The value of setting name[0..n) in env, or NULL. */
static const char *setting(const char *const *env, size_t nenv, const char *name, size_t n)
{
    if (n == 0 || memchr(name, '=', n) != NULL)
        return NULL;
    for (size_t i = 0; i < nenv; i++)
        if (env[i] != NULL && strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

/*
 * One argument with %NAME% expanded, as .NET's Environment.ExpandEnvironmentVariables does on
 * Unix: from each '%', the text up to the next '%' is a name; when it is set, "%NAME%" becomes
 * its value and the scan goes on after the closing '%'; when not, the text is kept and the
 * closing '%' may open the next name ("%A%B%" with only B set gives "%AB-value").
 */
static void put_arg(writer *w, const char *arg, const char *const *env, size_t nenv)
{
    size_t n = strlen(arg), last = 0;

    word_begin(w);
    for (;;) {
        const char *pct = last + 1 < n ? memchr(arg + last + 1, '%', n - last - 1) : NULL;
        size_t pos;
        if (pct == NULL)
            break;
        pos = (size_t)(pct - arg);
        if (arg[last] == '%') {
            const char *v = setting(env, nenv, arg + last + 1, pos - last - 1);
            if (v != NULL) {
                put_quoted(w, v, strlen(v));
                last = pos + 1;
                continue;
            }
        }
        put_quoted(w, arg + last, pos - last);
        last = pos;
    }
    put_quoted(w, arg + last, n - last);
    word_end(w);
}

static void build_command(const rp_fn_app *a, const char *const *env, size_t nenv, writer *w)
{
    const rp_fn_handler *hd = a->host->handler;

    if (a->exe_local) {
        put_app_path(w, hd->workdir, hd->exe);
    } else {
        word_begin(w);
        put_quoted(w, hd->exe, strlen(hd->exe));
        word_end(w);
    }
    for (size_t i = 0; i < hd->nargs; i++)
        put_arg(w, hd->args[i], env, nenv);
    if (hd->worker_path != NULL)
        put_app_path(w, hd->workdir, hd->worker_path);
    for (size_t i = 0; i < hd->nworker_args; i++)
        put_arg(w, hd->worker_args[i], env, nenv);
}

/* The command's length with no setting expanded (load's bound). */
static int count_command(const rp_fn_app *a, size_t *len)
{
    writer w = {0};

    build_command(a, NULL, 0, &w);
    *len = w.len;
    return w.full ? RP_ETOOBIG : 0;
}

int rp_fn_sh_word(const char *s, char *out, size_t cap, size_t *len)
{
    writer w = {.out = out, .cap = cap, .len = *len};

    if (*len >= cap)
        return RP_ETOOBIG;
    put(&w, "'", 1);
    put_quoted(&w, s, strlen(s));
    put(&w, "'", 1);
    if (w.full) {
        out[*len] = '\0';
        return RP_ETOOBIG;
    }
    out[w.len] = '\0';
    *len = w.len;
    return 0;
}

int rp_fn_app_command(const rp_fn_app *a, const char *const *env, size_t nenv, char *out,
                      size_t cap)
{
    writer w = {.out = out, .cap = cap};

    if (cap == 0)
        return RP_ETOOBIG;
    build_command(a, env, nenv, &w);
    if (w.full) {
        out[0] = '\0';
        return RP_ETOOBIG;
    }
    out[w.len] = '\0';
    return 0;
}
