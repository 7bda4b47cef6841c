/*
 * scope_fuzz.c - libFuzzer driver for the parts of src/iam/rbac.c that see untrusted input:
 * scope validation and ancestry, action-pattern matching, the check itself, and (for inputs
 * that start with '{') custom role definitions.
 *
 * The input is up to three fields separated by '\n': a scope (raw bytes, NUL included), an
 * action pattern and an action. Besides memory safety, the driver checks with abort():
 *   - rp_rbac_scope_valid agrees with a naive reference (split on '/', test each segment);
 *   - on a valid scope: it is its own ancestor and "/" is its ancestor; every prefix made of
 *     whole type/name pairs is valid, is an ancestor and (if shorter) not a descendant; upper-
 *     and lower-case copies are valid and ancestors of each other; appending "/x" makes it
 *     invalid, appending "/x/y" keeps it valid and below it, and appending one character to
 *     the last name gives a valid sibling that it is not an ancestor of ("/vaults/v" is not
 *     an ancestor of "/vaults/vx");
 *   - rp_rbac_action_match agrees with a memoised recursive reference, "*" matches every
 *     action, every string matches itself, and case on either side does not matter;
 *   - rp_rbac_check on a fixed set agrees with what its assignments should grant, never
 *     allows a malformed scope or action, and fills the decision consistently;
 *   - a role definition that is accepted round-trips through rp_rbac_role_to_json into a
 *     fresh set and comes back identical.
 * Corpus: tests/fuzz/corpus/scope/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "iam/rbac.h"

#define MAX_IN  4096
#define REF_MAX 64 /* longest pattern and action given to the exponential-free reference */

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- reference scope validator: split first, then judge each segment ---- */

static int ref_scope_valid(const char *s, size_t n)
{
    static size_t starts[MAX_IN], lens[MAX_IN];
    size_t nseg = 0;

    if (n == 0 || n > RP_RBAC_SCOPE_MAX || s[0] != '/')
        return 0;
    if (n == 1)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/') {
            starts[nseg] = i + 1;
            lens[nseg] = 0;
            nseg++;
        } else {
            lens[nseg - 1]++;
        }
    }
    if (nseg % 2 != 0)
        return 0;
    for (size_t k = 0; k < nseg; k++) {
        const char *p = s + starts[k];
        size_t l = lens[k];

        if (k % 2 == 0) {
            if (l < 1 || l > 64 || !is_alpha(p[0]))
                return 0;
            for (size_t i = 0; i < l; i++)
                if (!is_alpha(p[i]) && !is_digit(p[i]))
                    return 0;
        } else {
            if (l < 1 || l > 127 || (l == 1 && p[0] == '.') ||
                (l == 2 && p[0] == '.' && p[1] == '.'))
                return 0;
            for (size_t i = 0; i < l; i++)
                if (!is_alpha(p[i]) && !is_digit(p[i]) && (p[i] == '\0' || !strchr("._~-", p[i])))
                    return 0;
        }
    }
    return 1;
}

/* ---- reference matcher: the definition, memoised ---- */

static const char *rp, *ra;
static size_t rpn, ran;
static signed char memo[REF_MAX + 2][REF_MAX + 2];

static int ref_match(size_t pi, size_t ai)
{
    int r = 0;

    if (memo[pi][ai] >= 0)
        return memo[pi][ai];
    if (pi == rpn) {
        r = ai == ran;
    } else if (rp[pi] == '*') {
        /* any run, possibly empty, '/' included */
        for (size_t k = ai; k <= ran && !r; k++)
            r = ref_match(pi + 1, k);
        /* a whole-segment star may vanish together with the '/' after it */
        if (!r && pi > 0 && pi + 1 < rpn && rp[pi - 1] == '/' && rp[pi + 1] == '/')
            r = ref_match(pi + 2, ai);
    } else {
        r = ai < ran && lower(rp[pi]) == lower(ra[ai]) && ref_match(pi + 1, ai + 1);
    }
    memo[pi][ai] = (signed char)r;
    return r;
}

static int ref_action_match(const char *p, const char *a)
{
    rp = p;
    ra = a;
    rpn = strlen(p);
    ran = strlen(a);
    memset(memo, -1, sizeof(memo));
    return ref_match(0, 0);
}

static int action_well_formed(const char *a)
{
    size_t n = strlen(a);

    if (n == 0 || n > RP_RBAC_ACTION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alpha(a[i]) && !is_digit(a[i]) && (a[i] == '\0' || !strchr("./_-", a[i])))
            return 0;
    return 1;
}

/* ---- checks ---- */

static void check_valid_scope(const char *s, size_t n)
{
    static char buf[RP_RBAC_SCOPE_MAX + 8], up[RP_RBAC_SCOPE_MAX + 8], lo[RP_RBAC_SCOPE_MAX + 8];
    size_t nseg = 0;

    if (!rp_rbac_scope_is_ancestor(s, s) || !rp_rbac_scope_is_ancestor("/", s))
        abort();
    /* every whole-pair prefix */
    for (size_t k = 0; k <= n; k++) {
        if (k == n || s[k] == '/') {
            if (k > 0 && nseg % 2 == 0) {
                memcpy(buf, s, k);
                buf[k] = '\0';
                if (!rp_rbac_scope_valid(buf, k) || !rp_rbac_scope_is_ancestor(buf, s))
                    abort();
                if (k < n && rp_rbac_scope_is_ancestor(s, buf))
                    abort();
            }
            nseg++;
        }
    }
    /* case */
    for (size_t i = 0; i <= n; i++) {
        up[i] = upper(s[i]);
        lo[i] = lower(s[i]);
    }
    if (!rp_rbac_scope_valid(up, n) || !rp_rbac_scope_valid(lo, n) ||
        !rp_rbac_scope_is_ancestor(up, lo) || !rp_rbac_scope_is_ancestor(lo, up))
        abort();
    /* one more segment: odd, invalid; one more pair: valid, below */
    if (n == 1) {
        if (rp_rbac_scope_valid("/x", 2) || !rp_rbac_scope_valid("/x/y", 4))
            abort();
        return;
    }
    if (n + 2 <= RP_RBAC_SCOPE_MAX) {
        memcpy(buf, s, n);
        memcpy(buf + n, "/x", 3);
        if (rp_rbac_scope_valid(buf, n + 2))
            abort();
    }
    if (n + 4 <= RP_RBAC_SCOPE_MAX) {
        memcpy(buf, s, n);
        memcpy(buf + n, "/x/y", 5);
        if (!rp_rbac_scope_valid(buf, n + 4) || !rp_rbac_scope_is_ancestor(s, buf) ||
            rp_rbac_scope_is_ancestor(buf, s))
            abort();
    }
    /* a sibling whose name extends ours */
    {
        size_t last = n;
        while (s[last - 1] != '/')
            last--;
        if (n + 1 <= RP_RBAC_SCOPE_MAX && n - last < 127) {
            memcpy(buf, s, n);
            memcpy(buf + n, "x", 2);
            if (!rp_rbac_scope_valid(buf, n + 1) || rp_rbac_scope_is_ancestor(s, buf) ||
                rp_rbac_scope_is_ancestor(buf, s))
                abort();
        }
    }
}

static void check_match(const char *p, const char *a)
{
    static char up[MAX_IN + 1], lo[MAX_IN + 1];
    int m = rp_rbac_action_match(p, a);
    size_t pn = strlen(p), an = strlen(a);

    if (pn <= REF_MAX && an <= REF_MAX && m != ref_action_match(p, a))
        abort();
    if (!rp_rbac_action_match("*", a) || !rp_rbac_action_match(a, a) || !rp_rbac_action_match(p, p))
        abort();
    for (size_t i = 0; i <= pn; i++)
        up[i] = upper(p[i]);
    for (size_t i = 0; i <= an; i++)
        lo[i] = lower(a[i]);
    if (rp_rbac_action_match(up, lo) != m)
        abort();
}

static rp_rbac *fixed_set(void)
{
    static rp_rbac *r;

    if (r == NULL) {
        if (rp_rbac_create(&r) != 0 ||
            rp_rbac_add_assignment(r, "a-owner", "owner", "Owner", "/", 0, 0) != 0 ||
            rp_rbac_add_assignment(r, "a-kv", "kv", "Key Vault Secrets User", "/vaults/v", 0, 0) !=
                0 ||
            rp_rbac_add_assignment(r, "a-old", "kv", "Owner", "/", 0, 1000) != 0)
            abort();
    }
    return r;
}

static void check_decisions(const char *scope, const char *action)
{
    static const char *const kv_pats[] = {"Microsoft.KeyVault/vaults/secrets/getSecret/action",
                                          "Microsoft.KeyVault/vaults/secrets/readMetadata/action"};
    rp_rbac *r = fixed_set();
    rp_rbac_decision why;
    int ok = action_well_formed(action) &&
             rp_rbac_scope_valid(scope, strnlen(scope, RP_RBAC_SCOPE_MAX + 1));
    int kv_want;

    for (int data = 0; data <= 1; data++) {
        int got = rp_rbac_check(r, "owner", action, data, scope, 5000, &why);
        if (got != (ok && !data) || why.allowed != got || (got != (why.assignment_id != NULL)))
            abort();
        if (got && (strcmp(why.assignment_id, "a-owner") != 0 ||
                    strcmp(why.assignment_scope, "/") != 0 || strcmp(why.role_name, "Owner") != 0))
            abort();
    }
    kv_want =
        ok && rp_rbac_scope_is_ancestor("/vaults/v", scope) &&
        (rp_rbac_action_match(kv_pats[0], action) || rp_rbac_action_match(kv_pats[1], action));
    if (rp_rbac_check(r, "kv", action, 1, scope, 5000, &why) != kv_want)
        abort();
    /* the expired Owner grant is gone at 5000 and live at 999 */
    if (rp_rbac_check(r, "kv", action, 0, scope, 5000, NULL) != 0 ||
        rp_rbac_check(r, "kv", action, 0, scope, 999, NULL) != ok)
        abort();
    if (rp_rbac_check(r, "nobody", action, 0, scope, 5000, &why) != 0 || why.allowed != 0)
        abort();
}

static void check_role_json(const uint8_t *d, size_t n)
{
    rp_rbac *r = NULL, *r2 = NULL;
    json_t *def = json_loadb((const char *)d, n, 0, NULL), *out = NULL, *out2 = NULL;
    char err[256];
    int rc;

    if (def == NULL)
        return;
    if (rp_rbac_create(&r) != 0 || rp_rbac_create(&r2) != 0)
        abort();
    rc = rp_rbac_add_role_json(r, def, 0, err, sizeof(err));
    if (rc == 0) {
        const rp_rbac_role *role = rp_rbac_role_at(r, rp_rbac_role_count(r) - 1);
        out = rp_rbac_role_to_json(role);
        if (out == NULL || rp_rbac_add_role_json(r2, out, 0, err, sizeof(err)) != 0)
            abort();
        out2 = rp_rbac_role_to_json(rp_rbac_role_find(r2, rp_rbac_role_id(role)));
        if (out2 == NULL || !json_equal(out, out2))
            abort();
    } else if ((rc != RP_EINVAL && rc != RP_EEXIST) || err[0] == '\0') {
        abort();
    }
    json_decref(out2);
    json_decref(out);
    json_decref(def);
    rp_rbac_free(r2);
    rp_rbac_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static char scope[MAX_IN + 1], pattern[MAX_IN + 1], action[MAX_IN + 1];
    const uint8_t *f[3] = {d, NULL, NULL};
    size_t fl[3] = {n, 0, 0};
    int valid;

    if (n > MAX_IN)
        return 0;
    if (n > 0 && d[0] == '{')
        check_role_json(d, n);
    /* split into scope \n pattern \n action */
    for (int k = 0; k < 2; k++) {
        const uint8_t *nl = memchr(f[k], '\n', fl[k]);
        if (nl == NULL)
            break;
        f[k + 1] = nl + 1;
        fl[k + 1] = fl[k] - (size_t)(nl + 1 - f[k]);
        fl[k] = (size_t)(nl - f[k]);
    }
    memcpy(scope, f[0], fl[0]);
    scope[fl[0]] = '\0';
    memcpy(pattern, f[1] ? (const char *)f[1] : "", fl[1]);
    pattern[fl[1]] = '\0';
    memcpy(action, f[2] ? (const char *)f[2] : "", fl[2]);
    action[fl[2]] = '\0';

    /* the raw bytes, NUL included, against the reference */
    valid = rp_rbac_scope_valid(scope, fl[0]);
    if (valid != ref_scope_valid(scope, fl[0]))
        abort();
    if (valid)
        check_valid_scope(scope, fl[0]);
    /* ancestry on anything is memory-safe */
    (void)rp_rbac_scope_is_ancestor(scope, pattern);
    (void)rp_rbac_scope_is_ancestor(pattern, scope);

    check_match(pattern, action);
    check_match(action, pattern);
    check_decisions(scope, action);
    check_decisions(scope, pattern);
    return 0;
}
