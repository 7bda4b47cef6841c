/*
 * cmd_login.h - `rampart login` and `rampart logout`: get an access token for the management
 * API from the token service (docs/iam.md "Token service") with a client secret, and keep it
 * in the client file ($HOME/.config/rampart/client.json, mode 0600) with its expiry, so later
 * commands send it; logout removes it.
 *
 *   rampart login --service-principal --username APPID [--password SECRET] [--tenant T]
 *   rampart login --user NAME [--tenant T]
 *
 * The token service is https://login.<host of the URL>[:port]/<tenant>/oauth2/v2.0/token; the
 * scope is https://management.<host>/.default. The tenant comes from --tenant, then
 * RAMPART_TENANT, then the "tenant" member of GET <URL>/health. The secret comes from
 * --password (service principals only: argv is visible to other local users), then
 * RAMPART_PASSWORD, then one line of stdin (read without echo from a terminal). A user signs in
 * with client_id "user:NAME".
 */
#ifndef RP_CLI_CMD_LOGIN_H
#define RP_CLI_CMD_LOGIN_H

#include <stddef.h>

/*
 * From the management URL ("https://D[:port][/base]") and a tenant id, the token endpoint
 * ("https://login.D[:port]/TENANT/oauth2/v2.0/token") into token_url[tcap] and the scope
 * ("https://management.D/.default") into scope[scap]. The host must be a DNS name (not an IP
 * literal); the tenant 1-64 letters, digits and '-'. 0, RP_EINVAL or RP_ETOOBIG.
 */
int rp_login_endpoints(const char *url, const char *tenant, char *token_url, size_t tcap,
                       char *scope, size_t scap);

int rp_cmd_login(int argc, char **argv, char **envp);
int rp_cmd_logout(int argc, char **argv, char **envp);

#endif
