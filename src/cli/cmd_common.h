/*
 * cmd_common.h - what the client subcommands share: exit codes, option parsing, output modes,
 * calls to the management API with one mapping from HTTP answers to exit codes and messages,
 * tables, percent-encoded paths, and the duration / time syntax of --expires, --duration,
 * --max-duration.
 *
 * Used by main.c and the cmd_*.c files, once per CLI invocation: nothing here is hot, and
 * everything that does not print is pure so the unit tests can reach it
 * (tests/unit/cli/cmd_common_test.c). Text that came from the server is printed through
 * rp_cli_put_safe, which replaces control characters, so an answer cannot drive the terminal.
 */
#ifndef RP_CLI_CMD_COMMON_H
#define RP_CLI_CMD_COMMON_H

#include "cli/client.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: stable, docs/operations.md lists them. */
enum {
    RP_EXIT_OK = 0,
    RP_EXIT_FAIL = 1,
    RP_EXIT_USAGE = 2,
    RP_EXIT_CONFIG = 3,
    RP_EXIT_CONFLICT = 4,
    RP_EXIT_SERVER = 5,
    RP_EXIT_UNAUTHORIZED = 6
};

#define RP_OPT_MAX_VALUES 16 /* values of one repeatable option */
#define RP_ARGS_MAX_POS   8  /* positional arguments */

typedef enum {
    RP_OPT_FLAG,  /* --name; value becomes "1" */
    RP_OPT_VALUE, /* --name VALUE or --name=VALUE, at most once */
    RP_OPT_LIST   /* like VALUE, repeatable: values[0..nvalues) */
} rp_opt_kind;

/* One option: name and kind set by the caller (RP_OPT), the rest filled by rp_args_parse. */
typedef struct rp_opt {
    const char *name; /* without "--" */
    rp_opt_kind kind;
    const char *value; /* the (last) value, "1" for a flag, NULL if not given; borrowed */
    const char *values[RP_OPT_MAX_VALUES];
    size_t nvalues;
} rp_opt;

#define RP_OPT(name, kind)                                                                         \
    {                                                                                              \
        (name), (kind), NULL, {NULL}, 0                                                            \
    }

typedef struct rp_args {
    const char *pos[RP_ARGS_MAX_POS]; /* positional arguments, borrowed from argv */
    size_t npos;
    char **rest; /* what follows "--" (allow_rest only), NULL if there was no "--" */
    int nrest;
} rp_args;

/*
 * Parses argv[0..argc): "--name value", "--name=value", "--flag", positional arguments (at
 * most max_pos) and, with allow_rest, everything after a "--" into out->rest untouched (a "--"
 * is an error otherwise). A value option given twice, an unknown option, a missing value, a
 * flag with "=value" and too many positional arguments are errors.
 * Returns 0, or RP_EINVAL with a one-line reason in err (the caller exits 2).
 */
int rp_args_parse(int argc, char **argv, rp_opt *opts, size_t nopts, size_t max_pos, int allow_rest,
                  rp_args *out, char *err, size_t errlen);

/* The option named name in opts[0..n) (NULL if there is none), and its value (NULL: not given). */
const rp_opt *rp_opt_find(const rp_opt *opts, size_t n, const char *name);
const char *rp_opt_get(const rp_opt *opts, size_t n, const char *name);

/* Prints "rampart: msg" and the help hint to stderr; returns RP_EXIT_USAGE. */
int rp_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "rampart: msg" to stderr; returns code. */
int rp_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * --output: NULL (not given), "text" and "table" give *json 0, "json" gives 1; anything else
 * prints a usage error and returns RP_EXIT_USAGE.
 */
int rp_cli_output(const char *value, int *json);

/* Prints o indented to stdout and releases it (NULL prints nothing). */
void rp_cli_print_json(json_t *o);

/*
 * Writes s to f with control characters (C0, DEL, and the C1 range in UTF-8) replaced by '?':
 * for anything that came from a server or a file. NULL prints "-".
 */
void rp_cli_put_safe(FILE *f, const char *s);

/* ---------------------------------------------------------------- the management API */

/*
 * Loads the client settings for a command from its --url/--ca/--token options (absent ones
 * may be missing from opts), the environment envp and the client file, and checks that a URL
 * is configured. Returns RP_EXIT_OK with cs filled (free with rp_client_settings_free), or
 * prints why and returns RP_EXIT_CONFIG. With need_token, an expired login is
 * RP_EXIT_UNAUTHORIZED ("login expired: run rampart login"); a missing token is left to the
 * server (some deployments may allow anonymous reads).
 */
int rp_cli_connect(rp_client_settings *cs, const rp_opt *opts, size_t nopts, char **envp,
                   int need_token);

/* The options every command that talks to the server accepts. */
#define RP_OPTS_CONN                                                                               \
    RP_OPT("url", RP_OPT_VALUE), RP_OPT("ca", RP_OPT_VALUE), RP_OPT("token", RP_OPT_VALUE),        \
        RP_OPT("output", RP_OPT_VALUE)

/* One server command's parsed state; rp_cli_begin fills it, rp_cli_end releases it. */
typedef struct rp_cli_cmd {
    rp_client_settings cs; /* loaded by the first rp_cli_request */
    int connected;
    int json; /* --output json */
    rp_args args;
    const rp_opt *opts; /* borrowed: the command's options, for the connection flags */
    size_t nopts;
    char **envp;
} rp_cli_cmd;

/*
 * The start of every server command: parses argv against opts (which must include
 * RP_OPTS_CONN), requires min_pos..max_pos positional arguments and reads --output. The
 * client settings are loaded later, by the first rp_cli_request, so usage errors are reported
 * as such (exit 2) even where no server is configured. On a usage problem prints the reason
 * and "usage: <usage>". Returns RP_EXIT_OK (call rp_cli_end later) or the exit code to return
 * (nothing to release). opts and envp must outlive c.
 */
int rp_cli_begin(rp_cli_cmd *c, int argc, char **argv, rp_opt *opts, size_t nopts, size_t min_pos,
                 size_t max_pos, const char *usage, char **envp);
void rp_cli_end(rp_cli_cmd *c);

/*
 * rp_cli_call with the command's settings, loading them first if needed (rp_cli_connect with
 * need_token: a configuration problem returns RP_EXIT_CONFIG, an expired login
 * RP_EXIT_UNAUTHORIZED, after printing why).
 */
int rp_cli_request(rp_cli_cmd *c, const char *method, const char *path, const json_t *body,
                   json_t **answer, long *status);

/*
 * GET path without printing anything: 0 and *answer (the parsed 2xx body; caller decrefs), or
 * -1. For optional extras such as role names in a listing.
 */
int rp_cli_fetch(const rp_client_settings *cs, const char *path, json_t **answer);

/*
 * Sends method path (built with rp_cli_path) with body (NULL = none) and judges the answer:
 * 2xx returns RP_EXIT_OK and, when answer is not NULL, the parsed JSON body in *answer (NULL
 * for an empty body; caller decrefs); 401 prints the server's message and returns
 * RP_EXIT_UNAUTHORIZED; 403 prints "not authorized: <message>" and returns
 * RP_EXIT_UNAUTHORIZED; anything else (other statuses, transport errors, a 2xx body that is
 * not JSON) prints a reason and returns RP_EXIT_SERVER. *status (if not NULL) gets the HTTP
 * status, 0 when none arrived. Messages never hold the token.
 */
int rp_cli_call(const rp_client_settings *cs, const char *method, const char *path,
                const json_t *body, json_t **answer, long *status);

/*
 * Turns an error answer into one line in out[cap]: the management API's
 * {"error":{"code","message"}}, the token service's {"error","error_description"}, a
 * {"message"} body, or "" when the body says nothing readable. Control characters are
 * replaced; the text is cut to fit.
 */
void rp_cli_error_text(const char *body, size_t len, char *out, size_t cap);

/*
 * Builds a request path from fmt, where each "%s" takes the next const char * argument
 * percent-encoded (everything but ALPHA DIGIT - . _ ~), so names, IDs and query values cannot
 * add path segments or parameters. Other characters of fmt are copied. Returns 0;
 * RP_EINVAL for an empty argument or one that is "." or ".."; RP_ETOOBIG if out[cap] is too
 * small.
 */
int rp_cli_path(char *out, size_t cap, const char *fmt, ...);

/* ---------------------------------------------------------------- tables and fields */

typedef enum {
    RP_COL_TEXT,    /* strings as they are; numbers in decimal; arrays joined with ", " */
    RP_COL_TIME,    /* Unix seconds shown as ISO 8601 UTC; strings as they are */
    RP_COL_COUNT,   /* the length of an array */
    RP_COL_SECONDS, /* a number of seconds shown as an ISO 8601 duration (PT8H); strings as is */
    RP_COL_SECRET   /* never printed: "(hidden)" when present */
} rp_col_kind;

/* A column (or a field of a single object): header and where its value is found. */
typedef struct rp_col {
    const char *header;
    const char *paths; /* candidates separated by '|', each a dotted member path */
    rp_col_kind kind;
} rp_col;

/*
 * The first candidate of paths present (not null) in o, following dotted members
 * ("properties.roleName|roleName"); NULL if none.
 */
json_t *rp_cli_json_path(const json_t *o, const char *paths);

/*
 * Formats the value of column c in o into out[cap] (control characters replaced, "-" when
 * missing, cut to fit).
 */
void rp_cli_cell(const json_t *o, const rp_col *c, char *out, size_t cap);

/*
 * The rows of a list answer: the array itself, or the "value" member of an object (Azure's
 * list shape). NULL if it is neither.
 */
json_t *rp_cli_rows(const json_t *answer);

/*
 * Prints rows (an array of objects) as a table to f: a header line, then one line per row,
 * columns padded to their widest cell, two spaces apart. An empty array prints only empty
 * (when not NULL, e.g. "no users") and no header.
 */
void rp_cli_table(FILE *f, const rp_col *cols, size_t ncols, const json_t *rows, const char *empty);

/* Prints one object as "label  value" lines, labels padded; missing fields are skipped. */
void rp_cli_fields(FILE *f, const rp_col *cols, size_t ncols, const json_t *o);

/* ---------------------------------------------------------------- durations and times */

#define RP_CLI_DURATION_MAX ((int64_t)100 * 366 * 86400) /* longest duration accepted */

/*
 * Parses a duration: one or more <number><unit> with units s, m, h, d, w ("2h", "1h30m",
 * "7d"), or ISO 8601 "P[nW][nD][T[nH][nM][nS]]" ("PT2H", "P7D", "P1DT12H"; upper or lower
 * case; no years or months, whose length varies). Must be positive and at most
 * RP_CLI_DURATION_MAX. 0 and *secs, or RP_EINVAL.
 */
int rp_cli_parse_duration(const char *s, int64_t *secs);

/*
 * Parses an ISO 8601 date-time with an explicit offset: "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)"
 * ('T' or 't' or ' '; the fraction is dropped), years 1970-9999, real calendar dates.
 * 0 and *t (Unix seconds), or RP_EINVAL.
 */
int rp_cli_parse_time(const char *s, int64_t *t);

/*
 * --expires: an ISO 8601 time, or a duration from now. Refuses times not after now.
 * 0 and *t (Unix seconds), or RP_EINVAL.
 */
int rp_cli_parse_expiry(const char *s, int64_t now, int64_t *t);

/* Formats t (Unix seconds, clamped to 1970..9999) as "2026-11-29T07:00:00Z" into out[21]. */
void rp_cli_format_time(int64_t t, char out[21]);

/*
 * Formats secs (> 0) as an ISO 8601 duration with hours, minutes and seconds only ("PT2H",
 * "PT1H30M", "PT45S", "PT168H"), into out[cap] (cap >= 32).
 */
void rp_cli_format_duration(int64_t secs, char *out, size_t cap);

/*
 * One line of stdin into out[cap] (NUL-terminated, without the line end) and *len (may be NULL):
 * after prompt on stderr with echo off when stdin is a terminal (restored even on SIGINT or
 * SIGTERM); read byte by byte so no stdio buffer keeps a copy. what names the secret in errors
 * ("passphrase"). RP_EXIT_OK, or RP_EXIT_USAGE (empty, longer than cap - 1) with out wiped.
 */
int rp_cli_read_secret(const char *prompt, const char *what, char *out, size_t cap, size_t *len);

/*
 * --follow loops (audit tail, fn logs): between rp_cli_follow_begin and rp_cli_follow_end,
 * SIGINT and SIGTERM end the loop (rp_cli_follow_stopped) instead of the process, so the
 * command finishes its output and exits 0. rp_cli_follow_pause sleeps ms unless a stop came.
 */
void rp_cli_follow_begin(void);
int rp_cli_follow_stopped(void);
void rp_cli_follow_pause(long ms);
void rp_cli_follow_end(void);

#endif
