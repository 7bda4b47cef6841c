/*
 * keyring.c - the key hierarchy (keyring.h, docs/encryption.md): the key store, the in-memory
 * KEK cache, seal/open of objects, root rotation and customer-managed keys.
 *
 * Workload: seal/open_object run on loop threads for every secret read or write and every blob
 * chunk; after the first use of a resource they take a read lock, copy a 32-byte KEK, and do two
 * AES-GCM operations. Everything else (creating and dropping KEKs, rotation, the first unwrap of
 * a KEK) is rare and may block.
 *
 * Locks, always taken in this order:
 *   db_mu  - the key store connection, the current root generation, and every write to it. A
 *            root-wrapped KEK is read, unwrapped and cached under db_mu, so a rotation (which
 *            holds db_mu from start to end) can never destroy the generation a reader is using,
 *            and a kek_drop can never race a reader into caching a KEK that was just destroyed.
 *   lock   - rwlock over the KEK cache (a chained hash table keyed by resource) and its locked
 *            pages. Held only for memory operations, never across I/O or a callback.
 * Customer-key callbacks run with neither held (the vault's callback opens objects of its own
 * resource through this keyring). A CMK loader therefore re-reads the key store row after the
 * callback and caches the KEK only if the row is unchanged and no rp_keyring_cmk_changed
 * happened meanwhile (cmk_epoch), so a disable racing an unwrap does not leave the KEK cached.
 *
 * KEKs live in 4 KiB locked, non-dumpable pages (rp__secmem_alloc) of 128 slots; a slot is wiped
 * when its KEK leaves the cache, a page is unmapped when it empties. Stack copies of keys are
 * wiped before every return.
 */
#include "crypto/keyring.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "crypto/aead.h"
#include "crypto/keyprov.h"

#include <openssl/crypto.h>
#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_NAME     "keystore.db"
#define STORE_TMP      "keystore.db.new"
#define LEGACY_ROOT    "root.key"
#define WDEK_MAGIC     "RPK1"
#define WRAPPED_MAX    1024 /* a wrapped KEK: 64 bytes by a provider, an RSA block by a CMK */
#define ROOT_ROWS      8    /* current, next, retired: more is a damaged store */
#define PAGE_BYTES     4096
#define PAGE_SLOTS     (PAGE_BYTES / RP_KEYRING_KEY_LEN)
#define CMK_ATTEMPTS   3
#define SCHEMA_VERSION 1

static const char SCHEMA[] =
    "CREATE TABLE root("
    " gen INTEGER PRIMARY KEY CHECK (gen > 0),"
    " provider INTEGER NOT NULL,"
    " ref TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('current', 'next', 'retired')),"
    " created INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX root_current ON root(state) WHERE state = 'current';"
    "CREATE TABLE kek("
    " resource TEXT NOT NULL,"
    " version INTEGER NOT NULL CHECK (version > 0),"
    " wrapped BLOB NOT NULL,"
    " wrapped_by TEXT NOT NULL,"
    " cmk_config TEXT,"
    " created INTEGER NOT NULL,"
    " PRIMARY KEY (resource, version));"
    "PRAGMA user_version = 1;";

typedef struct secpage {
    struct secpage *next;
    unsigned char *mem;
    uint64_t used[PAGE_SLOTS / 64];
    unsigned inuse;
} secpage;

typedef struct kek_entry {
    struct kek_entry *next;
    char *resource;
    uint32_t version;
    int latest;         /* the version seal uses */
    unsigned char *key; /* a slot in a secpage */
    char *cmk_cfg;      /* NULL: wrapped by the root key */
    char *used_kid;     /* the versioned kid that wrapped it (CMK) */
} kek_entry;

struct rp_keyring {
    char *dir;
    rp_root_provider provider;
    rp_keyprov *prov;
    rp_rootkey *system;

    pthread_mutex_t db_mu;
    sqlite3 *db;
    uint32_t gen;                     /* current root generation */
    char gen_ref[RP_KEYPROV_REF_MAX]; /* and its reference */

    pthread_rwlock_t lock;
    kek_entry **buckets;
    size_t nbuckets, count;
    secpage *pages;
    uint64_t cmk_epoch;
    rp_keyring_cmk_ops ops;
    int has_ops;
};

/* ------------------------------------------------------------ small helpers */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int valid_resource(const char *r)
{
    size_t n;

    if (r == NULL || r[0] != '/')
        return 0;
    n = strlen(r);
    if (n < 2 || n > RP_KEYRING_RESOURCE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f)
            return 0;
    return 1;
}

static int valid_object(const char *o)
{
    return o != NULL && strlen(o) <= RP_KEYRING_OBJECT_MAX;
}

static int path_in(const char *dir, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);

    return n < 0 || (size_t)n >= cap ? RP_ETOOBIG : 0;
}

/* tag "\0" resource "\0" object into aad (cap >= 4 + RESOURCE_MAX + 1 + OBJECT_MAX). */
static size_t obj_aad(const char *tag, const char *resource, const char *object, unsigned char *aad)
{
    size_t t = strlen(tag) + 1, r = strlen(resource) + 1, o = strlen(object);

    memcpy(aad, tag, t);
    memcpy(aad + t, resource, r);
    memcpy(aad + t + r, object, o);
    return t + r + o;
}

/* "kek" "\0" resource "\0" u32 BE version: what a provider wrapping of a KEK is bound to. */
static size_t kek_aad(const char *resource, uint32_t version, unsigned char *aad)
{
    size_t r = strlen(resource) + 1;

    memcpy(aad, "kek", 4);
    memcpy(aad + 4, resource, r);
    put_u32(aad + 4 + r, version);
    return 4 + r + 4;
}

#define OBJ_AAD_MAX (4 + RP_KEYRING_RESOURCE_MAX + 1 + RP_KEYRING_OBJECT_MAX)
#define KEK_AAD_MAX (4 + RP_KEYRING_RESOURCE_MAX + 1 + 4)

/* ------------------------------------------------------------ formats */

int rp_keyring_wdek_parse(const void *wdek, size_t wn, uint32_t *version)
{
    const unsigned char *w = wdek;

    if (w == NULL || wn != RP_KEYRING_WDEK_LEN || memcmp(w, WDEK_MAGIC, 4) != 0)
        return RP_EPARSE;
    if (memcmp(w + 8, RP_AEAD_MAGIC, RP_AEAD_MAGIC_LEN) != 0 || get_u32(w + 4) == 0)
        return RP_EPARSE;
    if (version != NULL)
        *version = get_u32(w + 4);
    return 0;
}

int rp_keyring_wdek_seal(const unsigned char kek[RP_KEYRING_KEY_LEN], uint32_t version,
                         const char *resource, const char *object,
                         const unsigned char dek[RP_KEYRING_KEY_LEN], rp_buf *out)
{
    unsigned char aad[OBJ_AAD_MAX], head[8];
    size_t aadlen, base;
    int rc;

    if (kek == NULL || dek == NULL || out == NULL || version == 0 || !valid_resource(resource) ||
        !valid_object(object))
        return RP_EINVAL;
    rc = rp_buf_reserve(out, RP_KEYRING_WDEK_LEN);
    if (rc != 0)
        return rc;
    base = out->len;
    memcpy(head, WDEK_MAGIC, 4);
    put_u32(head + 4, version);
    aadlen = obj_aad("dek", resource, object, aad);
    rc = rp_buf_append(out, head, sizeof(head));
    if (rc != 0)
        return rc;
    rc = rp_aead_seal(kek, aad, aadlen, dek, RP_KEYRING_KEY_LEN, out);
    if (rc != 0) {
        /* room was reserved, so dropping the header is just a length change */
        out->len = base;
        out->data[base] = '\0';
    }
    return rc;
}

int rp_keyring_wdek_open(const unsigned char kek[RP_KEYRING_KEY_LEN], const char *resource,
                         const char *object, const void *wdek, size_t wn,
                         unsigned char dek[RP_KEYRING_KEY_LEN])
{
    unsigned char aad[OBJ_AAD_MAX];
    size_t aadlen;
    rp_buf b;
    int rc;

    if (dek != NULL)
        OPENSSL_cleanse(dek, RP_KEYRING_KEY_LEN); /* so every failure leaves it wiped */
    if (kek == NULL || dek == NULL || !valid_resource(resource) || !valid_object(object))
        return RP_EINVAL;
    rc = rp_keyring_wdek_parse(wdek, wn, NULL);
    if (rc != 0)
        return rc;
    aadlen = obj_aad("dek", resource, object, aad);
    rp_buf_init(&b, RP_KEYRING_KEY_LEN);
    rc = rp_aead_open(kek, aad, aadlen, (const unsigned char *)wdek + 8, wn - 8, &b);
    if (rc == 0 && b.len != RP_KEYRING_KEY_LEN)
        rc = RP_EPARSE;
    if (rc == 0)
        memcpy(dek, b.data, RP_KEYRING_KEY_LEN);
    else
        OPENSSL_cleanse(dek, RP_KEYRING_KEY_LEN);
    rp_buf_free_secret(&b);
    return rc;
}

int rp_keyring_obj_seal(const unsigned char dek[RP_KEYRING_KEY_LEN], const char *resource,
                        const char *object, const void *pt, size_t n, rp_buf *ct)
{
    unsigned char aad[OBJ_AAD_MAX];

    if (dek == NULL || !valid_resource(resource) || !valid_object(object))
        return RP_EINVAL;
    return rp_aead_seal(dek, aad, obj_aad("obj", resource, object, aad), pt, n, ct);
}

int rp_keyring_obj_open(const unsigned char dek[RP_KEYRING_KEY_LEN], const char *resource,
                        const char *object, const void *ct, size_t cn, rp_buf *pt)
{
    unsigned char aad[OBJ_AAD_MAX];

    if (dek == NULL || !valid_resource(resource) || !valid_object(object))
        return RP_EINVAL;
    return rp_aead_open(dek, aad, obj_aad("obj", resource, object, aad), ct, cn, pt);
}

/* ------------------------------------------------------------ the KEK cache (under lock) */

static unsigned char *slot_alloc(rp_keyring *kr)
{
    secpage *pg;

    for (pg = kr->pages; pg != NULL; pg = pg->next)
        if (pg->inuse < PAGE_SLOTS)
            break;
    if (pg == NULL) {
        pg = rp_calloc(1, sizeof(*pg));
        if (pg == NULL)
            return NULL;
        pg->mem = rp__secmem_alloc(PAGE_BYTES);
        if (pg->mem == NULL) {
            rp_free(pg);
            return NULL;
        }
        pg->next = kr->pages;
        kr->pages = pg;
    }
    for (unsigned i = 0; i < PAGE_SLOTS; i++) {
        if ((pg->used[i / 64] >> (i % 64) & 1) == 0) {
            pg->used[i / 64] |= (uint64_t)1 << (i % 64);
            pg->inuse++;
            return pg->mem + (size_t)i * RP_KEYRING_KEY_LEN;
        }
    }
    return NULL; /* not reached: inuse < PAGE_SLOTS */
}

static void slot_release(rp_keyring *kr, unsigned char *k)
{
    secpage **pp, *pg;

    for (pp = &kr->pages; (pg = *pp) != NULL; pp = &pg->next) {
        if (k >= pg->mem && k < pg->mem + PAGE_BYTES) {
            unsigned i = (unsigned)((size_t)(k - pg->mem) / RP_KEYRING_KEY_LEN);
            OPENSSL_cleanse(k, RP_KEYRING_KEY_LEN);
            pg->used[i / 64] &= ~((uint64_t)1 << (i % 64));
            if (--pg->inuse == 0) {
                *pp = pg->next;
                rp__secmem_free(pg->mem, PAGE_BYTES);
                rp_free(pg);
            }
            return;
        }
    }
}

static size_t bucket_of(const rp_keyring *kr, const char *resource)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)resource; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % kr->nbuckets);
}

/* version 0: the latest. */
static kek_entry *cache_find(const rp_keyring *kr, const char *resource, uint32_t version)
{
    for (kek_entry *e = kr->buckets[bucket_of(kr, resource)]; e != NULL; e = e->next)
        if (strcmp(e->resource, resource) == 0 &&
            (version == 0 ? e->latest : e->version == version))
            return e;
    return NULL;
}

static void entry_free(rp_keyring *kr, kek_entry *e)
{
    if (e->key != NULL)
        slot_release(kr, e->key);
    rp_free(e->resource);
    rp_free(e->cmk_cfg);
    rp_free(e->used_kid);
    rp_free(e);
}

static int set_str(char **dst, const char *s)
{
    char *c = NULL;

    if (s != NULL && (c = rp_strdup(s)) == NULL)
        return RP_ENOMEM;
    rp_free(*dst);
    *dst = c;
    return 0;
}

static void cache_grow(rp_keyring *kr)
{
    size_t n = kr->nbuckets * 2;
    kek_entry **b = rp_calloc(n, sizeof(*b));

    if (b == NULL)
        return; /* chains just get longer */
    for (size_t i = 0; i < kr->nbuckets; i++) {
        kek_entry *e = kr->buckets[i], *next;
        for (; e != NULL; e = next) {
            uint64_t h = 1469598103934665603ULL;
            next = e->next;
            for (const unsigned char *p = (const unsigned char *)e->resource; *p != '\0'; p++)
                h = (h ^ *p) * 1099511628211ULL;
            e->next = b[h % n];
            b[h % n] = e;
        }
    }
    rp_free(kr->buckets);
    kr->buckets = b;
    kr->nbuckets = n;
}

/* Caches (resource, version); an entry already there keeps its key and gets the new metadata. */
static int cache_put_locked(rp_keyring *kr, const char *resource, uint32_t version, int latest,
                            const unsigned char key[RP_KEYRING_KEY_LEN], const char *cmk_cfg,
                            const char *used_kid)
{
    kek_entry *e = cache_find(kr, resource, version);
    size_t b;
    int rc;

    if (e != NULL) {
        rc = set_str(&e->cmk_cfg, cmk_cfg);
        if (rc == 0)
            rc = set_str(&e->used_kid, used_kid);
        if (latest)
            e->latest = 1;
        return rc;
    }
    e = rp_calloc(1, sizeof(*e));
    if (e == NULL)
        return RP_ENOMEM;
    e->resource = rp_strdup(resource);
    e->key = slot_alloc(kr);
    if (e->resource == NULL || e->key == NULL || set_str(&e->cmk_cfg, cmk_cfg) != 0 ||
        set_str(&e->used_kid, used_kid) != 0) {
        entry_free(kr, e);
        return RP_ENOMEM;
    }
    memcpy(e->key, key, RP_KEYRING_KEY_LEN);
    e->version = version;
    e->latest = latest;
    if (kr->count >= kr->nbuckets)
        cache_grow(kr);
    b = bucket_of(kr, resource);
    e->next = kr->buckets[b];
    kr->buckets[b] = e;
    kr->count++;
    return 0;
}

static int cache_put(rp_keyring *kr, const char *resource, uint32_t version, int latest,
                     const unsigned char key[RP_KEYRING_KEY_LEN], const char *cmk_cfg,
                     const char *used_kid)
{
    int rc;

    pthread_rwlock_wrlock(&kr->lock);
    rc = cache_put_locked(kr, resource, version, latest, key, cmk_cfg, used_kid);
    pthread_rwlock_unlock(&kr->lock);
    return rc;
}

static int kid_matches(const char *kid, const char *base)
{
    size_t n;

    if (kid == NULL || base == NULL)
        return 0;
    n = strlen(base);
    return strncmp(kid, base, n) == 0 && (kid[n] == '\0' || kid[n] == '/');
}

/* Drops entries of resource (any CMK state), or every CMK entry matching key_base. */
static void cache_evict(rp_keyring *kr, const char *resource, const char *key_base)
{
    pthread_rwlock_wrlock(&kr->lock);
    if (key_base != NULL)
        kr->cmk_epoch++;
    for (size_t i = 0; i < kr->nbuckets; i++) {
        kek_entry **pp = &kr->buckets[i], *e;
        while ((e = *pp) != NULL) {
            int drop = resource != NULL
                           ? strcmp(e->resource, resource) == 0
                           : e->cmk_cfg != NULL && (kid_matches(e->cmk_cfg, key_base) ||
                                                    kid_matches(e->used_kid, key_base));
            if (drop) {
                *pp = e->next;
                entry_free(kr, e);
                kr->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_rwlock_unlock(&kr->lock);
}

/* ------------------------------------------------------------ the key store */

static int db_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RP_EDB;
}

static int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : RP_EDB;
}

/* Opens the key store; create: the file must not exist and is made 0600 first, so SQLite's
 * journal and WAL files (which copy the database's mode) are private too. */
static int db_open(const char *path, int create, int wal, sqlite3 **out)
{
    struct stat st;
    sqlite3 *db = NULL;
    int fd, rc;

    if (create) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return errno == EEXIST ? RP_EEXIST : RP_EIO;
        rc = fchmod(fd, 0600) == 0 ? 0 : RP_EIO;
        if (close(fd) != 0 || rc != 0)
            return RP_EIO;
    } else {
        if (lstat(path, &st) != 0)
            return errno == ENOENT ? RP_ENOENT : RP_EIO;
        if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
            return RP_EPERM;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        rc = RP_EDB;
        goto fail;
    }
    rc = sqlite3_busy_timeout(db, 5000) == SQLITE_OK ? 0 : RP_EDB;
    if (rc == 0)
        rc = db_exec(db, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    if (rc == 0)
        rc = db_exec(db, "PRAGMA synchronous=FULL; PRAGMA secure_delete=ON");
    if (rc != 0)
        goto fail;
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return rc;
}

static void remove_store_files(const char *dir, const char *name)
{
    static const char *const sfx[] = {"", "-journal", "-wal", "-shm"};
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        int n = snprintf(path, sizeof(path), "%s/%s%s", dir, name, sfx[i]);
        if (n > 0 && (size_t)n < sizeof(path))
            (void)unlink(path);
    }
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return RP_EIO;
    if (fsync(fd) != 0)
        rc = RP_EIO;
    close(fd);
    return rc;
}

/* Wraps key under generation gen for (resource, version) and writes the row. */
static int kek_insert(sqlite3 *db, rp_keyprov *prov, uint32_t gen, const char *resource,
                      uint32_t version, const unsigned char key[RP_KEYRING_KEY_LEN])
{
    unsigned char aad[KEK_AAD_MAX];
    char by[32];
    sqlite3_stmt *st = NULL;
    rp_buf w;
    int rc;

    rp_buf_init(&w, WRAPPED_MAX);
    rc = rp_keyprov_wrap(prov, gen, key, aad, kek_aad(resource, version, aad), &w);
    if (rc != 0)
        goto out;
    (void)snprintf(by, sizeof(by), "root:%u", (unsigned)gen);
    rc = db_prepare(db,
                    "INSERT INTO kek(resource, version, wrapped, wrapped_by, cmk_config, created)"
                    " VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
                    &st);
    if (rc != 0)
        goto out;
    if (sqlite3_bind_text(st, 1, resource, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, version) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, w.data, (int)w.len, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, by, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL)) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = RP_EDB;
out:
    sqlite3_finalize(st);
    rp_buf_free(&w);
    return rc;
}

static int root_insert(sqlite3 *db, uint32_t gen, rp_root_provider prov, const char *ref,
                       const char *state)
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db,
                        "INSERT INTO root(gen, provider, ref, state, created)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
                        &st);

    if (rc == 0 && (sqlite3_bind_int64(st, 1, gen) != SQLITE_OK ||
                    sqlite3_bind_int(st, 2, (int)prov) != SQLITE_OK ||
                    sqlite3_bind_text(st, 3, ref, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
                    sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC) != SQLITE_OK ||
                    sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL)) != SQLITE_OK ||
                    sqlite3_step(st) != SQLITE_DONE))
        rc = RP_EDB;
    sqlite3_finalize(st);
    return rc;
}

static int root_delete(sqlite3 *db, uint32_t gen)
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db, "DELETE FROM root WHERE gen = ?1", &st);

    if (rc == 0 && (sqlite3_bind_int64(st, 1, gen) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE))
        rc = RP_EDB;
    sqlite3_finalize(st);
    return rc;
}

/*
 * Builds a new key store beside the final name and renames it into place, so a store either
 * exists complete or not at all: root generation 1 (ref, loaded in prov) and the system key.
 */
static int store_build(const char *dir, rp_keyprov *prov, const char *ref,
                       const unsigned char syskey[RP_KEYRING_KEY_LEN], char *err, size_t errlen)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    sqlite3 *db = NULL;
    int rc;

    rc = path_in(dir, STORE_TMP, tmp, sizeof(tmp));
    if (rc == 0)
        rc = path_in(dir, STORE_NAME, final, sizeof(final));
    if (rc != 0)
        return rc;
    remove_store_files(dir, STORE_TMP); /* left by a crash during an earlier attempt */
    rc = db_open(tmp, 1, 0, &db);
    if (rc != 0) {
        seterr(err, errlen, "cannot create the key store in %s", dir);
        goto fail;
    }
    rc = db_exec(db, "BEGIN IMMEDIATE");
    if (rc == 0)
        rc = db_exec(db, SCHEMA);
    if (rc == 0)
        rc = root_insert(db, 1, rp_keyprov_type(prov), ref, "current");
    if (rc == 0)
        rc = kek_insert(db, prov, 1, RP_KEYRING_SYSTEM, 1, syskey);
    if (rc == 0)
        rc = db_exec(db, "COMMIT");
    if (rc != 0) {
        seterr(err, errlen, "cannot write the key store: %s", rp_strerror(rc));
        goto fail;
    }
    if (sqlite3_close(db) != SQLITE_OK) {
        db = NULL;
        rc = RP_EDB;
        goto fail;
    }
    db = NULL;
    if (rename(tmp, final) != 0) {
        rc = RP_EIO;
        seterr(err, errlen, "cannot rename the key store into place");
        goto fail;
    }
    rc = fsync_dir(dir);
    if (rc != 0) {
        seterr(err, errlen, "cannot sync %s", dir);
        unlink(final);
    }
    return rc;
fail:
    sqlite3_close(db);
    remove_store_files(dir, STORE_TMP);
    return rc;
}

typedef struct root_row {
    uint32_t gen;
    int provider;
    char ref[RP_KEYPROV_REF_MAX];
    char state[16];
} root_row;

static int root_rows(sqlite3 *db, root_row *rows, size_t cap, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db, "SELECT gen, provider, ref, state FROM root ORDER BY gen", &st), s;

    *n = 0;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ref = (const char *)sqlite3_column_text(st, 2);
        const char *state = (const char *)sqlite3_column_text(st, 3);
        sqlite3_int64 g = sqlite3_column_int64(st, 0);
        if (*n == cap || ref == NULL || state == NULL || g <= 0 || g > UINT32_MAX ||
            rp_strlcpy(rows[*n].ref, ref, sizeof(rows[*n].ref)) != 0 ||
            rp_strlcpy(rows[*n].state, state, sizeof(rows[*n].state)) != 0) {
            rc = RP_EDB;
            break;
        }
        rows[*n].gen = (uint32_t)g;
        rows[*n].provider = sqlite3_column_int(st, 1);
        (*n)++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RP_EDB;
    sqlite3_finalize(st);
    return rc;
}

/* A KEK row as read from the store. */
typedef struct kek_row {
    uint32_t version;
    unsigned char wrapped[WRAPPED_MAX];
    size_t wn;
    char by[8 + RP_KEYRING_KID_MAX]; /* "root:<g>" or "cmk:<versioned kid>" */
    char cfg[RP_KEYRING_KID_MAX + 1];
    int has_cfg;
} kek_row;

/* version 0: the latest. RP_ENOENT if the resource has no such KEK. */
static int kek_read(sqlite3 *db, const char *resource, uint32_t version, kek_row *r)
{
    sqlite3_stmt *st = NULL;
    const void *w;
    const char *by, *cfg;
    int rc, s;

    rc = db_prepare(db,
                    version == 0 ? "SELECT version, wrapped, wrapped_by, cmk_config FROM kek"
                                   " WHERE resource = ?1 ORDER BY version DESC LIMIT 1"
                                 : "SELECT version, wrapped, wrapped_by, cmk_config FROM kek"
                                   " WHERE resource = ?1 AND version = ?2",
                    &st);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_text(st, 1, resource, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (version != 0 && sqlite3_bind_int64(st, 2, version) != SQLITE_OK)) {
        rc = RP_EDB;
        goto out;
    }
    s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = RP_ENOENT;
        goto out;
    }
    if (s != SQLITE_ROW) {
        rc = RP_EDB;
        goto out;
    }
    w = sqlite3_column_blob(st, 1);
    r->wn = (size_t)sqlite3_column_bytes(st, 1);
    by = (const char *)sqlite3_column_text(st, 2);
    cfg = (const char *)sqlite3_column_text(st, 3);
    r->has_cfg = cfg != NULL;
    r->cfg[0] = '\0';
    if (sqlite3_column_int64(st, 0) <= 0 || sqlite3_column_int64(st, 0) > UINT32_MAX || w == NULL ||
        r->wn > sizeof(r->wrapped) || by == NULL || rp_strlcpy(r->by, by, sizeof(r->by)) != 0 ||
        (cfg != NULL && rp_strlcpy(r->cfg, cfg, sizeof(r->cfg)) != 0)) {
        rc = RP_EDB;
        goto out;
    }
    r->version = (uint32_t)sqlite3_column_int64(st, 0);
    memcpy(r->wrapped, w, r->wn);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* "root:<g>" -> g, or 0 when not a root wrapping. */
static uint32_t root_gen_of(const char *by)
{
    uint64_t g;

    if (strncmp(by, "root:", 5) != 0 || rp_parse_u64(by + 5, strlen(by + 5), UINT32_MAX, &g) != 0)
        return 0;
    return (uint32_t)g;
}

static int kek_update(sqlite3 *db, const char *resource, uint32_t version, const void *w, size_t wn,
                      const char *by, const char *cfg)
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db,
                        "UPDATE kek SET wrapped = ?3, wrapped_by = ?4, cmk_config = ?5"
                        " WHERE resource = ?1 AND version = ?2",
                        &st);

    if (rc != 0)
        return rc;
    if (sqlite3_bind_text(st, 1, resource, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, version) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, w, (int)wn, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, by, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (cfg != NULL ? sqlite3_bind_text(st, 5, cfg, -1, SQLITE_TRANSIENT)
                     : sqlite3_bind_null(st, 5)) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = RP_EDB;
    else if (sqlite3_changes(db) == 0)
        rc = RP_ENOENT;
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------ create / open / close */

static int check_opts(const rp_keyring_opts *o, char *err, size_t errlen)
{
    if (o == NULL || o->keys_dir == NULL || o->keys_dir[0] == '\0') {
        seterr(err, errlen, "no keys directory");
        return RP_EINVAL;
    }
    if (o->provider != RP_ROOT_FILE && o->provider != RP_ROOT_PASSPHRASE &&
        o->provider != RP_ROOT_PKCS11) {
        seterr(err, errlen, "unknown root key provider %d", (int)o->provider);
        return RP_EINVAL;
    }
    return 0;
}

static int exists(const char *dir, const char *name, int *yes)
{
    char path[PATH_MAX];
    struct stat st;
    int rc = path_in(dir, name, path, sizeof(path));

    if (rc != 0)
        return rc;
    if (lstat(path, &st) == 0) {
        *yes = 1;
        return 0;
    }
    *yes = 0;
    return errno == ENOENT ? 0 : RP_EIO;
}

int rp_keyring_create(const rp_keyring_opts *o, char *err, size_t errlen)
{
    unsigned char sys[RP_KEYRING_KEY_LEN];
    char ref[RP_KEYPROV_REF_MAX];
    rp_keyprov *prov = NULL;
    struct stat st;
    int rc, made_dir = 0, generated = 0, have_store, have_legacy;

    rc = check_opts(o, err, errlen);
    if (rc != 0)
        return rc;
    if (mkdir(o->keys_dir, 0700) == 0) {
        made_dir = 1;
    } else if (errno != EEXIST || lstat(o->keys_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = errno == ENOENT ? RP_ENOENT : RP_EIO;
        seterr(err, errlen, "cannot create the keys directory %s", o->keys_dir);
        return rc;
    }
    rc = exists(o->keys_dir, STORE_NAME, &have_store);
    if (rc == 0)
        rc = exists(o->keys_dir, LEGACY_ROOT, &have_legacy);
    if (rc != 0)
        goto out;
    if (have_store || have_legacy) {
        seterr(err, errlen, "%s already holds an install's keys", o->keys_dir);
        rc = RP_EEXIST;
        goto out;
    }
    rc = rp_keyprov_open(o, &prov, err, errlen);
    if (rc != 0)
        goto out;
    rc = rp_keyprov_new_ref(prov, 1, ref, sizeof(ref));
    if (rc == 0) {
        rc = rp_keyprov_generate(prov, 1, ref);
        if (rc != 0)
            seterr(err, errlen, "cannot create root key generation 1: %s", rp_strerror(rc));
    }
    if (rc != 0)
        goto out;
    generated = 1;
    rc = rp_keyprov_load(prov, 1, ref);
    if (rc != 0) {
        seterr(err, errlen, "cannot load the new root key: %s", rp_strerror(rc));
        goto out;
    }
    rc = rp_random_bytes(sys, sizeof(sys));
    if (rc == 0)
        rc = store_build(o->keys_dir, prov, ref, sys, err, errlen);
out:
    OPENSSL_cleanse(sys, sizeof(sys));
    if (rc != 0 && generated)
        (void)rp_keyprov_destroy(prov, 1, ref);
    rp_keyprov_close(prov);
    if (rc != 0 && made_dir)
        (void)rmdir(o->keys_dir);
    return rc;
}

int rp_keyring_provider_of(const char *keys_dir, rp_root_provider *out)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, yes = 0, p;

    if (keys_dir == NULL || out == NULL)
        return RP_EINVAL;
    rc = exists(keys_dir, STORE_NAME, &yes);
    if (rc != 0)
        return rc;
    if (!yes) {
        rc = exists(keys_dir, LEGACY_ROOT, &yes);
        if (rc != 0)
            return rc;
        if (!yes)
            return RP_ENOENT;
        *out = RP_ROOT_FILE;
        return 0;
    }
    rc = path_in(keys_dir, STORE_NAME, path, sizeof(path));
    if (rc != 0)
        return rc;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        rc = RP_EDB;
        goto out;
    }
    (void)sqlite3_busy_timeout(db, 5000);
    rc = db_prepare(db, "SELECT provider FROM root WHERE state = 'current'", &st);
    if (rc != 0)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = RP_EDB;
        goto out;
    }
    p = sqlite3_column_int(st, 0);
    if (p != RP_ROOT_FILE && p != RP_ROOT_PASSPHRASE && p != RP_ROOT_PKCS11) {
        rc = RP_EDB;
        goto out;
    }
    *out = (rp_root_provider)p;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* Turns keys/root.key into a key store: generation 1 is that file, the system key its bytes. */
static int legacy_upgrade(const rp_keyring_opts *o, rp_keyprov *prov, char *err, size_t errlen)
{
    char path[PATH_MAX];
    rp_rootkey *rk = NULL;
    int rc;

    rc = path_in(o->keys_dir, LEGACY_ROOT, path, sizeof(path));
    if (rc != 0)
        return rc;
    rc = rp_rootkey_file_load(path, &rk);
    if (rc != 0) {
        seterr(err, errlen, "cannot load the root key %s: %s%s", path, rp_strerror(rc),
               rc == RP_EPERM ? " (it must be a regular file with mode 0600)" : "");
        return rc;
    }
    rc = rp_keyprov_load(prov, 1, LEGACY_ROOT);
    if (rc == 0)
        rc = store_build(o->keys_dir, prov, LEGACY_ROOT, rp__rootkey_bytes(rk), err, errlen);
    else
        seterr(err, errlen, "cannot load the root key %s: %s", path, rp_strerror(rc));
    rp_keyprov_unload(prov, 1);
    rp_rootkey_free(rk);
    return rc;
}

/* Destroys generations a crash left behind: 'next' never became current, 'retired' is done. */
static void finish_rotation(rp_keyring *kr, const root_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (strcmp(rows[i].state, "current") == 0)
            continue;
        rc = rp_keyprov_destroy(kr->prov, rows[i].gen, rows[i].ref);
        if (rc == 0)
            rc = root_delete(kr->db, rows[i].gen);
        if (rc != 0)
            rp_log_err("keyring_cleanup", "cannot destroy a leftover root generation", rc);
    }
}

int rp_keyring_open(const rp_keyring_opts *o, rp_keyring **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    unsigned char sys[RP_KEYRING_KEY_LEN], aad[KEK_AAD_MAX];
    root_row rows[ROOT_ROWS];
    const root_row *cur = NULL;
    rp_keyring *kr = NULL;
    kek_row *r = NULL;
    size_t nrows = 0;
    int rc, have_store = 0, have_legacy = 0;

    rc = check_opts(o, err, errlen);
    if (rc != 0)
        return rc;
    if (out == NULL)
        return RP_EINVAL;
    kr = rp_calloc(1, sizeof(*kr));
    r = rp_calloc(1, sizeof(*r));
    if (kr == NULL || r == NULL) {
        rp_free(kr);
        rp_free(r);
        return RP_ENOMEM;
    }
    if (pthread_mutex_init(&kr->db_mu, NULL) != 0) {
        rp_free(kr);
        rp_free(r);
        return RP_ENOMEM;
    }
    if (pthread_rwlock_init(&kr->lock, NULL) != 0) {
        pthread_mutex_destroy(&kr->db_mu);
        rp_free(kr);
        rp_free(r);
        return RP_ENOMEM;
    }
    kr->provider = o->provider;
    kr->nbuckets = 64;
    kr->buckets = rp_calloc(kr->nbuckets, sizeof(*kr->buckets));
    kr->dir = rp_strdup(o->keys_dir);
    if (kr->buckets == NULL || kr->dir == NULL) {
        rc = RP_ENOMEM;
        goto fail;
    }
    rc = exists(o->keys_dir, STORE_NAME, &have_store);
    if (rc == 0 && !have_store)
        rc = exists(o->keys_dir, LEGACY_ROOT, &have_legacy);
    if (rc != 0) {
        seterr(err, errlen, "cannot read %s", o->keys_dir);
        goto fail;
    }
    if (!have_store && !have_legacy) {
        seterr(err, errlen, "no key store in %s", o->keys_dir);
        rc = RP_ENOENT;
        goto fail;
    }
    if (!have_store && o->provider != RP_ROOT_FILE) {
        seterr(err, errlen, "this install uses the file root key provider");
        rc = RP_EUNSUPPORTED;
        goto fail;
    }
    if (have_store) {
        rp_root_provider p;
        rc = rp_keyring_provider_of(o->keys_dir, &p);
        if (rc == 0 && p != o->provider) {
            seterr(err, errlen, "this install uses another root key provider");
            rc = RP_EUNSUPPORTED;
        }
        if (rc != 0)
            goto fail;
    }
    rc = rp_keyprov_open(o, &kr->prov, err, errlen);
    if (rc != 0)
        goto fail;
    if (!have_store) {
        rc = legacy_upgrade(o, kr->prov, err, errlen);
        if (rc != 0)
            goto fail;
    }
    rc = path_in(o->keys_dir, STORE_NAME, path, sizeof(path));
    if (rc == 0)
        rc = db_open(path, 0, 1, &kr->db);
    if (rc != 0) {
        seterr(err, errlen, "cannot open the key store %s: %s%s", path, rp_strerror(rc),
               rc == RP_EPERM ? " (it must be a regular file with mode 0600)" : "");
        goto fail;
    }
    rc = root_rows(kr->db, rows, ROOT_ROWS, &nrows);
    for (size_t i = 0; rc == 0 && i < nrows; i++)
        if (strcmp(rows[i].state, "current") == 0)
            cur = &rows[i];
    if (rc == 0 && cur == NULL)
        rc = RP_EDB;
    if (rc != 0) {
        seterr(err, errlen, "the key store is damaged (root generations)");
        goto fail;
    }
    kr->gen = cur->gen;
    (void)rp_strlcpy(kr->gen_ref, cur->ref, sizeof(kr->gen_ref));
    finish_rotation(kr, rows, nrows);
    rc = rp_keyprov_load(kr->prov, kr->gen, kr->gen_ref);
    if (rc != 0) {
        seterr(err, errlen, "cannot load root key generation %u: %s%s", (unsigned)kr->gen,
               rp_strerror(rc),
               rc == RP_ECRYPTO ? " (wrong passphrase?)"
               : rc == RP_EPERM ? " (a key file must be a regular file with mode 0600)"
                                : "");
        goto fail;
    }
    rc = kek_read(kr->db, RP_KEYRING_SYSTEM, 1, r);
    if (rc == 0 && root_gen_of(r->by) != kr->gen)
        rc = RP_EDB;
    if (rc == 0)
        rc = rp_keyprov_unwrap(kr->prov, kr->gen, r->wrapped, r->wn, aad,
                               kek_aad(RP_KEYRING_SYSTEM, 1, aad), sys);
    if (rc == 0)
        rc = rp_rootkey_from_bytes(sys, &kr->system);
    OPENSSL_cleanse(sys, sizeof(sys));
    if (rc != 0) {
        seterr(err, errlen, "cannot unwrap the system key: %s", rp_strerror(rc));
        goto fail;
    }
    rp_free(r);
    *out = kr;
    return 0;
fail:
    rp_free(r);
    rp_keyring_close(kr);
    return rc;
}

void rp_keyring_close(rp_keyring *kr)
{
    if (kr == NULL)
        return;
    if (kr->buckets != NULL) {
        for (size_t i = 0; i < kr->nbuckets; i++) {
            kek_entry *e = kr->buckets[i], *next;
            for (; e != NULL; e = next) {
                next = e->next;
                entry_free(kr, e);
            }
        }
    }
    while (kr->pages != NULL) { /* every slot was released above; this is belt and braces */
        secpage *pg = kr->pages;
        kr->pages = pg->next;
        rp__secmem_free(pg->mem, PAGE_BYTES);
        rp_free(pg);
    }
    rp_free(kr->buckets);
    rp_rootkey_free(kr->system);
    if (kr->db != NULL)
        (void)sqlite3_close(kr->db);
    rp_keyprov_close(kr->prov);
    OPENSSL_cleanse(&kr->ops, sizeof(kr->ops));
    pthread_rwlock_destroy(&kr->lock);
    pthread_mutex_destroy(&kr->db_mu);
    rp_free(kr->dir);
    rp_free(kr);
}

const rp_rootkey *rp_keyring_system(const rp_keyring *kr)
{
    return kr == NULL ? NULL : kr->system;
}

/* ------------------------------------------------------------ KEKs */

static const char *const NO_OPS = "customer-managed keys are not available";

/*
 * Unwraps resource's KEK (version 0: the latest) from the key store into kek and caches it.
 * Root-wrapped: under db_mu. CMK-wrapped: through the callbacks with no lock held.
 */
static int kek_load(rp_keyring *kr, const char *resource, uint32_t version,
                    unsigned char kek[RP_KEYRING_KEY_LEN], uint32_t *ver, const char **reason)
{
    unsigned char aad[KEK_AAD_MAX];
    char *newkid = NULL;
    kek_row *r = NULL, *again = NULL;
    rp_buf nw;
    int rc = RP_EAGAIN;

    rp_buf_init(&nw, WRAPPED_MAX);
    r = rp_malloc(sizeof(*r));
    again = rp_malloc(sizeof(*again));
    newkid = rp_malloc(RP_KEYRING_KID_MAX + 1);
    if (r == NULL || again == NULL || newkid == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    for (int attempt = 0; attempt < CMK_ATTEMPTS && rc == RP_EAGAIN; attempt++) {
        rp_keyring_cmk_ops ops;
        uint64_t epoch;
        int has_ops, rewrap = 0;
        const char *used, *why = NULL;

        pthread_mutex_lock(&kr->db_mu);
        rc = kek_read(kr->db, resource, version, r);
        if (rc != 0) {
            pthread_mutex_unlock(&kr->db_mu);
            break;
        }
        if (root_gen_of(r->by) != 0) {
            rc = rp_keyprov_unwrap(kr->prov, root_gen_of(r->by), r->wrapped, r->wn, aad,
                                   kek_aad(resource, r->version, aad), kek);
            if (rc == 0)
                rc = cache_put(kr, resource, r->version, version == 0, kek, NULL, NULL);
            pthread_mutex_unlock(&kr->db_mu);
            *ver = r->version;
            break;
        }
        pthread_mutex_unlock(&kr->db_mu);
        if (strncmp(r->by, "cmk:", 4) != 0 || !r->has_cfg) {
            rc = RP_EDB;
            break;
        }
        used = r->by + 4;
        pthread_rwlock_rdlock(&kr->lock);
        ops = kr->ops;
        has_ops = kr->has_ops;
        epoch = kr->cmk_epoch;
        pthread_rwlock_unlock(&kr->lock);
        if (!has_ops || ops.unwrap == NULL || ops.wrap == NULL) {
            if (reason != NULL)
                *reason = NO_OPS;
            rc = RP_EPERM;
            break;
        }
        rc = ops.unwrap(ops.arg, used, r->wrapped, r->wn, kek, &why);
        if (rc != 0) {
            if (reason != NULL)
                *reason = why != NULL ? why : "the customer-managed key cannot unwrap";
            break;
        }
        /* An unversioned configuration follows the key's latest version. */
        if (strcmp(r->cfg, used) != 0) {
            rp_buf_reset(&nw);
            newkid[0] = '\0';
            if (ops.wrap(ops.arg, r->cfg, kek, &nw, newkid, RP_KEYRING_KID_MAX + 1, &why) == 0 &&
                newkid[0] != '\0' && strcmp(newkid, used) != 0 && nw.len > 0)
                rewrap = 1;
        }
        pthread_mutex_lock(&kr->db_mu);
        rc = kek_read(kr->db, resource, r->version, again);
        if (rc == 0 && (again->wn != r->wn || memcmp(again->wrapped, r->wrapped, r->wn) != 0 ||
                        strcmp(again->by, r->by) != 0))
            rc = RP_EAGAIN; /* re-wrapped or replaced meanwhile: read it again */
        if (rc == 0 && rewrap) {
            char by[8 + RP_KEYRING_KID_MAX];
            int n = snprintf(by, sizeof(by), "cmk:%s", newkid);
            /* best effort: the old wrapping stays valid if this fails */
            if (n > 0 && (size_t)n < sizeof(by) &&
                kek_update(kr->db, resource, r->version, nw.data, nw.len, by, r->cfg) == 0)
                used = newkid;
        }
        if (rc == 0) {
            pthread_rwlock_wrlock(&kr->lock);
            /* a cmk_changed during the callback: use the key this once, do not keep it */
            if (kr->cmk_epoch == epoch)
                rc = cache_put_locked(kr, resource, r->version, version == 0, kek, r->cfg, used);
            pthread_rwlock_unlock(&kr->lock);
            *ver = r->version;
        }
        pthread_mutex_unlock(&kr->db_mu);
        if (rc != 0)
            OPENSSL_cleanse(kek, RP_KEYRING_KEY_LEN);
    }
    if (rc == RP_EAGAIN)
        rc = RP_ECONFLICT;
out:
    if (rc != 0)
        OPENSSL_cleanse(kek, RP_KEYRING_KEY_LEN);
    rp_buf_free(&nw);
    rp_free(newkid);
    rp_free(again);
    rp_free(r);
    return rc;
}

/* The KEK for (resource, version 0 = latest) into kek, from the cache or the key store. */
static int kek_get(rp_keyring *kr, const char *resource, uint32_t version,
                   unsigned char kek[RP_KEYRING_KEY_LEN], uint32_t *ver, const char **reason)
{
    kek_entry *e;

    pthread_rwlock_rdlock(&kr->lock);
    e = cache_find(kr, resource, version);
    if (e != NULL) {
        memcpy(kek, e->key, RP_KEYRING_KEY_LEN);
        *ver = e->version;
    }
    pthread_rwlock_unlock(&kr->lock);
    if (e != NULL)
        return 0;
    return kek_load(kr, resource, version, kek, ver, reason);
}

int rp_keyring_kek_ensure(rp_keyring *kr, const char *resource)
{
    unsigned char kek[RP_KEYRING_KEY_LEN];
    sqlite3_stmt *st = NULL;
    int rc, s;

    if (kr == NULL || !valid_resource(resource))
        return RP_EINVAL;
    pthread_mutex_lock(&kr->db_mu);
    rc = db_prepare(kr->db, "SELECT 1 FROM kek WHERE resource = ?1 LIMIT 1", &st);
    if (rc != 0)
        goto out;
    if (sqlite3_bind_text(st, 1, resource, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = RP_EDB;
        goto out;
    }
    s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        goto out; /* there already */
    if (s != SQLITE_DONE) {
        rc = RP_EDB;
        goto out;
    }
    rc = rp_random_bytes(kek, sizeof(kek));
    if (rc == 0)
        rc = kek_insert(kr->db, kr->prov, kr->gen, resource, 1, kek);
    if (rc == 0)
        rc = cache_put(kr, resource, 1, 1, kek, NULL, NULL);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&kr->db_mu);
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}

int rp_keyring_kek_drop(rp_keyring *kr, const char *resource)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (kr == NULL || !valid_resource(resource) || strcmp(resource, RP_KEYRING_SYSTEM) == 0)
        return RP_EINVAL;
    pthread_mutex_lock(&kr->db_mu);
    rc = db_prepare(kr->db, "DELETE FROM kek WHERE resource = ?1", &st);
    if (rc == 0 && (sqlite3_bind_text(st, 1, resource, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
                    sqlite3_step(st) != SQLITE_DONE))
        rc = RP_EDB;
    if (rc == 0 && sqlite3_changes(kr->db) == 0)
        rc = RP_ENOENT;
    sqlite3_finalize(st);
    /* Evict even on failure: a KEK the store may no longer hold must not outlive it here. */
    cache_evict(kr, resource, NULL);
    /* secure_delete zeroed the rows' pages; truncating the WAL drops the old page images too */
    if (rc == 0)
        (void)db_exec(kr->db, "PRAGMA wal_checkpoint(TRUNCATE)");
    pthread_mutex_unlock(&kr->db_mu);
    return rc;
}

int rp_keyring_seal(rp_keyring *kr, const char *resource, const char *object, const void *pt,
                    size_t n, rp_buf *wdek, rp_buf *ct, const char **reason)
{
    unsigned char kek[RP_KEYRING_KEY_LEN], dek[RP_KEYRING_KEY_LEN];
    uint32_t ver = 0;
    rp_buf w;
    int rc;

    if (kr == NULL || wdek == NULL || ct == NULL || (pt == NULL && n > 0) ||
        !valid_resource(resource) || !valid_object(object))
        return RP_EINVAL;
    rp_buf_init(&w, RP_KEYRING_WDEK_LEN);
    rc = rp_buf_reserve(wdek, RP_KEYRING_WDEK_LEN); /* so the final append cannot fail */
    if (rc != 0)
        return rc;
    rc = kek_get(kr, resource, 0, kek, &ver, reason);
    if (rc != 0)
        goto out;
    rc = rp_random_bytes(dek, sizeof(dek));
    if (rc != 0)
        goto out;
    rc = rp_keyring_wdek_seal(kek, ver, resource, object, dek, &w);
    if (rc != 0)
        goto out;
    rc = rp_keyring_obj_seal(dek, resource, object, pt, n, ct);
    if (rc != 0)
        goto out;
    rc = rp_buf_append(wdek, w.data, w.len);
out:
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(dek, sizeof(dek));
    rp_buf_free(&w);
    return rc;
}

int rp_keyring_open_object(rp_keyring *kr, const char *resource, const char *object,
                           const void *wdek, size_t wn, const void *ct, size_t cn, rp_buf *pt,
                           const char **reason)
{
    unsigned char kek[RP_KEYRING_KEY_LEN], dek[RP_KEYRING_KEY_LEN];
    uint32_t ver = 0, got = 0;
    int rc;

    if (kr == NULL || pt == NULL || (ct == NULL && cn > 0) || !valid_resource(resource) ||
        !valid_object(object))
        return RP_EINVAL;
    rc = rp_keyring_wdek_parse(wdek, wn, &ver);
    if (rc != 0)
        return rc;
    rc = kek_get(kr, resource, ver, kek, &got, reason);
    if (rc == 0)
        rc = rp_keyring_wdek_open(kek, resource, object, wdek, wn, dek);
    if (rc == 0)
        rc = rp_keyring_obj_open(dek, resource, object, ct, cn, pt);
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

/* ------------------------------------------------------------ root rotation */

typedef struct rewrap {
    char *resource;
    uint32_t version, gen;
    unsigned char w[RP_KEYPROV_WRAP_LEN];
    size_t wn;
} rewrap;

/* Every root-wrapped KEK row (the system key included). */
static int rewrap_list(sqlite3 *db, rewrap **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    rewrap *v = NULL, *nv;
    size_t cap = 0, len = 0;
    int rc = db_prepare(db,
                        "SELECT resource, version, wrapped, wrapped_by FROM kek"
                        " WHERE wrapped_by LIKE 'root:%'",
                        &st),
        s = SQLITE_DONE;

    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        const char *by = (const char *)sqlite3_column_text(st, 3);
        const void *w = sqlite3_column_blob(st, 2);
        size_t wn = (size_t)sqlite3_column_bytes(st, 2);
        sqlite3_int64 ver = sqlite3_column_int64(st, 1);
        if (res == NULL || by == NULL || w == NULL || wn > RP_KEYPROV_WRAP_LEN || ver <= 0 ||
            ver > UINT32_MAX || root_gen_of(by) == 0) {
            rc = RP_EDB;
            break;
        }
        if (len == cap) {
            size_t bytes;
            cap = cap == 0 ? 16 : cap * 2;
            if (rp_size_mul(cap, sizeof(*v), &bytes) != 0 || (nv = rp_realloc(v, bytes)) == NULL) {
                rc = RP_ENOMEM;
                break;
            }
            v = nv;
        }
        v[len].resource = rp_strdup(res);
        if (v[len].resource == NULL) {
            rc = RP_ENOMEM;
            break;
        }
        v[len].version = (uint32_t)ver;
        v[len].gen = root_gen_of(by);
        memcpy(v[len].w, w, wn);
        v[len].wn = wn;
        len++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RP_EDB;
    sqlite3_finalize(st);
    *out = v;
    *n = len;
    return rc;
}

int rp_keyring_rotate_root(rp_keyring *kr, uint32_t *gen, char *err, size_t errlen)
{
    unsigned char kek[RP_KEYRING_KEY_LEN], aad[KEK_AAD_MAX];
    char ref[RP_KEYPROV_REF_MAX], oldref[RP_KEYPROV_REF_MAX], by[32];
    rewrap *v = NULL;
    size_t n = 0, i;
    uint32_t old, next;
    rp_buf w;
    int rc, stage = 0;

    if (kr == NULL || gen == NULL)
        return RP_EINVAL;
    rp_buf_init(&w, RP_KEYPROV_WRAP_LEN);
    pthread_mutex_lock(&kr->db_mu);
    old = kr->gen;
    if (old == UINT32_MAX) {
        rc = RP_ETOOBIG;
        goto out;
    }
    next = old + 1;
    rc = rp_keyprov_new_ref(kr->prov, next, ref, sizeof(ref));
    if (rc == 0)
        rc = root_insert(kr->db, next, kr->provider, ref, "next");
    if (rc != 0) {
        seterr(err, errlen, "cannot record root generation %u: %s", (unsigned)next,
               rp_strerror(rc));
        goto out;
    }
    stage = 1; /* a 'next' row exists: undo by destroying it */
    rc = rp_keyprov_generate(kr->prov, next, ref);
    if (rc == 0)
        rc = rp_keyprov_load(kr->prov, next, ref);
    if (rc != 0) {
        seterr(err, errlen, "cannot create root generation %u: %s", (unsigned)next,
               rp_strerror(rc));
        goto out;
    }
    rc = db_exec(kr->db, "BEGIN IMMEDIATE");
    if (rc != 0) {
        seterr(err, errlen, "cannot start the key store transaction");
        goto out;
    }
    stage = 2; /* in a transaction: roll back too */
    rc = rewrap_list(kr->db, &v, &n);
    if (rc != 0)
        seterr(err, errlen, "cannot list the wrapped keys: %s", rp_strerror(rc));
    (void)snprintf(by, sizeof(by), "root:%u", (unsigned)next);
    for (i = 0; rc == 0 && i < n; i++) {
        size_t aadlen = kek_aad(v[i].resource, v[i].version, aad);
        rc = rp_keyprov_unwrap(kr->prov, v[i].gen, v[i].w, v[i].wn, aad, aadlen, kek);
        if (rc == 0) {
            rp_buf_reset(&w);
            rc = rp_keyprov_wrap(kr->prov, next, kek, aad, aadlen, &w);
        }
        OPENSSL_cleanse(kek, sizeof(kek));
        if (rc == 0)
            rc = kek_update(kr->db, v[i].resource, v[i].version, w.data, w.len, by, NULL);
        if (rc != 0)
            seterr(err, errlen, "cannot re-wrap the key of %s: %s", v[i].resource, rp_strerror(rc));
    }
    if (rc == 0) {
        char sql[128];
        (void)snprintf(sql, sizeof(sql),
                       "UPDATE root SET state = 'retired' WHERE gen = %u;"
                       "UPDATE root SET state = 'current' WHERE gen = %u",
                       (unsigned)old, (unsigned)next);
        rc = db_exec(kr->db, sql);
        if (rc == 0)
            rc = db_exec(kr->db, "COMMIT");
        if (rc != 0)
            seterr(err, errlen, "cannot commit the new root generation");
    }
    if (rc != 0)
        goto out;
    /* Committed: the new generation is in force. The old one is only garbage now. */
    stage = 0;
    (void)rp_strlcpy(oldref, kr->gen_ref, sizeof(oldref));
    kr->gen = next;
    (void)rp_strlcpy(kr->gen_ref, ref, sizeof(kr->gen_ref));
    *gen = next;
    {
        int drc = rp_keyprov_destroy(kr->prov, old, oldref);
        if (drc == 0)
            drc = root_delete(kr->db, old);
        if (drc != 0)
            rp_log_err("keyring_rotate", "old root generation left for the next open", drc);
    }
    (void)db_exec(kr->db, "PRAGMA wal_checkpoint(TRUNCATE)");
out:
    if (stage == 2)
        (void)db_exec(kr->db, "ROLLBACK");
    if (stage >= 1) {
        int drc = rp_keyprov_destroy(kr->prov, next, ref);
        if (drc == 0)
            drc = root_delete(kr->db, next);
        if (drc != 0)
            rp_log_err("keyring_rotate", "failed generation left for the next open", drc);
    }
    pthread_mutex_unlock(&kr->db_mu);
    for (i = 0; i < n; i++)
        rp_free(v[i].resource);
    rp_free(v);
    rp_buf_free(&w);
    return rc;
}

void rp_keyring_get_status(rp_keyring *kr, rp_keyring_status *out)
{
    sqlite3_stmt *st = NULL;

    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (kr == NULL)
        return;
    out->provider = kr->provider;
    pthread_mutex_lock(&kr->db_mu);
    out->generation = kr->gen;
    if (db_prepare(kr->db,
                   "SELECT COUNT(DISTINCT resource),"
                   " COUNT(DISTINCT CASE WHEN wrapped_by LIKE 'cmk:%' THEN resource END)"
                   " FROM kek WHERE resource <> '" RP_KEYRING_SYSTEM "'",
                   &st) == 0 &&
        sqlite3_step(st) == SQLITE_ROW) {
        out->keks = (size_t)sqlite3_column_int64(st, 0);
        out->cmk_keks = (size_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&kr->db_mu);
}

/* ------------------------------------------------------------ customer-managed keys */

void rp_keyring_set_cmk_ops(rp_keyring *kr, const rp_keyring_cmk_ops *ops)
{
    if (kr == NULL)
        return;
    pthread_rwlock_wrlock(&kr->lock);
    if (ops != NULL) {
        kr->ops = *ops;
        kr->has_ops = 1;
    } else {
        memset(&kr->ops, 0, sizeof(kr->ops));
        kr->has_ops = 0;
    }
    pthread_rwlock_unlock(&kr->lock);
}

/* The versions of resource's KEK. */
static int kek_versions(rp_keyring *kr, const char *resource, uint32_t *v, size_t cap, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc, s = SQLITE_DONE;

    *n = 0;
    pthread_mutex_lock(&kr->db_mu);
    rc = db_prepare(kr->db, "SELECT version FROM kek WHERE resource = ?1 ORDER BY version", &st);
    if (rc == 0 && sqlite3_bind_text(st, 1, resource, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        rc = RP_EDB;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 ver = sqlite3_column_int64(st, 0);
        if (*n == cap || ver <= 0 || ver > UINT32_MAX) {
            rc = *n == cap ? RP_ETOOBIG : RP_EDB;
            break;
        }
        v[(*n)++] = (uint32_t)ver;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RP_EDB;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&kr->db_mu);
    if (rc == 0 && *n == 0)
        rc = RP_ENOENT;
    return rc;
}

int rp_keyring_set_cmk(rp_keyring *kr, const char *resource, const char *kid, const char **reason)
{
    unsigned char kek[RP_KEYRING_KEY_LEN], aad[KEK_AAD_MAX];
    uint32_t versions[16], got;
    char *used = NULL, *by = NULL;
    rp_keyring_cmk_ops ops;
    size_t nv = 0;
    rp_buf w;
    int rc, has_ops;

    if (kr == NULL || !valid_resource(resource) || strcmp(resource, RP_KEYRING_SYSTEM) == 0 ||
        (kid != NULL && (kid[0] == '\0' || strlen(kid) > RP_KEYRING_KID_MAX)))
        return RP_EINVAL;
    rp_buf_init(&w, WRAPPED_MAX);
    pthread_rwlock_rdlock(&kr->lock);
    ops = kr->ops;
    has_ops = kr->has_ops;
    pthread_rwlock_unlock(&kr->lock);
    if (kid != NULL && (!has_ops || ops.wrap == NULL)) {
        if (reason != NULL)
            *reason = NO_OPS;
        return RP_EPERM;
    }
    used = rp_malloc(RP_KEYRING_KID_MAX + 1);
    by = rp_malloc(8 + RP_KEYRING_KID_MAX + 1);
    if (used == NULL || by == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    rc = kek_versions(kr, resource, versions, sizeof(versions) / sizeof(versions[0]), &nv);
    for (size_t i = 0; rc == 0 && i < nv; i++) {
        rc = kek_get(kr, resource, versions[i], kek, &got, reason);
        if (rc != 0)
            break;
        rp_buf_reset(&w);
        if (kid != NULL) {
            const char *why = NULL;
            used[0] = '\0';
            rc = ops.wrap(ops.arg, kid, kek, &w, used, RP_KEYRING_KID_MAX + 1, &why);
            if (rc != 0 && reason != NULL)
                *reason = why != NULL ? why : "the customer-managed key cannot wrap";
            if (rc == 0 && (used[0] == '\0' || memchr(used, '\0', RP_KEYRING_KID_MAX + 1) == NULL ||
                            w.len == 0 || w.len > WRAPPED_MAX))
                rc = RP_EINVAL;
            if (rc == 0)
                (void)snprintf(by, 8 + RP_KEYRING_KID_MAX + 1, "cmk:%s", used);
            if (rc == 0) {
                pthread_mutex_lock(&kr->db_mu);
                rc = kek_update(kr->db, resource, versions[i], w.data, w.len, by, kid);
                if (rc == 0)
                    rc = cache_put(kr, resource, versions[i], i + 1 == nv, kek, kid, used);
                pthread_mutex_unlock(&kr->db_mu);
            }
        } else {
            pthread_mutex_lock(&kr->db_mu);
            rc = rp_keyprov_wrap(kr->prov, kr->gen, kek, aad, kek_aad(resource, versions[i], aad),
                                 &w);
            (void)snprintf(by, 8 + RP_KEYRING_KID_MAX + 1, "root:%u", (unsigned)kr->gen);
            if (rc == 0)
                rc = kek_update(kr->db, resource, versions[i], w.data, w.len, by, NULL);
            if (rc == 0)
                rc = cache_put(kr, resource, versions[i], i + 1 == nv, kek, NULL, NULL);
            pthread_mutex_unlock(&kr->db_mu);
        }
        OPENSSL_cleanse(kek, sizeof(kek));
    }
out:
    OPENSSL_cleanse(kek, sizeof(kek));
    rp_free(used);
    rp_free(by);
    rp_buf_free(&w);
    return rc;
}

void rp_keyring_cmk_changed(rp_keyring *kr, const char *key_base)
{
    if (kr == NULL || key_base == NULL || key_base[0] == '\0')
        return;
    cache_evict(kr, NULL, key_base);
}

int rp_keyring_cmk_of(rp_keyring *kr, const char *resource, char *kid, size_t cap)
{
    kek_row *r;
    int rc;

    if (kr == NULL || kid == NULL || cap == 0 || !valid_resource(resource))
        return RP_EINVAL;
    r = rp_malloc(sizeof(*r));
    if (r == NULL)
        return RP_ENOMEM;
    pthread_mutex_lock(&kr->db_mu);
    rc = kek_read(kr->db, resource, 0, r);
    pthread_mutex_unlock(&kr->db_mu);
    if (rc == 0)
        rc = rp_strlcpy(kid, r->has_cfg ? r->cfg : "", cap);
    rp_free(r);
    return rc;
}
