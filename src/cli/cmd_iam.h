/*
 * cmd_iam.h - the client commands for identity and access (docs/iam.md "Management API"):
 * users, service principals and their credentials, user-assigned managed identities, role
 * definitions and assignments, and PIM eligibilities and activations.
 *
 * Each entry point takes the arguments after its command word (argv[0] is the subcommand,
 * e.g. "create") and the environment (RAMPART_URL, RAMPART_CA, RAMPART_TOKEN, HOME), and
 * returns the process exit code (RP_EXIT_* in cli/cmd_common.h): 0 done, 2 usage,
 * 3 client settings, 5 server error or unreachable, 6 not authenticated / not authorized.
 * Lists print a table by default, single objects "label  value" lines; --output json prints
 * the server's answer. Principal references are passed through as typed: an object id, a
 * client id, or kind:name (user:alice, sp:ci, identity:api).
 */
#ifndef RP_CLI_CMD_IAM_H
#define RP_CLI_CMD_IAM_H

#include <jansson.h>

/* rampart user create NAME | user list | user delete NAME */
int rp_cmd_user(int argc, char **argv, char **envp);

/*
 * rampart sp create NAME | sp list | sp show NAME | sp delete NAME |
 *   sp credential add NAME [--years N | --days N | --cert FILE.pem] |
 *   sp credential delete NAME KEYID
 */
int rp_cmd_sp(int argc, char **argv, char **envp);

/* rampart identity create NAME | identity list | identity delete NAME | identity exec ... */
int rp_cmd_identity(int argc, char **argv, char **envp);

/*
 * rampart role definition list | show NAME|ID | create --file ROLE.json | delete ID;
 * role assign --principal P --role R --scope S [--expires WHEN]; role list [--scope S]
 * [--principal P]; role remove ID
 */
int rp_cmd_role(int argc, char **argv, char **envp);

/*
 * rampart pim eligible ... | pim list [--all] | pim activate ... | pim approve ID |
 * pim deny ID | pim deactivate ID | pim remove ID
 */
int rp_cmd_pim(int argc, char **argv, char **envp);

/*
 * The eligibility in rows (an array) that matches role (a role name, definition id or
 * definition resource id) and scope, narrowed to principal_id when several match and
 * principal_id is not NULL. Returns the match (borrowed from rows), or NULL with *nmatch the
 * number of candidates (0: none, >1: ambiguous).
 */
json_t *rp_cmd_pim_find_eligibility(const json_t *rows, const char *role, const char *scope,
                                    const char *principal_id, size_t *nmatch);

/* The last '/'-separated segment of an id ("/providers/.../roleAssignments/GUID" -> GUID). */
const char *rp_cmd_id_tail(const char *id);

#endif
