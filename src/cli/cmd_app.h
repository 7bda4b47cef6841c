/*
 * cmd_app.h - `rampart app ...`: the client of App Service (sites/sites.h): the management
 * collection /api/apps and zip deploy on https://NAME.scm.D/api/zipdeploy.
 *
 *   rampart app create NAME [--static DIR|ZIP]   create, and deploy DIR or ZIP if given
 *   rampart app deploy NAME DIR|ZIP              zip DIR (or send ZIP) with a progress bar
 *   rampart app list | app show NAME | app delete NAME
 *   rampart app releases NAME                    the kept releases, the live one marked
 *   rampart app rollback NAME [--to N]           the previous release, or release N
 *   rampart app config NAME [--min-tls ..] [--client-cert ..] [--client-ca PEM]
 *                     [--access-rules JSON] ...    the app's transport and access settings
 *
 * Each also takes --url URL --ca FILE --token TOKEN and --output json|table. Exit codes are
 * RP_EXIT_* (cli/cmd_common.h): 0 done, 2 usage (a bad app name never reaches the server),
 * 3 client settings, 4 conflict (HTTP 409: a deploy is running, no release to roll back to),
 * 5 server error, unreachable, or an archive the server refused (400/413: the reason is
 * printed), 6 not authenticated / not authorized.
 */
#ifndef RP_CLI_CMD_APP_H
#define RP_CLI_CMD_APP_H

/* The server's rule (rp_sites_name_valid), checked here first. 1 valid, 0 not. */
int rp_cmd_app_name_valid(const char *name);

/* rampart app create|deploy|list|show|delete|releases|rollback ... */
int rp_cmd_app(int argc, char **argv, char **envp);

#endif
