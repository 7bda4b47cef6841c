/*
 * rbac.h - the role-based access control engine: role definitions, role assignments and the
 * one decision every request asks for ("may principal P do action A at scope S, now?").
 *
 * The model is Azure RBAC's, on rampart's scopes:
 *   - A scope is a path naming a resource and, implicitly, everything below it: "/" (the whole
 *     install), "/vaults/v", "/vaults/v/secrets/s", "/apps/a/functions/f" ... It is "/" or a
 *     sequence of "/type/name" pairs; type is [A-Za-z][A-Za-z0-9]{0,63}, name is 1..127 bytes
 *     of [A-Za-z0-9._~-] other than "." and "..", the whole at most RP_RBAC_SCOPE_MAX bytes.
 *     Scopes compare case-insensitively, as Azure resource ids do.
 *   - An action is "Provider/type/.../verb" ("Microsoft.KeyVault/vaults/secrets/getSecret/
 *     action"). A role lists action patterns in which '*' matches any run of characters,
 *     '/' included, and a '*' alone between two '/' may also match no segment at all
 *     (rp_rbac_action_match); matching is case-insensitive.
 *   - A role definition has one or more permission blocks {actions, notActions, dataActions,
 *     notDataActions}. A block grants a control-plane action that matches one of its actions
 *     and none of its notActions; data actions likewise with the data lists. The two planes
 *     never mix: "*" in actions grants no data action. notActions only subtract inside their
 *     own block; they are not a deny.
 *   - A role assignment gives a principal a role at a scope, optionally only from not_before
 *     and until expires_at (Unix seconds, 0 = unbounded): active when
 *     not_before <= now < expires_at. Both ends are evaluated on every check, so time-bound
 *     grants (PIM activations, `role assign --expires`) end without a rebuild.
 *   - A principal may do what the union of its active assignments at the scope and at every
 *     ancestor of it grants. Everything else, and every malformed question, is denied.
 *     There are no deny assignments.
 *
 * Built-in roles (Owner, Contributor, Reader, the Key Vault, Event Grid, Storage Blob, Logic
 * App, Website and Managed Identity roles ...) carry Azure's role ids and action lists and
 * are present in every set. One of them, Key Vault Data Access Administrator, carries Azure's
 * ABAC condition: it may create and delete only assignments of the Key Vault data roles.
 * rp_rbac_check cannot see which role an assignment names, so for roleAssignments/write and
 * /delete that role grants nothing there; the management API asks rp_rbac_check_assignment.
 *
 * Lifecycle and threads: an rp_rbac is built by one thread (rp_rbac_create, then
 * rp_rbac_add_role_json and rp_rbac_add_assignment), then published and never modified: every
 * loop thread may then call the const functions below at the same time without locks. When
 * anything changes, the owner (iam's snapshot) builds a new set and swaps it whole.
 * All strings a set returns (names, ids, decisions) live as long as the set.
 *
 * Workload: rp_rbac_check runs on every authorized request. Assignments are indexed by
 * principal id (hash table), patterns are lower-cased once when added, and a check allocates
 * nothing: a principal with ten assignments costs well under a microsecond.
 *
 * Memory: every allocation goes through rp_malloc; a set's strings live in one arena freed
 * with the set. Every function that allocates reports RP_ENOMEM and leaves the set usable.
 */
#ifndef RP_IAM_RBAC_H
#define RP_IAM_RBAC_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

#define RP_RBAC_SCOPE_MAX            1024 /* bytes in a scope */
#define RP_RBAC_TYPE_MAX             64   /* bytes in a scope's collection-type segment */
#define RP_RBAC_NAME_MAX             127  /* bytes in a scope's name segment */
#define RP_RBAC_ACTION_MAX           512  /* bytes in an action asked about */
#define RP_RBAC_PATTERN_MAX          256  /* bytes in an action pattern */
#define RP_RBAC_PATTERNS_MAX         256  /* patterns in one list of one permission block */
#define RP_RBAC_BLOCKS_MAX           16   /* permission blocks in a role */
#define RP_RBAC_ROLE_NAME_MAX        128  /* bytes in a roleName */
#define RP_RBAC_DESCRIPTION_MAX      1024 /* bytes in a description */
#define RP_RBAC_ASSIGNABLE_MAX       64   /* assignableScopes of a role */
#define RP_RBAC_ID_MAX               128  /* bytes in an assignment id or a principal id */
#define RP_RBAC_ROLES_MAX            5000
#define RP_RBAC_ASSIGNMENTS_MAX      200000
#define RP_RBAC_ACTIVATION_DEFAULT_S (8 * 3600) /* PIM maximum activation, when not given */
#define RP_RBAC_ACTIVATION_MIN_S     300
#define RP_RBAC_ACTIVATION_MAX_S     (24 * 3600)

/* A set of role definitions and role assignments (see the lifecycle above). */
typedef struct rp_rbac rp_rbac;
/* A role definition; owned by its set. */
typedef struct rp_rbac_role rp_rbac_role;

/*
 * Why rp_rbac_check allowed: the first active assignment (in the order they were added) that
 * grants the action. All NULL when denied. The strings are borrowed from the set.
 */
typedef struct rp_rbac_decision {
    int allowed;
    const char *role_name;
    const char *assignment_id;
    const char *assignment_scope;
} rp_rbac_decision;

/*
 * Creates a set holding every built-in role and no assignment. 0 and *out (free it with
 * rp_rbac_free), RP_ENOMEM (then *out is NULL), or RP_EINVAL if out is NULL.
 */
int rp_rbac_create(rp_rbac **out);

/* Frees the set and everything it returned. Accepts NULL. No check may be running on it. */
void rp_rbac_free(rp_rbac *r);

/*
 * Validates a role definition in Azure's shape and adds it:
 *   {"id":"<guid>", "name":"<guid>", "type":"Microsoft.Authorization/roleDefinitions",
 *    "properties":{"roleName":"...", "description":"...", "type":"CustomRole",
 *                  "permissions":[{"actions":[...], "notActions":[...], "dataActions":[...],
 *                                  "notDataActions":[...]}],
 *                  "assignableScopes":["/"]},
 *    "maxActivationDuration":"PT8H"}
 * id: a GUID (also accepted as "/providers/Microsoft.Authorization/roleDefinitions/<guid>");
 * name, if present, the same GUID; type values, if present, as shown ("BuiltInRole" only with
 * builtin). roleName: 1..RP_RBAC_ROLE_NAME_MAX printable ASCII characters, no space at either
 * end, not shaped like a GUID. description: optional, at most RP_RBAC_DESCRIPTION_MAX bytes,
 * no control characters. permissions: 1..RP_RBAC_BLOCKS_MAX objects; each list optional, at
 * most RP_RBAC_PATTERNS_MAX patterns of 1..RP_RBAC_PATTERN_MAX characters, each an ASCII letter
 * or digit or one of . / _ - and the wildcard '*' (no space, no control character); at least
 * one action or dataAction in the role. assignableScopes: 1..RP_RBAC_ASSIGNABLE_MAX
 * valid scopes; ["/"] when absent. maxActivationDuration: an ISO 8601 duration
 * (P[nD][T[nH][nM][nS]]) from RP_RBAC_ACTIVATION_MIN_S to RP_RBAC_ACTIVATION_MAX_S;
 * RP_RBAC_ACTIVATION_DEFAULT_S when absent. Fields not listed here are refused rather than
 * ignored (a misspelt "notActions" must not widen a role), except Azure's read-only
 * createdOn, updatedOn, createdBy and updatedBy; ABAC conditions are not supported.
 * builtin marks the role as built-in (rp_rbac_role_builtin); callers pass 0 for custom roles.
 * 0; RP_EINVAL with a message naming the field in err[errlen] (err may be NULL); RP_EEXIST if
 * the id or the roleName (case-insensitive) is taken, built-ins included, so a built-in can
 * never be replaced; RP_ETOOBIG past RP_RBAC_ROLES_MAX; RP_ENOMEM. def is only read.
 * On failure the set is unchanged (apart from arena bytes it keeps until freed).
 */
int rp_rbac_add_role_json(rp_rbac *r, const json_t *def, int builtin, char *err, size_t errlen);

/*
 * Finds a role by id (either form above) or by roleName, both case-insensitive; NULL if none
 * or if id_or_name is NULL.
 */
const rp_rbac_role *rp_rbac_role_find(const rp_rbac *r, const char *id_or_name);

/*
 * The role in Azure's shape (as accepted by rp_rbac_add_role_json, with "type" values and
 * "maxActivationDuration" filled in; conditioned built-ins also carry Azure's "condition").
 * A new reference for the caller, or NULL on allocation failure.
 */
json_t *rp_rbac_role_to_json(const rp_rbac_role *role);

/* Number of roles, and the i-th (built-ins first, then in the order added); NULL past the end. */
size_t rp_rbac_role_count(const rp_rbac *r);
const rp_rbac_role *rp_rbac_role_at(const rp_rbac *r, size_t i);

/* The role's id (lower-case GUID), roleName, whether it is built in (1/0), and its PIM
 * maximum activation duration in seconds. */
const char *rp_rbac_role_id(const rp_rbac_role *role);
const char *rp_rbac_role_name(const rp_rbac_role *role);
int rp_rbac_role_builtin(const rp_rbac_role *role);
int64_t rp_rbac_role_max_activation_s(const rp_rbac_role *role);

/* 1 if scope is valid and at or below one of the role's assignableScopes, else 0. */
int rp_rbac_role_scope_assignable(const rp_rbac_role *role, const char *scope);

/*
 * Adds an assignment of the role role_id (an id or a roleName) to principal_id at scope,
 * active when not_before <= now < expires_at (0 = unbounded at that end).
 * id and principal_id: 1..RP_RBAC_ID_MAX bytes of printable ASCII, no space; principal ids
 * are compared exactly (iam mints them as lower-case UUIDs). 0; RP_ENOENT if there is no such
 * role; RP_EINVAL for a bad id, principal or scope, a scope the role is not assignable at,
 * negative times or expires_at <= not_before; RP_EEXIST if id is taken; RP_ETOOBIG past
 * RP_RBAC_ASSIGNMENTS_MAX; RP_ENOMEM. The strings are copied.
 */
int rp_rbac_add_assignment(rp_rbac *r, const char *id, const char *principal_id,
                           const char *role_id, const char *scope, int64_t not_before,
                           int64_t expires_at);

/*
 * May principal_id do action at scope at time now? data = 1 asks about a data action,
 * 0 about a control-plane action. Returns 1 (allowed) or 0 (denied), and fills *why (which
 * may be NULL). Denied by default and on any malformed input: NULL arguments, an invalid
 * scope, an action that is empty, longer than RP_RBAC_ACTION_MAX or holds a character outside
 * [A-Za-z0-9./_-]. Allocates nothing; safe on a published set from any thread.
 */
int rp_rbac_check(const rp_rbac *r, const char *principal_id, const char *action, int data,
                  const char *scope, int64_t now, rp_rbac_decision *why);

/*
 * rp_rbac_check for a control-plane action on a role assignment that names role_id (the role
 * being assigned, or held by the assignment being deleted): the question the management API
 * asks for Microsoft.Authorization/roleAssignments/write and /delete. It differs from
 * rp_rbac_check only for conditioned roles (Key Vault Data Access Administrator), which grant
 * those two actions when role_id is one of the roles their condition lists.
 */
int rp_rbac_check_assignment(const rp_rbac *r, const char *principal_id, const char *action,
                             const char *scope, const char *role_id, int64_t now,
                             rp_rbac_decision *why);

/*
 * 1 if scope[0..len) is a valid scope (syntax above), else 0. Safe on any bytes, including
 * NUL bytes inside len (refused); scope may be NULL when len is 0.
 */
int rp_rbac_scope_valid(const char *scope, size_t len);

/*
 * 1 if ancestor is scope itself or a proper prefix of it ending at a segment boundary,
 * compared case-insensitively; "/" is the ancestor of every scope. Both should be valid
 * scopes; on anything else the answer is meaningless but memory-safe (NULL gives 0).
 */
int rp_rbac_scope_is_ancestor(const char *ancestor, const char *scope);

/*
 * 1 if action matches pattern, case-insensitively (ASCII): '*' matches any run of characters,
 * '/' included, possibly empty; every other character matches itself. A '*' that is a whole
 * segment (alone between two '/') may also match no segment at all, together with the '/'
 * after it: "Microsoft.KeyVault/vaults/" "*" "/read" matches "Microsoft.KeyVault/vaults/read"
 * as in Azure (Key Vault Reader reads its vault, Managed Identity Operator assigns identities
 * that way). NULL gives 0. Allocates nothing; time O(len(pattern) * len(action)) at worst.
 */
int rp_rbac_action_match(const char *pattern, const char *action);

/*
 * Internal: the built-in role table (roles_builtin.c), read by rbac.c and the unit tests.
 * Lists are NULL-terminated; a NULL list is empty. delegable, when not NULL, is the ABAC
 * condition: the role ids whose assignments the role may create and delete.
 */
typedef struct rp__rbac_builtin {
    const char *id;
    const char *name;
    const char *description;
    const char *const *actions;
    const char *const *not_actions;
    const char *const *data_actions;
    const char *const *not_data_actions;
    const char *const *delegable;
} rp__rbac_builtin;

extern const rp__rbac_builtin rp__rbac_builtins[];
extern const size_t rp__rbac_nbuiltins;

#endif
