/*
 * cmd_exec.h - `rampart identity exec --identity NAME [--identity NAME2 ...] [--ttl SECONDS]
 * -- CMD [ARGS...]`: runs a local command as a managed identity (docs/iam.md "Managed identity
 * endpoint").
 *
 * The command asks the server for a workload session (POST /api/identities/{first}/sessions
 * with the other identities and the TTL), starts CMD with IDENTITY_ENDPOINT and
 * IDENTITY_HEADER added to its environment and nothing else changed (never
 * IDENTITY_SERVER_THUMBPRINT, which would make the Azure SDKs speak the Service Fabric
 * protocol), forwards SIGINT and SIGTERM to it, waits, ends the session
 * (DELETE /api/identities/sessions/{id}) and exits with CMD's status (128+N when a signal N
 * killed it; 127 when CMD cannot be found, 126 when it cannot be run). IDENTITY_HEADER is a
 * credential: it is never printed and its copies in this process are wiped.
 */
#ifndef RP_CLI_CMD_EXEC_H
#define RP_CLI_CMD_EXEC_H

#include "cli/cmd_common.h"

#include <stdint.h>

typedef struct rp_exec_args {
    const char *identities[RP_OPT_MAX_VALUES]; /* [0] is the session's default identity */
    size_t nidentities;
    int64_t ttl_s;                /* 0: not given, the server's default applies */
    const char *url, *ca, *token; /* connection flags, NULL when not given */
    char **cmd;                   /* CMD ARGS..., NULL-terminated (argv's own terminator) */
    int ncmd;
} rp_exec_args;

/*
 * Parses the arguments after "identity exec". Everything after the first "--" is the command,
 * untouched (even when it looks like an option). At least one --identity, a "--" and a
 * command are required; --ttl takes whole seconds or a duration (90s, 15m, PT1H).
 * Returns 0, or RP_EINVAL with a one-line reason in err.
 */
int rp_exec_parse(int argc, char **argv, rp_exec_args *out, char *err, size_t errlen);

/* The child's environment: envp with the two variables set (replaced if present). */
typedef struct rp_exec_env {
    char **envp;        /* NULL-terminated; entries borrowed from the input except the two */
    char *endpoint_var; /* "IDENTITY_ENDPOINT=..." (owned) */
    char *header_var;   /* "IDENTITY_HEADER=..." (owned, wiped on free) */
} rp_exec_env;

/*
 * Builds the child's environment from envp (NULL = empty): every entry kept in order except
 * earlier IDENTITY_ENDPOINT / IDENTITY_HEADER entries, then the two new ones.
 * 0, RP_ENOMEM or RP_ETOOBIG. Free with rp_exec_env_free.
 */
int rp_exec_env_build(char **envp, const char *endpoint, const char *header, rp_exec_env *out);
void rp_exec_env_free(rp_exec_env *e);

/* The exit code that reports a wait status: the exit status, or 128 + the signal number. */
int rp_exec_status_code(int wstatus);

/* The command itself (argv after "exec"). */
int rp_cmd_identity_exec(int argc, char **argv, char **envp);

#endif
