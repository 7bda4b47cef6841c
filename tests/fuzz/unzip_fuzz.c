/*
 * unzip_fuzz.c - libFuzzer driver for src/sites/unzip.c: rp_unzip_extract on hostile archives,
 * rp_unzip_rmtree on what it wrote, and rp_zip_dir / rp_unzip_extract as a round trip.
 *
 * The input is one uploaded archive (corpus: tests/fuzz/corpus/unzip/, small zips: nested,
 * stored and deflated, a symlink entry, a ../ entry, an empty and a zip64 archive). It is
 * written to a memfd and extracted into base/a/b/p/t, where base is a per-process scratch
 * directory, with small limits (4 MiB total, 1 MiB per file, 256 entries, depth 16) and one
 * extra exclude ("skip"). The three directories above the target catch an entry that climbs
 * out of it by up to three levels.
 *
 * Invariants checked with abort():
 *   - the code is 0 or one of the documented RP_E* codes; err is one line of printable ASCII,
 *     non-empty on failure and empty on success;
 *   - on failure res is zero, t does not exist and nothing else appeared anywhere under base;
 *   - on success nothing appeared under base except t; walking t without following links
 *     finds only regular files (mode exactly 0644 or 0755) and directories (0755), no name
 *     that is excluded, no path deeper than the limit, and counts and bytes equal to res, with
 *     bytes within max_total and every file within max_file;
 *   - rp_zip_dir of t succeeds (unless the implicit directories push the entry count over the
 *     limit), skips nothing, and extracting its output gives the same tree (files, dirs, bytes
 *     and an order-independent hash of every path and content);
 *   - rp_unzip_rmtree removes t completely.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "sites/unzip.h"

#define IN_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static char base[256];   /* per-process scratch directory */
static char parent[300]; /* base/a/b/p: the target's parent */
static char outzip[300]; /* base/out.zip for the round trip */

static const char *const excludes[] = {"skip", NULL};

static rp_unzip_limits limits(void)
{
    rp_unzip_limits l;

    rp_unzip_limits_default(&l);
    l.max_total = 4u << 20;
    l.max_file = 1u << 20;
    l.max_entries = 256;
    l.max_path = 256;
    l.max_depth = 16;
    return l;
}

/* Removes the scratch directories when the fuzzer exits normally (kept after an abort). */
static void cleanup(void)
{
    char p[320];

    unlink(outzip);
    rmdir(parent);
    snprintf(p, sizeof(p), "%s/a/b", base);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/a", base);
    rmdir(p);
    rmdir(base);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char p[300];

    if (base[0] != '\0')
        return;
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(base, sizeof(base), "%s/unzip_fuzz.XXXXXX", tmp) >= sizeof(base) ||
        mkdtemp(base) == NULL)
        abort();
    snprintf(p, sizeof(p), "%s/a", base);
    if (mkdir(p, 0755) != 0)
        abort();
    snprintf(p, sizeof(p), "%s/a/b", base);
    if (mkdir(p, 0755) != 0)
        abort();
    snprintf(parent, sizeof(parent), "%s/a/b/p", base);
    if (mkdir(parent, 0755) != 0)
        abort();
    snprintf(outzip, sizeof(outzip), "%s/out.zip", base);
    atexit(cleanup);
}

/* The only names in dir, in any order, are want[0..n). */
static void expect_only(const char *dir, const char *const *want, size_t n)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    size_t seen = 0;

    if (dp == NULL)
        abort();
    while ((de = readdir(dp)) != NULL) {
        size_t i;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        for (i = 0; i < n; i++)
            if (strcmp(de->d_name, want[i]) == 0)
                break;
        if (i == n)
            abort();
        seen++;
    }
    closedir(dp);
    if (seen != n)
        abort();
}

/* Nothing under base but the fixed directories and, when with_target, p/t. */
static void check_base(int with_target)
{
    static const char *const a[] = {"a"}, *const b[] = {"b"}, *const p[] = {"p"};
    static const char *const t[] = {"t"};
    char x[320];

    expect_only(base, a, 1);
    snprintf(x, sizeof(x), "%s/a", base);
    expect_only(x, b, 1);
    snprintf(x, sizeof(x), "%s/a/b", base);
    expect_only(x, p, 1);
    expect_only(parent, t, with_target ? 1 : 0);
}

/* ---- walking the result ------------------------------------------------------------------ */

typedef struct tree_sum {
    uint32_t files, dirs;
    uint64_t bytes;
    uint64_t hash; /* sum of per-entry hashes: independent of the walk order */
} tree_sum;

static tree_sum walk_sum;
static size_t walk_root_len;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211u;
    }
    return h;
}

static int excluded(const char *comp, size_t n)
{
    static const char *const builtin[] = {".git", ".svn", ".hg", ".env"};

    for (size_t i = 0; i < 4; i++) {
        if (strlen(builtin[i]) != n)
            continue;
        if (strncasecmp(comp, builtin[i], n) == 0)
            return 1;
    }
    return n == 4 && memcmp(comp, "skip", 4) == 0;
}

static int walk_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    const rp_unzip_limits l = limits();
    const char *rel = path + walk_root_len;
    uint64_t h = 14695981039346656037u;

    if (ftw->level == 0)
        return 0; /* t itself */
    if ((unsigned)ftw->level > l.max_depth || strlen(rel) > l.max_path + 1)
        abort();
    if (excluded(path + ftw->base, strlen(path + ftw->base)))
        abort();
    h = fnv(h, rel, strlen(rel) + 1);
    if (flag == FTW_D) {
        if (!S_ISDIR(st->st_mode) || (st->st_mode & 07777) != 0755)
            abort();
        walk_sum.dirs++;
        h = fnv(h, "d", 1);
    } else if (flag == FTW_F && S_ISREG(st->st_mode)) {
        unsigned char buf[8192];
        int fd;
        ssize_t r;
        if ((st->st_mode & 07777) != 0644 && (st->st_mode & 07777) != 0755)
            abort();
        if ((uint64_t)st->st_size > l.max_file)
            abort();
        walk_sum.files++;
        walk_sum.bytes += (uint64_t)st->st_size;
        h = fnv(h, (st->st_mode & 0100) ? "x" : "f", 1);
        fd = open(path, O_RDONLY | O_NOFOLLOW);
        if (fd < 0)
            abort();
        while ((r = read(fd, buf, sizeof(buf))) > 0)
            h = fnv(h, buf, (size_t)r);
        close(fd);
        if (r < 0)
            abort();
    } else {
        abort(); /* a symlink, a special file, or something unreadable */
    }
    walk_sum.hash += h;
    return 0;
}

static tree_sum sum_tree(const char *dir)
{
    memset(&walk_sum, 0, sizeof(walk_sum));
    walk_root_len = strlen(dir) + 1;
    if (nftw(dir, walk_entry, 32, FTW_PHYS) != 0)
        abort();
    return walk_sum;
}

/* ---- checks ------------------------------------------------------------------------------ */

static int code_ok(int rc)
{
    return rc == 0 || rc == RP_EPARSE || rc == RP_EINVAL || rc == RP_ETOOBIG || rc == RP_EIO ||
           rc == RP_ENOMEM;
}

static void check_err(const char *err, int rc)
{
    size_t n = strlen(err);

    if ((rc == 0) != (n == 0))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] >= 0x7f)
            abort();
}

static void remove_target(int pfd)
{
    if (rp_unzip_rmtree(pfd, "t") != 0)
        abort();
    check_base(0);
}

/* Zips t, extracts the archive again and compares; leaves only t behind. */
static void round_trip(int pfd, const rp_unzip_result *first, const tree_sum *sum)
{
    const rp_unzip_limits l = limits();
    rp_unzip_result zr, xr;
    char err[256], t[320];
    tree_sum again;
    int rc, zfd;

    snprintf(t, sizeof(t), "%s/t", parent);
    err[0] = 'x';
    rc = rp_zip_dir(t, outzip, excludes, &l, &zr, err, sizeof(err));
    check_err(err, rc);
    if (rc != 0) {
        /* implicit directories count as entries here, so the count can pass the limit */
        if (rc != RP_ETOOBIG || first->files + first->dirs <= l.max_entries)
            abort();
        if (access(outzip, F_OK) == 0)
            abort();
        return;
    }
    if (zr.files != first->files || zr.dirs != first->dirs || zr.bytes != first->bytes ||
        zr.skipped != 0)
        abort();
    if (rp_unzip_rmtree(pfd, "t") != 0)
        abort();
    zfd = open(outzip, O_RDONLY | O_CLOEXEC);
    if (zfd < 0)
        abort();
    rc = rp_unzip_extract(zfd, pfd, "t", &l, excludes, NULL, NULL, &xr, err, sizeof(err));
    close(zfd);
    unlink(outzip);
    if (rc != 0 || xr.files != first->files || xr.dirs != first->dirs || xr.bytes != first->bytes ||
        xr.skipped != 0)
        abort();
    again = sum_tree(t);
    if (again.files != sum->files || again.dirs != sum->dirs || again.bytes != sum->bytes ||
        again.hash != sum->hash)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const rp_unzip_limits l = limits();
    rp_unzip_result res;
    char err[256], t[320];
    int zfd, pfd, rc;

    if (n > IN_MAX)
        return 0;
    setup();
    zfd = memfd_create("upload", MFD_CLOEXEC);
    if (zfd < 0)
        abort();
    for (size_t off = 0; off < n;) {
        ssize_t w = write(zfd, d + off, n - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        abort();
    memset(&res, 0x5a, sizeof(res));
    memset(err, 'x', sizeof(err));
    rc = rp_unzip_extract(zfd, pfd, "t", &l, excludes, NULL, NULL, &res, err, sizeof(err));
    close(zfd);
    if (!code_ok(rc))
        abort();
    check_err(err, rc);
    if (rc != 0) {
        if (res.files != 0 || res.dirs != 0 || res.skipped != 0 || res.bytes != 0)
            abort();
        check_base(0);
    } else {
        tree_sum s;
        check_base(1);
        snprintf(t, sizeof(t), "%s/t", parent);
        s = sum_tree(t);
        if (s.files != res.files || s.dirs != res.dirs || s.bytes != res.bytes ||
            res.bytes > l.max_total)
            abort();
        round_trip(pfd, &res, &s);
        remove_target(pfd);
    }
    close(pfd);
    return 0;
}
