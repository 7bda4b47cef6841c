/*
 * unzip.c - safe extraction of deploy archives, fd-based tree removal, and the CLI's zipper.
 *
 * Workload: one archive per deployment, a few hundred to twenty thousand entries, megabytes to
 * a gigabyte; a blocking call made off the event loop. Throughput is libzip's inflate plus one
 * write per 64 KiB chunk; the checks cost a sort of the entry names.
 *
 * Threat model (see unzip.h): the archive is hostile. Extraction therefore runs in two passes.
 * The first pass reads only the central directory and refuses the whole archive if any entry
 * is unsafe (name, type, encryption, method, declared size or ratio), if two entries collide,
 * or if the declared sizes add up past a limit; nothing is written until every entry passed.
 * The second pass creates a new directory and writes the entries in sorted order through a
 * stack of directory fds, each opened with O_DIRECTORY|O_NOFOLLOW by this function, so no
 * path string is ever resolved by the kernel beyond one component and no symlink is ever
 * followed (none can exist: symlink entries are refused and every file is created O_EXCL).
 * Decompressed bytes are counted as they stream and the entry stops at its declared size, the
 * per-file and total limits and the ratio, whichever comes first, so lying headers, zip64
 * fields and data descriptors cannot buy more output than the checks allowed. Any failure
 * removes the new directory again with rp_unzip_rmtree.
 *
 * rp_zip_dir trusts its directory more (it is the deployer's own) but still never follows a
 * symlink below it and applies the extractor's name rules and limits, so what it writes is
 * what the server accepts. The archive goes through a small libzip write source over an fd we
 * created O_EXCL, and each file through a read source that opens it only when libzip asks, by
 * walking its components with O_NOFOLLOW and checking it is the file the walk saw.
 */
#include "sites/unzip.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/file.h"
#include "base/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#define CHUNK         (64u * 1024)   /* one zip_fread / write */
#define PROGRESS_STEP (1024u * 1024) /* bytes between progress calls */
#define ZIP_NAME_CAP  65535u         /* a zip name length is 16 bits */
#define DOS_DIR_ATTR  0x10u          /* MS-DOS "directory" external attribute */

static const char *const builtin_excludes[] = {".git", ".svn", ".hg", ".env"};

void rp_unzip_limits_default(rp_unzip_limits *l)
{
    l->max_total = RP_UNZIP_MAX_TOTAL;
    l->max_file = RP_UNZIP_MAX_FILE;
    l->max_entries = RP_UNZIP_MAX_ENTRIES;
    l->max_ratio = RP_UNZIP_MAX_RATIO;
    l->max_path = RP_UNZIP_MAX_PATH;
    l->max_depth = RP_UNZIP_MAX_DEPTH;
}

/* ---- messages ---------------------------------------------------------------------------- */

/* Copies a name for a message: printable ASCII as is, any other byte (and ' and \) as \xNN,
 * cut with "..." when long, so a hostile name cannot forge lines or terminal escapes. */
static void quote_name(const char *name, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        if (o + 8 > cap) { /* room for one escape, "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

static void set_err(char *err, size_t errlen, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "entry 'NAME': reason" (or just the reason) into err unless a reason is there already:
 * the first failure is the one the uploader needs to see. */
static void set_err(char *err, size_t errlen, const char *entry, const char *fmt, ...)
{
    char q[160];
    va_list ap;
    int n = 0;

    if (err == NULL || errlen == 0 || err[0] != '\0')
        return;
    if (entry != NULL) {
        quote_name(entry, q, sizeof(q));
        n = snprintf(err, errlen, "entry '%s': ", q);
        if (n < 0 || (size_t)n >= errlen)
            return;
    }
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A reason for the uploader from an errno of a write-side system call (no host paths). */
static const char *sys_reason(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return "disk full or quota exceeded";
    if (e == EMFILE || e == ENFILE)
        return "too many open files";
    return "I/O error";
}

static int map_zip_error(int ze)
{
    switch (ze) {
    case ZIP_ER_MEMORY: return RP_ENOMEM;
    case ZIP_ER_OPEN:
    case ZIP_ER_READ:
    case ZIP_ER_SEEK:
    case ZIP_ER_TELL:
    case ZIP_ER_WRITE:
    case ZIP_ER_CLOSE:
    case ZIP_ER_TMPOPEN:
    case ZIP_ER_RENAME:
    case ZIP_ER_REMOVE: return RP_EIO;
    default: return RP_EPARSE;
    }
}

static const char *zip_reason(int ze)
{
    switch (ze) {
    case ZIP_ER_NOZIP: return "not a zip archive";
    case ZIP_ER_INCONS: return "inconsistent archive";
    case ZIP_ER_EOF: return "truncated archive";
    case ZIP_ER_CRC: return "CRC mismatch";
    case ZIP_ER_ZLIB:
    case ZIP_ER_COMPRESSED_DATA: return "corrupt compressed data";
    case ZIP_ER_MULTIDISK: return "multi-disk archives are not supported";
    case ZIP_ER_COMPNOTSUPP: return "unsupported compression method";
    case ZIP_ER_ENCRNOTSUPP:
    case ZIP_ER_NOPASSWD: return "encrypted entry";
    case ZIP_ER_MEMORY: return "out of memory";
    default: return "unreadable archive";
    }
}

/* ---- names ------------------------------------------------------------------------------- */

typedef struct name_info {
    size_t len;     /* bytes without a directory's trailing '/' */
    int is_dir;     /* the name ends in '/' */
    unsigned depth; /* path components */
} name_info;

/*
 * Checks an entry name against the rules in unzip.h. 0 and *ni, or RP_EINVAL (unsafe) or
 * RP_ETOOBIG (a limit) with *why a static reason. Unsafe beats too big.
 */
static int check_name(const char *name, const rp_unzip_limits *lim, name_info *ni, const char **why)
{
    size_t n = strlen(name), start = 0;
    size_t max_path = lim->max_path < ZIP_NAME_CAP ? lim->max_path : ZIP_NAME_CAP;
    unsigned depth = 0;
    int long_comp = 0;

    if (n == 0) {
        *why = "empty name";
        return RP_EINVAL;
    }
    if (name[0] == '/') {
        *why = "absolute path";
        return RP_EINVAL;
    }
    if (((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')) &&
        name[1] == ':') {
        *why = "drive letter";
        return RP_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '\\') {
            *why = "backslash in name";
            return RP_EINVAL;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "control character in name";
            return RP_EINVAL;
        }
    }
    if (!rp_utf8_valid(name, n, 1)) {
        *why = "name is not valid UTF-8 or has a control character";
        return RP_EINVAL;
    }
    ni->is_dir = name[n - 1] == '/';
    if (ni->is_dir)
        n--;
    for (size_t i = 0; i <= n; i++) {
        size_t clen;
        if (i < n && name[i] != '/')
            continue;
        clen = i - start;
        if (clen == 0) {
            *why = "empty path component";
            return RP_EINVAL;
        }
        if (clen == 1 && name[start] == '.') {
            *why = "'.' path component";
            return RP_EINVAL;
        }
        if (clen == 2 && name[start] == '.' && name[start + 1] == '.') {
            *why = "'..' path component";
            return RP_EINVAL;
        }
        if (clen > RP_UNZIP_NAME_MAX)
            long_comp = 1;
        depth++;
        start = i + 1;
    }
    if (n > max_path) {
        *why = "path too long";
        return RP_ETOOBIG;
    }
    if (long_comp) {
        *why = "path component longer than 255 bytes";
        return RP_ETOOBIG;
    }
    if (depth > lim->max_depth) {
        *why = "path nested too deeply";
        return RP_ETOOBIG;
    }
    ni->len = n;
    ni->depth = depth;
    return 0;
}

static int component_excluded(const char *c, size_t n, const char *const *excludes)
{
    for (size_t i = 0; i < sizeof(builtin_excludes) / sizeof(builtin_excludes[0]); i++)
        if (rp_str_eq_nocase((rp_str){c, n}, builtin_excludes[i]))
            return 1;
    for (size_t i = 0; excludes != NULL && excludes[i] != NULL; i++)
        if (strlen(excludes[i]) == n && memcmp(excludes[i], c, n) == 0)
            return 1;
    return 0;
}

/* Does any component of name[0..n) match an exclude? */
static int name_excluded(const char *name, size_t n, const char *const *excludes)
{
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && name[i] != '/')
            continue;
        if (component_excluded(name + start, i - start, excludes))
            return 1;
        start = i + 1;
    }
    return 0;
}

/* A single path component naming an entry of a directory we are given. */
static int component_ok(const char *name)
{
    size_t n;

    if (name == NULL)
        return 0;
    n = strlen(name);
    return n > 0 && n <= RP_UNZIP_NAME_MAX && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* Is out bytes from comp compressed bytes over the ratio limit? */
static int ratio_exceeded(uint64_t out, uint64_t comp, const rp_unzip_limits *lim)
{
    if (lim->max_ratio == 0 || out <= RP_UNZIP_RATIO_FLOOR)
        return 0;
    if (comp == 0)
        comp = 1;
    return (out - 1) / comp >= lim->max_ratio; /* out > comp * max_ratio, without overflow */
}

/* ---- extraction -------------------------------------------------------------------------- */

typedef struct entry {
    const char *name;   /* libzip's string, valid while the archive is open */
    size_t len;         /* without a directory's trailing '/' */
    zip_uint64_t index; /* in the archive */
    uint64_t size;      /* declared uncompressed size */
    uint64_t comp_size; /* declared compressed size (libzip reads no more than this) */
    unsigned depth;
    unsigned char is_dir;
    unsigned char exec;
} entry;

typedef struct xctx {
    zip_t *za;
    const rp_unzip_limits *lim;
    entry *ents;
    size_t nents;
    unsigned max_depth; /* deepest directory any entry needs */
    int *fds;           /* fds[0]: the new directory; fds[i]: component i of stack_name */
    unsigned nfds;
    const char *stack_name; /* the directory path fds[nfds - 1] stands for */
    size_t stack_len;
    unsigned char *buf;
    uint64_t total;      /* bytes written */
    uint64_t total_hint; /* declared bytes of the entries to write */
    uint64_t reported;   /* total at the last progress call */
    rp_unzip_progress_fn progress;
    void *arg;
    rp_unzip_result res;
    char *err;
    size_t errlen;
} xctx;

/* '/' sorts before every other byte, so "a", then everything below "a/", then "a-b". */
static unsigned sort_key(char c)
{
    return c == '/' ? 0u : (unsigned)(unsigned char)c + 1u;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;

    for (size_t i = 0; i < n; i++) {
        unsigned ka = sort_key(a->name[i]), kb = sort_key(b->name[i]);
        if (ka != kb)
            return ka < kb ? -1 : 1;
    }
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Checks one entry from the central directory and appends it to x->ents unless excluded. */
static int scan_entry(xctx *x, zip_uint64_t i, const char *const *excludes, uint64_t *declared,
                      uint64_t *comp_sum, uint64_t archive_size)
{
    const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
                              ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
    const rp_unzip_limits *lim = x->lim;
    zip_stat_t st;
    zip_uint8_t opsys = 0;
    zip_uint32_t attr = 0;
    unsigned mode = 0, fmt = 0;
    name_info ni;
    const char *why = NULL, *raw;
    entry *e;
    int rc;

    zip_stat_init(&st);
    if (zip_stat_index(x->za, i, 0, &st) != 0 || (st.valid & need) != need || st.name == NULL) {
        set_err(x->err, x->errlen, NULL, "entry #%llu: unreadable directory record",
                (unsigned long long)i);
        return RP_EPARSE;
    }
    rc = check_name(st.name, lim, &ni, &why);
    if (rc != 0) {
        set_err(x->err, x->errlen, st.name, "%s", why);
        return rc;
    }
    /* libzip turns the control bytes of a CP437 name into glyphs (0x01 becomes U+263A):
     * the archive's own bytes must be free of them too. */
    raw = zip_get_name(x->za, i, ZIP_FL_ENC_RAW);
    for (const char *r = raw; r != NULL && *r != '\0'; r++) {
        if ((unsigned char)*r < 0x20 || *r == 0x7f) {
            set_err(x->err, x->errlen, raw, "control character in name");
            return RP_EINVAL;
        }
    }
    /* Non-overlapping entries fit in the archive: refuses the "overlapping files" bombs. */
    if (st.comp_size > archive_size - *comp_sum) {
        set_err(x->err, x->errlen, st.name, "entries overlap or run past the archive");
        return RP_EPARSE;
    }
    *comp_sum += st.comp_size;
    if (name_excluded(st.name, ni.len, excludes)) {
        x->res.skipped++;
        return 0;
    }
    if (zip_file_get_external_attributes(x->za, i, 0, &opsys, &attr) != 0) {
        set_err(x->err, x->errlen, st.name, "unreadable attributes");
        return RP_EPARSE;
    }
    if (opsys == ZIP_OPSYS_UNIX || opsys == ZIP_OPSYS_OS_X) {
        mode = attr >> 16;
        fmt = mode & S_IFMT;
    }
    switch (fmt) {
    case 0:
    case S_IFREG: break;
    case S_IFDIR: ni.is_dir = 1; break;
    case S_IFLNK: why = "symbolic link entry"; break;
    case S_IFCHR:
    case S_IFBLK: why = "device entry"; break;
    case S_IFIFO: why = "FIFO entry"; break;
    case S_IFSOCK: why = "socket entry"; break;
    default: why = "unknown file type"; break;
    }
    if (why != NULL) {
        set_err(x->err, x->errlen, st.name, "%s", why);
        return RP_EINVAL;
    }
    if (ni.is_dir && st.size != 0) {
        set_err(x->err, x->errlen, st.name, "directory entry with data");
        return RP_EINVAL;
    }
    if (!ni.is_dir) {
        if (st.encryption_method != ZIP_EM_NONE) {
            set_err(x->err, x->errlen, st.name, "encrypted entry");
            return RP_EPARSE;
        }
        if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
            set_err(x->err, x->errlen, st.name, "unsupported compression method %u",
                    (unsigned)st.comp_method);
            return RP_EPARSE;
        }
        if (st.size > lim->max_file) {
            set_err(x->err, x->errlen, st.name, "%llu bytes, over the %llu-byte file limit",
                    (unsigned long long)st.size, (unsigned long long)lim->max_file);
            return RP_ETOOBIG;
        }
        if (ratio_exceeded(st.size, st.comp_size, lim)) {
            set_err(x->err, x->errlen, st.name, "compression ratio over %u",
                    (unsigned)lim->max_ratio);
            return RP_ETOOBIG;
        }
        if (st.size > lim->max_total - *declared) {
            set_err(x->err, x->errlen, st.name, "archive expands past the %llu-byte limit",
                    (unsigned long long)lim->max_total);
            return RP_ETOOBIG;
        }
        *declared += st.size;
    }
    e = &x->ents[x->nents++];
    e->name = st.name;
    e->len = ni.len;
    e->index = i;
    e->size = st.size;
    e->comp_size = st.comp_size;
    e->depth = ni.depth;
    e->is_dir = (unsigned char)ni.is_dir;
    e->exec = (mode & S_IXUSR) != 0;
    if (ni.depth > x->max_depth)
        x->max_depth = ni.depth;
    return 0;
}

/* Pass one: every entry checked, sorted, collisions refused. Writes nothing. */
static int scan(xctx *x, const char *const *excludes, uint64_t archive_size)
{
    zip_int64_t n = zip_get_num_entries(x->za, 0);
    uint64_t declared = 0, comp_sum = 0;
    int rc;

    if (n < 0)
        return RP_EPARSE;
    if ((uint64_t)n > x->lim->max_entries) {
        set_err(x->err, x->errlen, NULL, "archive has %llu entries, over the limit of %u",
                (unsigned long long)n, (unsigned)x->lim->max_entries);
        return RP_ETOOBIG;
    }
    x->ents = rp_calloc((size_t)n, sizeof(entry));
    if (x->ents == NULL)
        return RP_ENOMEM;
    for (zip_uint64_t i = 0; i < (zip_uint64_t)n; i++) {
        rc = scan_entry(x, i, excludes, &declared, &comp_sum, archive_size);
        if (rc != 0)
            return rc;
    }
    qsort(x->ents, x->nents, sizeof(entry), cmp_entry);
    for (size_t i = 1; i < x->nents; i++) {
        const entry *p = &x->ents[i - 1], *c = &x->ents[i];
        if (p->len == c->len && memcmp(p->name, c->name, p->len) == 0) {
            set_err(x->err, x->errlen, c->name, "%s",
                    p->is_dir == c->is_dir ? "duplicate name" : "both a file and a directory");
            return RP_EINVAL;
        }
        if (!p->is_dir && c->len > p->len && c->name[p->len] == '/' &&
            memcmp(p->name, c->name, p->len) == 0) {
            set_err(x->err, x->errlen, c->name, "a parent directory is also a file entry");
            return RP_EINVAL;
        }
    }
    x->total_hint = declared;
    return 0;
}

/* mkdirat (or reuse one we made) and open it without following a symlink. */
static int make_dir(xctx *x, int dfd, const char *comp, const entry *e, int *out)
{
    int created = 0, fd;

    if (mkdirat(dfd, comp, 0755) == 0)
        created = 1;
    else if (errno != EEXIST) {
        set_err(x->err, x->errlen, e->name, "cannot create directory: %s", sys_reason(errno));
        return RP_EIO;
    }
    fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP) {
            set_err(x->err, x->errlen, e->name, "a file is in the way of a directory");
            return RP_EINVAL;
        }
        set_err(x->err, x->errlen, e->name, "cannot open directory: %s", sys_reason(errno));
        return RP_EIO;
    }
    if (created) {
        if (fchmod(fd, 0755) != 0) { /* the umask must not decide what the site serves */
            close(fd);
            set_err(x->err, x->errlen, e->name, "cannot set directory mode");
            return RP_EIO;
        }
        x->res.dirs++;
    }
    *out = fd;
    return 0;
}

/* Leading whole components path[0..a) and path[0..b) share. */
static unsigned common_components(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned k = 0;
    size_t i = 0;

    while (i < an && i < bn) {
        size_t ea = i, eb = i;
        while (ea < an && a[ea] != '/')
            ea++;
        while (eb < bn && b[eb] != '/')
            eb++;
        if (ea != eb || memcmp(a + i, b + i, ea - i) != 0)
            break;
        k++;
        i = ea + 1;
    }
    return k;
}

/* Makes the fd stack stand for directory path[0..plen), creating what is missing. */
static int enter_dirs(xctx *x, const entry *e, const char *path, size_t plen)
{
    unsigned k = common_components(x->stack_name, x->stack_len, path, plen);
    size_t i = 0;
    int rc;

    while (x->nfds > k + 1)
        close(x->fds[--x->nfds]);
    for (unsigned c = 0; c < k; c++) {
        while (i < plen && path[i] != '/')
            i++;
        i++;
    }
    while (i < plen) {
        char comp[RP_UNZIP_NAME_MAX + 1];
        size_t s = i;
        int fd;
        while (i < plen && path[i] != '/')
            i++;
        if (i - s > RP_UNZIP_NAME_MAX || x->nfds > x->max_depth)
            return RP_EINVAL; /* excluded by the scan */
        memcpy(comp, path + s, i - s);
        comp[i - s] = '\0';
        rc = make_dir(x, x->fds[x->nfds - 1], comp, e, &fd);
        if (rc != 0)
            return rc;
        x->fds[x->nfds++] = fd;
        i++;
    }
    x->stack_name = path;
    x->stack_len = plen;
    return 0;
}

static void report(xctx *x, int force)
{
    if (x->progress != NULL && (force || x->total - x->reported >= PROGRESS_STEP)) {
        x->reported = x->total;
        x->progress(x->total, x->total_hint, x->arg);
    }
}

/* Streams one entry into a new file comp under dfd, counting every byte. */
static int write_file(xctx *x, const entry *e, int dfd, const char *comp)
{
    const rp_unzip_limits *lim = x->lim;
    zip_file_t *zf = NULL;
    uint64_t written = 0;
    int fd, rc = 0;

    fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST) {
            set_err(x->err, x->errlen, e->name, "duplicate name");
            return RP_EINVAL;
        }
        set_err(x->err, x->errlen, e->name, "cannot create file: %s", sys_reason(errno));
        return RP_EIO;
    }
    if (fchmod(fd, e->exec ? 0755 : 0644) != 0) {
        set_err(x->err, x->errlen, e->name, "cannot set file mode");
        rc = RP_EIO;
        goto out;
    }
    zf = zip_fopen_index(x->za, e->index, 0);
    if (zf == NULL) {
        int ze = zip_error_code_zip(zip_get_error(x->za));
        set_err(x->err, x->errlen, e->name, "%s", zip_reason(ze));
        rc = map_zip_error(ze);
        goto out;
    }
    for (;;) {
        zip_int64_t n = zip_fread(zf, x->buf, CHUNK);
        uint64_t un;
        if (n < 0) {
            int ze = zip_error_code_zip(zip_file_get_error(zf));
            set_err(x->err, x->errlen, e->name, "%s",
                    ze == ZIP_ER_INCONS ? "data does not match its declared size" : zip_reason(ze));
            rc = map_zip_error(ze);
            goto out;
        }
        if (n == 0)
            break;
        un = (uint64_t)n;
        if (un > lim->max_file - written) {
            set_err(x->err, x->errlen, e->name, "expands past the %llu-byte file limit",
                    (unsigned long long)lim->max_file);
            rc = RP_ETOOBIG;
            goto out;
        }
        if (un > lim->max_total - x->total) {
            set_err(x->err, x->errlen, e->name, "archive expands past the %llu-byte limit",
                    (unsigned long long)lim->max_total);
            rc = RP_ETOOBIG;
            goto out;
        }
        if (un > e->size - written) {
            set_err(x->err, x->errlen, e->name, "more data than its declared size");
            rc = RP_EPARSE;
            goto out;
        }
        written += un;
        if (ratio_exceeded(written, e->comp_size, lim)) {
            set_err(x->err, x->errlen, e->name, "compression ratio over %u",
                    (unsigned)lim->max_ratio);
            rc = RP_ETOOBIG;
            goto out;
        }
        if (rp_file_write_all(fd, x->buf, (size_t)n) != 0) {
            set_err(x->err, x->errlen, e->name, "cannot write: %s", sys_reason(errno));
            rc = RP_EIO;
            goto out;
        }
        x->total += un;
        report(x, 0);
    }
    if (written != e->size) {
        set_err(x->err, x->errlen, e->name, "less data than its declared size");
        rc = RP_EPARSE;
        goto out;
    }
    x->res.files++;
out:
    if (zf != NULL) {
        int ze = zip_fclose(zf);
        if (ze != 0 && rc == 0) {
            set_err(x->err, x->errlen, e->name, "%s", zip_reason(ze));
            rc = map_zip_error(ze);
        }
    }
    if (close(fd) != 0 && rc == 0) {
        set_err(x->err, x->errlen, e->name, "cannot write: %s", sys_reason(errno));
        rc = RP_EIO;
    }
    return rc;
}

static int extract_entry(xctx *x, const entry *e)
{
    const char *slash;
    size_t dirlen, clen;
    char comp[RP_UNZIP_NAME_MAX + 1];
    int rc;

    if (e->is_dir)
        return enter_dirs(x, e, e->name, e->len);
    slash = memrchr(e->name, '/', e->len);
    dirlen = slash != NULL ? (size_t)(slash - e->name) : 0;
    rc = enter_dirs(x, e, e->name, dirlen);
    if (rc != 0)
        return rc;
    clen = slash != NULL ? e->len - dirlen - 1 : e->len;
    if (clen > RP_UNZIP_NAME_MAX)
        return RP_EINVAL; /* excluded by the scan */
    memcpy(comp, e->name + e->len - clen, clen);
    comp[clen] = '\0';
    return write_file(x, e, x->fds[x->nfds - 1], comp);
}

/*
 * Under ZIP_CHECKCONS libzip refuses an archive with two identical names before we see any
 * entry. Opens it again without the check only to name one of them in the message.
 */
static void name_duplicate(int zip_fd, char *err, size_t errlen)
{
    zip_t *za;
    zip_int64_t n;
    int fd = fcntl(zip_fd, F_DUPFD_CLOEXEC, 0), ze = 0;

    if (fd >= 0) {
        za = zip_fdopen(fd, ZIP_RDONLY, &ze);
        if (za == NULL) {
            close(fd);
        } else {
            n = zip_get_num_entries(za, 0);
            for (zip_int64_t i = 0; i < n; i++) {
                const char *nm = zip_get_name(za, (zip_uint64_t)i, 0);
                if (nm != NULL && zip_name_locate(za, nm, 0) != i) {
                    set_err(err, errlen, nm, "duplicate name");
                    break;
                }
            }
            zip_discard(za);
        }
    }
    set_err(err, errlen, NULL, "duplicate names in the archive");
}

int rp_unzip_extract(int zip_fd, int parent_fd, const char *name, const rp_unzip_limits *lim,
                     const char *const *excludes, rp_unzip_progress_fn progress, void *arg,
                     rp_unzip_result *res, char *err, size_t errlen)
{
    rp_unzip_limits defaults;
    xctx x;
    struct stat st;
    int zfd, ze = 0, rc = 0, made = 0;

    memset(&x, 0, sizeof(x));
    x.err = err;
    x.errlen = errlen;
    x.progress = progress;
    x.arg = arg;
    x.stack_name = "";
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (lim == NULL) {
        rp_unzip_limits_default(&defaults);
        lim = &defaults;
    }
    x.lim = lim;
    if (!component_ok(name)) {
        set_err(err, errlen, NULL, "invalid target directory name");
        return RP_EINVAL;
    }
    if (fstat(zip_fd, &st) != 0) {
        set_err(err, errlen, NULL, "cannot read the upload");
        return RP_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, NULL, "upload is not a regular file");
        return RP_EINVAL;
    }
    if (st.st_size < 22) { /* smaller than an end-of-central-directory record */
        set_err(err, errlen, NULL, "not a zip archive");
        return RP_EPARSE;
    }
    zfd = fcntl(zip_fd, F_DUPFD_CLOEXEC, 0); /* zip_fdopen closes the fd it is given */
    if (zfd < 0) {
        set_err(err, errlen, NULL, "cannot read the upload");
        return RP_EIO;
    }
    x.za = zip_fdopen(zfd, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (x.za == NULL) {
        close(zfd);
        if (ze == ZIP_ER_EXISTS) {
            name_duplicate(zip_fd, err, errlen);
            return RP_EINVAL;
        }
        set_err(err, errlen, NULL, "%s", zip_reason(ze));
        return map_zip_error(ze);
    }
    rc = scan(&x, excludes, (uint64_t)st.st_size);
    if (rc != 0)
        goto out;
    x.buf = rp_malloc(CHUNK);
    x.fds = rp_calloc((size_t)x.max_depth + 1, sizeof(int));
    if (x.buf == NULL || x.fds == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (mkdirat(parent_fd, name, 0755) != 0) {
        if (errno == EEXIST) {
            set_err(err, errlen, NULL, "target directory exists");
            rc = RP_EEXIST;
        } else {
            set_err(err, errlen, NULL, "cannot create the target directory: %s", sys_reason(errno));
            rc = errno == ENOTDIR || errno == EBADF ? RP_EINVAL : RP_EIO;
        }
        goto out;
    }
    made = 1;
    x.fds[0] = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (x.fds[0] < 0) {
        set_err(err, errlen, NULL, "cannot open the target directory");
        rc = RP_EIO;
        goto out;
    }
    x.nfds = 1;
    if (fchmod(x.fds[0], 0755) != 0) {
        set_err(err, errlen, NULL, "cannot set the target directory mode");
        rc = RP_EIO;
        goto out;
    }
    for (size_t i = 0; i < x.nents; i++) {
        rc = extract_entry(&x, &x.ents[i]);
        if (rc != 0)
            goto out;
    }
    report(&x, 1);
out:
    while (x.nfds > 0)
        close(x.fds[--x.nfds]);
    if (x.za != NULL)
        zip_discard(x.za);
    rp_free(x.fds);
    rp_free(x.buf);
    rp_free(x.ents);
    if (rc != 0 && made)
        rp_unzip_rmtree(parent_fd, name);
    if (rc == 0) {
        x.res.bytes = x.total;
        if (res != NULL)
            *res = x.res;
    } else {
        set_err(err, errlen, NULL, "%s", rp_strerror(rc));
    }
    return rc;
}

/* ---- removal ----------------------------------------------------------------------------- */

static int rmtree_at(int pfd, const char *name, unsigned depth)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    int fd, rc = RP_EIO;

    fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTDIR && errno != ELOOP)
            return RP_EIO;
        /* not a directory (a symlink included): the name goes, never its target */
        return unlinkat(pfd, name, 0) == 0 || errno == ENOENT ? 0 : RP_EIO;
    }
    if (depth >= RP_UNZIP_RMTREE_DEPTH) {
        close(fd);
        return RP_ETOOBIG;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return RP_EIO;
    }
    /* A read-only directory keeps its entries; we own it, so make it ours to empty. */
    if ((st.st_mode & S_IRWXU) != S_IRWXU && fchmod(fd, (st.st_mode & 07777) | S_IRWXU) != 0) {
        close(fd);
        return RP_EIO;
    }
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return errno == ENOMEM ? RP_ENOMEM : RP_EIO;
    }
    /* A few passes, in case entries were added while we were removing. */
    for (int pass = 0; pass < 3; pass++) {
        for (;;) {
            errno = 0;
            de = readdir(d);
            if (de == NULL) {
                if (errno != 0)
                    goto out;
                break;
            }
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
                if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT)
                    continue;
                if (errno != EISDIR)
                    goto out;
            }
            rc = rmtree_at(dirfd(d), de->d_name, depth + 1);
            if (rc != 0)
                goto out;
            rc = RP_EIO;
        }
        if (unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            rc = 0;
            goto out;
        }
        if (errno != ENOTEMPTY && errno != EEXIST)
            goto out;
        rewinddir(d);
    }
out:
    closedir(d);
    return rc;
}

int rp_unzip_rmtree(int parent_fd, const char *name)
{
    if (!component_ok(name))
        return RP_EINVAL;
    return rmtree_at(parent_fd, name, 0);
}

/* ---- zipping a directory ----------------------------------------------------------------- */

typedef struct zdir {
    zip_t *za;
    const rp_unzip_limits *lim;
    const char *const *excludes;
    int rootfd;
    struct stat out_st; /* the archive being written, never zipped into itself */
    char *path;         /* name of the current entry, relative to the root */
    size_t path_cap;
    uint64_t declared;   /* sizes seen by the walk */
    uint64_t read_total; /* bytes the sources actually read */
    uint32_t entries;
    int src_rc; /* first RP_E* a data source hit while libzip was writing */
    rp_unzip_result res;
    char *err;
    size_t errlen;
} zdir;

/* One file, read only when libzip writes the archive (so only one is open at a time). */
typedef struct zsrc {
    zdir *z;
    char *rel;
    uint64_t size;
    time_t mtime;
    dev_t dev;
    ino_t ino;
    int fd;
    uint64_t done;
    zip_error_t error;
} zsrc;

/* Opens rel below rootfd one component at a time, never through a symlink. -1 with errno. */
static int open_rel(int rootfd, const char *rel)
{
    char comp[RP_UNZIP_NAME_MAX + 1];
    const char *p = rel;
    int dir = rootfd, fd, e;

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (n > RP_UNZIP_NAME_MAX) {
            errno = ENAMETOOLONG;
            fd = -1;
            break;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (slash == NULL) {
            fd = openat(dir, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            break;
        }
        fd = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            break;
        if (dir != rootfd)
            close(dir);
        dir = fd;
        p = slash + 1;
    }
    e = errno;
    if (dir != rootfd)
        close(dir);
    errno = e;
    return fd;
}

static void src_fail(zsrc *s, int rc, int ze, int sys, const char *why)
{
    if (s->z->src_rc == 0) {
        s->z->src_rc = rc;
        set_err(s->z->err, s->z->errlen, s->rel, "%s", why);
    }
    zip_error_set(&s->error, ze, sys);
}

static zip_int64_t file_source(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    zsrc *s = ud;
    const rp_unzip_limits *lim = s->z->lim;

    switch (cmd) {
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                              -1);
    case ZIP_SOURCE_STAT: {
        zip_stat_t *st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &s->error);
        if (st == NULL)
            return -1;
        zip_stat_init(st);
        st->valid = ZIP_STAT_SIZE | ZIP_STAT_MTIME;
        st->size = s->size;
        st->mtime = s->mtime;
        return sizeof(*st);
    }
    case ZIP_SOURCE_OPEN: {
        struct stat st;
        if (s->fd >= 0)
            close(s->fd);
        s->done = 0;
        s->fd = open_rel(s->z->rootfd, s->rel);
        if (s->fd < 0) {
            src_fail(s, RP_EIO, ZIP_ER_OPEN, errno, "cannot open the file");
            return -1;
        }
        if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != s->dev ||
            st.st_ino != s->ino) {
            src_fail(s, RP_EIO, ZIP_ER_OPEN, 0, "file changed while zipping");
            return -1;
        }
        return 0;
    }
    case ZIP_SOURCE_READ: {
        ssize_t n;
        if (len > CHUNK)
            len = CHUNK;
        do
            n = read(s->fd, data, (size_t)len);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            src_fail(s, RP_EIO, ZIP_ER_READ, errno, "read error");
            return -1;
        }
        if ((uint64_t)n > lim->max_file - s->done) {
            src_fail(s, RP_ETOOBIG, ZIP_ER_CANCELLED, 0, "file grew past the file limit");
            return -1;
        }
        if ((uint64_t)n > lim->max_total - s->z->read_total) {
            src_fail(s, RP_ETOOBIG, ZIP_ER_CANCELLED, 0, "files grew past the total limit");
            return -1;
        }
        s->done += (uint64_t)n;
        s->z->read_total += (uint64_t)n;
        return n;
    }
    case ZIP_SOURCE_CLOSE:
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        return 0;
    case ZIP_SOURCE_ERROR: return zip_error_to_data(&s->error, data, len);
    case ZIP_SOURCE_FREE:
        if (s->fd >= 0)
            close(s->fd);
        zip_error_fini(&s->error);
        rp_free(s->rel);
        rp_free(s);
        return 0;
    default: zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0); return -1;
    }
}

/* The archive itself: libzip writes it through this source into the fd we created. */
typedef struct zout {
    int fd;
    uint64_t off; /* write position */
    uint64_t end; /* bytes written so far */
    zip_error_t error;
} zout;

static zip_int64_t out_source(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
    zout *o = ud;

    switch (cmd) {
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(
            ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL,
            ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, ZIP_SOURCE_BEGIN_WRITE,
            ZIP_SOURCE_WRITE, ZIP_SOURCE_COMMIT_WRITE, ZIP_SOURCE_ROLLBACK_WRITE,
            ZIP_SOURCE_SEEK_WRITE, ZIP_SOURCE_TELL_WRITE, ZIP_SOURCE_REMOVE, -1);
    case ZIP_SOURCE_STAT:
        /* libzip reads "read error, ENOENT" as "no archive yet": it starts an empty one */
        zip_error_set(&o->error, ZIP_ER_READ, ENOENT);
        return -1;
    case ZIP_SOURCE_BEGIN_WRITE:
    case ZIP_SOURCE_ROLLBACK_WRITE:
        if (ftruncate(o->fd, 0) != 0) {
            zip_error_set(&o->error, ZIP_ER_WRITE, errno);
            return -1;
        }
        o->off = o->end = 0;
        return 0;
    case ZIP_SOURCE_WRITE: {
        const char *p = data;
        zip_uint64_t left = len;
        while (left > 0) {
            ssize_t w = pwrite(o->fd, p, left > CHUNK ? CHUNK : (size_t)left, (off_t)o->off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                zip_error_set(&o->error, ZIP_ER_WRITE, w < 0 ? errno : EIO);
                return -1;
            }
            p += w;
            left -= (zip_uint64_t)w;
            o->off += (uint64_t)w;
        }
        if (o->off > o->end)
            o->end = o->off;
        return (zip_int64_t)len;
    }
    case ZIP_SOURCE_SEEK_WRITE: {
        zip_int64_t pos = zip_source_seek_compute_offset(o->off, o->end, data, len, &o->error);
        if (pos < 0)
            return -1;
        o->off = (uint64_t)pos;
        return 0;
    }
    case ZIP_SOURCE_TELL_WRITE: return (zip_int64_t)o->off;
    case ZIP_SOURCE_COMMIT_WRITE:
    case ZIP_SOURCE_REMOVE:
    case ZIP_SOURCE_FREE: return 0;
    case ZIP_SOURCE_ERROR: return zip_error_to_data(&o->error, data, len);
    default: /* reading back: there is nothing to read in a new archive */
        zip_error_set(&o->error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(zdir *z, int dfd, size_t plen);

static int zip_failed(zdir *z, const char *what)
{
    int ze = zip_error_code_zip(zip_get_error(z->za));

    set_err(z->err, z->errlen, what, "cannot add to the archive (%s)", zip_reason(ze));
    return ze == ZIP_ER_MEMORY ? RP_ENOMEM : RP_EIO;
}

static int add_file(zdir *z, const struct stat *st)
{
    const rp_unzip_limits *lim = z->lim;
    zip_source_t *src;
    zip_error_t zerr;
    zip_int64_t idx;
    zsrc *s;
    unsigned perm = (st->st_mode & S_IXUSR) ? 0755 : 0644;

    if ((uint64_t)st->st_size > lim->max_file) {
        set_err(z->err, z->errlen, z->path, "%llu bytes, over the %llu-byte file limit",
                (unsigned long long)st->st_size, (unsigned long long)lim->max_file);
        return RP_ETOOBIG;
    }
    if ((uint64_t)st->st_size > lim->max_total - z->declared) {
        set_err(z->err, z->errlen, z->path, "files add up past the %llu-byte limit",
                (unsigned long long)lim->max_total);
        return RP_ETOOBIG;
    }
    z->declared += (uint64_t)st->st_size;
    s = rp_calloc(1, sizeof(*s));
    if (s == NULL)
        return RP_ENOMEM;
    s->rel = rp_strdup(z->path);
    if (s->rel == NULL) {
        rp_free(s);
        return RP_ENOMEM;
    }
    s->z = z;
    s->size = (uint64_t)st->st_size;
    s->mtime = st->st_mtime;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->fd = -1;
    zip_error_init(&s->error);
    zip_error_init(&zerr);
    src = zip_source_function_create(file_source, s, &zerr);
    zip_error_fini(&zerr);
    if (src == NULL) {
        zip_error_fini(&s->error);
        rp_free(s->rel);
        rp_free(s);
        return RP_ENOMEM;
    }
    idx = zip_file_add(z->za, z->path, src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        zip_source_free(src); /* frees s */
        return zip_failed(z, z->path);
    }
    if (zip_set_file_compression(z->za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0) != 0 ||
        zip_file_set_external_attributes(z->za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                         (zip_uint32_t)(S_IFREG | perm) << 16) != 0)
        return zip_failed(z, z->path);
    z->res.files++;
    return 0;
}

static int add_dir(zdir *z, int dfd, const char *nm, size_t len)
{
    zip_int64_t idx;
    int sub;

    idx = zip_dir_add(z->za, z->path, ZIP_FL_ENC_UTF_8);
    if (idx < 0)
        return zip_failed(z, z->path);
    if (zip_file_set_external_attributes(z->za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                         ((zip_uint32_t)(S_IFDIR | 0755) << 16) | DOS_DIR_ATTR) !=
        0)
        return zip_failed(z, z->path);
    z->res.dirs++;
    sub = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
        set_err(z->err, z->errlen, z->path, "cannot open the directory");
        return RP_EIO;
    }
    return walk(z, sub, len);
}

/* One name in directory dfd whose path is z->path[0..plen). */
static int visit(zdir *z, int dfd, const char *nm, size_t plen)
{
    size_t nl = strlen(nm), len = plen + (plen > 0) + nl;
    struct stat st;
    name_info ni;
    const char *why = NULL;
    int rc;

    if (component_excluded(nm, nl, z->excludes)) {
        z->res.skipped++;
        return 0;
    }
    if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) /* gone since readdir */
            return 0;
        set_err(z->err, z->errlen, nm, "cannot stat");
        return RP_EIO;
    }
    if ((!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) ||
        (st.st_dev == z->out_st.st_dev && st.st_ino == z->out_st.st_ino)) {
        z->res.skipped++;
        return 0;
    }
    if (len >= z->path_cap) {
        set_err(z->err, z->errlen, nm, "path too long");
        return RP_ETOOBIG;
    }
    if (plen > 0)
        z->path[plen] = '/';
    memcpy(z->path + plen + (plen > 0), nm, nl + 1);
    rc = check_name(z->path, z->lim, &ni, &why);
    if (rc != 0) {
        set_err(z->err, z->errlen, z->path, "%s", why);
        return rc;
    }
    if (z->entries >= z->lim->max_entries) {
        set_err(z->err, z->errlen, z->path, "more than %u entries", (unsigned)z->lim->max_entries);
        return RP_ETOOBIG;
    }
    z->entries++;
    if (S_ISDIR(st.st_mode))
        return add_dir(z, dfd, nm, len);
    return add_file(z, &st);
}

/* Adds the directory dfd (owned: closed here) whose path is z->path[0..plen), sorted. */
static int walk(zdir *z, int dfd, size_t plen)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    char **names = NULL, **grown;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (d == NULL) {
        close(dfd);
        return RP_ENOMEM;
    }
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                set_err(z->err, z->errlen, plen > 0 ? z->path : NULL, "cannot read directory");
                rc = RP_EIO;
                goto out;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n >= z->lim->max_entries) {
            set_err(z->err, z->errlen, plen > 0 ? z->path : NULL,
                    "directory has more than %u entries", (unsigned)z->lim->max_entries);
            rc = RP_ETOOBIG;
            goto out;
        }
        if (n == cap) {
            cap = cap > 0 ? cap * 2 : 16;
            grown = rp_realloc(names, cap * sizeof(*names));
            if (grown == NULL) {
                rc = RP_ENOMEM;
                goto out;
            }
            names = grown;
        }
        names[n] = rp_strdup(de->d_name);
        if (names[n] == NULL) {
            rc = RP_ENOMEM;
            goto out;
        }
        n++;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = visit(z, dirfd(d), names[i], plen);
out:
    for (size_t i = 0; i < n; i++)
        rp_free(names[i]);
    rp_free(names);
    closedir(d);
    return rc;
}

/* The 22-byte end-of-central-directory record of an archive with no entries. */
static const unsigned char empty_zip[22] = {'P', 'K', 5, 6};

int rp_zip_dir(const char *dir, const char *out_path, const char *const *excludes,
               const rp_unzip_limits *lim, rp_unzip_result *res, char *err, size_t errlen)
{
    rp_unzip_limits defaults;
    zdir z;
    zout o;
    zip_source_t *src = NULL;
    zip_error_t zerr;
    int outfd = -1, rc = 0, sub;
    size_t max_path;

    memset(&z, 0, sizeof(z));
    memset(&o, 0, sizeof(o));
    zip_error_init(&o.error);
    z.rootfd = -1;
    z.err = err;
    z.errlen = errlen;
    z.excludes = excludes;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (lim == NULL) {
        rp_unzip_limits_default(&defaults);
        lim = &defaults;
    }
    z.lim = lim;
    max_path = lim->max_path < ZIP_NAME_CAP ? lim->max_path : ZIP_NAME_CAP;
    z.path_cap = max_path + RP_UNZIP_NAME_MAX + 2;
    z.path = rp_malloc(z.path_cap);
    if (z.path == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    z.path[0] = '\0';
    z.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (z.rootfd < 0) {
        rc = errno == ENOENT ? RP_ENOENT : errno == ENOTDIR ? RP_EINVAL : RP_EIO;
        set_err(err, errlen, NULL, "cannot open the directory to zip");
        goto out;
    }
    outfd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (outfd < 0) {
        rc = errno == EEXIST ? RP_EEXIST : RP_EIO;
        set_err(err, errlen, NULL, "cannot create the archive file");
        goto out;
    }
    if (fchmod(outfd, 0600) != 0 || fstat(outfd, &z.out_st) != 0) {
        rc = RP_EIO;
        goto out;
    }
    o.fd = outfd;
    zip_error_init(&zerr);
    src = zip_source_function_create(out_source, &o, &zerr);
    if (src != NULL)
        z.za = zip_open_from_source(src, ZIP_CREATE | ZIP_EXCL, &zerr);
    if (z.za == NULL) {
        rc = map_zip_error(zip_error_code_zip(&zerr));
        zip_error_fini(&zerr);
        if (src != NULL)
            zip_source_free(src);
        goto out;
    }
    zip_error_fini(&zerr);
    sub = fcntl(z.rootfd, F_DUPFD_CLOEXEC, 0);
    if (sub < 0) {
        rc = RP_EIO;
        goto out;
    }
    rc = walk(&z, sub, 0);
    if (rc != 0)
        goto out;
    if (z.entries == 0) {
        /* libzip writes nothing for an empty archive; an empty file is not a zip */
        zip_discard(z.za);
        z.za = NULL;
        rc = rp_file_write_all(outfd, empty_zip, sizeof(empty_zip));
    } else if (zip_close(z.za) != 0) {
        rc = z.src_rc != 0 ? z.src_rc : map_zip_error(zip_error_code_zip(zip_get_error(z.za)));
        set_err(err, errlen, NULL, "cannot write the archive (%s)",
                zip_reason(zip_error_code_zip(zip_get_error(z.za))));
    } else {
        z.za = NULL;
    }
out:
    if (z.za != NULL)
        zip_discard(z.za); /* frees the sources, the file sources' state with them */
    zip_error_fini(&o.error);
    if (outfd >= 0) {
        if (close(outfd) != 0 && rc == 0)
            rc = RP_EIO;
        if (rc != 0)
            unlink(out_path);
    }
    if (z.rootfd >= 0)
        close(z.rootfd);
    rp_free(z.path);
    if (rc == 0) {
        z.res.bytes = z.read_total;
        if (res != NULL)
            *res = z.res;
    } else {
        set_err(err, errlen, NULL, "%s", rp_strerror(rc));
    }
    return rc;
}
