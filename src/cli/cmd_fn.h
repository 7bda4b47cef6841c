/*
 * cmd_fn.h - `rampart fn ...`: function apps' keys through the management API (docs/functions.md
 * "Keys"):
 *
 *   rampart fn keys list APP [--function F]              the host's keys, or F's
 *   rampart fn keys set APP NAME VALUE [--function F | --system]
 *   rampart fn keys rotate APP NAME [--function F | --system]   a new generated value
 *                                                        (NAME _master with --system: the master key)
 *   rampart fn keys delete APP NAME [--function F | --system]
 *
 * Without --function or --system a key is a host function key. Each also takes --url --ca
 * --token --output json|table. Exit codes are RP_EXIT_* (cli/cmd_common.h). Values are printed
 * only by list, set and rotate (they are what the caller asked for), never in errors.
 */
#ifndef RP_CLI_CMD_FN_H
#define RP_CLI_CMD_FN_H

int rp_cmd_fn(int argc, char **argv, char **envp);

#endif
