/*
 * client.c - client settings (flags > environment > client file), the HTTPS request helpers
 * and the client file writer used by login/logout.
 *
 * Used once per CLI invocation, so clarity beats speed. The three sources are collected first
 * as borrowed strings (the file's values in a parsed JSON object), the winner for each setting
 * is validated under its source's name, and only then copied into the settings. The token is
 * handled as a secret from end to end: the file buffer and the parsed copy are wiped, messages
 * never quote it (not even a JSON parse error, which could echo the bytes near it), and the
 * Authorization header copies are wiped after the request.
 */
#include "cli/client.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/file.h"
#include "base/str.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FILE "/.config/rampart/client.json" /* under $HOME */

/* The value of NAME in envp, or NULL if absent or empty. */
static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);

    if (envp == NULL)
        return NULL;
    for (char **e = envp; *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (*e)[n + 1] != '\0' ? *e + n + 1 : NULL;
    return NULL;
}

/* One candidate value and the name of where it came from (for messages). */
typedef struct source_val {
    const char *val;
    char src[320];
} source_val;

/* Picks the highest-precedence non-NULL value. */
static void pick(source_val *out, const char *flag, const char *flag_name, const char *env,
                 const char *env_name, const char *file_val, const char *file, const char *member)
{
    out->val = NULL;
    out->src[0] = '\0';
    if (flag != NULL) {
        out->val = flag;
        rp_strlcpy(out->src, flag_name, sizeof(out->src));
    } else if (env != NULL) {
        out->val = env;
        rp_strlcpy(out->src, env_name, sizeof(out->src));
    } else if (file_val != NULL) {
        out->val = file_val;
        snprintf(out->src, sizeof(out->src), "%s: %s", file, member);
    }
}

/*
 * Reads the client file into a wiped-on-free buffer and parses it. Returns 0 and *root (NULL
 * when an implicit default file is absent), or an error with a message. With check_mode,
 * refuses a file holding a token that group or others can access.
 */
static int load_file(const char *path, int explicit_path, int check_mode, json_t **root, char *err,
                     size_t errlen)
{
    int fd, rc = 0;
    struct stat st;
    rp_buf b;
    json_error_t jerr;
    json_t *j = NULL, *tok;
    const char *member;
    json_t *v;

    rp_buf_init(&b, RP_CLIENT_FILE_MAX);
    *root = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && !explicit_path)
            return 0;
        return rp_errf(err, errlen, e == ENOENT ? RP_ENOENT : RP_EIO, "%s: %s", path, strerror(e));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rp_errf(err, errlen, RP_EIO, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > RP_CLIENT_FILE_MAX) {
        rc = rp_errf(err, errlen, RP_ETOOBIG, "%s: larger than %d bytes", path, RP_CLIENT_FILE_MAX);
        goto out;
    }
    rc = rp_buf_reserve(&b, (size_t)st.st_size);
    if (rc != 0)
        goto out;
    for (;;) {
        char chunk[4096];
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = rp_errf(err, errlen, RP_EIO, "%s: %s", path, strerror(errno));
            OPENSSL_cleanse(chunk, sizeof(chunk));
            goto out;
        }
        if (r == 0)
            break;
        rc = rp_buf_append(&b, chunk, (size_t)r);
        OPENSSL_cleanse(chunk, sizeof(chunk));
        if (rc == RP_ETOOBIG)
            rc = rp_errf(err, errlen, RP_ETOOBIG, "%s: larger than %d bytes", path,
                         RP_CLIENT_FILE_MAX);
        if (rc != 0)
            goto out;
    }
    /* jerr.text can quote the bytes near the error, which may be the token: not reported. */
    j = json_loadb(b.data ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        rc = j == NULL ? rp_errf(err, errlen, RP_EPARSE, "%s: invalid JSON at line %d column %d",
                                 path, jerr.line, jerr.column)
                       : rp_errf(err, errlen, RP_EPARSE, "%s: must hold a JSON object", path);
        goto out;
    }
    json_object_foreach(j, member, v)
    {
        if (strcmp(member, "expiresAt") == 0) {
            if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 0)) {
                rc = rp_errf(err, errlen, RP_EINVAL, "%s: expiresAt: must be Unix seconds", path);
                goto out;
            }
            continue;
        }
        if (strcmp(member, "url") != 0 && strcmp(member, "ca") != 0 &&
            strcmp(member, "token") != 0) {
            rc = rp_errf(err, errlen, RP_EPARSE,
                         "%s: unknown key (expected \"url\", \"ca\", \"token\" and "
                         "\"expiresAt\")",
                         path);
            goto out;
        }
        if (!json_is_null(v) &&
            (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s: %s: must be a string", path, member);
            goto out;
        }
    }
    tok = json_object_get(j, "token");
    if (check_mode && json_is_string(tok) && (st.st_mode & 077) != 0) {
        rc = rp_errf(err, errlen, RP_EPERM,
                     "%s: holds a token but is accessible by group or others (mode %04o); "
                     "run: chmod 600 %s",
                     path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    *root = j;
    j = NULL;
out:
    if (j != NULL) {
        tok = json_object_get(j, "token");
        if (json_is_string(tok))
            OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
        json_decref(j);
    }
    rp_buf_free_secret(&b);
    close(fd);
    return rc;
}

/* Checks an https URL and stores a copy without trailing slashes in *out. */
static int take_url(const source_val *sv, char **out, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *part = NULL;
    size_t n;
    int rc = 0;

    if (u == NULL)
        return RP_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, sv->val, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rc = rp_errf(err, errlen, RP_EINVAL, "%s: not a valid URL (expected https://HOST[:PORT])",
                     sv->src);
        goto out;
    }
    if (strcmp(scheme, "http") == 0) {
        rc = rp_errf(err, errlen, RP_EINVAL,
                     "%s: http:// is refused: the server's plain-HTTP port only redirects and a "
                     "token must not travel in clear; use https://",
                     sv->src);
        goto out;
    }
    if (strcmp(scheme, "https") != 0) {
        rc = rp_errf(err, errlen, RP_EINVAL, "%s: must be an https:// URL", sv->src);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
        rc = rp_errf(err, errlen, RP_EINVAL,
                     "%s: must not hold user or password (use a token instead)", sv->src);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
        rc = rp_errf(err, errlen, RP_EINVAL, "%s: must not have a query or fragment", sv->src);
        goto out;
    }
    n = strlen(sv->val);
    while (n > 0 && sv->val[n - 1] == '/')
        n--;
    *out = rp_strndup(sv->val, n);
    if (*out == NULL)
        rc = RP_ENOMEM;
out:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static int take_ca(const source_val *sv, char **out, char *err, size_t errlen)
{
    int fd;

    if (sv->val[0] == '\0')
        return rp_errf(err, errlen, RP_EINVAL, "%s: must be a non-empty path", sv->src);
    /* Checked here so the operator hears "no such file" rather than a TLS error later. */
    fd = open(sv->val, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rp_errf(err, errlen, RP_EINVAL, "%s: %s: %s", sv->src, sv->val, strerror(errno));
    close(fd);
    *out = rp_strdup(sv->val);
    return *out == NULL ? RP_ENOMEM : 0;
}

static int take_token(const source_val *sv, char **out, char *err, size_t errlen)
{
    size_t n = strlen(sv->val);

    /* Printable ASCII without space: anything else could split or inject a header line. */
    if (n == 0 || n > RP_CLIENT_TOKEN_MAX)
        return rp_errf(err, errlen, RP_EINVAL, "%s: token must be 1 to %d characters", sv->src,
                       RP_CLIENT_TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
        if (sv->val[i] < 0x21 || sv->val[i] > 0x7e)
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s: token must be printable ASCII without spaces", sv->src);
    *out = rp_strdup(sv->val);
    return *out == NULL ? RP_ENOMEM : 0;
}

static const char *file_str(json_t *root, const char *member)
{
    return json_string_value(json_object_get(root, member)); /* NULL for null / missing */
}

int rp_client_settings_load(rp_client_settings *s, const char *file, char **envp,
                            const char *flag_url, const char *flag_ca, const char *flag_token,
                            char *err, size_t errlen)
{
    char *default_path = NULL;
    const char *path = file, *home;
    json_t *root = NULL;
    source_val sv;
    int rc;

    memset(s, 0, sizeof(*s));
    if (path == NULL && (home = env_get(envp, "HOME")) != NULL) {
        size_t n;
        if (rp_size_add(strlen(home), sizeof(DEFAULT_FILE), &n) != 0)
            return RP_ETOOBIG;
        default_path = rp_malloc(n);
        if (default_path == NULL)
            return RP_ENOMEM;
        snprintf(default_path, n, "%s%s", home, DEFAULT_FILE);
        path = default_path;
    }
    if (path != NULL) {
        rc = load_file(path, file != NULL, 1, &root, err, errlen);
        if (rc != 0)
            goto out;
    }

    pick(&sv, flag_url, "--url", env_get(envp, "RAMPART_URL"), "RAMPART_URL", file_str(root, "url"),
         path, "url");
    if (sv.val != NULL && (rc = take_url(&sv, &s->url, err, errlen)) != 0)
        goto out;
    pick(&sv, flag_ca, "--ca", env_get(envp, "RAMPART_CA"), "RAMPART_CA", file_str(root, "ca"),
         path, "ca");
    if (sv.val != NULL && (rc = take_ca(&sv, &s->ca_file, err, errlen)) != 0)
        goto out;
    pick(&sv, flag_token, "--token", env_get(envp, "RAMPART_TOKEN"), "RAMPART_TOKEN",
         file_str(root, "token"), path, "token");
    if (sv.val != NULL && sv.val == file_str(root, "token")) {
        json_int_t exp = json_integer_value(json_object_get(root, "expiresAt")); /* 0 if absent */

        if (exp > 0 && (int64_t)exp <= (int64_t)time(NULL)) {
            /* An expired login is not sent: the server would only refuse it. */
            s->token_expired = 1;
            sv.val = NULL;
        } else {
            s->token_expires_at = (int64_t)exp;
        }
    }
    if (sv.val != NULL && (rc = take_token(&sv, &s->token, err, errlen)) != 0)
        goto out;
    rc = 0;
out:
    if (root != NULL) {
        json_t *tok = json_object_get(root, "token");
        if (json_is_string(tok))
            OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
        json_decref(root);
    }
    rp_free(default_path);
    if (rc != 0)
        rp_client_settings_free(s);
    return rc;
}

void rp_client_settings_free(rp_client_settings *s)
{
    if (s == NULL)
        return;
    if (s->token != NULL)
        OPENSSL_cleanse(s->token, strlen(s->token));
    rp_free(s->token);
    rp_free(s->url);
    rp_free(s->ca_file);
    memset(s, 0, sizeof(*s));
}

/* ---- requests ---- */

typedef struct sink {
    rp_buf *out;
    size_t limit;
    int too_big;
    int nomem;
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    sink *k = arg;
    size_t n = size * nmemb; /* libcurl guarantees size == 1 */

    if (k->out->len > k->limit || n > k->limit - k->out->len) {
        k->too_big = 1;
        return 0;
    }
    if (rp_buf_append(k->out, p, n) != 0) {
        k->nomem = 1;
        return 0;
    }
    return n;
}

static int map_curl(CURLcode cc, const sink *k)
{
    if (k->too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return RP_ETOOBIG;
    if (k->nomem || cc == CURLE_OUT_OF_MEMORY)
        return RP_ENOMEM;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: return RP_ETIMEDOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED: return RP_ECRYPTO;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return RP_EINVAL;
    default: return RP_EIO;
    }
}

/* Appends one header line to *list. 0 or RP_ENOMEM (the list is unchanged). */
static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return RP_ENOMEM;
    *list = l;
    return 0;
}

/* What one request sends; every pointer is borrowed. */
typedef struct req {
    const char *method;       /* upper-case token */
    const char *url;          /* full URL */
    const char *content_type; /* NULL = no body */
    const char *body;         /* content_type != NULL: body[0..body_len) */
    size_t body_len;
    const char *token; /* NULL = no Authorization header */
    /* Uploads (rp_client_upload): the body is read from fd; zero values elsewhere. */
    int fd;
    uint64_t fd_len;
    const char *connect_to; /* CURLOPT_CONNECT_TO entry, or NULL */
    rp_client_progress_fn progress;
    void *progress_arg;
} req;

static size_t on_upload_read(char *buf, size_t size, size_t nitems, void *arg)
{
    const req *q = arg;
    ssize_t r;

    do {
        r = read(q->fd, buf, size * nitems);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const req *q = arg;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    q->progress((uint64_t)ulnow, q->fd_len, q->progress_arg);
    return 0;
}

/*
 * The one place a request goes out: TLS rules, limits, headers. Messages name the method and
 * the URL without its query string, never a header or the body.
 */
static int perform(const rp_client_settings *s, const req *q, long *status, rp_buf *out, char *err,
                   size_t errlen)
{
    CURL *h = NULL;
    struct curl_slist *headers = NULL, *hdr = NULL, *connect_list = NULL;
    char errbuf[CURL_ERROR_SIZE];
    rp_buf auth;
    sink k;
    CURLcode cc;
    int rc = 0, is_post = strcmp(q->method, "POST") == 0;
    size_t shown = strcspn(q->url, "?");

    /* Messages show the URL without its query string, which may carry parameters. */
    if (shown > 512)
        shown = 512;
    rp_buf_init(&auth, RP_CLIENT_TOKEN_MAX + 64);
    h = curl_easy_init();
    if (h == NULL) {
        rc = rp_errf(err, errlen, RP_ENOMEM, "cannot initialise libcurl");
        goto out;
    }
    k = (sink){out, RP_CLIENT_BODY_MAX < out->max ? RP_CLIENT_BODY_MAX : out->max, 0, 0};
    errbuf[0] = '\0';
    if ((rc = add_header(&headers, "Accept: application/json")) != 0 ||
        (rc = add_header(&headers, "Expect:")) != 0)
        goto out;
    if (q->content_type != NULL) {
        if ((rc = rp_buf_appendf(&auth, "Content-Type: %s", q->content_type)) != 0 ||
            (rc = add_header(&headers, auth.data)) != 0)
            goto out;
        rp_buf_reset(&auth);
    } else if (is_post && (rc = add_header(&headers, "Content-Type:")) != 0) {
        goto out; /* libcurl would label an empty POST as a form; it is no body at all */
    }
    if (q->token != NULL) {
        if (rp_buf_appendf(&auth, "Authorization: Bearer %s", q->token) != 0 ||
            add_header(&headers, auth.data) != 0) {
            rc = RP_ENOMEM;
            goto out;
        }
    }
    if (curl_easy_setopt(h, CURLOPT_URL, q->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        (s->ca_file != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file) != CURLE_OK) ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "rampart/" RP_VERSION) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)RP_CLIENT_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)k.limit) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &k) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK) {
        rc = rp_errf(err, errlen, RP_EIO, "libcurl lacks a required option (too old?)");
        goto out;
    }
    if (q->fd >= 0) {
        /* A streamed upload: POST with the body read from the file as curl sends it, a long
         * deadline (a large archive over a slow link) but none for a stalled transfer. */
        if (curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload_read) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_READDATA, (void *)q) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->fd_len) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)RP_CLIENT_UPLOAD_TIMEOUT_MS) !=
                CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L) != CURLE_OK ||
            (q->progress != NULL &&
             (curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
              curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)q) != CURLE_OK))) {
            rc = rp_errf(err, errlen, RP_EIO, "libcurl refused the upload options");
            goto out;
        }
        if (q->connect_to != NULL) {
            connect_list = curl_slist_append(NULL, q->connect_to);
            if (connect_list == NULL ||
                curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_list) != CURLE_OK) {
                rc = rp_errf(err, errlen, RP_ENOMEM, "libcurl refused the connection target");
                goto out;
            }
        }
    } else if ((q->content_type != NULL || is_post) &&
               (curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len) !=
                    CURLE_OK ||
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->content_type != NULL ? q->body : "") !=
                    CURLE_OK)) {
        rc = rp_errf(err, errlen, RP_EIO, "libcurl refused the request body");
        goto out;
    }
    if (!is_post && strcmp(q->method, "GET") != 0 &&
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method) != CURLE_OK) {
        rc = rp_errf(err, errlen, RP_EIO, "libcurl refused the method");
        goto out;
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = map_curl(cc, &k);
        if (rc == RP_ETOOBIG)
            rp_errf(err, errlen, rc, "%s %.*s: response body larger than %zu bytes", q->method,
                    (int)shown, q->url, k.limit);
        else
            rp_errf(err, errlen, rc, "%s %.*s: %s", q->method, (int)shown, q->url,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
        rc = rp_errf(err, errlen, RP_EIO, "%s %.*s: no response status", q->method, (int)shown,
                     q->url);
        goto out;
    }
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(connect_list);
    for (hdr = headers; hdr != NULL; hdr = hdr->next)
        OPENSSL_cleanse(hdr->data, strlen(hdr->data));
    curl_slist_free_all(headers);
    rp_buf_free_secret(&auth);
    return rc;
}

/* An HTTP method token as this client sends them: 1-16 upper-case letters. */
static int valid_method(const char *m)
{
    size_t n = m == NULL ? 0 : strlen(m);

    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

int rp_client_request(const rp_client_settings *s, const char *method, const char *path,
                      const json_t *body, long *status, rp_buf *out, char *err, size_t errlen)
{
    rp_buf url;
    char *text = NULL;
    req q;
    int rc;

    if (s == NULL || s->url == NULL)
        return rp_errf(err, errlen, RP_EINVAL,
                       "no server URL: pass --url, set RAMPART_URL or put \"url\" in the client "
                       "file");
    if (!valid_method(method))
        return rp_errf(err, errlen, RP_EINVAL, "request method must be an upper-case token");
    if (path == NULL || path[0] != '/' || strpbrk(path, " \r\n\t") != NULL)
        return rp_errf(err, errlen, RP_EINVAL,
                       "request path must start with '/' and hold no "
                       "spaces or line breaks");
    rp_buf_init(&url, 16384);
    if (rp_buf_append_str(&url, s->url) != 0 || rp_buf_append_str(&url, path) != 0) {
        rc = rp_errf(err, errlen, RP_ETOOBIG, "request URL too long");
        goto out;
    }
    q = (req){method, url.data, NULL, NULL, 0, s->token, -1, 0, NULL, NULL, NULL};
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL) {
            rc = rp_errf(err, errlen, RP_ENOMEM, "%s %s: cannot encode the request body", method,
                         path);
            goto out;
        }
        q.content_type = "application/json";
        q.body = text;
        q.body_len = strlen(text);
    }
    rc = perform(s, &q, status, out, err, errlen);
out:
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text); /* jansson's allocator */
    }
    rp_buf_free(&url);
    return rc;
}

int rp_client_get(const rp_client_settings *s, const char *path, long *status, rp_buf *out,
                  char *err, size_t errlen)
{
    return rp_client_request(s, "GET", path, NULL, status, out, err, errlen);
}

int rp_client_post_form(const rp_client_settings *s, const char *url, const char *const *form,
                        long *status, rp_buf *out, char *err, size_t errlen)
{
    CURL *h = NULL;
    rp_buf body;
    req q;
    int rc = 0;

    if (s == NULL || url == NULL || form == NULL)
        return rp_errf(err, errlen, RP_EINVAL, "form POST without a URL or a form");
    if (strncmp(url, "https://", 8) != 0 || strpbrk(url, " \r\n\t") != NULL)
        return rp_errf(err, errlen, RP_EINVAL,
                       "form POST: the URL must be https:// and hold no "
                       "spaces or line breaks");
    rp_buf_init(&body, 64 * 1024);
    h = curl_easy_init(); /* only for curl_easy_escape */
    if (h == NULL) {
        rc = rp_errf(err, errlen, RP_ENOMEM, "cannot initialise libcurl");
        goto out;
    }
    for (size_t i = 0; form[i] != NULL; i += 2) {
        char *ename, *evalue;

        if (form[i + 1] == NULL) {
            rc = rp_errf(err, errlen, RP_EINVAL, "form POST: %s has no value", form[i]);
            break;
        }
        ename = curl_easy_escape(h, form[i], 0);
        evalue = curl_easy_escape(h, form[i + 1], 0);

        if (ename == NULL || evalue == NULL ||
            rp_buf_appendf(&body, "%s%s=%s", i == 0 ? "" : "&", ename, evalue) != 0)
            rc = rp_errf(err, errlen, RP_ETOOBIG, "form POST: the form is too large");
        if (evalue != NULL)
            OPENSSL_cleanse(evalue, strlen(evalue)); /* the value may be a client secret */
        curl_free(evalue);
        curl_free(ename);
        if (rc != 0)
            break;
    }
    if (rc != 0)
        goto out;
    q = (req){"POST",
              url,
              "application/x-www-form-urlencoded",
              body.data ? body.data : "",
              body.len,
              NULL,
              -1,
              0,
              NULL,
              NULL,
              NULL};
    rc = perform(s, &q, status, out, err, errlen);
out:
    curl_easy_cleanup(h);
    rp_buf_free_secret(&body);
    return rc;
}

int rp_client_upload(const rp_client_settings *s, const char *url, int fd, uint64_t len,
                     const char *content_type, rp_client_progress_fn progress, void *arg,
                     long *status, rp_buf *out, char *err, size_t errlen)
{
    char connect_to[600], host[300];
    const char *p, *end, *colon;
    req q;

    if (s == NULL || s->url == NULL || url == NULL || fd < 0 || content_type == NULL)
        return rp_errf(err, errlen, RP_EINVAL, "upload without a server, a URL or a file");
    if (strncmp(url, "https://", 8) != 0 || strpbrk(url, " \r\n\t") != NULL)
        return rp_errf(err, errlen, RP_EINVAL,
                       "upload: the URL must be https:// and hold no spaces or line breaks");
    /* Whatever host the URL names is reached where the management URL points (the same
     * server answers every host name of the platform), so *.scm.D needs no DNS entry. */
    p = s->url + 8;
    end = p + strcspn(p, "/");
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL)
            return rp_errf(err, errlen, RP_EINVAL, "the server URL has a bad IPv6 address");
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    if ((size_t)((colon ? colon : end) - p) >= sizeof(host))
        return rp_errf(err, errlen, RP_ETOOBIG, "the server URL's host is too long");
    memcpy(host, p, (size_t)((colon ? colon : end) - p));
    host[(colon ? colon : end) - p] = '\0';
    snprintf(connect_to, sizeof(connect_to), "::%s:%.*s", host, colon ? (int)(end - colon - 1) : 3,
             colon ? colon + 1 : "443");
    q = (req){"POST", url, content_type, NULL, 0, s->token, fd, len, connect_to, progress, arg};
    return perform(s, &q, status, out, err, errlen);
}

/* ---- the client file: login and logout ---- */

int rp_client_file_path(const char *file, char **envp, char *out, size_t cap)
{
    const char *home;
    int n;

    if (file != NULL)
        return rp_strlcpy(out, file, cap);
    home = env_get(envp, "HOME");
    if (home == NULL)
        return RP_EINVAL;
    n = snprintf(out, cap, "%s%s", home, DEFAULT_FILE);
    return n < 0 || (size_t)n >= cap ? RP_ETOOBIG : 0;
}

/* Creates the parent directories of path that are missing, mode 0700. 0 or RP_EIO. */
static int make_parents(const char *path)
{
    char dir[4096];
    size_t n = strlen(path);

    if (n >= sizeof(dir))
        return RP_ETOOBIG;
    memcpy(dir, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            dir[i] = '/';
            return RP_EIO;
        }
        dir[i] = '/';
    }
    return 0;
}

int rp_client_file_store(const char *file, char **envp, const char *url, const char *ca,
                         const char *token, int64_t expires_at, char *err, size_t errlen)
{
    char path[4096];
    json_t *root = NULL, *tok;
    char *text = NULL;
    int rc;

    rc = rp_client_file_path(file, envp, path, sizeof(path));
    if (rc != 0)
        return rp_errf(err, errlen, RP_EINVAL, "no client file: HOME is not set");
    if (token != NULL) {
        source_val sv = {token, "token"};
        char *copy = NULL;

        /* The same rule the loader applies, so what login writes can be read back. */
        if ((rc = take_token(&sv, &copy, err, errlen)) != 0)
            return rc;
        OPENSSL_cleanse(copy, strlen(copy));
        rp_free(copy);
    }
    rc = load_file(path, 0, 0, &root, err, errlen);
    if (rc != 0)
        goto out;
    if (root == NULL && (root = json_object()) == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    tok = json_object_get(root, "token");
    if (json_is_string(tok))
        OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
    if ((url != NULL && json_object_set_new(root, "url", json_string(url)) != 0) ||
        (ca != NULL && json_object_set_new(root, "ca", json_string(ca)) != 0)) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (token == NULL) {
        json_object_del(root, "token");
        json_object_del(root, "expiresAt");
    } else {
        if (json_object_set_new(root, "token", json_string(token)) != 0 ||
            (expires_at > 0 &&
             json_object_set_new(root, "expiresAt", json_integer(expires_at)) != 0)) {
            rc = RP_ENOMEM;
            goto out;
        }
        if (expires_at <= 0)
            json_object_del(root, "expiresAt");
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (make_parents(path) != 0) {
        rc = rp_errf(err, errlen, RP_EIO, "%s: cannot create its directory: %s", path,
                     strerror(errno));
        goto out;
    }
    rc = rp_file_write_atomic(path, text, strlen(text), 0600);
    if (rc != 0)
        rp_errf(err, errlen, rc, "%s: cannot write: %s", path, rp_strerror(rc));
out:
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    if (root != NULL) {
        tok = json_object_get(root, "token");
        if (json_is_string(tok))
            OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
        json_decref(root);
    }
    return rc;
}
