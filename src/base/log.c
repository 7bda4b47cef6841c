/*
 * log.c - JSON lines to file descriptors.
 *
 * Workload: the access log writes one line per request from every loop thread, so a line is
 * formatted on the stack and written with a single write(2) on an O_APPEND descriptor: no lock
 * and no interleaving (writes under PIPE_BUF to a pipe, and O_APPEND writes to a file, are atomic).
 */
#include "base/log.h"
#include "base/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int err_fd = 2;
static int acc_fd = -1;
static rp_log_level min_lvl = RP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rp_log_configure(int error_fd, rp_log_level min_level, int access_fd)
{
    err_fd = error_fd;
    min_lvl = min_level;
    acc_fd = access_fd;
}

int rp_log_access_enabled(void)
{
    return acc_fd >= 0;
}

int rp_log_level_parse(const char *s, rp_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rp_log_level)i;
            return 0;
        }
    }
    return RP_EINVAL;
}

/* Content stops RP_LOGLINE_RESERVE bytes short of the end; closers may use the reserve. */
#define RP_LOGLINE_RESERVE 32

static void put_limit(rp_logline *l, const char *s, size_t n, size_t limit)
{
    if (l->len > limit || n > limit - l->len) {
        l->truncated = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put(rp_logline *l, const char *s, size_t n)
{
    if (l->truncated)
        return;
    put_limit(l, s, n, RP_LOGLINE_MAX - RP_LOGLINE_RESERVE);
}

static void put_escaped(rp_logline *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    if (l->truncated)
        return; /* an earlier field was cut: nothing more fits */
    put(l, "\"", 1);
    for (size_t i = 0; i < n && !l->truncated; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put(l, esc, 6);
        } else if (c >= 0x80) {
            /* Logs stay ASCII: bytes from the network are not trusted to be UTF-8. */
            esc[0] = '\\';
            esc[1] = '\\';
            esc[2] = 'x';
            esc[3] = hex[c >> 4];
            esc[4] = hex[c & 15];
            put(l, esc, 5);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    if (l->truncated) {
        /* Close the string so the line stays valid JSON. */
        put_limit(l, "...\"", 4, RP_LOGLINE_MAX - RP_LOGLINE_RESERVE / 2);
        return;
    }
    put(l, "\"", 1);
}

static void begin_common(rp_logline *l)
{
    struct timespec ts;
    struct tm tm;
    char tbuf[64];
    int n;

    l->len = 0;
    l->truncated = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(tbuf, sizeof(tbuf), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000);
    put(l, tbuf, (size_t)n);
}

void rp_logline_begin(rp_logline *l, rp_log_level level, const char *event)
{
    l->fd = err_fd;
    l->skip = level < min_lvl || err_fd < 0;
    if (l->skip)
        return;
    begin_common(l);
    put(l, ",\"level\":\"", 10);
    put(l, level_names[level], strlen(level_names[level]));
    put(l, "\",\"event\":", 10);
    put_escaped(l, event, strlen(event));
}

void rp_logline_begin_access(rp_logline *l)
{
    l->fd = acc_fd;
    l->skip = acc_fd < 0;
    if (l->skip)
        return;
    begin_common(l);
    put(l, ",\"type\":\"access\"", 16);
}

void rp_logline_strn(rp_logline *l, const char *key, const char *val, size_t n)
{
    if (l->skip)
        return;
    put(l, ",", 1);
    put_escaped(l, key, strlen(key));
    put(l, ":", 1);
    if (val == NULL)
        put(l, "null", 4);
    else
        put_escaped(l, val, n);
}

void rp_logline_str(rp_logline *l, const char *key, const char *val)
{
    rp_logline_strn(l, key, val, val ? strlen(val) : 0);
}

void rp_logline_int(rp_logline *l, const char *key, int64_t val)
{
    char nbuf[32];
    int n;

    if (l->skip)
        return;
    put(l, ",", 1);
    put_escaped(l, key, strlen(key));
    n = snprintf(nbuf, sizeof(nbuf), ":%lld", (long long)val);
    put(l, nbuf, (size_t)n);
}

void rp_logline_end(rp_logline *l)
{
    size_t off = 0;

    if (l->skip)
        return;
    put_limit(l, "}\n", 2, RP_LOGLINE_MAX);
    while (off < l->len) {
        ssize_t w = write(l->fd, l->buf + off, l->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing log sink */
        }
        off += (size_t)w;
    }
}

void rp_log_msg(rp_log_level level, const char *event, const char *msg)
{
    rp_logline l;

    rp_logline_begin(&l, level, event);
    rp_logline_str(&l, "message", msg);
    rp_logline_end(&l);
}

void rp_log_err(const char *event, const char *what, int err)
{
    rp_logline l;

    rp_logline_begin(&l, RP_LOG_ERROR, event);
    rp_logline_str(&l, "message", what);
    rp_logline_str(&l, "error", rp_strerror(err));
    rp_logline_end(&l);
}
