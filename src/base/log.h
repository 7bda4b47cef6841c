/*
 * log.h - structured JSON-line logging: an error log and an access log.
 *
 * A line is built with the rp_logline_* calls into a fixed stack buffer (truncated safely,
 * always valid JSON) and written with one write(2), so lines from several threads never
 * interleave. Values are JSON-escaped here; callers never format JSON themselves.
 *
 * Never pass a secret, key, token, credential or query string to these calls: there is no
 * redaction layer behind them, by design - what is logged is decided at the call site.
 */
#ifndef RP_BASE_LOG_H
#define RP_BASE_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RP_LOG_DEBUG, RP_LOG_INFO, RP_LOG_WARN, RP_LOG_ERROR } rp_log_level;

#define RP_LOGLINE_MAX 2048

typedef struct rp_logline {
    char buf[RP_LOGLINE_MAX];
    size_t len;
    int truncated;
    int fd;
    int skip; /* below the threshold or the sink is off: every call is a no-op */
} rp_logline;

/*
 * Configures the sinks. error_fd receives error-log lines at or above min_level; access_fd
 * receives access lines (-1 turns the access log off). Call once at start-up, before threads.
 */
void rp_log_configure(int error_fd, rp_log_level min_level, int access_fd);
int rp_log_access_enabled(void);
/* Parses "debug|info|warn|error"; 0 or RP_EINVAL. */
int rp_log_level_parse(const char *s, rp_log_level *out);

/* Starts an error-log line: {"time":...,"level":...,"event":event */
void rp_logline_begin(rp_logline *l, rp_log_level level, const char *event);
/* Starts an access-log line: {"time":...,"type":"access" */
void rp_logline_begin_access(rp_logline *l);
void rp_logline_str(rp_logline *l, const char *key, const char *val);
void rp_logline_strn(rp_logline *l, const char *key, const char *val, size_t n);
void rp_logline_int(rp_logline *l, const char *key, int64_t val);
/* Closes the object and writes the line. */
void rp_logline_end(rp_logline *l);

/* One-shot helpers for the common case. */
void rp_log_msg(rp_log_level level, const char *event, const char *msg);
void rp_log_err(const char *event, const char *what, int err);

#endif
