/*
 * rbac.c - role definitions, role assignments and the access decision (model in rbac.h).
 *
 * Workload: a set is built once per iam snapshot (a few dozen roles, up to thousands of
 * assignments) and then answers rp_rbac_check on every authorized request from every loop
 * thread. So the build does the work: strings are validated and copied into one arena owned by
 * the set, patterns are lower-cased, assignments are chained per principal behind an
 * open-addressing hash table, and a check is a hash lookup plus, for each of the principal's
 * assignments, two integer comparisons, a scope prefix comparison and a few pattern matches
 * over the bytes of the action, with no allocation and no lock.
 *
 * Pattern matching is a glob with '*' only, done with the classic single-backtrack-point scan:
 * on a mismatch, go back to the latest '*' and let it swallow one more character. Keeping only
 * the latest '*' is enough because an earlier one could only move the text after it further
 * right, and the later '*' absorbs that. A '*' alone between two '/' may also match no
 * segment (Azure's reading, which Key Vault Reader's "vaults/" "*" "/read" relies on to read
 * the vault itself): such a star, with the '/' after it, is "(any run ending in '/')?", i.e. a
 * star that may only resume right after a '/' of the action; the same argument holds, so the
 * same scan does.
 * Cost O(len(pattern) * len(action)) at worst, linear in practice.
 *
 * Assignments live in one array; by_principal maps a principal id to the first and last of
 * its assignments, which are chained through asg.next in the order they were added (so the
 * decision names the earliest granting assignment, deterministically). by_id catches
 * duplicate assignment ids. Both tables are kept at most half full and rebuilt when grown.
 */
#include "iam/rbac.h"
#include "base/alloc.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NIL         UINT32_MAX
#define ARENA_BLOCK (32 * 1024)
#define GUID_LEN    36
#define ARM_PREFIX  "/providers/Microsoft.Authorization/roleDefinitions/"
#define ARM_TYPE    "Microsoft.Authorization/roleDefinitions"
#define RA_WRITE    "Microsoft.Authorization/roleAssignments/write"
#define RA_DELETE   "Microsoft.Authorization/roleAssignments/delete"

enum { L_ACT, L_NOT_ACT, L_DATA, L_NOT_DATA, L_COUNT };

static const char *const list_key[L_COUNT] = {"actions", "notActions", "dataActions",
                                              "notDataActions"};

typedef struct pat {
    const char *orig; /* as given, for rp_rbac_role_to_json */
    const char *lc;   /* lower-cased, for matching */
    size_t len;
} pat;

typedef struct plist {
    pat *v;
    size_t n;
} plist;

typedef struct perm {
    plist l[L_COUNT];
} perm;

struct rp_rbac_role {
    const char *id; /* lower-case GUID */
    const char *name;
    const char *description; /* "" when none */
    int builtin;
    int64_t max_activation_s;
    perm *perms;
    size_t nperms;
    const char **scopes;
    size_t nscopes;
    const char *const *delegable; /* static (built-ins only); NULL = unconditioned */
    size_t ndelegable;
};

typedef struct asg {
    const char *id;
    const char *principal;
    const char *scope;
    size_t scope_len;
    const rp_rbac_role *role;
    int64_t not_before;
    int64_t expires_at;
    uint32_t next; /* next assignment of the same principal, or NIL */
} asg;

typedef struct pslot {
    uint32_t hash;
    uint32_t head; /* NIL: empty slot */
    uint32_t tail;
} pslot;

typedef struct islot {
    uint32_t hash;
    uint32_t idx; /* NIL: empty slot */
} islot;

struct rp_rbac {
    rp_arena *arena;
    rp_rbac_role **roles;
    size_t nroles, roles_cap;
    asg *asgs;
    size_t nasgs, asgs_cap;
    pslot *by_principal;
    size_t pcap, nprincipals;
    islot *by_id;
    size_t icap;
};

/* ---- small helpers ---- */

/* Copies at most cap-1 bytes of s for an error message, printable ASCII only. */
static const char *safe_text(const char *s, char *dst, size_t cap)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
        dst[i] = (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"') ? s[i] : '?';
    dst[i] = '\0';
    return dst;
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s != '\0')
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int eq_nocase(const char *a, const char *b)
{
    while (*a != '\0' && rp_lower(*a) == rp_lower(*b)) {
        a++;
        b++;
    }
    return rp_lower(*a) == rp_lower(*b);
}

static int has_prefix_nocase(const char *s, const char *prefix)
{
    while (*prefix != '\0') {
        if (rp_lower(*s) != rp_lower(*prefix))
            return 0;
        s++;
        prefix++;
    }
    return 1;
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

/* Characters of an action asked about; a pattern may also hold '*'. */
static int is_action_char(char c)
{
    return is_alnum(c) || c == '.' || c == '/' || c == '_' || c == '-';
}

static int is_guid(const char *s, size_t n)
{
    if (n != GUID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (rp_hex_value((unsigned char)s[i]) < 0) {
            return 0;
        }
    }
    return 1;
}

/* Strips the ARM form of a role id. */
static const char *strip_arm(const char *s)
{
    return has_prefix_nocase(s, ARM_PREFIX) ? s + strlen(ARM_PREFIX) : s;
}

static char *arena_lower(rp_arena *a, const char *s, size_t n)
{
    char *d = rp_arena_alloc(a, n + 1);

    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = rp_lower(s[i]);
    d[n] = '\0';
    return d;
}

/* ---- scopes ---- */

int rp_rbac_scope_valid(const char *s, size_t n)
{
    size_t i = 1, nseg = 0;

    if (s == NULL || n == 0 || n > RP_RBAC_SCOPE_MAX || s[0] != '/')
        return 0;
    if (n == 1)
        return 1;
    for (;;) {
        size_t start = i, len;

        while (i < n && s[i] != '/')
            i++;
        len = i - start;
        if (nseg % 2 == 0) {
            /* collection type */
            if (len == 0 || len > RP_RBAC_TYPE_MAX || !is_alpha(s[start]))
                return 0;
            for (size_t k = start + 1; k < i; k++)
                if (!is_alnum(s[k]))
                    return 0;
        } else {
            /* resource name */
            if (len == 0 || len > RP_RBAC_NAME_MAX)
                return 0;
            if (s[start] == '.' && (len == 1 || (len == 2 && s[start + 1] == '.')))
                return 0;
            for (size_t k = start; k < i; k++)
                if (!is_alnum(s[k]) && s[k] != '.' && s[k] != '_' && s[k] != '~' && s[k] != '-')
                    return 0;
        }
        nseg++;
        if (i == n)
            break;
        i++; /* the '/'; a trailing one leaves an empty segment, refused above */
    }
    return nseg % 2 == 0;
}

static int ancestor_n(const char *a, size_t an, const char *s, size_t sn)
{
    if (an == 1 && a[0] == '/')
        return 1;
    if (an == 0 || an > sn || (an < sn && s[an] != '/'))
        return 0;
    for (size_t i = 0; i < an; i++)
        if (rp_lower(a[i]) != rp_lower(s[i]))
            return 0;
    return 1;
}

int rp_rbac_scope_is_ancestor(const char *ancestor, const char *scope)
{
    if (ancestor == NULL || scope == NULL)
        return 0;
    return ancestor_n(ancestor, strlen(ancestor), scope, strlen(scope));
}

/* ---- action patterns ---- */

/*
 * The glob scan. fold = 1 compares case-insensitively; the hot path passes 0 with both sides
 * already lower-cased, and the compiler specialises the inlined copies.
 */
static inline int glob_scan(const char *p, size_t pn, const char *a, size_t an, int fold)
{
    size_t pi = 0, ai = 0, resume = SIZE_MAX, mark = 0;
    int seg = 0;

    for (;;) {
        if (pi < pn && p[pi] == '*') {
            /* A whole-segment star takes the '/' after it: "(any run ending in '/')?". It is
             * entered right after a '/' of the action (the pattern's '/' before it matched
             * one), so resuming here is the empty case. */
            seg = pi > 0 && pi + 1 < pn && p[pi - 1] == '/' && p[pi + 1] == '/';
            pi += seg ? 2 : 1;
            resume = pi;
            mark = ai;
            continue;
        }
        if (pi < pn && ai < an && (fold ? rp_lower(p[pi]) == rp_lower(a[ai]) : p[pi] == a[ai])) {
            pi++;
            ai++;
            continue;
        }
        if (pi == pn && ai == an)
            return 1;
        if (resume == SIZE_MAX)
            return 0;
        do {
            mark++;
        } while (seg && mark <= an && a[mark - 1] != '/');
        if (mark > an)
            return 0;
        pi = resume;
        ai = mark;
    }
}

int rp_rbac_action_match(const char *pattern, const char *action)
{
    if (pattern == NULL || action == NULL)
        return 0;
    return glob_scan(pattern, strlen(pattern), action, strlen(action), 1);
}

static int pattern_ok(const char *s, size_t n)
{
    if (n == 0 || n > RP_RBAC_PATTERN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_action_char(s[i]) && s[i] != '*')
            return 0;
    return 1;
}

/* a: the action, lower-cased. */
static int list_match(const plist *l, const char *a, size_t an)
{
    for (size_t i = 0; i < l->n; i++)
        if (glob_scan(l->v[i].lc, l->v[i].len, a, an, 0))
            return 1;
    return 0;
}

static int role_grants(const rp_rbac_role *role, const char *a, size_t an, int data)
{
    int allow = data ? L_DATA : L_ACT;

    for (size_t b = 0; b < role->nperms; b++) {
        const perm *p = &role->perms[b];
        if (list_match(&p->l[allow], a, an) && !list_match(&p->l[allow + 1], a, an))
            return 1;
    }
    return 0;
}

/* ---- PIM activation durations (ISO 8601 "P[nD][T[nH][nM][nS]]") ---- */

static int parse_duration(const char *s, size_t n, int64_t *out)
{
    static const int64_t unit_s[] = {0, 86400, 3600, 60, 1};
    int64_t total = 0;
    int last = 0, in_time = 0, any = 0;
    size_t i = 1;

    if (n < 3 || s[0] != 'P')
        return RP_EINVAL;
    while (i < n) {
        int64_t v = 0;
        size_t digits = 0;
        int unit;

        if (s[i] == 'T') {
            if (in_time || i + 1 == n)
                return RP_EINVAL;
            in_time = 1;
            i++;
            continue;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (++digits > 6)
                return RP_EINVAL;
            v = v * 10 + (s[i++] - '0');
        }
        if (digits == 0 || i == n)
            return RP_EINVAL;
        switch (s[i]) {
        case 'D': unit = in_time ? -1 : 1; break;
        case 'H': unit = in_time ? 2 : -1; break;
        case 'M': unit = in_time ? 3 : -1; break; /* months are refused */
        case 'S': unit = in_time ? 4 : -1; break;
        default: unit = -1; break;
        }
        if (unit < 1 || unit <= last) /* unknown, or out of order */
            return RP_EINVAL;
        last = unit;
        total += v * unit_s[unit];
        any = 1;
        i++;
    }
    if (!any)
        return RP_EINVAL;
    *out = total;
    return 0;
}

static void format_duration(int64_t s, char *out, size_t cap)
{
    long long h = (long long)(s / 3600), m = (long long)(s % 3600 / 60), sec = (long long)(s % 60);
    size_t n = (size_t)snprintf(out, cap, "PT");

    if (h > 0 && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%lldH", h);
    if (m > 0 && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%lldM", m);
    if ((sec > 0 || s == 0) && n < cap)
        snprintf(out + n, cap - n, "%lldS", sec);
}

/* ---- building roles ---- */

static int roles_reserve(rp_rbac *r)
{
    rp_rbac_role **v;
    size_t cap, bytes;

    if (r->nroles >= RP_RBAC_ROLES_MAX)
        return RP_ETOOBIG;
    if (r->nroles < r->roles_cap)
        return 0;
    cap = r->roles_cap ? r->roles_cap * 2 : 64;
    if (rp_size_mul(cap, sizeof(*v), &bytes) != 0)
        return RP_ETOOBIG;
    v = rp_realloc(r->roles, bytes);
    if (v == NULL)
        return RP_ENOMEM;
    r->roles = v;
    r->roles_cap = cap;
    return 0;
}

/* RP_EEXIST naming the clash, or 0. */
static int role_unique(const rp_rbac *r, const char *id, const char *name, char *err, size_t errlen)
{
    char safe[RP_RBAC_ROLE_NAME_MAX + 1];

    for (size_t i = 0; i < r->nroles; i++) {
        if (eq_nocase(r->roles[i]->id, id))
            return rp_errf(err, errlen, RP_EEXIST, "id: a role with id %s exists", id);
        if (eq_nocase(r->roles[i]->name, name))
            return rp_errf(err, errlen, RP_EEXIST,
                           "properties.roleName: a role named \"%s\" exists",
                           safe_text(name, safe, sizeof(safe)));
    }
    return 0;
}

static int role_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > RP_RBAC_ROLE_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ' || is_guid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] >= 0x7F)
            return 0;
    return 1;
}

static int pat_set(rp_rbac *r, pat *p, const char *orig_static, const char *s, size_t n)
{
    p->orig = orig_static != NULL ? orig_static : rp_arena_strndup(r->arena, s, n);
    p->lc = arena_lower(r->arena, s, n);
    p->len = n;
    return (p->orig == NULL || p->lc == NULL) ? RP_ENOMEM : 0;
}

static size_t list_len(const char *const *l)
{
    size_t n = 0;

    while (l != NULL && l[n] != NULL)
        n++;
    return n;
}

static int add_builtin(rp_rbac *r, const rp__rbac_builtin *b)
{
    const char *const *lists[L_COUNT] = {b->actions, b->not_actions, b->data_actions,
                                         b->not_data_actions};
    rp_rbac_role *role;
    perm *p;
    int rc;

    if (b->id == NULL || b->name == NULL || !is_guid(b->id, strlen(b->id)) ||
        !role_name_ok(b->name, strlen(b->name)) ||
        (list_len(b->actions) == 0 && list_len(b->data_actions) == 0))
        return RP_EINVAL;
    for (size_t i = 0; i < list_len(b->delegable); i++)
        if (!is_guid(b->delegable[i], strlen(b->delegable[i])))
            return RP_EINVAL;
    rc = role_unique(r, b->id, b->name, NULL, 0);
    if (rc != 0)
        return rc;
    rc = roles_reserve(r);
    if (rc != 0)
        return rc;
    role = rp_arena_calloc(r->arena, sizeof(*role));
    p = rp_arena_calloc(r->arena, sizeof(*p));
    if (role == NULL || p == NULL)
        return RP_ENOMEM;
    role->id = arena_lower(r->arena, b->id, strlen(b->id));
    role->name = b->name;
    role->description = b->description != NULL ? b->description : "";
    role->builtin = 1;
    role->max_activation_s = RP_RBAC_ACTIVATION_DEFAULT_S;
    role->perms = p;
    role->nperms = 1;
    role->scopes = rp_arena_alloc(r->arena, sizeof(*role->scopes));
    role->nscopes = 1;
    role->delegable = b->delegable;
    role->ndelegable = list_len(b->delegable);
    if (role->id == NULL || role->scopes == NULL)
        return RP_ENOMEM;
    role->scopes[0] = "/";
    for (int k = 0; k < L_COUNT; k++) {
        size_t n = list_len(lists[k]);
        if (n > RP_RBAC_PATTERNS_MAX)
            return RP_EINVAL;
        if (n == 0)
            continue;
        p->l[k].v = rp_arena_calloc(r->arena, n * sizeof(pat));
        if (p->l[k].v == NULL)
            return RP_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(lists[k][i]);
            if (!pattern_ok(lists[k][i], len))
                return RP_EINVAL;
            rc = pat_set(r, &p->l[k].v[i], lists[k][i], lists[k][i], len);
            if (rc != 0)
                return rc;
        }
        p->l[k].n = n;
    }
    r->roles[r->nroles++] = role;
    return 0;
}

static int known_key(const char *key, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* Refuses any key of obj outside keys, naming it with the path prefix. */
static int only_keys(const json_t *obj, const char *const *keys, const char *path, char *err,
                     size_t errlen)
{
    const char *key;
    json_t *v;
    char safe[48];

    /* jansson's iteration macro wants a non-const object; it only reads it. */
    json_object_foreach((json_t *)obj, key, v)
    {
        (void)v;
        if (!known_key(key, keys))
            return rp_errf(err, errlen, RP_EINVAL, "%s%s: unknown field", path,
                           safe_text(key, safe, sizeof(safe)));
    }
    return 0;
}

static int parse_plist(rp_rbac *r, const json_t *arr, plist *out, size_t block, int k, char *err,
                       size_t errlen)
{
    size_t n;

    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return rp_errf(err, errlen, RP_EINVAL, "properties.permissions[%zu].%s: must be an array",
                       block, list_key[k]);
    n = json_array_size(arr);
    if (n > RP_RBAC_PATTERNS_MAX)
        return rp_errf(err, errlen, RP_EINVAL,
                       "properties.permissions[%zu].%s: at most %d patterns", block, list_key[k],
                       RP_RBAC_PATTERNS_MAX);
    if (n == 0)
        return 0;
    out->v = rp_arena_calloc(r->arena, n * sizeof(pat));
    if (out->v == NULL)
        return RP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        int rc;

        if (s == NULL || !pattern_ok(s, len) || strlen(s) != len)
            return rp_errf(err, errlen, RP_EINVAL,
                           "properties.permissions[%zu].%s[%zu]: a pattern is 1..%d characters of "
                           "A-Z a-z 0-9 . / * _ -",
                           block, list_key[k], i, RP_RBAC_PATTERN_MAX);
        rc = pat_set(r, &out->v[i], NULL, s, len);
        if (rc != 0)
            return rc;
    }
    out->n = n;
    return 0;
}

static int parse_perms(rp_rbac *r, const json_t *arr, rp_rbac_role *role, char *err, size_t errlen)
{
    static const char *const block_keys[] = {"actions", "notActions", "dataActions",
                                             "notDataActions", NULL};
    size_t n, granting = 0;
    int rc;

    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > RP_RBAC_BLOCKS_MAX)
        return rp_errf(err, errlen, RP_EINVAL,
                       "properties.permissions: an array of 1..%d permission objects",
                       RP_RBAC_BLOCKS_MAX);
    n = json_array_size(arr);
    role->perms = rp_arena_calloc(r->arena, n * sizeof(perm));
    if (role->perms == NULL)
        return RP_ENOMEM;
    for (size_t b = 0; b < n; b++) {
        const json_t *o = json_array_get(arr, b);
        char path[48];

        if (!json_is_object(o))
            return rp_errf(err, errlen, RP_EINVAL, "properties.permissions[%zu]: must be an object",
                           b);
        if (json_object_get(o, "condition") != NULL || json_object_get(o, "conditionVersion"))
            return rp_errf(err, errlen, RP_EINVAL,
                           "properties.permissions[%zu].condition: conditions are not supported",
                           b);
        snprintf(path, sizeof(path), "properties.permissions[%zu].", b);
        rc = only_keys(o, block_keys, path, err, errlen);
        if (rc != 0)
            return rc;
        for (int k = 0; k < L_COUNT; k++) {
            rc = parse_plist(r, json_object_get(o, list_key[k]), &role->perms[b].l[k], b, k, err,
                             errlen);
            if (rc != 0)
                return rc;
        }
        granting += role->perms[b].l[L_ACT].n + role->perms[b].l[L_DATA].n;
    }
    role->nperms = n;
    if (granting == 0)
        return rp_errf(err, errlen, RP_EINVAL,
                       "properties.permissions: the role needs at least one action or dataAction");
    return 0;
}

static int parse_scopes(rp_rbac *r, const json_t *arr, rp_rbac_role *role, char *err, size_t errlen)
{
    size_t n;

    if (arr == NULL) {
        role->scopes = rp_arena_alloc(r->arena, sizeof(*role->scopes));
        if (role->scopes == NULL)
            return RP_ENOMEM;
        role->scopes[0] = "/";
        role->nscopes = 1;
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > RP_RBAC_ASSIGNABLE_MAX)
        return rp_errf(err, errlen, RP_EINVAL,
                       "properties.assignableScopes: an array of 1..%d scopes such as \"/\"",
                       RP_RBAC_ASSIGNABLE_MAX);
    n = json_array_size(arr);
    role->scopes = rp_arena_alloc(r->arena, n * sizeof(*role->scopes));
    if (role->scopes == NULL)
        return RP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *s = json_string_value(e);

        if (s == NULL || !rp_rbac_scope_valid(s, json_string_length(e)))
            return rp_errf(err, errlen, RP_EINVAL,
                           "properties.assignableScopes[%zu]: not a valid scope (\"/\" or "
                           "\"/type/name\"...)",
                           i);
        role->scopes[i] = rp_arena_strndup(r->arena, s, json_string_length(e));
        if (role->scopes[i] == NULL)
            return RP_ENOMEM;
    }
    role->nscopes = n;
    return 0;
}

/* The GUID of an "id" or "name" value (plain or ARM form) into out[37], or RP_EINVAL. */
static int parse_role_id(const json_t *v, char out[GUID_LEN + 1])
{
    const char *s = json_string_value(v), *g;

    if (s == NULL || strlen(s) != json_string_length(v))
        return RP_EINVAL;
    g = strip_arm(s);
    if (!is_guid(g, strlen(g)))
        return RP_EINVAL;
    for (size_t i = 0; i <= GUID_LEN; i++)
        out[i] = rp_lower(g[i]);
    return 0;
}

int rp_rbac_add_role_json(rp_rbac *r, const json_t *def, int builtin, char *err, size_t errlen)
{
    static const char *const top_keys[] = {
        "id", "name", "type", "properties", "maxActivationDuration", NULL};
    static const char *const prop_keys[] = {
        "roleName",  "description", "type",      "permissions", "assignableScopes",
        "createdOn", "updatedOn",   "createdBy", "updatedBy",   NULL};
    const json_t *props, *v;
    const char *name, *desc = "", *s;
    char id[GUID_LEN + 1], other[GUID_LEN + 1];
    rp_rbac_role *role;
    size_t len;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (r == NULL)
        return RP_EINVAL;
    if (!json_is_object(def))
        return rp_errf(err, errlen, RP_EINVAL, "definition: must be a JSON object");
    rc = only_keys(def, top_keys, "", err, errlen);
    if (rc != 0)
        return rc;
    if (parse_role_id(json_object_get(def, "id"), id) != 0)
        return rp_errf(err, errlen, RP_EINVAL,
                       "id: a GUID such as "
                       "\"7f3a4c1e-0b5d-4e2a-9c8f-1d2e3f4a5b6c\"");
    v = json_object_get(def, "name");
    if (v != NULL && (parse_role_id(v, other) != 0 || strcmp(other, id) != 0))
        return rp_errf(err, errlen, RP_EINVAL, "name: must be the role's id");
    v = json_object_get(def, "type");
    if (v != NULL && (json_string_value(v) == NULL || !eq_nocase(json_string_value(v), ARM_TYPE)))
        return rp_errf(err, errlen, RP_EINVAL, "type: must be \"%s\"", ARM_TYPE);

    props = json_object_get(def, "properties");
    if (!json_is_object(props))
        return rp_errf(err, errlen, RP_EINVAL,
                       "properties: an object holding roleName, permissions, assignableScopes");
    rc = only_keys(props, prop_keys, "properties.", err, errlen);
    if (rc != 0)
        return rc;
    v = json_object_get(props, "roleName");
    name = json_string_value(v);
    if (name == NULL || strlen(name) != json_string_length(v) ||
        !role_name_ok(name, json_string_length(v)))
        return rp_errf(err, errlen, RP_EINVAL,
                       "properties.roleName: 1..%d printable ASCII characters, no space at either "
                       "end, not a GUID",
                       RP_RBAC_ROLE_NAME_MAX);
    v = json_object_get(props, "description");
    if (v != NULL && !json_is_null(v)) {
        desc = json_string_value(v);
        len = json_string_length(v);
        if (desc == NULL || len > RP_RBAC_DESCRIPTION_MAX)
            return rp_errf(err, errlen, RP_EINVAL,
                           "properties.description: a string of at most %d "
                           "bytes",
                           RP_RBAC_DESCRIPTION_MAX);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)desc[i] < 0x20 || desc[i] == 0x7F)
                return rp_errf(err, errlen, RP_EINVAL,
                               "properties.description: control characters are not allowed");
    }
    v = json_object_get(props, "type");
    if (v != NULL) {
        s = json_string_value(v);
        if (s == NULL || !(eq_nocase(s, "CustomRole") || (builtin && eq_nocase(s, "BuiltInRole"))))
            return rp_errf(err, errlen, RP_EINVAL, "properties.type: must be \"CustomRole\"");
    }

    rc = role_unique(r, id, name, err, errlen);
    if (rc != 0)
        return rc;
    rc = roles_reserve(r);
    if (rc != 0)
        return rc == RP_ETOOBIG ? rp_errf(err, errlen, rc, "roles: at most %d", RP_RBAC_ROLES_MAX)
                                : rc;
    role = rp_arena_calloc(r->arena, sizeof(*role));
    if (role == NULL)
        return RP_ENOMEM;
    role->builtin = builtin ? 1 : 0;
    role->max_activation_s = RP_RBAC_ACTIVATION_DEFAULT_S;
    v = json_object_get(def, "maxActivationDuration");
    if (v != NULL && !json_is_null(v)) {
        s = json_string_value(v);
        if (s == NULL || parse_duration(s, json_string_length(v), &role->max_activation_s) != 0 ||
            role->max_activation_s < RP_RBAC_ACTIVATION_MIN_S ||
            role->max_activation_s > RP_RBAC_ACTIVATION_MAX_S)
            return rp_errf(err, errlen, RP_EINVAL,
                           "maxActivationDuration: an ISO 8601 duration from PT5M to PT24H, such "
                           "as \"PT8H\"");
    }
    rc = parse_perms(r, json_object_get(props, "permissions"), role, err, errlen);
    if (rc == 0)
        rc = parse_scopes(r, json_object_get(props, "assignableScopes"), role, err, errlen);
    if (rc != 0)
        return rc;
    role->id = rp_arena_strndup(r->arena, id, GUID_LEN);
    role->name = rp_arena_strndup(r->arena, name, strlen(name));
    role->description = rp_arena_strndup(r->arena, desc, strlen(desc));
    if (role->id == NULL || role->name == NULL || role->description == NULL)
        return RP_ENOMEM;
    r->roles[r->nroles++] = role;
    return 0;
}

/* ---- set lifecycle and role accessors ---- */

int rp_rbac_create(rp_rbac **out)
{
    rp_rbac *r;
    int rc = RP_ENOMEM;

    if (out == NULL)
        return RP_EINVAL;
    *out = NULL;
    r = rp_calloc(1, sizeof(*r));
    if (r == NULL)
        return RP_ENOMEM;
    r->arena = rp_arena_create(ARENA_BLOCK);
    if (r->arena == NULL)
        goto fail;
    for (size_t i = 0; i < rp__rbac_nbuiltins; i++) {
        rc = add_builtin(r, &rp__rbac_builtins[i]);
        if (rc != 0)
            goto fail;
    }
    *out = r;
    return 0;
fail:
    rp_rbac_free(r);
    return rc;
}

void rp_rbac_free(rp_rbac *r)
{
    if (r == NULL)
        return;
    rp_free(r->by_id);
    rp_free(r->by_principal);
    rp_free(r->asgs);
    rp_free(r->roles);
    rp_arena_destroy(r->arena);
    rp_free(r);
}

const rp_rbac_role *rp_rbac_role_find(const rp_rbac *r, const char *id_or_name)
{
    const char *g;

    if (r == NULL || id_or_name == NULL)
        return NULL;
    g = strip_arm(id_or_name);
    for (size_t i = 0; i < r->nroles; i++)
        if (eq_nocase(r->roles[i]->id, g))
            return r->roles[i];
    for (size_t i = 0; i < r->nroles; i++)
        if (eq_nocase(r->roles[i]->name, id_or_name))
            return r->roles[i];
    return NULL;
}

size_t rp_rbac_role_count(const rp_rbac *r)
{
    return r != NULL ? r->nroles : 0;
}

const rp_rbac_role *rp_rbac_role_at(const rp_rbac *r, size_t i)
{
    return (r != NULL && i < r->nroles) ? r->roles[i] : NULL;
}

const char *rp_rbac_role_id(const rp_rbac_role *role)
{
    return role != NULL ? role->id : NULL;
}

const char *rp_rbac_role_name(const rp_rbac_role *role)
{
    return role != NULL ? role->name : NULL;
}

int rp_rbac_role_builtin(const rp_rbac_role *role)
{
    return role != NULL && role->builtin;
}

int64_t rp_rbac_role_max_activation_s(const rp_rbac_role *role)
{
    return role != NULL ? role->max_activation_s : 0;
}

static int assignable_n(const rp_rbac_role *role, const char *scope, size_t n)
{
    for (size_t i = 0; i < role->nscopes; i++)
        if (ancestor_n(role->scopes[i], strlen(role->scopes[i]), scope, n))
            return 1;
    return 0;
}

int rp_rbac_role_scope_assignable(const rp_rbac_role *role, const char *scope)
{
    size_t n;

    if (role == NULL || scope == NULL)
        return 0;
    n = strnlen(scope, RP_RBAC_SCOPE_MAX + 1);
    return rp_rbac_scope_valid(scope, n) && assignable_n(role, scope, n);
}

/* Azure's ABAC condition text for a conditioned built-in; 0 or RP_ENOMEM / RP_ETOOBIG. */
static int condition_text(const rp_rbac_role *role, rp_buf *b)
{
    static const char *const verb[2] = {"write", "delete"};
    static const char *const attr[2] = {"@Request", "@Resource"};
    int rc = 0;

    for (int k = 0; k < 2 && rc == 0; k++) {
        rc = rp_buf_appendf(b,
                            "%s((!(ActionMatches{'Microsoft.Authorization/roleAssignments/%s'}))"
                            " OR (%s[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
                            " ForAnyOfAnyValues:GuidEquals{",
                            k == 0 ? "" : " AND ", verb[k], attr[k]);
        for (size_t i = 0; i < role->ndelegable && rc == 0; i++)
            rc = rp_buf_appendf(b, "%s%s", i == 0 ? "" : ", ", role->delegable[i]);
        if (rc == 0)
            rc = rp_buf_append_str(b, "}))");
    }
    return rc;
}

/* json_object_set_new that remembers a failure in *ok. */
static void put(json_t *o, const char *key, json_t *v, int *ok)
{
    if (o == NULL || v == NULL || json_object_set_new(o, key, v) != 0) {
        json_decref(o == NULL ? v : NULL);
        *ok = 0;
    }
}

json_t *rp_rbac_role_to_json(const rp_rbac_role *role)
{
    json_t *out, *props, *perms, *scopes;
    char dur[32];
    int ok = 1;

    if (role == NULL)
        return NULL;
    out = json_object();
    props = json_object();
    perms = json_array();
    scopes = json_array();
    for (size_t b = 0; perms != NULL && b < role->nperms; b++) {
        json_t *o = json_object();
        for (int k = 0; k < L_COUNT; k++) {
            json_t *arr = json_array();
            for (size_t i = 0; arr != NULL && i < role->perms[b].l[k].n; i++)
                if (json_array_append_new(arr, json_string(role->perms[b].l[k].v[i].orig)) != 0)
                    ok = 0;
            put(o, list_key[k], arr, &ok);
        }
        if (role->ndelegable > 0) {
            rp_buf cond;
            rp_buf_init(&cond, 8192);
            if (condition_text(role, &cond) != 0)
                ok = 0;
            else
                put(o, "condition", json_string(cond.data), &ok);
            rp_buf_free(&cond);
            put(o, "conditionVersion", json_string("2.0"), &ok);
        }
        if (o == NULL || json_array_append_new(perms, o) != 0)
            ok = 0;
    }
    for (size_t i = 0; scopes != NULL && i < role->nscopes; i++)
        if (json_array_append_new(scopes, json_string(role->scopes[i])) != 0)
            ok = 0;
    format_duration(role->max_activation_s, dur, sizeof(dur));
    put(props, "roleName", json_string(role->name), &ok);
    put(props, "description", json_string(role->description), &ok);
    put(props, "type", json_string(role->builtin ? "BuiltInRole" : "CustomRole"), &ok);
    put(props, "permissions", perms, &ok);
    put(props, "assignableScopes", scopes, &ok);
    put(out, "id", json_string(role->id), &ok);
    put(out, "name", json_string(role->id), &ok);
    put(out, "type", json_string(ARM_TYPE), &ok);
    put(out, "properties", props, &ok);
    put(out, "maxActivationDuration", json_string(dur), &ok);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- assignments ---- */

static int id_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (i >= RP_RBAC_ID_MAX || s[i] <= 0x20 || s[i] >= 0x7F)
            return 0;
    return i > 0;
}

static uint32_t principal_slot(const pslot *t, size_t cap, const asg *asgs, const char *p,
                               uint32_t h)
{
    size_t i = h & (cap - 1);

    while (t[i].head != NIL && (t[i].hash != h || strcmp(asgs[t[i].head].principal, p) != 0))
        i = (i + 1) & (cap - 1);
    return (uint32_t)i;
}

static uint32_t id_slot(const islot *t, size_t cap, const asg *asgs, const char *id, uint32_t h)
{
    size_t i = h & (cap - 1);

    while (t[i].idx != NIL && (t[i].hash != h || strcmp(asgs[t[i].idx].id, id) != 0))
        i = (i + 1) & (cap - 1);
    return (uint32_t)i;
}

/* Links assignment i into the principal table (which has a free slot). */
static void principal_link(rp_rbac *r, uint32_t i)
{
    uint32_t h = hash_str(r->asgs[i].principal);
    pslot *s = &r->by_principal[principal_slot(r->by_principal, r->pcap, r->asgs,
                                               r->asgs[i].principal, h)];

    r->asgs[i].next = NIL;
    if (s->head == NIL) {
        s->hash = h;
        s->head = s->tail = i;
        r->nprincipals++;
    } else {
        r->asgs[s->tail].next = i;
        s->tail = i;
    }
}

static void id_link(rp_rbac *r, uint32_t i)
{
    uint32_t h = hash_str(r->asgs[i].id);
    islot *s = &r->by_id[id_slot(r->by_id, r->icap, r->asgs, r->asgs[i].id, h)];

    s->hash = h;
    s->idx = i;
}

/* Makes room for one more assignment, growing (and rebuilding) the tables as needed. */
static int asg_reserve(rp_rbac *r)
{
    size_t cap, bytes;

    if (r->nasgs >= RP_RBAC_ASSIGNMENTS_MAX)
        return RP_ETOOBIG;
    if (r->nasgs == r->asgs_cap) {
        asg *v;
        cap = r->asgs_cap ? r->asgs_cap * 2 : 16;
        if (rp_size_mul(cap, sizeof(*v), &bytes) != 0)
            return RP_ETOOBIG;
        v = rp_realloc(r->asgs, bytes);
        if (v == NULL)
            return RP_ENOMEM;
        r->asgs = v;
        r->asgs_cap = cap;
    }
    if ((r->nasgs + 1) * 2 > r->icap) {
        islot *t;
        cap = r->icap ? r->icap * 2 : 32;
        t = rp_malloc(cap * sizeof(*t));
        if (t == NULL)
            return RP_ENOMEM;
        for (size_t i = 0; i < cap; i++)
            t[i].idx = NIL;
        rp_free(r->by_id);
        r->by_id = t;
        r->icap = cap;
        for (uint32_t i = 0; i < r->nasgs; i++)
            id_link(r, i);
    }
    if ((r->nprincipals + 1) * 2 > r->pcap) {
        pslot *t;
        cap = r->pcap ? r->pcap * 2 : 32;
        t = rp_malloc(cap * sizeof(*t));
        if (t == NULL)
            return RP_ENOMEM;
        for (size_t i = 0; i < cap; i++)
            t[i].head = NIL;
        rp_free(r->by_principal);
        r->by_principal = t;
        r->pcap = cap;
        r->nprincipals = 0;
        for (uint32_t i = 0; i < r->nasgs; i++)
            principal_link(r, i);
    }
    return 0;
}

int rp_rbac_add_assignment(rp_rbac *r, const char *id, const char *principal_id,
                           const char *role_id, const char *scope, int64_t not_before,
                           int64_t expires_at)
{
    const rp_rbac_role *role;
    asg a;
    size_t sn;
    int rc;

    if (r == NULL || id == NULL || principal_id == NULL || role_id == NULL || scope == NULL)
        return RP_EINVAL;
    sn = strnlen(scope, RP_RBAC_SCOPE_MAX + 1);
    if (!id_ok(id) || !id_ok(principal_id) || !rp_rbac_scope_valid(scope, sn) || not_before < 0 ||
        expires_at < 0 || (not_before != 0 && expires_at != 0 && expires_at <= not_before))
        return RP_EINVAL;
    role = rp_rbac_role_find(r, role_id);
    if (role == NULL)
        return RP_ENOENT;
    if (!assignable_n(role, scope, sn))
        return RP_EINVAL;
    if (r->icap > 0 && r->by_id[id_slot(r->by_id, r->icap, r->asgs, id, hash_str(id))].idx != NIL)
        return RP_EEXIST;
    rc = asg_reserve(r);
    if (rc != 0)
        return rc;
    a.id = rp_arena_strndup(r->arena, id, strlen(id));
    a.principal = rp_arena_strndup(r->arena, principal_id, strlen(principal_id));
    a.scope = rp_arena_strndup(r->arena, scope, sn);
    if (a.id == NULL || a.principal == NULL || a.scope == NULL)
        return RP_ENOMEM;
    a.scope_len = sn;
    a.role = role;
    a.not_before = not_before;
    a.expires_at = expires_at;
    a.next = NIL;
    r->asgs[r->nasgs] = a;
    id_link(r, (uint32_t)r->nasgs);
    principal_link(r, (uint32_t)r->nasgs);
    r->nasgs++;
    return 0;
}

/* ---- the decision ---- */

static int delegable_to(const rp_rbac_role *role, const rp_rbac_role *target)
{
    if (target == NULL)
        return 0;
    for (size_t i = 0; i < role->ndelegable; i++)
        if (eq_nocase(role->delegable[i], target->id))
            return 1;
    return 0;
}

static int check(const rp_rbac *r, const char *principal_id, const char *action, int data,
                 const char *scope, int64_t now, const char *target_role, rp_rbac_decision *why)
{
    char lc[RP_RBAC_ACTION_MAX];
    const pslot *slot;
    size_t an, sn;
    int conditioned = -1; /* unknown until a conditioned role would grant */

    if (why != NULL) {
        why->allowed = 0;
        why->role_name = why->assignment_id = why->assignment_scope = NULL;
    }
    if (r == NULL || principal_id == NULL || action == NULL || scope == NULL || r->pcap == 0)
        return 0;
    /* Validate and lower-case the action once; the patterns are lower-case already. */
    for (an = 0; action[an] != '\0'; an++) {
        if (an == sizeof(lc) || !is_action_char(action[an]))
            return 0;
        lc[an] = rp_lower(action[an]);
    }
    sn = strnlen(scope, RP_RBAC_SCOPE_MAX + 1);
    if (an == 0 || !rp_rbac_scope_valid(scope, sn))
        return 0;
    slot = &r->by_principal[principal_slot(r->by_principal, r->pcap, r->asgs, principal_id,
                                           hash_str(principal_id))];
    for (uint32_t i = slot->head; i != NIL; i = r->asgs[i].next) {
        const asg *g = &r->asgs[i];

        /* Active when not_before <= now < expires_at. */
        if ((g->not_before != 0 && now < g->not_before) ||
            (g->expires_at != 0 && now >= g->expires_at))
            continue;
        if (!ancestor_n(g->scope, g->scope_len, scope, sn))
            continue;
        if (!role_grants(g->role, lc, an, data))
            continue;
        if (g->role->ndelegable > 0) {
            /* The condition only speaks about creating and deleting assignments. */
            if (conditioned < 0)
                conditioned =
                    !data && (eq_nocase(action, RA_WRITE) || eq_nocase(action, RA_DELETE));
            if (conditioned &&
                !delegable_to(g->role,
                              target_role != NULL ? rp_rbac_role_find(r, target_role) : NULL))
                continue;
        }
        if (why != NULL) {
            why->allowed = 1;
            why->role_name = g->role->name;
            why->assignment_id = g->id;
            why->assignment_scope = g->scope;
        }
        return 1;
    }
    return 0;
}

int rp_rbac_check(const rp_rbac *r, const char *principal_id, const char *action, int data,
                  const char *scope, int64_t now, rp_rbac_decision *why)
{
    return check(r, principal_id, action, data, scope, now, NULL, why);
}

int rp_rbac_check_assignment(const rp_rbac *r, const char *principal_id, const char *action,
                             const char *scope, const char *role_id, int64_t now,
                             rp_rbac_decision *why)
{
    if (role_id == NULL) {
        if (why != NULL) {
            why->allowed = 0;
            why->role_name = why->assignment_id = why->assignment_scope = NULL;
        }
        return 0;
    }
    return check(r, principal_id, action, 0, scope, now, role_id, why);
}
