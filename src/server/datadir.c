/*
 * datadir.c - `rampart init`: creates or verifies the data directory (layout in datadir.h).
 *
 * Workload: runs once per install and once per start-up check, from the CLI; it blocks on
 * fsync and key generation and that is fine.
 *
 * Safety rules: nothing existing is ever overwritten (the root key is created O_EXCL, the
 * directory must be empty or hold our own install), concurrent inits on one directory are
 * excluded with flock on the directory, and install.json goes last so that a crash leaves a
 * state the next init recognises and refuses. A failure that is not a crash removes exactly the
 * files this call created, nothing else.
 */
#include "server/datadir.h"
#include "crypto/keyring.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/rand.h"
#include "base/str.h"
#include "crypto/pki.h"
#include "crypto/rootkey.h"
#include "server/admin.h"
#include "store/store.h"

#include <jansson.h>
#include <openssl/crypto.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INSTALL_FORMAT   1
#define INSTALL_JSON_MAX 65536
#define DATADIR_PATH_MAX 4096

/* What a fresh init creates, files before their directories, for the cleanup of a failure. */
static const char *const created_files[] = {
    RP_DATADIR_INSTALL,     RP_DATADIR_DB "-wal",      RP_DATADIR_DB "-shm",
    RP_DATADIR_DB,          RP_DATADIR_OBJECTS "-wal", RP_DATADIR_OBJECTS "-shm",
    RP_DATADIR_OBJECTS,     RP_DATADIR_SERVER_KEY,     RP_DATADIR_SERVER_CERT,
    RP_DATADIR_CA_KEY,      RP_DATADIR_CA_CERT,        "keys/keystore.db-wal",
    "keys/keystore.db-shm", "keys/keystore.db",        "keys/root-1.key",
    "keys/root-1.sealed",
};
static const char *const created_dirs[] = {"tls", "keys"};

/* Names only init creates: finding one in a directory without install.json means a crash. */
static const char *const own_names[] = {"keys",
                                        "tls",
                                        RP_DATADIR_DB,
                                        RP_DATADIR_DB "-wal",
                                        RP_DATADIR_DB "-shm",
                                        RP_DATADIR_OBJECTS,
                                        RP_DATADIR_OBJECTS "-wal",
                                        RP_DATADIR_OBJECTS "-shm"};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int rp_datadir_check_domain(const char *domain, char *err, size_t errlen)
{
    size_t n, label = 0, start = 0;
    int digits_only = 1;

    if (domain == NULL || domain[0] == '\0') {
        set_err(err, errlen, "domain is empty");
        return RP_EINVAL;
    }
    n = strlen(domain);
    if (n > RP_DATADIR_DOMAIN_MAX) {
        set_err(err, errlen, "domain is longer than %d characters", RP_DATADIR_DOMAIN_MAX);
        return RP_EINVAL;
    }
    for (size_t i = 0; i <= n; i++) {
        char c = domain[i];
        if (c == '.' || c == '\0') {
            if (label == 0) {
                set_err(err, errlen, "domain has an empty label at character %zu%s", i + 1,
                        c == '\0' ? " (no trailing dot)" : "");
                return RP_EINVAL;
            }
            if (domain[start] == '-' || domain[i - 1] == '-') {
                set_err(err, errlen, "a domain label cannot start or end with '-' (character %zu)",
                        domain[start] == '-' ? start + 1 : i);
                return RP_EINVAL;
            }
            if (c == '\0')
                break;
            label = 0;
            start = i + 1;
            digits_only = 1;
            continue;
        }
        if (c >= 'A' && c <= 'Z') {
            set_err(err, errlen, "domain must be lowercase (character %zu)", i + 1);
            return RP_EINVAL;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            set_err(err, errlen, "domain character %zu is not allowed (use a-z, 0-9, '-' and '.')",
                    i + 1);
            return RP_EINVAL;
        }
        if (c < '0' || c > '9')
            digits_only = 0;
        if (++label > 63) {
            set_err(err, errlen, "a domain label is longer than 63 characters");
            return RP_EINVAL;
        }
    }
    if (digits_only) {
        set_err(err, errlen, "domain must be a host name, not an IP address or a number");
        return RP_EINVAL;
    }
    return 0;
}

int rp_datadir_path(const char *data_dir, const char *rel, char *out, size_t cap)
{
    size_t dn, rn;
    const char *p;

    if (data_dir == NULL || rel == NULL || out == NULL || data_dir[0] == '\0' || rel[0] == '\0' ||
        rel[0] == '/')
        return RP_EINVAL;
    for (p = rel; *p != '\0';) {
        size_t seg = strcspn(p, "/");
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return RP_EINVAL;
        p += seg;
        if (*p == '/')
            p++;
    }
    dn = strlen(data_dir);
    while (dn > 1 && data_dir[dn - 1] == '/')
        dn--;
    rn = strlen(rel);
    /* dir + '/' + rel + NUL, without a second '/' when dir is "/". */
    if (dn + 1 + rn + 1 > cap)
        return RP_ETOOBIG;
    memcpy(out, data_dir, dn);
    if (data_dir[dn - 1] != '/')
        out[dn++] = '/';
    memcpy(out + dn, rel, rn + 1);
    return 0;
}

int rp_datadir_read(const char *data_dir, char *domain, size_t dcap, char install_id[37])
{
    char path[DATADIR_PATH_MAX];
    json_t *root = NULL, *fmt, *id, *dom;
    json_error_t jerr;
    rp_buf b;
    int rc;

    if (domain == NULL || install_id == NULL)
        return RP_EINVAL;
    rc = rp_datadir_path(data_dir, RP_DATADIR_INSTALL, path, sizeof(path));
    if (rc != 0)
        return rc;
    rp_buf_init(&b, INSTALL_JSON_MAX);
    rc = rp_file_read(path, &b);
    if (rc != 0) {
        if (rc == RP_ETOOBIG)
            rc = RP_EPARSE;
        goto out;
    }
    rc = RP_EPARSE;
    root = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root))
        goto out;
    fmt = json_object_get(root, "format");
    id = json_object_get(root, "install_id");
    dom = json_object_get(root, "domain");
    if (!json_is_integer(fmt) || !json_is_string(id) || !json_is_string(dom))
        goto out;
    if (json_integer_value(fmt) != INSTALL_FORMAT) {
        rc = RP_EUNSUPPORTED;
        goto out;
    }
    if (json_string_length(id) != 36 ||
        rp_datadir_check_domain(json_string_value(dom), NULL, 0) != 0 ||
        strlen(json_string_value(dom)) != json_string_length(dom))
        goto out;
    if (json_string_length(dom) >= dcap) {
        rc = RP_ETOOBIG;
        goto out;
    }
    memcpy(install_id, json_string_value(id), 37);
    memcpy(domain, json_string_value(dom), json_string_length(dom) + 1);
    rc = 0;
out:
    json_decref(root);
    rp_buf_free(&b);
    return rc;
}

/* ---- init ---- */

typedef struct init_ctx {
    const char *dir; /* absolute path of the data directory */
    char *err;
    size_t errlen;
    const rp_keyring_opts *keys; /* provider for a new install (NULL: file) */
} init_ctx;

static int ipath(const init_ctx *c, const char *rel, char out[DATADIR_PATH_MAX])
{
    return rp_datadir_path(c->dir, rel, out, DATADIR_PATH_MAX);
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return RP_EIO;
    if (fsync(fd) != 0)
        rc = RP_EIO;
    close(fd);
    return rc;
}

/* 1 if the directory has no entries besides . and .., 0 if it has, with *ours set when one of
 * them is a name only init creates. Negative RP_E* on error. */
static int dir_empty(int dirfd, int *ours)
{
    DIR *d;
    struct dirent *e;
    int fd, empty = 1;

    *ours = 0;
    fd = dup(dirfd);
    if (fd < 0)
        return RP_EIO;
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return RP_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        empty = 0;
        for (size_t i = 0; i < sizeof(own_names) / sizeof(own_names[0]); i++)
            if (strcmp(e->d_name, own_names[i]) == 0)
                *ours = 1;
        if (strncmp(e->d_name, RP_DATADIR_INSTALL ".tmp.",
                    sizeof(RP_DATADIR_INSTALL ".tmp.") - 1) == 0)
            *ours = 1;
    }
    closedir(d);
    return empty;
}

/* An install is there for our domain: check that its keys are usable, change nothing. */
static int verify_existing(const init_ctx *c)
{
    static const char *const files[] = {RP_DATADIR_CA_CERT, RP_DATADIR_SERVER_CERT,
                                        RP_DATADIR_SERVER_KEY, RP_DATADIR_DB};
    char path[DATADIR_PATH_MAX], keys_dir[DATADIR_PATH_MAX];
    rp_keyring *kr = NULL;
    rp_keyring_opts ko = {0};
    rp_root_provider prov;
    EVP_PKEY *ca = NULL;
    struct stat st;
    int rc;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        rc = ipath(c, files[i], path);
        if (rc != 0)
            return rc;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            set_err(c->err, c->errlen, "the install in %s is damaged: %s is missing", c->dir,
                    files[i]);
            return RP_ECONFLICT;
        }
    }
    rc = ipath(c, RP_DATADIR_KEYS, keys_dir);
    if (rc != 0)
        return rc;
    rc = rp_keyring_provider_of(keys_dir, &prov);
    if (rc != 0) {
        set_err(c->err, c->errlen, "cannot read the key store in %s: %s", keys_dir,
                rp_strerror(rc));
        return rc;
    }
    /* Other providers need a passphrase or PIN that a re-run of init does not ask for. */
    if (prov != RP_ROOT_FILE)
        return 0;
    ko.keys_dir = keys_dir;
    ko.provider = RP_ROOT_FILE;
    rc = rp_keyring_open(&ko, &kr, c->err, c->errlen);
    if (rc != 0)
        goto out;
    rc = ipath(c, RP_DATADIR_CA_KEY, path);
    if (rc != 0)
        goto out;
    rc = rp_pki_key_unseal(rp_keyring_system(kr), RP_DATADIR_CA_KEY_LABEL, path, &ca);
    if (rc != 0)
        set_err(c->err, c->errlen, "cannot open the CA key %s with this root key: %s", path,
                rp_strerror(rc));
out:
    EVP_PKEY_free(ca);
    rp_keyring_close(kr);
    return rc;
}

static int admin_write(sqlite3 *db, void *arg)
{
    rp_init_result *r = arg;

    return rp_admin_token_create(db, r->admin_token, sizeof(r->admin_token));
}

static int write_install_json(const init_ctx *c, const char *domain, const char *install_id)
{
    char path[DATADIR_PATH_MAX];
    json_t *root;
    char *text = NULL;
    int rc;

    rc = ipath(c, RP_DATADIR_INSTALL, path);
    if (rc != 0)
        return rc;
    root = json_pack("{s:i, s:s, s:s, s:I}", "format", INSTALL_FORMAT, "install_id", install_id,
                     "domain", domain, "created_at", (json_int_t)time(NULL));
    if (root == NULL)
        return RP_ENOMEM;
    text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (text == NULL)
        return RP_ENOMEM;
    rc = rp_file_write_atomic(path, text, strlen(text), 0644);
    free(text);
    return rc;
}

/* Steps of a fresh install, in order; the caller cleans up on failure. */
static int create_install(const init_ctx *c, const char *domain, rp_init_result *r)
{
    static const char *const synced_dirs[] = {"keys", "tls", "."};
    char path[DATADIR_PATH_MAX], objects[DATADIR_PATH_MAX];
    char ca_cn[64];
    char names[6][RP_DATADIR_DOMAIN_MAX + 16];
    const char *dns[7];
    static const char *const ips[] = {"127.0.0.1", "::1"};
    static const char *const wild[] = {"", "*.", "*.vault.", "*.scm.", "*.events.", "*.blob."};
    const rp_rootkey *rk = NULL;
    rp_keyring *kr = NULL;
    rp_keyring_opts ko = {0};
    char keys_dir[DATADIR_PATH_MAX];
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    X509 *ca_cert = NULL, *srv_cert = NULL;
    rp_store *store = NULL;
    int rc;

    rc = rp_random_uuid(r->install_id);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < sizeof(created_dirs) / sizeof(created_dirs[0]); i++) {
        rc = ipath(c, created_dirs[i], path);
        if (rc != 0)
            goto out;
        if (mkdir(path, 0700) != 0) {
            rc = RP_EIO;
            set_err(c->err, c->errlen, "cannot create %s: %s", path, strerror(errno));
            goto out;
        }
    }

    rc = ipath(c, RP_DATADIR_KEYS, keys_dir);
    if (rc != 0)
        goto out;
    if (c->keys != NULL)
        ko = *c->keys;
    else
        ko.provider = RP_ROOT_FILE;
    ko.keys_dir = keys_dir;
    rc = rp_keyring_create(&ko, c->err, c->errlen);
    if (rc == 0)
        rc = rp_keyring_open(&ko, &kr, c->err, c->errlen);
    if (rc != 0)
        goto out;
    rk = rp_keyring_system(kr);

    /* A CN unique to the install tells several local CAs apart in a trust store. */
    snprintf(ca_cn, sizeof(ca_cn), "rampart local CA %.8s", r->install_id);
    rc = rp_pki_create_ca(ca_cn, RP_DATADIR_CA_DAYS, &ca_key, &ca_cert);
    if (rc != 0) {
        set_err(c->err, c->errlen, "cannot create the CA: %s", rp_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < 6; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%s", wild[i], domain);
        dns[i] = names[i];
    }
    dns[6] = "localhost";
    /* CN is limited to 64 characters; clients match the SANs, so a long domain only loses it. */
    rc = rp_pki_issue_server(ca_key, ca_cert, strlen(domain) <= 64 ? domain : "rampart", dns,
                             strcmp(domain, "localhost") == 0 ? 6 : 7, ips, 2,
                             RP_DATADIR_SERVER_DAYS, &srv_key, &srv_cert);
    if (rc != 0) {
        set_err(c->err, c->errlen, "cannot issue the server certificate: %s", rp_strerror(rc));
        goto out;
    }

    if ((rc = ipath(c, RP_DATADIR_CA_CERT, path)) != 0 ||
        (rc = rp_pki_write_cert(path, ca_cert)) != 0)
        goto io;
    if ((rc = ipath(c, RP_DATADIR_CA_KEY, path)) != 0 ||
        (rc = rp_pki_key_seal(rk, RP_DATADIR_CA_KEY_LABEL, ca_key, path)) != 0)
        goto io;
    {
        X509 *chain[2] = {srv_cert, ca_cert};
        if ((rc = ipath(c, RP_DATADIR_SERVER_CERT, path)) != 0 ||
            (rc = rp_pki_write_chain(path, chain, 2)) != 0)
            goto io;
    }
    if ((rc = ipath(c, RP_DATADIR_SERVER_KEY, path)) != 0 ||
        (rc = rp_pki_key_seal(rk, RP_DATADIR_SERVER_KEY_LABEL, srv_key, path)) != 0)
        goto io;

    if ((rc = ipath(c, RP_DATADIR_DB, path)) != 0 ||
        (rc = ipath(c, RP_DATADIR_OBJECTS, objects)) != 0)
        goto out;
    rc = rp_store_open_ex(path, objects, &store);
    if (rc != 0) {
        set_err(c->err, c->errlen, "cannot create the database %s: %s", path, rp_strerror(rc));
        goto out;
    }
    rc = rp_store_write_sync(store, admin_write, r);
    if (rc != 0) {
        set_err(c->err, c->errlen, "cannot store the administrator credential: %s",
                rp_strerror(rc));
        goto out;
    }
    rp_store_close(store);
    store = NULL;

    /* Directory entries must be durable before install.json declares the install complete. */
    for (size_t i = 0; i < sizeof(synced_dirs) / sizeof(synced_dirs[0]); i++) {
        if ((rc = ipath(c, synced_dirs[i], path)) != 0 || (rc = fsync_dir(path)) != 0)
            goto io;
    }
    rc = write_install_json(c, domain, r->install_id);
    if (rc != 0) {
        set_err(c->err, c->errlen, "cannot write %s/%s: %s", c->dir, RP_DATADIR_INSTALL,
                rp_strerror(rc));
        goto out;
    }
    goto out;
io:
    set_err(c->err, c->errlen, "cannot write %s: %s", path, rp_strerror(rc));
out:
    rp_store_close(store);
    X509_free(srv_cert);
    EVP_PKEY_free(srv_key);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    rp_keyring_close(kr);
    return rc;
}

static void remove_created(const init_ctx *c)
{
    char path[DATADIR_PATH_MAX];

    for (size_t i = 0; i < sizeof(created_files) / sizeof(created_files[0]); i++)
        if (ipath(c, created_files[i], path) == 0)
            unlink(path);
    for (size_t i = 0; i < sizeof(created_dirs) / sizeof(created_dirs[0]); i++)
        if (ipath(c, created_dirs[i], path) == 0)
            rmdir(path);
}

int rp_datadir_init(const rp_init_opts *o, rp_init_result *r, char *err, size_t errlen)
{
    char abs[PATH_MAX], domain[RP_DATADIR_DOMAIN_MAX + 1], id[37];
    init_ctx c = {abs, err, errlen, o ? o->keys : NULL};
    const char *want;
    int dirfd = -1, made_dir = 0, ours, rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (o == NULL || r == NULL) {
        set_err(err, errlen, "internal error: no options");
        return RP_EINVAL;
    }
    memset(r, 0, sizeof(*r));
    if (o->data_dir == NULL || o->data_dir[0] == '\0') {
        set_err(err, errlen, "no data directory given");
        return RP_EINVAL;
    }
    want = o->domain != NULL ? o->domain : RP_DATADIR_DEFAULT_DOMAIN;
    rc = rp_datadir_check_domain(want, err, errlen);
    if (rc != 0)
        return rc;
    if (strlen(want) > RP_DATADIR_INIT_DOMAIN_MAX) {
        set_err(err, errlen,
                "domain is longer than %d characters (service names such as "
                "*.events.<domain> must still fit in 253)",
                RP_DATADIR_INIT_DOMAIN_MAX);
        return RP_EINVAL;
    }

    if (mkdir(o->data_dir, 0700) == 0) {
        made_dir = 1;
    } else if (errno != EEXIST) {
        rc = errno == ENOENT ? RP_ENOENT : errno == EACCES ? RP_EPERM : RP_EIO;
        set_err(err, errlen, "cannot create the data directory %s: %s", o->data_dir,
                strerror(errno));
        return rc;
    }
    dirfd = open(o->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rc = errno == ENOTDIR ? RP_EINVAL : errno == EACCES ? RP_EPERM : RP_EIO;
        set_err(err, errlen, "cannot open the data directory %s: %s", o->data_dir, strerror(errno));
        goto out;
    }
    if (flock(dirfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? RP_ECONFLICT : RP_EIO;
        set_err(err, errlen, "another rampart process is initialising %s", o->data_dir);
        goto out;
    }
    /* Absolute paths from here on: the CA path is printed for the operator to copy. */
    if (realpath(o->data_dir, abs) == NULL || strlen(abs) + 32 > DATADIR_PATH_MAX) {
        rc = RP_EIO;
        set_err(err, errlen, "cannot resolve the data directory %s", o->data_dir);
        goto out;
    }

    rc = rp_datadir_read(abs, domain, sizeof(domain), id);
    if (rc == 0) {
        if (strcmp(domain, want) != 0) {
            rc = RP_ECONFLICT;
            set_err(err, errlen,
                    "%s already holds the install for domain %s, not %s; use another directory",
                    abs, domain, want);
            goto out;
        }
        rc = verify_existing(&c);
        if (rc != 0)
            goto out;
        r->created = 0;
        goto fill;
    }
    if (rc != RP_ENOENT) {
        set_err(err, errlen, "%s/%s is unreadable: %s", abs, RP_DATADIR_INSTALL, rp_strerror(rc));
        goto out;
    }
    rc = dir_empty(dirfd, &ours);
    if (rc < 0) {
        set_err(err, errlen, "cannot list %s", abs);
        goto out;
    }
    if (rc == 0) {
        rc = RP_ECONFLICT;
        if (ours)
            set_err(err, errlen,
                    "%s holds an incomplete install (an init was interrupted: no %s); "
                    "remove the directory and run init again",
                    abs, RP_DATADIR_INSTALL);
        else
            set_err(err, errlen,
                    "%s is not empty and holds no rampart install; use an empty or new directory",
                    abs);
        goto out;
    }
    /* The directory may predate us (created empty by the operator): make it private. */
    if (fchmod(dirfd, 0700) != 0) {
        rc = RP_EPERM;
        set_err(err, errlen, "cannot make %s private (mode 0700): %s", abs, strerror(errno));
        goto out;
    }
    rc = create_install(&c, want, r);
    if (rc != 0) {
        remove_created(&c);
        goto out;
    }
    r->created = 1;
fill:
    rp_strlcpy(r->domain, want, sizeof(r->domain));
    if (!r->created)
        memcpy(r->install_id, id, sizeof(id));
    rc = rp_datadir_path(abs, RP_DATADIR_CA_CERT, r->ca_cert_path, sizeof(r->ca_cert_path));
out:
    if (rc != 0) {
        OPENSSL_cleanse(r, sizeof(*r));
        if (made_dir)
            rmdir(o->data_dir);
    }
    if (dirfd >= 0)
        close(dirfd); /* releases the lock */
    return rc;
}
