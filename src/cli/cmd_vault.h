/*
 * cmd_vault.h - `rampart vault ...`: the client of the vault management collection
 * (/api/vaults, vault/vault.h). A vault's secrets and keys are reached through its own host
 * (https://NAME.vault.D/) with the Azure SDKs; these commands only manage the vaults
 * themselves.
 *
 *   rampart vault create NAME [--purge-protection] [--retention-days N]
 *   rampart vault list | vault show NAME | vault delete NAME
 *
 * Each also takes --url URL --ca FILE --token TOKEN and --output json|table. The entry point
 * takes the arguments after "vault" (argv[0] is the subcommand) and the environment
 * (RAMPART_URL, RAMPART_CA, RAMPART_TOKEN, HOME), and returns the process exit code
 * (RP_EXIT_* in cli/cmd_common.h): 0 done, 2 usage (an invalid vault name never reaches the
 * server), 3 client settings, 4 conflict (HTTP 409: the retention period or purge protection
 * cannot change that way, or a purge-protected vault still holds objects), 5 server error or
 * unreachable (a missing vault is HTTP 404), 6 not authenticated / not authorized.
 */
#ifndef RP_CLI_CMD_VAULT_H
#define RP_CLI_CMD_VAULT_H

/* Bounds of a vault's soft-delete retention period in days (the server's, checked here too). */
#define RP_CMD_VAULT_RETENTION_MIN 7
#define RP_CMD_VAULT_RETENTION_MAX 90

/*
 * 1 if name is a valid vault name, else 0 (NULL too): 3-24 characters of a-z, 0-9 and '-',
 * starting with a letter, ending with a letter or digit, without "--". The server applies the
 * same rule (rp_vault_name_valid); the client checks first so a bad name is a usage error and
 * never becomes a request path.
 */
int rp_cmd_vault_name_valid(const char *name);

/* rampart vault create|list|show|delete ... */
int rp_cmd_vault(int argc, char **argv, char **envp);

#endif
