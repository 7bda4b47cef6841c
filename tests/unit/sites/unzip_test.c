/*
 * unzip_test.c - unit tests for src/sites/unzip.c: zip-deploy extraction, rmtree and the
 * CLI's directory zipper.
 *
 * Archives are built in the test with libzip's writer. Whatever the writer will not produce
 * (names with "..", control bytes or backslashes, duplicate names, lying sizes, flags, methods)
 * is made by writing a same-length placeholder and patching the bytes afterwards. Every refusal
 * is checked three ways: the return code, a reason that names the entry, and a listing of the
 * test's whole directory that must not change (so nothing was written beside or above the
 * target, and the half-written target was removed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "base/alloc.h"
#include "base/err.h"
#include "sites/unzip.h"

#define MIB (1024u * 1024)

static char scratch[512];
static unsigned test_seq;
static int fds_at_start;

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct zent {
    const char *name; /* ending in '/': a directory entry */
    const void *data;
    size_t len;
    unsigned mode; /* full unix mode (type bits included) for the external attributes, or 0 */
    int store;     /* 1: stored, 0: deflated */
} zent;

#define FILE_ENT(n, s)                                                                             \
    {                                                                                              \
        (n), (s), sizeof(s) - 1, 0, 0                                                              \
    }
#define MODE_ENT(n, s, m)                                                                          \
    {                                                                                              \
        (n), (s), sizeof(s) - 1, (m), 0                                                            \
    }
#define STORED_ENT(n, s)                                                                           \
    {                                                                                              \
        (n), (s), sizeof(s) - 1, 0, 1                                                              \
    }
#define DIR_ENT(n)                                                                                 \
    {                                                                                              \
        (n), NULL, 0, 0, 0                                                                         \
    }

static void join(char *out, size_t cap, const char *a, const char *b)
{
    assert_true((size_t)snprintf(out, cap, "%s/%s", a, b) < cap);
}

/* A new empty directory for one test: scratch/<tag>.<n>. */
static void test_dir(const char *tag, char *out, size_t cap)
{
    char name[64];

    snprintf(name, sizeof(name), "%s.%u", tag, test_seq++);
    join(out, cap, scratch, name);
    assert_int_equal(mkdir(out, 0755), 0);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    struct stat st;
    unsigned char *p;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

static void make_zip(const char *path, const zent *e, size_t n)
{
    int ze = 0;
    zip_t *za;

    unlink(path);
    za = zip_open(path, ZIP_CREATE | ZIP_EXCL, &ze);
    assert_non_null(za);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        zip_int64_t idx;
        if (nl > 0 && e[i].name[nl - 1] == '/' && e[i].data == NULL) {
            idx = zip_dir_add(za, e[i].name, 0);
        } else {
            zip_source_t *src = zip_source_buffer(za, e[i].data, e[i].len, 0);
            assert_non_null(src);
            idx = zip_file_add(za, e[i].name, src, 0);
            if (idx < 0)
                zip_source_free(src);
        }
        assert_true(idx >= 0);
        if (e[i].mode != 0)
            assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
                                                              ZIP_OPSYS_UNIX, e[i].mode << 16),
                             0);
        assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx,
                                                  e[i].store ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0),
                         0);
    }
    assert_int_equal(zip_close(za), 0);
}

/* Replaces every occurrence of from with to (same length) in the file; returns the count. */
static int patch_file(const char *path, const char *from, const char *to, size_t n)
{
    size_t len;
    unsigned char *p = read_bytes(path, &len);
    int count = 0;

    for (size_t i = 0; n > 0 && i + n <= len; i++) {
        if (memcmp(p + i, from, n) == 0) {
            memcpy(p + i, to, n);
            count++;
        }
    }
    write_bytes(path, p, len);
    free(p);
    return count;
}

/* Offsets of the first local header (0) and the first central-directory header. */
static size_t central_header(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(p + i, "PK\1\2", 4) == 0)
            return i;
    fail_msg("no central directory header");
    return 0;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

typedef enum { F_USIZE, F_METHOD, F_FLAGS_OR } field;

/* Sets a field of the first entry in both its local and its central header. */
static void patch_first(const char *path, field f, uint32_t v)
{
    size_t len, c;
    unsigned char *p = read_bytes(path, &len);

    assert_memory_equal(p, "PK\3\4", 4);
    c = central_header(p, len);
    switch (f) {
    case F_USIZE:
        put32(p + 22, v);
        put32(p + c + 24, v);
        break;
    case F_METHOD:
        put16(p + 8, v);
        put16(p + c + 10, v);
        break;
    case F_FLAGS_OR:
        put16(p + 6, (p[6] | (unsigned)p[7] << 8) | v);
        put16(p + c + 8, (p[c + 8] | (unsigned)p[c + 9] << 8) | v);
        break;
    }
    write_bytes(path, p, len);
    free(p);
}

static int run_extract(const char *zip_path, const char *parent, const char *name,
                       const rp_unzip_limits *lim, const char *const *excludes,
                       rp_unzip_result *res, char *err, size_t errlen)
{
    int zfd = open(zip_path, O_RDONLY), pfd = open(parent, O_RDONLY | O_DIRECTORY), rc;

    assert_true(zfd >= 0);
    assert_true(pfd >= 0);
    rc = rp_unzip_extract(zfd, pfd, name, lim, excludes, NULL, NULL, res, err, errlen);
    close(zfd);
    close(pfd);
    return rc;
}

/* A listing of everything below dir (path, mode, size), for before/after comparisons. */
static char snap_buf[16384];
static size_t snap_len, snap_base;

static int snap_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    int n =
        snprintf(snap_buf + snap_len, sizeof(snap_buf) - snap_len, "%s %o %lld\n", p + snap_base,
                 (unsigned)st->st_mode, S_ISDIR(st->st_mode) ? 0LL : (long long)st->st_size);

    assert_true(n > 0 && (size_t)n < sizeof(snap_buf) - snap_len);
    snap_len += (size_t)n;
    return 0;
}

static char *snapshot(const char *dir)
{
    snap_len = 0;
    snap_buf[0] = '\0';
    snap_base = strlen(dir);
    assert_int_equal(nftw(dir, snap_entry, 16, FTW_PHYS), 0);
    return strdup(snap_buf);
}

static int exists(const char *dir, const char *rel)
{
    char p[1024];
    struct stat st;

    join(p, sizeof(p), dir, rel);
    return lstat(p, &st) == 0;
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char p[1024];
    struct stat st;

    join(p, sizeof(p), dir, rel);
    assert_int_equal(lstat(p, &st), 0);
    return st.st_mode;
}

static void assert_file(const char *dir, const char *rel, const void *data, size_t len, mode_t perm)
{
    char p[1024];
    size_t n;
    unsigned char *got;

    join(p, sizeof(p), dir, rel);
    got = read_bytes(p, &n);
    assert_int_equal(n, len);
    if (len > 0)
        assert_memory_equal(got, data, len);
    free(got);
    assert_true(S_ISREG(mode_of(dir, rel)));
    assert_int_equal(mode_of(dir, rel) & 07777, perm);
}

/* A test directory T holding a parent directory P with some content, and T/a.zip. */
typedef struct layout {
    char t[512], p[512], zip[600];
} layout;

static void make_layout(const char *tag, layout *l)
{
    char x[700];

    test_dir(tag, l->t, sizeof(l->t));
    join(l->p, sizeof(l->p), l->t, "parent");
    assert_int_equal(mkdir(l->p, 0755), 0);
    join(x, sizeof(x), l->p, "keep.txt");
    write_bytes(x, "keep", 4);
    join(x, sizeof(x), l->p, "existing");
    assert_int_equal(mkdir(x, 0755), 0);
    join(l->zip, sizeof(l->zip), l->t, "a.zip");
}

/* Extracts l->zip into P/site expecting rc; nothing in T may change. Returns err. */
static void expect_refusal(layout *l, const rp_unzip_limits *lim, int want, const char *why,
                           const char *entry)
{
    char err[256];
    char *before = snapshot(l->t), *after;
    rp_unzip_result res;
    int rc;

    memset(&res, 0xa5, sizeof(res));
    rc = run_extract(l->zip, l->p, "site", lim, NULL, &res, err, sizeof(err));
    after = snapshot(l->t);
    if (rc != want)
        fail_msg("rc %d (%s), want %d; err: %s", rc, rp_strerror(rc), want, err);
    assert_string_equal(before, after);
    assert_false(exists(l->p, "site"));
    assert_int_equal(res.files, 0);
    assert_int_equal(res.bytes, 0);
    if (why != NULL && strstr(err, why) == NULL)
        fail_msg("err \"%s\" lacks \"%s\"", err, why);
    if (entry != NULL) {
        char q[300];
        snprintf(q, sizeof(q), "'%s'", entry);
        if (strstr(err, q) == NULL)
            fail_msg("err \"%s\" does not name %s", err, q);
    }
    free(before);
    free(after);
}

/* ---- extraction ------------------------------------------------------------------------- */

typedef struct progress_log {
    unsigned calls;
    uint64_t last, hint;
    int monotonic;
} progress_log;

static void on_progress(uint64_t done, uint64_t hint, void *arg)
{
    progress_log *pl = arg;

    if (done < pl->last)
        pl->monotonic = 0;
    pl->calls++;
    pl->last = done;
    pl->hint = hint;
}

static unsigned char *pseudo_random(size_t n)
{
    unsigned char *p = malloc(n);
    uint64_t s = 0x9e3779b97f4a7c15u;

    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (unsigned char)(s >> 24);
    }
    return p;
}

static void test_normal_tree(void **state)
{
    static const char html[] = "<!doctype html><title>hi</title>\n";
    static const char css[] = "body { color: red }\n";
    static const char sh[] = "#!/bin/sh\necho run\n";
    static const char txt[] = "deep\n";
    size_t big_len = 3 * MIB + 12345;
    unsigned char *big = pseudo_random(big_len);
    zent ents[] = {
        FILE_ENT("index.html", html),
        STORED_ENT("css/site.css", css),
        MODE_ENT("bin/run.sh", sh, S_IFREG | 04755), /* setuid: dropped, x kept */
        MODE_ENT("bin/private", txt, S_IFREG | 0600),
        MODE_ENT("bin/groupx", txt, S_IFREG | 0654), /* x only for the group: 0644 */
        DIR_ENT("empty/"),
        {"assets/", NULL, 0, S_IFDIR | 0700, 0},
        FILE_ENT("a/b/c/d.txt", txt),
        {"data.bin", big, big_len, 0, 0},
        {"zero", "", 0, 0, 0},
        FILE_ENT("caf\xc3\xa9.txt", txt),
    };
    layout l;
    char site[700], err[256];
    rp_unzip_result res;
    progress_log pl = {0, 0, 0, 1};
    int zfd, pfd;

    make_layout("normal", &l);
    make_zip(l.zip, ents, sizeof(ents) / sizeof(ents[0]));
    umask(077); /* modes must not depend on it */
    zfd = open(l.zip, O_RDONLY);
    pfd = open(l.p, O_RDONLY | O_DIRECTORY);
    assert_int_equal(
        rp_unzip_extract(zfd, pfd, "site", NULL, NULL, on_progress, &pl, &res, err, sizeof(err)),
        0);
    umask(022);
    close(zfd);
    close(pfd);
    assert_string_equal(err, "");
    join(site, sizeof(site), l.p, "site");
    assert_int_equal(mode_of(l.p, "site") & 07777, 0755);
    assert_file(site, "index.html", html, sizeof(html) - 1, 0644);
    assert_file(site, "css/site.css", css, sizeof(css) - 1, 0644);
    assert_file(site, "bin/run.sh", sh, sizeof(sh) - 1, 0755);
    assert_file(site, "bin/private", txt, sizeof(txt) - 1, 0644);
    assert_file(site, "bin/groupx", txt, sizeof(txt) - 1, 0644);
    assert_file(site, "a/b/c/d.txt", txt, sizeof(txt) - 1, 0644);
    assert_file(site, "data.bin", big, big_len, 0644);
    assert_file(site, "zero", "", 0, 0644);
    assert_file(site, "caf\xc3\xa9.txt", txt, sizeof(txt) - 1, 0644);
    assert_true(S_ISDIR(mode_of(site, "empty")));
    assert_int_equal(mode_of(site, "empty") & 07777, 0755);
    assert_int_equal(mode_of(site, "assets") & 07777, 0755);
    assert_int_equal(mode_of(site, "a/b") & 07777, 0755);
    assert_int_equal(res.files, 9);
    assert_int_equal(res.dirs, 7); /* css bin empty assets a a/b a/b/c */
    assert_int_equal(res.skipped, 0);
    assert_int_equal(res.bytes,
                     sizeof(html) + sizeof(css) + sizeof(sh) + 4 * sizeof(txt) - 7 + big_len);
    assert_true(pl.calls >= 3);
    assert_true(pl.monotonic);
    assert_int_equal(pl.last, res.bytes);
    assert_int_equal(pl.hint, res.bytes);
    /* keep.txt and existing/ are untouched, and the name is now taken */
    assert_true(exists(l.p, "keep.txt"));
    assert_int_equal(run_extract(l.zip, l.p, "site", NULL, NULL, NULL, err, sizeof(err)),
                     RP_EEXIST);
    assert_file(site, "index.html", html, sizeof(html) - 1, 0644);
    free(big);
}

/* An archive with no entries extracts to an empty directory. */
static void test_empty_archive(void **state)
{
    static const unsigned char eocd[22] = {'P', 'K', 5, 6};
    layout l;
    rp_unzip_result res;
    char err[128], site[700];
    DIR *d;
    int n = 0;

    make_layout("empty", &l);
    write_bytes(l.zip, eocd, sizeof(eocd));
    assert_int_equal(run_extract(l.zip, l.p, "site", NULL, NULL, &res, err, sizeof(err)), 0);
    join(site, sizeof(site), l.p, "site");
    d = opendir(site);
    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    assert_int_equal(n, 2);
    assert_int_equal(res.files + res.dirs + res.skipped, 0);
}

/* One refusal: entries written by libzip, then optionally a same-length byte patch. */
typedef struct bad_case {
    zent e[3];
    const char *from, *to; /* patch, or NULL */
    int rc;
    const char *why;   /* substring of the reason */
    const char *shown; /* the entry as the message quotes it */
} bad_case;

static const char ok[] = "fine\n";

static const bad_case bad_cases[] = {
    {{FILE_ENT("ok.txt", ok), FILE_ENT("XX/evil.txt", ok)},
     "XX/evil",
     "../evil",
     RP_EINVAL,
     "'..' path component",
     "../evil.txt"},
    {{FILE_ENT("a/XX/XX/evil", ok)}, "a/XX/XX", "a/../..", RP_EINVAL, "'..'", "a/../../evil"},
    {{FILE_ENT("ok.txt", ok), FILE_ENT("a/b/XX", ok)},
     "a/b/XX",
     "a/b/..",
     RP_EINVAL,
     "'..'",
     "a/b/.."},
    {{FILE_ENT("XX/", ok)}, "XX/", "../", RP_EINVAL, "'..'", "../"},
    {{FILE_ENT("Xetc/passwd", ok)}, "Xetc/", "/etc/", RP_EINVAL, "absolute path", "/etc/passwd"},
    {{FILE_ENT("XX/win.ini", ok)}, "XX/win", "C:/win", RP_EINVAL, "drive letter", "C:/win.ini"},
    {{FILE_ENT("XXXevil", ok)}, "XXXevil", "..\\evil", RP_EINVAL, "backslash", "..\\x5cevil"},
    {{FILE_ENT("aXXb.txt", ok)}, "aXXb", "a//b", RP_EINVAL, "empty path component", "a//b.txt"},
    {{FILE_ENT("X/a.txt", ok)}, "X/a", "./a", RP_EINVAL, "'.' path component", "./a.txt"},
    {{FILE_ENT("aXb.txt", ok)},
     "aXb.t",
     "a\x01"
     "b.t",
     RP_EINVAL,
     "control character",
     "a\\x01b.txt"},
    {{FILE_ENT("aXb.txt", ok)}, "aXb.t", "a\nb.t", RP_EINVAL, "control character", "a\\x0ab.txt"},
    {{FILE_ENT("aXb.txt", ok)},
     "aXb.t",
     "a\x7f"
     "b.t",
     RP_EINVAL,
     "control character",
     "a\\x7fb.txt"},
    {{FILE_ENT("aXXb.txt", ok)},
     "aXXb.t",
     "a\xc2\x85"
     "b.t",
     RP_EINVAL,
     "UTF-8",
     "a\\xc2\\x85b.txt"},
    {{FILE_ENT("ok.txt", ok), MODE_ENT("link", "/etc/passwd", S_IFLNK | 0777)},
     NULL,
     NULL,
     RP_EINVAL,
     "symbolic link entry",
     "link"},
    {{MODE_ENT("sub/link", "../../..", S_IFLNK | 0777), FILE_ENT("sub/link/x", ok)},
     NULL,
     NULL,
     RP_EINVAL,
     "symbolic link entry",
     "sub/link"},
    {{MODE_ENT("dev", "", S_IFCHR | 0644)}, NULL, NULL, RP_EINVAL, "device entry", "dev"},
    {{MODE_ENT("blk", "", S_IFBLK | 0644)}, NULL, NULL, RP_EINVAL, "device entry", "blk"},
    {{MODE_ENT("fifo", "", S_IFIFO | 0644)}, NULL, NULL, RP_EINVAL, "FIFO entry", "fifo"},
    {{MODE_ENT("sock", "", S_IFSOCK | 0644)}, NULL, NULL, RP_EINVAL, "socket entry", "sock"},
    {{FILE_ENT("a", ok), FILE_ENT("a/b", ok)}, NULL, NULL, RP_EINVAL, "also a file", "a/b"},
    {{FILE_ENT("a", ok), FILE_ENT("a/x/y/z", ok), FILE_ENT("a-b", ok)},
     NULL,
     NULL,
     RP_EINVAL,
     "also a file",
     "a/x/y/z"},
    {{DIR_ENT("d/"), FILE_ENT("d", ok)}, NULL, NULL, RP_EINVAL, "both a file and a directory", "d"},
    {{FILE_ENT("dup1.txt", ok), FILE_ENT("dup2.txt", "other")},
     "dup2.txt",
     "dup1.txt",
     RP_EINVAL,
     "duplicate name",
     "dup1.txt"},
    {{FILE_ENT("dir/", ok)}, NULL, NULL, RP_EINVAL, "directory entry with data", "dir/"},
    {{MODE_ENT("d2", ok, S_IFDIR | 0755)},
     NULL,
     NULL,
     RP_EINVAL,
     "directory entry with data",
     "d2"},
};

static void test_refusals(void **state)
{
    for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); k++) {
        const bad_case *c = &bad_cases[k];
        size_t n = 0;
        layout l;

        while (n < 3 && c->e[n].name != NULL)
            n++;
        make_layout("bad", &l);
        make_zip(l.zip, c->e, n);
        if (c->from != NULL)
            assert_true(patch_file(l.zip, c->from, c->to, strlen(c->from)) >= 2);
        print_message("case %zu: %s\n", k, c->why);
        expect_refusal(&l, NULL, c->rc, c->why, c->shown);
    }
}

/* Corrupt or unsupported archives: RP_EPARSE, and a half-written target is removed. */
static void test_corrupt(void **state)
{
    static const char text[] = "this is certainly not a zip archive, just some text\n";
    static const char body[] = "0123456789abcdefghij-the-crc-target-0123456789";
    zent one[] = {STORED_ENT("z.txt", body)};
    zent two[] = {FILE_ENT("a.txt", ok), STORED_ENT("z.txt", body)};
    zent defl[] = {FILE_ENT("d.txt", body)};
    layout l;
    size_t len;
    unsigned char *p;

    make_layout("corrupt", &l);
    write_bytes(l.zip, text, sizeof(text) - 1);
    expect_refusal(&l, NULL, RP_EPARSE, "not a zip archive", NULL);
    write_bytes(l.zip, "", 0);
    expect_refusal(&l, NULL, RP_EPARSE, "not a zip archive", NULL);

    /* truncated: cut anywhere */
    make_zip(l.zip, two, 2);
    p = read_bytes(l.zip, &len);
    for (size_t cut = 1; cut < len; cut += 7) {
        write_bytes(l.zip, p, len - cut);
        expect_refusal(&l, NULL, RP_EPARSE, NULL, NULL);
    }
    free(p);

    /* CRC: a.txt is written first, z.txt then fails; both must go */
    make_zip(l.zip, two, 2);
    assert_int_equal(patch_file(l.zip, "crc-target", "crc-tarxet", 10), 1);
    expect_refusal(&l, NULL, RP_EPARSE, "CRC mismatch", "z.txt");

    /* declared size larger than the data (stored) */
    make_zip(l.zip, one, 1);
    patch_first(l.zip, F_USIZE, sizeof(body) + 100);
    expect_refusal(&l, NULL, RP_EPARSE, "declared size", "z.txt");

    /* declared size smaller than the data (deflated) */
    make_zip(l.zip, defl, 1);
    patch_first(l.zip, F_USIZE, 10);
    expect_refusal(&l, NULL, RP_EPARSE, "more data than its declared size", "d.txt");

    /* unsupported methods: bzip2, LZMA, and an unknown one */
    {
        static const unsigned methods[] = {1, 9, 12, 14, 97};
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
            make_zip(l.zip, one, 1);
            patch_first(l.zip, F_METHOD, methods[i]);
            expect_refusal(&l, NULL, RP_EPARSE, "unsupported compression method", "z.txt");
        }
    }

    /* the encryption flag */
    make_zip(l.zip, one, 1);
    patch_first(l.zip, F_FLAGS_OR, 1);
    expect_refusal(&l, NULL, RP_EPARSE, "encrypted", NULL);

    /* real encryption (AES), when this libzip can write it */
    if (zip_encryption_method_supported(ZIP_EM_AES_256, 1)) {
        int ze;
        zip_t *za;
        zip_source_t *src;
        unlink(l.zip);
        za = zip_open(l.zip, ZIP_CREATE, &ze);
        assert_non_null(za);
        src = zip_source_buffer(za, body, sizeof(body) - 1, 0);
        assert_true(zip_file_add(za, "secret.txt", src, 0) == 0);
        assert_int_equal(zip_file_set_encryption(za, 0, ZIP_EM_AES_256, "pw"), 0);
        assert_int_equal(zip_close(za), 0);
        expect_refusal(&l, NULL, RP_EPARSE, "encrypted entry", "secret.txt");
    }

    /* the UTF-8 flag over bytes that are not UTF-8: libzip refuses the archive */
    make_zip(l.zip, one, 1);
    patch_first(l.zip, F_FLAGS_OR, 1u << 11);
    assert_true(patch_file(l.zip, "z.txt", "\xff.txt", 5) >= 2);
    expect_refusal(&l, NULL, RP_EPARSE, NULL, NULL);
}

/* Without the UTF-8 flag, libzip reads names as CP437: 0x82 is e-acute. */
static void test_cp437_name(void **state)
{
    zent e[] = {FILE_ENT("cafX.txt", ok)};
    layout l;
    char site[700], err[128];

    make_layout("cp437", &l);
    make_zip(l.zip, e, 1);
    assert_true(patch_file(l.zip, "cafX", "caf\x82", 4) >= 2);
    assert_int_equal(run_extract(l.zip, l.p, "site", NULL, NULL, NULL, err, sizeof(err)), 0);
    join(site, sizeof(site), l.p, "site");
    assert_file(site, "caf\xc3\xa9.txt", ok, sizeof(ok) - 1, 0644);
}

static void test_excludes(void **state)
{
    static const char *const extra[] = {"node_modules", "secret.json", NULL};
    zent e[] = {
        FILE_ENT(".git/config", ok),
        FILE_ENT(".git/objects/ab/cdef", ok),
        MODE_ENT(".git/hooks/link", "/etc/passwd", S_IFLNK | 0777), /* skipped, not refused */
        FILE_ENT("sub/.git/HEAD", ok),
        FILE_ENT("sub/deeper/.svn/entries", ok),
        FILE_ENT(".hg/store", ok),
        FILE_ENT(".env", "SECRET=1"),
        FILE_ENT("app/.env", "SECRET=2"),
        FILE_ENT(".GIT/x", ok),
        FILE_ENT(".Env", ok),
        FILE_ENT("x/.sVn/y", ok),
        DIR_ENT(".hg/"),
        FILE_ENT("node_modules/pkg/index.js", ok),
        FILE_ENT("a/node_modules/b.js", ok),
        FILE_ENT("conf/secret.json", ok),
        /* kept */
        FILE_ENT("Node_Modules/x.js", ok), /* caller's names are compared exactly */
        FILE_ENT("node_modules2/x.js", ok),
        FILE_ENT(".gitignore", ok),
        FILE_ENT(".envrc", ok),
        FILE_ENT("app/index.js", ok),
        FILE_ENT("app/git/x", ok),
    };
    layout l;
    char site[700], err[128];
    rp_unzip_result res;

    make_layout("excl", &l);
    make_zip(l.zip, e, sizeof(e) / sizeof(e[0]));
    assert_int_equal(run_extract(l.zip, l.p, "site", NULL, extra, &res, err, sizeof(err)), 0);
    join(site, sizeof(site), l.p, "site");
    assert_int_equal(res.skipped, 15);
    assert_int_equal(res.files, 6);
    assert_false(exists(site, ".git"));
    assert_false(exists(site, ".GIT"));
    assert_false(exists(site, "sub/.git"));
    assert_false(exists(site, "sub")); /* skipped entries make no parent directories */
    assert_false(exists(site, "x"));
    assert_false(exists(site, "conf"));
    assert_false(exists(site, ".hg"));
    assert_false(exists(site, ".env"));
    assert_false(exists(site, ".Env"));
    assert_false(exists(site, "app/.env"));
    assert_false(exists(site, "x/.sVn"));
    assert_false(exists(site, "node_modules"));
    assert_false(exists(site, "a/node_modules"));
    assert_false(exists(site, "conf/secret.json"));
    assert_file(site, "Node_Modules/x.js", ok, sizeof(ok) - 1, 0644);
    assert_file(site, "node_modules2/x.js", ok, sizeof(ok) - 1, 0644);
    assert_file(site, ".gitignore", ok, sizeof(ok) - 1, 0644);
    assert_file(site, ".envrc", ok, sizeof(ok) - 1, 0644);
    assert_file(site, "app/index.js", ok, sizeof(ok) - 1, 0644);
    assert_file(site, "app/git/x", ok, sizeof(ok) - 1, 0644);

    /* an excluded entry must still have a safe name */
    {
        int pfd = open(l.p, O_RDONLY | O_DIRECTORY);
        assert_int_equal(rp_unzip_rmtree(pfd, "site"), 0);
        close(pfd);
    }
    {
        zent b[] = {FILE_ENT(".git/XX/x", ok)};
        make_zip(l.zip, b, 1);
        assert_true(patch_file(l.zip, "XX/x", "../x", 4) >= 2);
        expect_refusal(&l, NULL, RP_EINVAL, "'..'", ".git/../x");
    }
}

/* ---- limits ------------------------------------------------------------------------------ */

/* 50 MiB of zeros, deflated to about 50 KB (made once). */
static char bomb_zip[600];

static void make_bomb(void)
{
    zent e[1];
    char *zeros;

    if (bomb_zip[0] != '\0')
        return;
    join(bomb_zip, sizeof(bomb_zip), scratch, "bomb.zip");
    zeros = calloc(1, 50 * MIB);
    assert_non_null(zeros);
    e[0] = (zent){"zeros.bin", zeros, 50 * MIB, 0, 0};
    make_zip(bomb_zip, e, 1);
    free(zeros);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    unsigned char *p = read_bytes(from, &len);

    write_bytes(to, p, len);
    free(p);
}

static void test_bomb(void **state)
{
    rp_unzip_limits lim;
    layout l;
    struct stat st;
    progress_log pl = {0, 0, 0, 1};
    char err[256];
    int zfd, pfd, rc;
    clock_t t0;

    make_bomb();
    make_layout("bomb", &l);
    copy_file(bomb_zip, l.zip);
    assert_int_equal(stat(l.zip, &st), 0);
    assert_true(st.st_size < 200 * 1024);

    /* declared size over the total */
    rp_unzip_limits_default(&lim);
    lim.max_total = 10 * MIB;
    lim.max_ratio = 0;
    expect_refusal(&l, &lim, RP_ETOOBIG, "10485760-byte limit", "zeros.bin");

    /* over the per-file limit */
    rp_unzip_limits_default(&lim);
    lim.max_file = 10 * MIB;
    expect_refusal(&l, &lim, RP_ETOOBIG, "file limit", "zeros.bin");

    /* within every size limit, but the ratio gives it away */
    rp_unzip_limits_default(&lim);
    lim.max_total = 100 * MIB;
    lim.max_file = 100 * MIB;
    expect_refusal(&l, &lim, RP_ETOOBIG, "compression ratio over 200", "zeros.bin");

    /* with the ratio raised it extracts (the limits are not off by one) */
    lim.max_ratio = 5000;
    lim.max_total = 50 * MIB;
    lim.max_file = 50 * MIB;
    assert_int_equal(run_extract(l.zip, l.p, "site", &lim, NULL, NULL, err, sizeof(err)), 0);
    {
        int pfd2 = open(l.p, O_RDONLY | O_DIRECTORY);
        assert_int_equal(rp_unzip_rmtree(pfd2, "site"), 0);
        close(pfd2);
    }
    lim.max_total = 50 * MIB - 1;
    expect_refusal(&l, &lim, RP_ETOOBIG, "limit", "zeros.bin");

    /* The header lies (declares 1000 bytes): the count of bytes actually inflated stops it
     * within the first chunk, before any progress report (every MiB), with ratio checks off. */
    patch_first(l.zip, F_USIZE, 1000);
    rp_unzip_limits_default(&lim);
    lim.max_ratio = 0;
    t0 = clock();
    zfd = open(l.zip, O_RDONLY);
    pfd = open(l.p, O_RDONLY | O_DIRECTORY);
    err[0] = '\0';
    rc = rp_unzip_extract(zfd, pfd, "site", &lim, NULL, on_progress, &pl, NULL, err, sizeof(err));
    close(zfd);
    close(pfd);
    assert_int_equal(rc, RP_EPARSE);
    assert_non_null(strstr(err, "more data than its declared size"));
    assert_int_equal(pl.calls, 0);
    assert_false(exists(l.p, "site"));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

/* Offset of the idx-th central-directory record, walking from the end record. */
static size_t cd_record(const unsigned char *p, size_t len, unsigned idx)
{
    const unsigned char *eocd = p + len - 22;
    size_t off;

    assert_memory_equal(eocd, "PK\5\6", 4);
    off = eocd[16] | (size_t)eocd[17] << 8 | (size_t)eocd[18] << 16 | (size_t)eocd[19] << 24;
    for (unsigned i = 0; i < idx; i++) {
        const unsigned char *c = p + off;
        assert_memory_equal(c, "PK\1\2", 4);
        off += 46 + (c[28] | (size_t)c[29] << 8) + (c[30] | (size_t)c[31] << 8) +
               (c[32] | (size_t)c[33] << 8);
    }
    assert_memory_equal(p + off, "PK\1\2", 4);
    return off;
}

static uint32_t get32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * "Overlapping files" bombs: an entry's compressed data is stretched over the entries after
 * it, so the same bytes are inflated many times. libzip's consistency check accepts that (each
 * entry still ends before the central directory); the compressed sizes adding up past the
 * archive size give it away.
 */
static void test_overlap(void **state)
{
    char body[1000];
    zent e[3];
    layout l;
    size_t len, cd;
    unsigned char *p;

    memset(body, 'x', sizeof(body));
    e[0] = (zent){"a.txt", body, sizeof(body), 0, 1};
    e[1] = (zent){"b.txt", body, sizeof(body), 0, 1};
    e[2] = (zent){"c.txt", body, sizeof(body), 0, 1};
    make_layout("overlap", &l);
    make_zip(l.zip, e, 3);
    p = read_bytes(l.zip, &len);
    cd = cd_record(p, len, 0);
    for (unsigned i = 0; i < 2; i++) {
        size_t c = cd_record(p, len, i);
        size_t local = get32(p + c + 42);
        size_t data = local + 30 + (p[local + 26] | (size_t)p[local + 27] << 8) +
                      (p[local + 28] | (size_t)p[local + 29] << 8);
        put32(p + local + 18, (uint32_t)(cd - data)); /* compressed size: up to the directory */
        put32(p + c + 20, (uint32_t)(cd - data));
    }
    write_bytes(l.zip, p, len);
    free(p);
    expect_refusal(&l, NULL, RP_EPARSE, "overlap", "b.txt");
}

static void test_entries_limit(void **state)
{
    zent e[30];
    char names[30][16];
    rp_unzip_limits lim;
    layout l;
    char err[128];

    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof(names[i]), "f%02d", i);
        e[i] = (zent){names[i], ok, sizeof(ok) - 1, 0, 0};
    }
    make_layout("entries", &l);
    make_zip(l.zip, e, 30);
    rp_unzip_limits_default(&lim);
    lim.max_entries = 29;
    expect_refusal(&l, &lim, RP_ETOOBIG, "30 entries", NULL);
    lim.max_entries = 30;
    assert_int_equal(run_extract(l.zip, l.p, "site", &lim, NULL, NULL, err, sizeof(err)), 0);
}

static void test_path_limits(void **state)
{
    char longname[400], deep[200], comp[300];
    rp_unzip_limits lim;
    layout l;
    char err[128];
    zent e[1];

    make_layout("paths", &l);

    memset(longname, 'n', 300);
    memcpy(longname + 100, "/", 1);
    memcpy(longname + 200, "/", 1);
    longname[300] = '\0';
    e[0] = (zent){longname, ok, sizeof(ok) - 1, 0, 0};
    make_zip(l.zip, e, 1);
    rp_unzip_limits_default(&lim);
    lim.max_path = 299;
    expect_refusal(&l, &lim, RP_ETOOBIG, "path too long", NULL);
    lim.max_path = 300;
    assert_int_equal(run_extract(l.zip, l.p, "long", &lim, NULL, NULL, err, sizeof(err)), 0);

    /* 33 components with the default depth of 32 */
    for (int i = 0; i < 32; i++)
        memcpy(deep + 2 * i, "d/", 2);
    memcpy(deep + 64, "f", 2);
    e[0] = (zent){deep, ok, sizeof(ok) - 1, 0, 0};
    make_zip(l.zip, e, 1);
    expect_refusal(&l, NULL, RP_ETOOBIG, "nested too deeply", NULL);
    rp_unzip_limits_default(&lim);
    lim.max_depth = 33;
    assert_int_equal(run_extract(l.zip, l.p, "deep", &lim, NULL, NULL, err, sizeof(err)), 0);

    /* one component of 256 bytes */
    memset(comp, 'c', 256);
    comp[256] = '\0';
    e[0] = (zent){comp, ok, sizeof(ok) - 1, 0, 0};
    make_zip(l.zip, e, 1);
    expect_refusal(&l, NULL, RP_ETOOBIG, "longer than 255", NULL);
}

static void test_bad_args(void **state)
{
    zent e[] = {FILE_ENT("a.txt", ok)};
    layout l;
    char err[128], x[700];
    int zfd, pfd, ffd;

    make_layout("args", &l);
    make_zip(l.zip, e, 1);
    zfd = open(l.zip, O_RDONLY);
    pfd = open(l.p, O_RDONLY | O_DIRECTORY);
    assert_true(zfd >= 0 && pfd >= 0);
    static const char *const names[] = {"", ".", "..", "a/b", "/abs"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(
            rp_unzip_extract(zfd, pfd, names[i], NULL, NULL, NULL, NULL, NULL, err, sizeof(err)),
            RP_EINVAL);
    assert_int_equal(rp_unzip_extract(zfd, pfd, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0),
                     RP_EINVAL);
    /* the "zip" is a directory; the parent is a file */
    assert_int_equal(
        rp_unzip_extract(pfd, pfd, "site", NULL, NULL, NULL, NULL, NULL, err, sizeof(err)),
        RP_EINVAL);
    join(x, sizeof(x), l.p, "keep.txt");
    ffd = open(x, O_RDONLY);
    assert_int_equal(
        rp_unzip_extract(zfd, ffd, "site", NULL, NULL, NULL, NULL, NULL, err, sizeof(err)),
        RP_EINVAL);
    close(ffd);
    /* a tiny err buffer is always terminated; NULL err and res are fine */
    assert_int_equal(rp_unzip_extract(zfd, pfd, "..", NULL, NULL, NULL, NULL, NULL, err, 4),
                     RP_EINVAL);
    assert_true(strlen(err) < 4);
    assert_int_equal(rp_unzip_extract(zfd, pfd, "ok", NULL, NULL, NULL, NULL, NULL, NULL, 0), 0);
    close(zfd);
    close(pfd);
}

/* Every allocation failure is reported as RP_ENOMEM and leaves nothing behind. */
static void test_alloc_failure(void **state)
{
    zent e[] = {FILE_ENT("a/b.txt", ok), FILE_ENT("c.txt", ok)};
    layout l;
    char err[128];
    int rc = -1;

    make_layout("oom", &l);
    make_zip(l.zip, e, 2);
    for (long n = 0; n < 64 && rc != 0; n++) {
        rp_alloc_fail_after(n);
        rc = run_extract(l.zip, l.p, "site", NULL, NULL, NULL, err, sizeof(err));
        rp_alloc_fail_after(-1);
        if (rc != 0) {
            assert_int_equal(rc, RP_ENOMEM);
            assert_false(exists(l.p, "site"));
        }
    }
    assert_int_equal(rc, 0);
}

/* ---- rmtree ------------------------------------------------------------------------------ */

static void test_rmtree(void **state)
{
    char t[512], x[700], y[700];
    int tfd;

    test_dir("rmtree", t, sizeof(t));
    join(x, sizeof(x), t, "outside.txt");
    write_bytes(x, "precious", 8);
    join(x, sizeof(x), t, "outside_dir");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), t, "outside_dir/keep");
    write_bytes(x, "keep", 4);

    join(x, sizeof(x), t, "tree");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), t, "tree/a");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), t, "tree/a/b");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), t, "tree/a/b/c.txt");
    write_bytes(x, "c", 1);
    join(x, sizeof(x), t, "outside.txt");
    join(y, sizeof(y), t, "tree/a/link_file");
    assert_int_equal(symlink(x, y), 0);
    join(x, sizeof(x), t, "outside_dir");
    join(y, sizeof(y), t, "tree/link_dir");
    assert_int_equal(symlink(x, y), 0);
    join(y, sizeof(y), t, "tree/rel_link");
    assert_int_equal(symlink("../outside_dir", y), 0);
    join(x, sizeof(x), t, "tree/fifo");
    assert_int_equal(mkfifo(x, 0644), 0);
    join(x, sizeof(x), t, "tree/ro");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), t, "tree/ro/f");
    write_bytes(x, "f", 1);
    join(x, sizeof(x), t, "tree/ro");
    assert_int_equal(chmod(x, 0555), 0);

    tfd = open(t, O_RDONLY | O_DIRECTORY);
    assert_true(tfd >= 0);
    assert_int_equal(rp_unzip_rmtree(tfd, "tree"), 0);
    assert_false(exists(t, "tree"));
    assert_file(t, "outside.txt", "precious", 8, 0644);
    assert_file(t, "outside_dir/keep", "keep", 4, 0644);

    /* missing is fine; bad names are refused */
    assert_int_equal(rp_unzip_rmtree(tfd, "tree"), 0);
    assert_int_equal(rp_unzip_rmtree(tfd, ""), RP_EINVAL);
    assert_int_equal(rp_unzip_rmtree(tfd, "."), RP_EINVAL);
    assert_int_equal(rp_unzip_rmtree(tfd, ".."), RP_EINVAL);
    assert_int_equal(rp_unzip_rmtree(tfd, "outside_dir/keep"), RP_EINVAL);
    assert_int_equal(rp_unzip_rmtree(tfd, NULL), RP_EINVAL);
    assert_true(exists(t, "outside_dir/keep"));

    /* a symlink given as the name: the link goes, the directory stays */
    join(x, sizeof(x), t, "outside_dir");
    join(y, sizeof(y), t, "toplink");
    assert_int_equal(symlink(x, y), 0);
    assert_int_equal(rp_unzip_rmtree(tfd, "toplink"), 0);
    assert_false(exists(t, "toplink"));
    assert_file(t, "outside_dir/keep", "keep", 4, 0644);

    /* a plain file */
    assert_int_equal(rp_unzip_rmtree(tfd, "outside.txt"), 0);
    assert_false(exists(t, "outside.txt"));
    close(tfd);
}

/* ---- zipping a directory ----------------------------------------------------------------- */

static void test_zip_dir_roundtrip(void **state)
{
    static const char *const extra[] = {"node_modules", NULL};
    static const char html[] = "<p>hello</p>\n";
    static const char js[] = "console.log(1)\n";
    static const char run[] = "#!/bin/sh\n";
    size_t big_len = MIB + 77;
    unsigned char *big = pseudo_random(big_len);
    char t[512], s[700], x[800], out[700], site[800], err[256];
    rp_unzip_result res;
    struct stat st;
    int tfd;

    test_dir("zipdir", t, sizeof(t));
    join(s, sizeof(s), t, "src");
    assert_int_equal(mkdir(s, 0755), 0);
    join(x, sizeof(x), s, "index.html");
    write_bytes(x, html, sizeof(html) - 1);
    join(x, sizeof(x), s, "js");
    assert_int_equal(mkdir(x, 0700), 0);
    join(x, sizeof(x), s, "js/app.js");
    write_bytes(x, js, sizeof(js) - 1);
    join(x, sizeof(x), s, "bin");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), s, "bin/run");
    write_bytes(x, run, sizeof(run) - 1);
    assert_int_equal(chmod(x, 0700), 0);
    join(x, sizeof(x), s, "empty");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), s, "deep");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), s, "deep/a");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), s, "deep/a/big.bin");
    write_bytes(x, big, big_len);
    join(x, sizeof(x), s, "deep/a/empty.txt");
    write_bytes(x, "", 0);
    join(x, sizeof(x), s, "link");
    assert_int_equal(symlink("/etc/passwd", x), 0);
    join(x, sizeof(x), s, "dirlink");
    assert_int_equal(symlink("deep", x), 0);
    join(x, sizeof(x), s, "fifo");
    assert_int_equal(mkfifo(x, 0644), 0);
    join(x, sizeof(x), s, ".git");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), s, ".git/config");
    write_bytes(x, "[core]\n", 7);
    join(x, sizeof(x), s, ".env");
    write_bytes(x, "PASSWORD=x\n", 11);
    join(x, sizeof(x), s, "node_modules");
    assert_int_equal(mkdir(x, 0755), 0);
    join(x, sizeof(x), s, "node_modules/m.js");
    write_bytes(x, js, sizeof(js) - 1);

    join(out, sizeof(out), t, "out.zip");
    assert_int_equal(rp_zip_dir(s, out, extra, NULL, &res, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(res.files, 5);
    assert_int_equal(res.dirs, 5);    /* bin deep deep/a empty js */
    assert_int_equal(res.skipped, 6); /* .env .git dirlink fifo link node_modules */
    assert_int_equal(res.bytes, sizeof(html) + sizeof(js) + sizeof(run) - 3 + big_len);
    assert_true(st.st_size < 200 * 1024 + (off_t)big_len);

    /* the archive extracts to the same tree, without what was skipped */
    assert_int_equal(run_extract(out, t, "site", NULL, NULL, &res, err, sizeof(err)), 0);
    assert_int_equal(res.files, 5);
    assert_int_equal(res.dirs, 5);
    join(site, sizeof(site), t, "site");
    assert_file(site, "index.html", html, sizeof(html) - 1, 0644);
    assert_file(site, "js/app.js", js, sizeof(js) - 1, 0644);
    assert_file(site, "bin/run", run, sizeof(run) - 1, 0755);
    assert_file(site, "deep/a/big.bin", big, big_len, 0644);
    assert_file(site, "deep/a/empty.txt", "", 0, 0644);
    assert_true(S_ISDIR(mode_of(site, "empty")));
    assert_int_equal(mode_of(site, "js") & 07777, 0755);
    assert_false(exists(site, "link"));
    assert_false(exists(site, "dirlink"));
    assert_false(exists(site, "fifo"));
    assert_false(exists(site, ".git"));
    assert_false(exists(site, ".env"));
    assert_false(exists(site, "node_modules"));

    /* the output must be new */
    assert_int_equal(rp_zip_dir(s, out, extra, NULL, &res, err, sizeof(err)), RP_EEXIST);
    assert_true(exists(t, "out.zip"));

    /* an archive written inside the tree leaves itself out */
    join(x, sizeof(x), s, "self.zip");
    assert_int_equal(rp_zip_dir(s, x, extra, NULL, &res, err, sizeof(err)), 0);
    assert_int_equal(res.skipped, 7);
    tfd = open(t, O_RDONLY | O_DIRECTORY);
    assert_int_equal(rp_unzip_rmtree(tfd, "site"), 0);
    close(tfd);
    assert_int_equal(run_extract(x, t, "site", NULL, NULL, &res, err, sizeof(err)), 0);
    assert_false(exists(site, "self.zip"));
    assert_int_equal(res.files, 5);

    /* two runs give the same archive entries in the same order */
    {
        char out2[700];
        int ze;
        zip_t *a, *b;
        join(out2, sizeof(out2), t, "out2.zip");
        assert_int_equal(unlink(x), 0);
        assert_int_equal(rp_zip_dir(s, out2, extra, NULL, NULL, NULL, 0), 0);
        a = zip_open(out, ZIP_RDONLY, &ze);
        b = zip_open(out2, ZIP_RDONLY, &ze);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(zip_get_num_entries(a, 0), zip_get_num_entries(b, 0));
        for (zip_int64_t i = 0; i < zip_get_num_entries(a, 0); i++)
            assert_string_equal(zip_get_name(a, (zip_uint64_t)i, 0),
                                zip_get_name(b, (zip_uint64_t)i, 0));
        zip_discard(a);
        zip_discard(b);
    }
    free(big);
}

static void test_zip_dir_refusals(void **state)
{
    char t[512], s[700], x[800], out[700], err[256];
    rp_unzip_limits lim;
    rp_unzip_result res;

    test_dir("zipdirbad", t, sizeof(t));
    join(s, sizeof(s), t, "src");
    assert_int_equal(mkdir(s, 0755), 0);
    join(out, sizeof(out), t, "out.zip");

    /* an empty tree gives an empty archive that extracts */
    assert_int_equal(rp_zip_dir(s, out, NULL, NULL, &res, err, sizeof(err)), 0);
    assert_int_equal(res.files + res.dirs, 0);
    assert_int_equal(run_extract(out, t, "site", NULL, NULL, &res, err, sizeof(err)), 0);
    assert_int_equal(unlink(out), 0);

    for (int i = 0; i < 5; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "f%d", i);
        join(x, sizeof(x), s, nm);
        write_bytes(x, ok, sizeof(ok) - 1);
    }
    rp_unzip_limits_default(&lim);
    lim.max_entries = 4;
    assert_int_equal(rp_zip_dir(s, out, NULL, &lim, &res, err, sizeof(err)), RP_ETOOBIG);
    assert_false(exists(t, "out.zip"));
    rp_unzip_limits_default(&lim);
    lim.max_total = 4 * (sizeof(ok) - 1);
    assert_int_equal(rp_zip_dir(s, out, NULL, &lim, &res, err, sizeof(err)), RP_ETOOBIG);
    assert_false(exists(t, "out.zip"));
    lim.max_total = 5 * (sizeof(ok) - 1);
    lim.max_file = sizeof(ok) - 2;
    assert_int_equal(rp_zip_dir(s, out, NULL, &lim, &res, err, sizeof(err)), RP_ETOOBIG);
    assert_non_null(strstr(err, "'f0'"));
    assert_false(exists(t, "out.zip"));

    /* a name the extractor would refuse */
    join(x, sizeof(x), s, "back\\slash");
    write_bytes(x, ok, sizeof(ok) - 1);
    assert_int_equal(rp_zip_dir(s, out, NULL, NULL, &res, err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "backslash"));
    assert_false(exists(t, "out.zip"));
    assert_int_equal(unlink(x), 0);

    /* no such directory, not a directory */
    join(x, sizeof(x), t, "missing");
    assert_int_equal(rp_zip_dir(x, out, NULL, NULL, &res, err, sizeof(err)), RP_ENOENT);
    join(x, sizeof(x), s, "f0");
    assert_int_equal(rp_zip_dir(x, out, NULL, NULL, &res, err, sizeof(err)), RP_EINVAL);
    assert_false(exists(t, "out.zip"));
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Every path above closed what it opened (runs last). */
static void test_no_fd_leak(void **state)
{
    assert_int_equal(count_fds(), fds_at_start);
}

static int group_setup(void **state)
{
    rp_test_scratch("unzip", scratch, sizeof(scratch));
    fds_at_start = count_fds();
    return 0;
}

static int group_teardown(void **state)
{
    rp_test_rmtree(scratch);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_tree),
        cmocka_unit_test(test_empty_archive),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_cp437_name),
        cmocka_unit_test(test_excludes),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_entries_limit),
        cmocka_unit_test(test_path_limits),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_rmtree),
        cmocka_unit_test(test_zip_dir_roundtrip),
        cmocka_unit_test(test_zip_dir_refusals),
        cmocka_unit_test(test_no_fd_leak),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
