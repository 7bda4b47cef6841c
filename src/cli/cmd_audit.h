/*
 * cmd_audit.h - `rampart audit tail` (records from the server, GET /api/audit) and
 * `rampart audit verify` (the local log file checked against its Ed25519 public key, with no
 * server involved; see monitor/audit.h for what verification does and does not prove).
 *
 *   rampart audit tail [--after SEQ] [--limit N] [--follow] [--output json|table]
 *   rampart audit verify [--data DIR] [--pub FILE] [--output json]
 *
 * tail prints one line per record: a table (time, principal, kind, action, scope, result;
 * checkpoint lines are left out) or, with --output json, each record's JSON on one line (the
 * JSON Lines of the log, checkpoints included). Without --follow it prints at most --limit
 * records (default 100) after --after (default 0: the oldest); --follow keeps polling every
 * second from the last record until SIGINT/SIGTERM, then exits 0. verify exits 0 when the log verifies, 1 when
 * it does not (naming the first bad line, why, and showing it) or cannot be checked.
 */
#ifndef RP_CLI_CMD_AUDIT_H
#define RP_CLI_CMD_AUDIT_H

#include <jansson.h>
#include <stdio.h>

/* Prints one audit record (a line of GET /api/audit's "value") as a table row to f. */
void rp_cmd_audit_row(FILE *f, const json_t *rec);

int rp_cmd_audit(int argc, char **argv, char **envp);

#endif
