/*
 * config.h - the server's configuration: defaults, JSON file, environment, command-line flags.
 *
 * Sources apply in order of rising precedence, each overwriting what the previous one set:
 *
 *     rp_config_defaults -> rp_config_load_file -> rp_config_load_env -> rp_config_set (flags)
 *     -> rp_config_validate
 *
 * Every setting has a dotted key ("limits.max_connections"). In the file the dots are nesting
 * levels ({"limits": {"max_connections": 5}}; a flat "limits.max_connections" member works
 * too); in the environment the name is RAMPART_ + the key upper-cased with '.' -> '_'
 * (RAMPART_LIMITS_MAX_CONNECTIONS). Flags and the environment hand values over as strings and
 * go through rp_config_set; tls.certificates then takes the same JSON array as the file.
 *
 * Configuration is read once at start-up by one thread, so nothing here is tuned for speed;
 * what matters is that every bad value is refused with a message an operator can act on:
 * "<source>: <key>: <reason>", e.g. "config.json: limits.idle_timeout_ms: must be an integer
 * from 1000 to 3600000". Unknown keys in the file are errors so that a typo cannot silently
 * leave a default in force. On error the struct may hold some of the new values; it is still
 * safe to free, and callers are expected to stop.
 *
 * The rp_config struct is public because the server embeds it and reads it directly; every
 * field is public and read-only after rp_config_validate. Strings are heap copies owned by the
 * struct (rp_config_free). Allocation failure propagates as RP_ENOMEM.
 */
#ifndef RP_SERVER_CONFIG_H
#define RP_SERVER_CONFIG_H

#include <jansson.h>
#include <stddef.h>

/* Limits on the input itself (not on the settings). */
#define RP_CONFIG_FILE_MAX  (1024 * 1024) /* a config file larger than this is refused */
#define RP_CONFIG_MAX_CERTS 64            /* entries in tls.certificates */
#define RP_CONFIG_PATH_MAX  4096          /* bytes in any path setting */

/* host is an IP literal (v4, or v6 without brackets) or a name; port 0..65535 (0 = pick a free
 * port, useful for tests). */
typedef struct rp_hostport {
    char host[256];
    int port;
} rp_hostport;

/* Operator-provided PEM files (paths, owned by the rp_config). */
typedef struct rp_certpair {
    char *cert;
    char *key;
} rp_certpair;

/* Who rampart serve runs as when started as root and neither "user" is set nor a "rampart"
 * account exists: a uid (= gid) with no account, next below the apps' (RP_SITES_UID_BASE). */
#define RP_SERVICE_UID 1879048191u

typedef struct rp_config {
    char *data_dir;     /* "data": where init put everything; default NULL (the CLI fills it) */
    char *domain;       /* "domain", default NULL = take it from the data dir's install.json;
                             stored lower-cased */
    rp_hostport listen; /* "listen", default 127.0.0.1:8443 */
    rp_hostport http_listen;     /* "http_listen", default 127.0.0.1:8080 */
    int http_enabled;            /* 0 when http_listen is "" or "off": no redirect listener */
    rp_hostport identity_listen; /* "identity_listen", default 127.0.0.1:8459, loopback only */
    int identity_enabled;        /* 0 when identity_listen is "off": no managed identity endpoint */
    char *static_root;      /* "static", default NULL: a content root served at the bare domain */
    int workers;            /* "workers", 0 = one per CPU; 0..256 */
    int tls_min_version;    /* "tls.min_version": "1.2" (default) or "1.3" -> 12 / 13 */
    int ticket_rotate_s;    /* "tls.ticket_rotation_s", default 3600, 60..86400 */
    int client_certs;       /* "tls.client_certificates": "off" (default) or "optional" -> 0 / 1 */
    rp_certpair *certs;     /* "tls.certificates": [{"cert":path,"key":path},...]; */
    size_t ncerts;          /*   default none (use the built-in certificate) */
    size_t max_connections; /* "limits.max_connections", default 10000, 1..1000000 */
    size_t max_body_bytes;  /* "limits.max_body_bytes", default 1 MiB, 0..(1<<34) */
    unsigned header_timeout_ms; /* "limits.header_timeout_ms", default 10000, 1000..3600000 */
    unsigned body_timeout_ms;   /* "limits.body_timeout_ms", default 15000, 1000..3600000 */
    unsigned idle_timeout_ms;   /* "limits.idle_timeout_ms", default 30000, 1000..3600000 */
    unsigned write_timeout_ms;  /* "limits.write_timeout_ms", default 30000, 1000..3600000 */
    unsigned drain_timeout_ms;  /* "limits.drain_timeout_ms", default 10000, 0..3600000 */
    char *access_log; /* "log.access": "off", "stderr", "stdout" or a file path; default "stderr" */
    char *error_log;  /* "log.error": "stderr" or a file path; default "stderr" */
    char *log_level;  /* "log.level": debug|info|warn|error, default "info" */
    /* Root key providers (docs/encryption.md): which one an install uses is fixed by init. */
    char *pkcs11_module;   /* "keys.pkcs11_module": the PKCS#11 module (.so), default NULL */
    char *pkcs11_token;    /* "keys.pkcs11_token": its token label, default NULL */
    char *pkcs11_pin_file; /* "keys.pkcs11_pin_file": file (0600) holding the user PIN;
                              default NULL: the RAMPART_PKCS11_PIN environment variable */
    char *passphrase_file; /* "keys.passphrase_file": file (0600) holding the passphrase, for
                              unattended starts; default NULL: start sealed, `rampart unseal` */
    char *outbound_ca;     /* "outbound_ca": PEM bundle of the CAs trusted for outbound TLS
                              (OIDC keys of external issuers, ...), replacing the system's
                              store; default NULL: the system's store */
    char *user; /* "user": who rampart serve runs as after start-up when started as root (a
                   name or a uid, never root); default NULL: "rampart" when that account
                   exists, else uid = gid = RP_SERVICE_UID (docs/security-model.md) */
} rp_config;

/*
 * Fills c with the built-in defaults. c's previous contents are overwritten, not freed.
 * Aborts the process on allocation failure (start-up only; a handful of short strings).
 */
void rp_config_defaults(rp_config *c);

/* Frees every owned string and the certificate list, then zeroes c. Accepts NULL and a zeroed
 * or defaulted struct; c can be reused after rp_config_defaults. */
void rp_config_free(rp_config *c);

/*
 * Applies one setting by dotted key from a string value (flags and the environment use this).
 * source says where the value came from ("--listen", "RAMPART_LISTEN") and starts the message.
 * Returns 0; RP_ENOENT for an unknown key; RP_EINVAL for a bad value; RP_ENOMEM.
 * On failure a message naming source, key and reason is written to err[errlen].
 */
int rp_config_set(rp_config *c, const char *key, const char *value, const char *source, char *err,
                  size_t errlen);

/*
 * Applies the JSON config file at path (an object, at most RP_CONFIG_FILE_MAX bytes, duplicate
 * members refused). Returns 0; RP_ENOENT if the file does not exist (the caller decides whether
 * that is fine; err is still filled); RP_EIO if it cannot be read; RP_EPARSE for bad JSON;
 * RP_EINVAL for an unknown key or a bad value; RP_ETOOBIG; RP_ENOMEM. Messages start with path.
 */
int rp_config_load_file(rp_config *c, const char *path, char *err, size_t errlen);

/*
 * Applies every RAMPART_* variable in envp (a NULL-terminated "NAME=value" array, as main's
 * third argument; NULL = empty) that names a known key. RAMPART_DATA, RAMPART_URL, RAMPART_CA
 * and RAMPART_TOKEN are client/CLI settings and are skipped, as are RAMPART_* names that match
 * no key (other tools own them). Returns 0 or the first rp_config_set error.
 */
int rp_config_load_env(rp_config *c, char **envp, char *err, size_t errlen);

/*
 * Cross-field checks once every source is applied: listen and http_listen must not share a
 * port on the same (or a wildcard) host. Returns 0 or RP_EINVAL with a message.
 * data_dir is not required here: the CLI supplies it after the fact.
 */
int rp_config_validate(const rp_config *c, char *err, size_t errlen);

/*
 * The effective configuration as a JSON object in the config file's nested layout, so that it
 * can be saved and loaded back. Unset strings are null; a disabled http_listen is "off".
 * Returns a new reference (caller json_decref()s) or NULL on allocation failure.
 */
json_t *rp_config_to_json(const rp_config *c);

/*
 * Parses "HOST:PORT": "127.0.0.1:8443", "[::1]:8443", "localhost:0". HOST is an IPv4 literal,
 * an IPv6 literal in brackets (stored without them) or a DNS name; PORT is 0..65535 in plain
 * digits. Returns 0 and *out, or RP_EINVAL (out untouched).
 */
int rp_hostport_parse(const char *s, rp_hostport *out);

#endif
