/*
 * static.c - file serving beneath a content root.
 *
 * Workload: small files (pages, scripts, images) read on every request: open, fstat, then the
 * connection streams the bytes with pread as the socket drains. No cache: the file system's
 * page cache is the cache, and nothing can serve stale content after a deploy.
 */
#include "http/static.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "base/time.h"
#include "http/path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RP_STATIC_INDEX "index.html"

struct rp_static {
    int dirfd;
    int no_openat2; /* the kernel lacks openat2: walk components, refusing symlinks */
};

int rp_static_open(const char *root, rp_static **out)
{
    rp_static *s;
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return RP_ENOENT;
    s = rp_calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        return RP_ENOMEM;
    }
    s->dirfd = fd;
    *out = s;
    return 0;
}

void rp_static_close(rp_static *s)
{
    if (s == NULL)
        return;
    close(s->dirfd);
    rp_free(s);
}

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"webmanifest", "application/manifest+json"},
};

const char *rp_static_mime(const char *name, size_t n)
{
    size_t i = n;

    while (i > 0 && name[i - 1] != '.' && name[i - 1] != '/')
        i--;
    if (i == 0 || name[i - 1] != '.')
        return "application/octet-stream";
    for (size_t k = 0; k < sizeof(mime_types) / sizeof(mime_types[0]); k++)
        if (rp_str_eq_nocase((rp_str){name + i, n - i}, mime_types[k].ext))
            return mime_types[k].type;
    return "application/octet-stream";
}

/* Opens rel (no leading '/') beneath the root without ever leaving it. -1 with errno. */
static int open_beneath(rp_static *s, const char *rel)
{
    if (!s->no_openat2) {
        struct open_how how;
        long fd;
        memset(&how, 0, sizeof(how));
        how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        fd = syscall(SYS_openat2, s->dirfd, rel[0] ? rel : ".", &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
            return (int)fd;
        s->no_openat2 = 1;
    }
    {
        /* Fallback: one component at a time, no symlinks at all. */
        char comp[256];
        int dir = dup(s->dirfd), fd;
        const char *p = rel;
        if (dir < 0)
            return -1;
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t n = slash ? (size_t)(slash - p) : strlen(p);
            if (n >= sizeof(comp)) {
                close(dir);
                errno = ENAMETOOLONG;
                return -1;
            }
            memcpy(comp, p, n);
            comp[n] = '\0';
            if (slash == NULL || slash[1] == '\0') {
                fd = openat(dir, n ? comp : ".",
                            O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
                close(dir);
                return fd;
            }
            if (n > 0) {
                fd = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(dir);
                if (fd < 0)
                    return -1;
                dir = fd;
            }
            p = slash + 1;
        }
    }
}

static void make_etag(const struct stat *st, char out[64])
{
    snprintf(out, 64, "\"%llx-%lx-%llx\"", (unsigned long long)st->st_mtim.tv_sec,
             (unsigned long)st->st_mtim.tv_nsec, (unsigned long long)st->st_size);
}

/* If-None-Match: "*" or a list of entity tags, compared weakly (RFC 9110 13.1.2). */
static int etag_matches(rp_str header, const char *etag)
{
    size_t i = 0;
    rp_str tag = {etag, strlen(etag)};

    if (rp_str_eq(rp_str_trim(header), "*"))
        return 1;
    while (i < header.n) {
        size_t j = i;
        rp_str t;
        while (j < header.n && header.p[j] != ',')
            j++;
        t = rp_str_trim((rp_str){header.p + i, j - i});
        if (t.n > 2 && t.p[0] == 'W' && t.p[1] == '/') {
            t.p += 2;
            t.n -= 2;
        }
        if (t.n == tag.n && memcmp(t.p, tag.p, t.n) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

int rp_static_parse_range(rp_str v, off_t size, off_t *start, off_t *len)
{
    const char *dash;
    uint64_t a, b;
    rp_str first, last;

    v = rp_str_trim(v);
    if (!rp_str_has_prefix(v, "bytes="))
        return 0;
    v.p += 6;
    v.n -= 6;
    if (memchr(v.p, ',', v.n) != NULL)
        return 0; /* several ranges: send the whole representation */
    dash = memchr(v.p, '-', v.n);
    if (dash == NULL)
        return 0;
    first = (rp_str){v.p, (size_t)(dash - v.p)};
    last = (rp_str){dash + 1, v.n - first.n - 1};
    if (first.n == 0) {
        if (rp_parse_u64(last.p, last.n, UINT64_MAX / 2, &b) != 0)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        if ((off_t)b > size)
            b = (uint64_t)size;
        *start = size - (off_t)b;
        *len = (off_t)b;
        return 1;
    }
    if (rp_parse_u64(first.p, first.n, UINT64_MAX / 2, &a) != 0)
        return 0;
    if (last.n == 0) {
        b = (uint64_t)size - 1;
    } else if (rp_parse_u64(last.p, last.n, UINT64_MAX / 2, &b) != 0 || b < a) {
        return 0;
    }
    if ((off_t)a >= size)
        return -1;
    if ((off_t)b >= size)
        b = (uint64_t)size - 1;
    *start = (off_t)a;
    *len = (off_t)(b - a + 1);
    return 1;
}

/* Percent-encodes a decoded path for a Location header (every byte outside RFC 3986 pchar). */
static char *encode_path(rp_arena *a, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char keep[] = "-._~!$&'()*+,;=:@/";
    size_t cap;
    char *out, *o;

    if (rp_size_mul(n, 3, &cap) != 0 || rp_size_add(cap, 2, &cap) != 0)
        return NULL;
    out = rp_arena_alloc(a, cap);
    if (out == NULL)
        return NULL;
    o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            (ch != 0 && memchr(keep, ch, sizeof(keep) - 1) != NULL)) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

static void not_found(rp_req *req)
{
    rp_resp_error(req, 404, "NotFound", "no such file");
}

void rp_static_handle(rp_req *req)
{
    rp_static_serve(req->route_data, req);
}

void rp_static_serve(rp_static *s, rp_req *req)
{
    const char *path = req->path;
    size_t n = req->path_len;
    char *rel;
    int fd = -1;
    struct stat st;
    char etag[64], lastmod[30], crange[96];
    rp_str inm, ims, range;
    off_t start = 0, len;
    int status = 200, rc;

    if (rp_path_has_dot_segment(path, n) &&
        !rp_str_has_prefix((rp_str){path, n}, "/.well-known/")) {
        not_found(req);
        return;
    }
    /* Directory requests map to their index file; never to a listing. */
    rel = rp_arena_alloc(req->arena, n + sizeof(RP_STATIC_INDEX) + 1);
    if (rel == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    memcpy(rel, path + 1, n - 1);
    rel[n - 1] = '\0';
    if (n == 1 || path[n - 1] == '/')
        memcpy(rel + n - 1, RP_STATIC_INDEX, sizeof(RP_STATIC_INDEX));
    fd = open_beneath(s, rel);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        not_found(req);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        /* "/docs" names a directory: send the client to "/docs/" so relative links work. */
        char *loc = encode_path(req->arena, path, n);
        close(fd);
        if (loc == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        {
            size_t ln = strlen(loc); /* encode_path left room for two more bytes */
            loc[ln] = '/';
            loc[ln + 1] = '\0';
        }
        if (req->head->has_query) {
            /* keep the query: it was validated by the codec and is passed on as sent */
            size_t ln = strlen(loc), qn = req->head->query.n;
            char *full = rp_arena_alloc(req->arena, ln + qn + 2);
            if (full == NULL) {
                rp_resp_error(req, 500, "InternalError", "out of memory");
                return;
            }
            memcpy(full, loc, ln);
            full[ln] = '?';
            memcpy(full + ln + 1, req->head->query.p, qn);
            full[ln + qn + 1] = '\0';
            loc = full;
        }
        rp_resp_header(req, "Location", loc);
        rp_resp_send(req, 301, NULL, NULL, 0);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        not_found(req);
        return;
    }
    make_etag(&st, etag);
    rp_http_date(st.st_mtim.tv_sec, lastmod);
    rc = rp_resp_header(req, "ETag", etag);
    if (rc == 0)
        rc = rp_resp_header(req, "Last-Modified", lastmod);
    if (rc == 0)
        rc = rp_resp_header(req, "Accept-Ranges", "bytes");
    if (rc != 0) {
        close(fd);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    inm = rp_req_header(req, "if-none-match");
    ims = rp_req_header(req, "if-modified-since");
    if (inm.p != NULL ? etag_matches(inm, etag) : 0) {
        close(fd);
        rp_resp_send(req, 304, NULL, NULL, 0);
        return;
    }
    if (inm.p == NULL && ims.p != NULL) {
        time_t since;
        if (rp_http_date_parse(ims.p, ims.n, &since) == 0 && st.st_mtim.tv_sec <= since) {
            close(fd);
            rp_resp_send(req, 304, NULL, NULL, 0);
            return;
        }
    }
    len = st.st_size;
    range = rp_req_header(req, "range");
    if (range.p != NULL && req->method == RP_METHOD_GET) {
        rp_str ifr = rp_req_header(req, "if-range");
        int use = ifr.p == NULL || rp_str_eq(rp_str_trim(ifr), etag) ||
                  rp_str_eq(rp_str_trim(ifr), lastmod);
        int r = use ? rp_static_parse_range(range, st.st_size, &start, &len) : 0;
        if (r < 0) {
            close(fd);
            snprintf(crange, sizeof(crange), "bytes */%lld", (long long)st.st_size);
            rp_resp_header(req, "Content-Range", crange);
            rp_resp_error(req, 416, "RangeNotSatisfiable", "range not satisfiable");
            return;
        }
        if (r > 0) {
            status = 206;
            snprintf(crange, sizeof(crange), "bytes %lld-%lld/%lld", (long long)start,
                     (long long)(start + len - 1), (long long)st.st_size);
            rp_resp_header(req, "Content-Range", crange);
        } else {
            len = st.st_size;
            start = 0;
        }
    }
    rp_resp_file(req, status, rp_static_mime(rel, strlen(rel)), fd, start, len);
}
