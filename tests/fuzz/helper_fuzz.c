/*
 * helper_fuzz.c - libFuzzer driver for the privileged helper's request check
 * (src/sandbox/helper.c): rp_helper_check on raw bytes, as they would arrive on the helper's
 * socket from a server that may be compromised, and rp_helper_below on what it accepts.
 *
 * Input: the bytes of one request (an rp_helper_req, sizeof(rp_helper_req) bytes; any other
 * length must be refused). The same bytes are also checked laid over a zeroed request of the
 * right size (truncated or zero-padded), so that mutations that change the length still reach
 * the checks past the size. The policy is fixed: apps below APPS, uids UID_MIN..UID_MAX, the
 * helper root (and, once more, not root). Corpus: tests/fuzz/corpus/helper/.
 *
 * Invariants checked with abort():
 *   - the result is 0, RP_EPARSE or RP_EPERM; a refusal leaves a non-empty, terminated reason;
 *     a length other than sizeof(rp_helper_req) is RP_EPARSE; the check is deterministic;
 *   - an accepted request is the input byte for byte, with the magic, a known op and every
 *     string terminated within its field;
 *   - an accepted SPAWN has a name of 1-64 [a-z0-9-], a release and a run directory below APPS
 *     (rp_helper_below, and a naive reference of it), a run directory APPS/X/ then
 *     "run" or "run.1".."run.9", a uid in range, no layer the policy lacks, no unknown require
 *     bit and isolated 0 or 1; a KILL a positive pid and SIGTERM or SIGKILL; an UNCGROUP an app
 *     name and a run directory; an RMRUN a run directory;
 *   - whatever the root policy accepts, the non-root one accepts too (it only drops the uid
 *     check), and what they refuse differently is a SPAWN with a uid out of range;
 *   - rp_helper_below agrees with the reference on the input's strings, whatever they are.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sandbox/helper.h"
#include "sandbox/sandbox.h"

#define MAGIC   0x72706831u /* "rph1" */
#define APPS    "/srv/rampart/apps"
#define UID_MIN 1879048192u
#define UID_MAX (UID_MIN + 65535u)
#define LAYERS  (RP_SANDBOX_UID | RP_SANDBOX_PIDS | RP_SANDBOX_SECCOMP | RP_SANDBOX_BWRAP)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static const rp_helper_policy root_pol = {APPS, UID_MIN, UID_MAX, 1, LAYERS};
static const rp_helper_policy user_pol = {APPS, UID_MIN, UID_MAX, 0, LAYERS};

/* The reference: APPS, '/', then one or more components, none "", "." or "..". */
static int below_ref(const char *apps, const char *path)
{
    size_t n = strlen(apps), start;

    if (n == 0 || apps[0] != '/' || strlen(path) <= n + 1 || memcmp(path, apps, n) != 0 ||
        path[n] != '/')
        return 0;
    start = n + 1;
    for (size_t i = start;; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        if (i == start || (i - start == 1 && path[start] == '.') ||
            (i - start == 2 && path[start] == '.' && path[start + 1] == '.'))
            return 0;
        if (path[i] == '\0')
            return 1;
        start = i + 1;
    }
}

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int name_ref(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > RP_HELPER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyz0123456789-", s[i]) == NULL)
            return 0;
    return 1;
}

static int run_ref(const char *run)
{
    const char *last = strrchr(run, '/');
    size_t slashes = 0;

    if (!below_ref(APPS, run) || last == NULL)
        return 0;
    for (const char *c = run + strlen(APPS); *c; c++)
        slashes += *c == '/';
    if (slashes != 2) /* APPS/X/run: an app's own, nothing deeper or shallower */
        return 0;
    last++;
    return strcmp(last, "run") == 0 ||
           (strlen(last) == 5 && memcmp(last, "run.", 4) == 0 && last[4] >= '1' && last[4] <= '9');
}

static void below_both(const char *apps, const char *path)
{
    int got = rp_helper_below(apps, path);

    if ((got != 0 && got != 1) || got != below_ref(apps, path))
        abort();
}

/* Checks buf[n] against p; returns the result after checking its invariants. */
static int check_one(const rp_helper_policy *p, const void *buf, size_t n, rp_helper_req *out)
{
    char why[RP_HELPER_WHY_MAX], why2[RP_HELPER_WHY_MAX];
    rp_helper_req again;
    int rc, rc2;

    memset(why, 'x', sizeof(why));
    rc = rp_helper_check(p, buf, n, out, why, sizeof(why));
    memset(why2, 'y', sizeof(why2));
    rc2 = rp_helper_check(p, buf, n, &again, why2, sizeof(why2));
    if (rc != rc2)
        abort();
    if (n != sizeof(rp_helper_req) && rc != RP_EPARSE)
        abort();
    if (rc != 0) {
        if ((rc != RP_EPARSE && rc != RP_EPERM) || memchr(why, '\0', sizeof(why)) == NULL ||
            why[0] == '\0' || strcmp(why, why2) != 0)
            abort();
        return rc;
    }
    if (memcmp(out, buf, sizeof(*out)) != 0 || memcmp(out, &again, sizeof(*out)) != 0)
        abort();
    if (out->magic != MAGIC || !terminated(out->name, sizeof(out->name)) ||
        !terminated(out->release, sizeof(out->release)) || !terminated(out->run, sizeof(out->run)))
        abort();
    switch (out->op) {
    case RP_HELPER_OP_SPAWN:
        if (!name_ref(out->name) || !below_ref(APPS, out->release) || !run_ref(out->run))
            abort();
        if (!rp_helper_below(p->apps_dir, out->release) || !rp_helper_below(p->apps_dir, out->run))
            abort();
        if (p->root && (out->uid < UID_MIN || out->uid > UID_MAX))
            abort();
        if ((out->layers & ~LAYERS) != 0 || (out->require & ~RP_SANDBOX_ALL) != 0 ||
            out->isolated > 1)
            abort();
        break;
    case RP_HELPER_OP_KILL:
        if (out->pid <= 0 || (out->sig != SIGTERM && out->sig != SIGKILL))
            abort();
        break;
    case RP_HELPER_OP_UNCGROUP:
        if (!name_ref(out->name) || !run_ref(out->run) || !rp_helper_below(p->apps_dir, out->run))
            abort();
        break;
    case RP_HELPER_OP_RMRUN:
        if (!run_ref(out->run) || !rp_helper_below(p->apps_dir, out->run))
            abort();
        break;
    default: abort();
    }
    return 0;
}

static void check_req(const void *buf, size_t n)
{
    rp_helper_req a, b;
    int rc_root = check_one(&root_pol, buf, n, &a);
    int rc_user = check_one(&user_pol, buf, n, &b);

    if (rc_root == 0 && rc_user != 0)
        abort();
    if (rc_root != rc_user && !(rc_root == RP_EPERM && rc_user == 0 && b.op == RP_HELPER_OP_SPAWN &&
                                (b.uid < UID_MIN || b.uid > UID_MAX)))
        abort();
    if (rc_user == 0) {
        /* Whatever was accepted, below agrees with the reference on its paths. */
        below_both(APPS, b.release);
        below_both(APPS, b.run);
        below_both(APPS, b.name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static rp_helper_req laid;
    static char path[RP_HELPER_PATH_MAX];
    size_t k = n < sizeof(laid) ? n : sizeof(laid);

    check_req(d, n);
    memset(&laid, 0, sizeof(laid));
    memcpy(&laid, d, k);
    check_req(&laid, sizeof(laid));
    /* Below on the string fields as they are (when terminated), and on the raw input. */
    if (terminated(laid.release, sizeof(laid.release)))
        below_both(APPS, laid.release);
    if (terminated(laid.run, sizeof(laid.run)))
        below_both(APPS, laid.run);
    k = n < sizeof(path) - 1 ? n : sizeof(path) - 1;
    memcpy(path, d, k);
    path[k] = '\0';
    below_both(APPS, path);
    below_both("/", path);
    return 0;
}
