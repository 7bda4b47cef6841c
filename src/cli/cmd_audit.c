/*
 * cmd_audit.c - `rampart audit tail` and `rampart audit verify` (see cmd_audit.h).
 *
 * tail asks GET /api/audit?after=SEQ&limit=N once and prints at most N records. With --follow
 * it keeps asking from the last seq: a full page is followed at once by the next, a short one
 * waits a second. (Every read of the log is itself audited, so a follower sees its own polls:
 * one record a second, by design of the log rather than of this client.) Rows are printed as they arrive, with fixed column widths (a stream
 * cannot be measured first). Records are untrusted text: every field goes through
 * rp_cli_put_safe.
 *
 * verify runs monitor/audit's rp_audit_verify on DATA/audit/audit.log with the public key from
 * --pub (an off-host copy: the right choice) or DATA/audit/audit.log.pub.
 */
#include "cli/cmd_audit.h"
#include "base/err.h"
#include "base/str.h"
#include "cli/cmd_common.h"
#include "monitor/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOPTS(a)       (sizeof(a) / sizeof((a)[0]))
#define TAIL_LIMIT_MAX 1000 /* the server's page limit */
#define BAD_LINE_SHOWN 2048 /* bytes of a bad line printed */

/* ---------------------------------------------------------------- tail */

/* One field, padded to width (0: no padding), sanitised. */
static void put_field(FILE *f, const char *s, int width)
{
    size_t n = 0;

    rp_cli_put_safe(f, s != NULL && s[0] != '\0' ? s : "-");
    if (s == NULL || s[0] == '\0')
        n = 1;
    else
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
            if ((*p & 0xc0) != 0x80)
                n++;
    for (; (int)n < width; n++)
        fputc(' ', f);
    if (width > 0)
        fputs("  ", f);
}

static const char *member(const json_t *rec, const char *name)
{
    return json_string_value(json_object_get(rec, name));
}

void rp_cmd_audit_row(FILE *f, const json_t *rec)
{
    put_field(f, member(rec, "time"), 24);
    put_field(f, member(rec, "principal"), 36);
    put_field(f, member(rec, "kind"), 6);
    put_field(f, member(rec, "action"), 40);
    put_field(f, member(rec, "scope"), 20);
    put_field(f, member(rec, "result"), 0);
    fputc('\n', f);
}

static int is_checkpoint(const json_t *rec)
{
    const char *k = member(rec, "kind");

    return k != NULL && strcmp(k, "checkpoint") == 0;
}

static void tail_header(FILE *f)
{
    fprintf(f, "%-24s  %-36s  %-6s  %-40s  %-20s  %s\n", "TIME", "PRINCIPAL", "KIND", "ACTION",
            "SCOPE", "RESULT");
}

static int audit_tail(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("follow", RP_OPT_FLAG), RP_OPT("limit", RP_OPT_VALUE),
                     RP_OPT("after", RP_OPT_VALUE)};
    const char *lim;
    uint64_t after = 0, limit = 100;
    rp_cli_cmd c;
    int rc, follow, header_done = 0;

    rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0,
                      "rampart audit tail [--after SEQ] [--limit N] [--follow] "
                      "[--output json|table]",
                      envp);
    if (rc != RP_EXIT_OK)
        return rc;
    lim = rp_opt_get(opts, NOPTS(opts), "limit");
    follow = rp_opt_get(opts, NOPTS(opts), "follow") != NULL;
    if (lim != NULL &&
        (rp_parse_u64(lim, strlen(lim), TAIL_LIMIT_MAX, &limit) != 0 || limit == 0)) {
        rp_cli_end(&c);
        return rp_cli_usage_error("--limit must be a whole number from 1 to %d", TAIL_LIMIT_MAX);
    }
    if (rp_opt_get(opts, NOPTS(opts), "after") != NULL) {
        const char *a = rp_opt_get(opts, NOPTS(opts), "after");
        if (rp_parse_u64(a, strlen(a), UINT64_MAX / 2, &after) != 0) {
            rp_cli_end(&c);
            return rp_cli_usage_error("--after must be a record number (seq)");
        }
    }
    if (follow)
        rp_cli_follow_begin();
    while (!rp_cli_follow_stopped()) {
        char path[128];
        json_t *answer = NULL, *rows, *rec, *next;
        size_t i, n;
        uint64_t last = after;

        snprintf(path, sizeof(path), "/api/audit?after=%" PRIu64 "&limit=%" PRIu64, after, limit);
        rc = rp_cli_request(&c, "GET", path, NULL, &answer, NULL);
        if (rc != RP_EXIT_OK)
            break;
        rows = rp_cli_rows(answer);
        if (rows == NULL) {
            json_decref(answer);
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET /api/audit: the answer is not a list");
            break;
        }
        n = json_array_size(rows);
        json_array_foreach(rows, i, rec)
        {
            json_t *seq = json_object_get(rec, "seq");

            if (json_is_integer(seq) && json_integer_value(seq) > 0 &&
                (uint64_t)json_integer_value(seq) > last)
                last = (uint64_t)json_integer_value(seq);
            if (c.json) {
                char *line = json_dumps(rec, JSON_COMPACT);
                if (line != NULL)
                    puts(line);
                free(line);
            } else if (!is_checkpoint(rec)) {
                if (!header_done) {
                    tail_header(stdout);
                    header_done = 1;
                }
                rp_cmd_audit_row(stdout, rec);
            }
        }
        next = json_object_get(answer, "next");
        if (json_is_integer(next) && json_integer_value(next) > 0 &&
            (uint64_t)json_integer_value(next) > last)
            last = (uint64_t)json_integer_value(next);
        json_decref(answer);
        fflush(stdout);
        if (last <= after && n > 0) {
            /* Records without a usable seq: going on would print them again forever. */
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET /api/audit: records without a seq");
            break;
        }
        after = last;
        if (!follow)
            break; /* --limit is the most records printed */
        if (n >= limit)
            continue; /* more are waiting */
        rp_cli_follow_pause(1000);
    }
    if (follow) {
        rp_cli_follow_end();
        if (rp_cli_follow_stopped())
            rc = RP_EXIT_OK;
    }
    if (!c.json && !header_done && rc == RP_EXIT_OK && !follow)
        puts("no audit records");
    rp_cli_end(&c);
    return rc;
}

/* ---------------------------------------------------------------- verify */

/*
 * Reads line number want (1-based) of path into out[cap] (cut to cap-1 bytes, without '\n').
 * 0 if found.
 */
static int read_line_at(const char *path, uint64_t want, char *out, size_t cap)
{
    FILE *f = fopen(path, "re");
    uint64_t line = 1;
    size_t n = 0;
    int ch, rc = -1;

    if (f == NULL || cap == 0)
        goto out;
    while ((ch = getc(f)) != EOF) {
        if (line == want) {
            if (ch == '\n') {
                rc = 0;
                break;
            }
            if (n + 1 < cap)
                out[n++] = (char)ch;
        } else if (ch == '\n' && ++line > want) {
            break;
        }
    }
    if (line == want && n > 0)
        rc = 0;
    out[n] = '\0';
out:
    if (f != NULL)
        fclose(f);
    return rc;
}

static int audit_verify(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPT("data", RP_OPT_VALUE), RP_OPT("pub", RP_OPT_VALUE),
                     RP_OPT("output", RP_OPT_VALUE)};
    unsigned char pub[RP_AUDIT_PUBKEY_LEN];
    char err[256], log[4200], pubpath[4300], bad[BAD_LINE_SHOWN + 1] = "";
    rp_audit_verify_result res;
    const char *dir, *pubfile;
    rp_args args;
    int rc, json, have_bad = 0;

    if (rp_args_parse(argc, argv, opts, NOPTS(opts), 0, 0, &args, err, sizeof(err)) != 0)
        return rp_cli_usage_error("%s", err);
    if ((rc = rp_cli_output(opts[2].value, &json)) != RP_EXIT_OK)
        return rc;
    dir = opts[0].value;
    for (char **e = envp; dir == NULL && e != NULL && *e != NULL; e++)
        if (strncmp(*e, "RAMPART_DATA=", 13) == 0 && (*e)[13] != '\0')
            dir = *e + 13;
    if (dir == NULL)
        return rp_cli_usage_error("audit verify needs --data DIR (or RAMPART_DATA)");
    if ((size_t)snprintf(log, sizeof(log), "%s/audit/audit.log", dir) >= sizeof(log))
        return rp_cli_usage_error("--data: path too long");
    if (access(log, F_OK) != 0)
        return rp_cli_fail(RP_EXIT_FAIL, "%s: no such file", log);
    pubfile = opts[1].value;
    if (pubfile == NULL) {
        snprintf(pubpath, sizeof(pubpath), "%s.pub", log);
        pubfile = pubpath;
    }
    rc = rp_audit_pubkey_load(pubfile, pub);
    if (rc != 0)
        return rp_cli_fail(RP_EXIT_FAIL, "%s: %s", pubfile,
                           rc == RP_ENOENT   ? "no such file"
                           : rc == RP_EPARSE ? "not an audit public key (one base64url line of "
                                               "32 bytes)"
                                             : rp_strerror(rc));
    memset(&res, 0, sizeof(res));
    rc = rp_audit_verify(log, pub, &res);
    if (rc != 0 && res.bad_line == 0)
        return rp_cli_fail(RP_EXIT_FAIL, "%s: cannot verify: %s", log,
                           rc == RP_ENOENT ? "no such file" : rp_strerror(rc));
    if (!res.ok && res.bad_line > 0)
        have_bad = read_line_at(log, res.bad_line, bad, sizeof(bad)) == 0;
    if (json) {
        json_t *o = json_pack(
            "{s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "ok", res.ok, "log", log, "publicKey", pubfile,
            "lines", (json_int_t)res.lines, "records", (json_int_t)res.records, "checkpoints",
            (json_int_t)res.checkpoints, "lastSeq", (json_int_t)res.last_seq, "unsignedRecords",
            (json_int_t)res.unsigned_records, "repaired", (json_int_t)res.repaired);
        if (o != NULL && res.last_checkpoint_seq > 0)
            json_object_set_new(
                o, "lastCheckpoint",
                json_pack("{s:I,s:s,s:s}", "seq", (json_int_t)res.last_checkpoint_seq, "time",
                          res.last_checkpoint_time, "head", res.last_checkpoint_head));
        if (o != NULL && !res.ok) {
            json_object_set_new(o, "badLine", json_integer((json_int_t)res.bad_line));
            json_object_set_new(o, "badSeq", json_integer((json_int_t)res.bad_seq));
            json_object_set_new(o, "reason", json_string(res.reason));
            if (have_bad) {
                json_t *line = json_stringn(bad, strlen(bad));
                if (line == NULL) { /* not UTF-8: show it with the odd bytes replaced */
                    for (char *p = bad; *p != '\0'; p++)
                        if ((unsigned char)*p >= 0x80)
                            *p = '?';
                    line = json_string(bad);
                }
                json_object_set_new(o, "badRecord", line);
            }
        }
        rp_cli_print_json(o);
        return res.ok ? RP_EXIT_OK : RP_EXIT_FAIL;
    }
    if (res.ok) {
        printf("%s: verified: %" PRIu64 " lines (%" PRIu64 " records, %" PRIu64
               " checkpoints), last seq %" PRIu64 "\n",
               log, res.lines, res.records, res.checkpoints, res.last_seq);
        if (res.last_checkpoint_seq > 0)
            printf("  last checkpoint  seq %" PRIu64 " at %s\n  chain head       %s\n",
                   res.last_checkpoint_seq, res.last_checkpoint_time, res.last_checkpoint_head);
        else
            printf("  no checkpoint yet: nothing is signed\n");
        if (res.unsigned_records > 0)
            printf("  %" PRIu64 " line(s) after the last checkpoint are protected by the hash "
                   "chain only\n",
                   res.unsigned_records);
        if (res.repaired > 0)
            printf("  %" PRIu64 " damaged line(s) were closed by a repair\n", res.repaired);
        printf("Compare the chain head with an off-host copy to detect a log cut back to an "
               "earlier checkpoint.\n");
        return RP_EXIT_OK;
    }
    printf("%s: does NOT verify\n  first bad line   %" PRIu64, log, res.bad_line);
    if (res.bad_seq > 0)
        printf(" (seq %" PRIu64 ")", res.bad_seq);
    fputs("\n  reason           ", stdout);
    rp_cli_put_safe(stdout, res.reason);
    putchar('\n');
    if (have_bad) {
        fputs("  record           ", stdout);
        rp_cli_put_safe(stdout, bad);
        putchar('\n');
    }
    printf("  verified before  %" PRIu64 " lines, last good seq %" PRIu64 "\n", res.lines,
           res.last_seq);
    return RP_EXIT_FAIL;
}

int rp_cmd_audit(int argc, char **argv, char **envp)
{
    if (argc < 1)
        return rp_cli_usage_error("audit needs a subcommand: tail, verify");
    if (strcmp(argv[0], "tail") == 0)
        return audit_tail(argc - 1, argv + 1, envp);
    if (strcmp(argv[0], "verify") == 0)
        return audit_verify(argc - 1, argv + 1, envp);
    return rp_cli_usage_error("unknown audit subcommand '%.60s' (expected tail, verify)", argv[0]);
}
