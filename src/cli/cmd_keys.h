/*
 * cmd_keys.h - the root key from the command line (docs/encryption.md): `rampart keys` asks a
 * running server about its key hierarchy and rotates the root key, `rampart unseal` gives a
 * sealed server its passphrase, and `rampart init` takes its key provider options from here.
 *
 *   rampart keys status       GET  /api/keys              provider, generation, KEK counts
 *   rampart keys rotate-root  POST /api/keys/rotate-root  a new root key generation, online
 *   rampart unseal [--url http://127.0.0.1:8459] [--passphrase-file FILE]
 *   rampart init ... [--key-provider file|passphrase|pkcs11] [--passphrase-file FILE]
 *                    [--pkcs11-module PATH] [--pkcs11-token LABEL] [--pkcs11-pin-file FILE]
 *
 * keys takes --url --ca --token --output like the other management commands. unseal talks
 * plain HTTP to the sealed server's loopback listener (server/unseal.h), never the management
 * URL: it refuses any host but 127.0.0.1, ::1 and localhost, and ignores proxy settings, so
 * the passphrase never leaves the machine.
 *
 * Passphrases and PINs come from a file (a regular file with no permission for group or
 * others: else exit 3), then the environment (RAMPART_PASSPHRASE, RAMPART_PKCS11_PIN), then,
 * for a passphrase, the terminal with echo off (one line of stdin when it is not a terminal).
 * They live only in the fixed buffers below, are wiped after use and never printed.
 *
 * Exit codes (RP_EXIT_* in cli/cmd_common.h): 0 done, 2 usage, 3 client settings or a
 * passphrase/PIN file that is unreadable or too open, 4 already unsealed (HTTP 409, or 404: once
 * unsealed the port serves the managed identity endpoint, which has no /unseal), 5 server error
 * or unreachable, 6 not authenticated / not authorized / the passphrase does not open the root
 * key.
 */
#ifndef RP_CLI_CMD_KEYS_H
#define RP_CLI_CMD_KEYS_H

#include "cli/cmd_common.h"
#include "crypto/keyring.h"

#include <stddef.h>

#define RP_CMD_PASSPHRASE_MAX 1024 /* bytes; the sealed server's RP_UNSEAL_PASSPHRASE_MAX */
#define RP_CMD_PASSPHRASE_MIN 12   /* characters (UTF-8 code points), for a new install */
#define RP_CMD_PIN_MAX        256  /* bytes of a PKCS#11 user PIN */
#define RP_CMD_UNSEAL_URL     "http://127.0.0.1:8459" /* the default identity_listen */
#define RP_CMD_UNSEAL_URL_MAX 128 /* the endpoint rp_cmd_unseal_endpoint builds */

/* init's key provider options, to add to its option table. */
#define RP_OPTS_INIT_KEYS                                                                          \
    RP_OPT("key-provider", RP_OPT_VALUE), RP_OPT("passphrase-file", RP_OPT_VALUE),                 \
        RP_OPT("pkcs11-module", RP_OPT_VALUE), RP_OPT("pkcs11-token", RP_OPT_VALUE),               \
        RP_OPT("pkcs11-pin-file", RP_OPT_VALUE)

/*
 * What `rampart init` hands to rp_datadir_init as rp_init_opts.keys: ko, whose passphrase and
 * pkcs11_pin point into this struct and whose module and token are borrowed from the options.
 * Embedded by the caller (on its stack); released with rp_cmd_init_keys_wipe.
 */
typedef struct rp_cmd_init_keys {
    rp_keyring_opts ko; /* keys_dir is left NULL: init fills it in */
    char passphrase[RP_CMD_PASSPHRASE_MAX + 1];
    char pin[RP_CMD_PIN_MAX + 1];
} rp_cmd_init_keys;

/*
 * Fills k from init's RP_OPTS_INIT_KEYS options in opts[0..nopts) and envp (a NULL-terminated
 * "NAME=value" array): the provider (default file), and for passphrase the passphrase from
 * --passphrase-file, RAMPART_PASSPHRASE, or typed twice on a terminal (one line of stdin
 * otherwise), at least RP_CMD_PASSPHRASE_MIN characters; for pkcs11 --pkcs11-module and
 * --pkcs11-token and the PIN from --pkcs11-pin-file or RAMPART_PKCS11_PIN. opts and envp must
 * outlive k. Returns RP_EXIT_OK, or prints why and returns RP_EXIT_USAGE (bad or missing
 * options, a short or mismatched passphrase) or RP_EXIT_CONFIG (a secret file that is missing,
 * unreadable, not a regular file or open to group or others). Either way call
 * rp_cmd_init_keys_wipe afterwards.
 */
int rp_cmd_init_keys_load(rp_cmd_init_keys *k, const rp_opt *opts, size_t nopts, char **envp);

/* Wipes the passphrase, the PIN and the pointers in k. Accepts NULL. */
void rp_cmd_init_keys_wipe(rp_cmd_init_keys *k);

/*
 * Turns an unseal URL ("http://HOST[:PORT][/ or /unseal]", HOST 127.0.0.1, [::1] or
 * localhost, no user, query or fragment) into the endpoint to POST to,
 * "http://HOST[:PORT]/unseal", in out[cap], rebuilt from the parsed parts. 0, RP_EINVAL (not
 * such a URL), RP_ETOOBIG, RP_ENOMEM.
 */
int rp_cmd_unseal_endpoint(const char *url, char *out, size_t cap);

/* rampart keys status | keys rotate-root */
int rp_cmd_keys(int argc, char **argv, char **envp);

/* rampart unseal [--url URL] [--passphrase-file FILE] [--output json] */
int rp_cmd_unseal(int argc, char **argv, char **envp);

#endif
