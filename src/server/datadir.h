/*
 * datadir.h - the data directory layout and `rampart init`.
 *
 * One directory holds an install (mode 0700, owned by the rampart user):
 *
 *     install.json            {"format":1,"install_id":...,"domain":...,"created_at":unix secs}
 *     keys/                   the key hierarchy (0700), see crypto/keyring.h and
 *                             docs/encryption.md: keystore.db (wrapped KEKs), root-<g>.key
 *                             or root-<g>.sealed (file or passphrase providers); installs made
 *                             before the key store have keys/root.key
 *     tls/ca.crt              the local CA certificate (PEM): what clients trust
 *     tls/ca.key.sealed       its private key, sealed under the root key (label "ca")
 *     tls/server.crt          the front door's certificate followed by the CA's (the chain)
 *     tls/server.key.sealed   its private key, sealed (label "server")
 *     rampart.db              the state store (store/store.h): metadata and wrapped DEKs
 *     objects.db              the ciphertext store (store/store.h rp_store_open_ex)
 *
 * install.json is written last, atomically: a directory with some of these files and no
 * install.json is an init that crashed half-way, and init refuses it rather than guess.
 *
 * The server certificate covers the platform domain D and its service host names
 * (ARCHITECTURE "Names and origins"): D, *.D, *.vault.D, *.scm.D, *.events.D, *.blob.D,
 * localhost, 127.0.0.1 and ::1.
 */
#ifndef RP_SERVER_DATADIR_H
#define RP_SERVER_DATADIR_H

#include <stddef.h>

#define RP_DATADIR_INSTALL     "install.json"
#define RP_DATADIR_KEYS        "keys"
#define RP_DATADIR_ROOT_KEY    "keys/root-1.key" /* file provider, as init creates it */
#define RP_DATADIR_OBJECTS     "objects.db"
#define RP_DATADIR_CA_CERT     "tls/ca.crt"
#define RP_DATADIR_CA_KEY      "tls/ca.key.sealed"
#define RP_DATADIR_SERVER_CERT "tls/server.crt"
#define RP_DATADIR_SERVER_KEY  "tls/server.key.sealed"
#define RP_DATADIR_DB          "rampart.db"
#define RP_DATADIR_AUDIT_LOG   "audit/audit.log"
/* Labels (AAD) of the sealed key files. */
#define RP_DATADIR_CA_KEY_LABEL     "ca"
#define RP_DATADIR_SERVER_KEY_LABEL "server"

#define RP_DATADIR_DEFAULT_DOMAIN "rampart.localhost"
/* Longest domain accepted anywhere (a DNS name), and by init, which must fit "*.events.D". */
#define RP_DATADIR_DOMAIN_MAX      253
#define RP_DATADIR_INIT_DOMAIN_MAX (253 - 7)
/* Validity of what init issues. */
#define RP_DATADIR_CA_DAYS     3650
#define RP_DATADIR_SERVER_DAYS 397

typedef struct rp_init_opts {
    const char *data_dir; /* required; created if missing (its parent must exist) */
    const char *domain;   /* NULL: RP_DATADIR_DEFAULT_DOMAIN */
    /* The root key provider and its inputs (keys_dir is filled in by init); NULL: file. */
    const struct rp_keyring_opts *keys;
} rp_init_opts;

typedef struct rp_init_result {
    int created; /* 1 if this call created the install, 0 if it already existed */
    char domain[256];
    char ca_cert_path[4096]; /* absolute */
    char admin_token[128];   /* only when created == 1: the one-time administrator credential;
                                the caller prints it once and wipes it (OPENSSL_cleanse) */
    char install_id[37];
} rp_init_result;

/*
 * Creates the install in o->data_dir, or verifies the one already there.
 *
 * Fresh (missing or empty directory): creates the layout above, mode 0700 on the directory,
 * the root key, CA, server certificate, database and one administrator credential, and fills
 * *r with created = 1. A failure removes what this call created.
 * Existing install for the same domain: checks that the root key loads and opens the sealed CA
 * key, changes nothing, and fills *r with created = 0 (no admin_token). So init is idempotent.
 *
 * Returns 0, or (with a one-line message for the operator in err[errlen], never containing key
 * material): RP_EINVAL (bad domain, bad data_dir), RP_ECONFLICT (an install for another domain,
 * a non-empty directory that is not an install, a half-created install, another init running
 * on the same directory), RP_EPARSE / RP_EUNSUPPORTED (unreadable install.json), RP_ENOENT
 * (parent missing), RP_EPERM, RP_EIO, RP_ECRYPTO, RP_EDB, RP_ENOMEM.
 */
int rp_datadir_init(const rp_init_opts *o, rp_init_result *r, char *err, size_t errlen);

/*
 * Checks a platform domain: 1..RP_DATADIR_DOMAIN_MAX characters, dot-separated labels of
 * 1..63 characters from [a-z0-9-] not starting or ending with '-', a last label that is not
 * all digits (an IP address is not a domain). A single label ("localhost") is accepted.
 * 0, or RP_EINVAL with a message in err[errlen] (err may be NULL).
 */
int rp_datadir_check_domain(const char *domain, char *err, size_t errlen);

/*
 * Joins data_dir and a relative path inside it (rel must not be absolute nor contain a ".."
 * component) into out[cap]. 0, RP_EINVAL or RP_ETOOBIG.
 */
int rp_datadir_path(const char *data_dir, const char *rel, char *out, size_t cap);

/*
 * Reads install.json: the domain into domain[dcap] and the install id into install_id.
 * 0; RP_ENOENT if the directory holds no install.json; RP_EPARSE if it is malformed;
 * RP_EUNSUPPORTED if it has another format version; RP_ETOOBIG if dcap is too small; RP_EIO.
 */
int rp_datadir_read(const char *data_dir, char *domain, size_t dcap, char install_id[37]);

#endif
