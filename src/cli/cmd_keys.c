/*
 * cmd_keys.c - `rampart keys status|rotate-root`, `rampart unseal`, and the key provider
 * options of `rampart init` (cmd_keys.h).
 *
 * keys is a thin client of /api/keys through rp_cli_request. unseal cannot use the management
 * client: that one speaks only https:// (a token must never travel in clear), while the sealed
 * server has no TLS key it could use yet - the key is sealed too - and listens in plain HTTP on
 * loopback only. So unseal makes its one request with libcurl directly, restricted to the http
 * protocol, no proxy, no redirects, a 10 s deadline, to an endpoint rebuilt from a URL whose
 * host was checked to be loopback.
 *
 * Secrets: a passphrase or PIN is read into a fixed buffer (never through stdio, whose buffer
 * would keep a copy), copied at most into the JSON body of the unseal request and jansson's
 * string for it, and every copy is wiped with OPENSSL_cleanse before it is released. No
 * message names one; errors name the file or the variable it came from.
 */
#include "cli/cmd_keys.h"
#include "base/err.h"
#include "base/file.h"
#include "base/str.h"
#include "server/unseal.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

#define UNSEAL_TIMEOUT_MS 10000
#define UNSEAL_ANSWER_MAX (64 * 1024)
/* The unseal body: {"passphrase":"..."} with every byte escaped at worst as \uXXXX. */
#define UNSEAL_BODY_CAP (RP_CMD_PASSPHRASE_MAX * 6 + 64)

_Static_assert(RP_CMD_PASSPHRASE_MAX == RP_UNSEAL_PASSPHRASE_MAX,
               "the client accepts what the sealed server accepts");

/* ---------------------------------------------------------------- reading secrets */

static const char *env_value(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (char **e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=' && (*e)[n + 1] != '\0')
            return *e + n + 1;
    return NULL;
}

/*
 * A secret from a file that only its owner may use (the ssh rule): the whole file, less one
 * line end, must be one line of at most cap - 1 bytes. Into out[cap] with *len. RP_EXIT_OK or
 * RP_EXIT_CONFIG after printing why (naming the file, never the content).
 */
static int secret_from_file(const char *what, const char *file, char *out, size_t cap, size_t *len)
{
    rp_buf b;
    size_t n;
    int rc, exitc = RP_EXIT_OK;

    rp_buf_init(&b, cap + 1); /* room for "\r\n" after the longest secret */
    rc = rp_file_read_private(file, &b);
    if (rc != 0) {
        exitc = rp_cli_fail(RP_EXIT_CONFIG, "%s: %s", file,
                            rc == RP_ENOENT  ? "no such file"
                            : rc == RP_EPERM ? "group or others have access to it (chmod 600)"
                            : rc == RP_ETOOBIG
                                ? "too large to hold a passphrase or PIN"
                                : "cannot be read (it must be a regular file, not a link)");
        goto out;
    }
    n = b.len;
    if (n > 0 && b.data[n - 1] == '\n')
        n--;
    if (n > 0 && b.data[n - 1] == '\r')
        n--;
    if (n == 0 || n >= cap || memchr(b.data, '\0', n) != NULL || memchr(b.data, '\n', n) != NULL ||
        memchr(b.data, '\r', n) != NULL) {
        exitc = rp_cli_fail(RP_EXIT_CONFIG, "%s: must hold the %s on one line (1 to %zu bytes)",
                            file, what, cap - 1);
        goto out;
    }
    memcpy(out, b.data, n);
    out[n] = '\0';
    *len = n;
out:
    rp_buf_free_secret(&b);
    return exitc;
}

/*
 * The passphrase into out[RP_CMD_PASSPHRASE_MAX + 1] and *len: from file if not NULL, else
 * RAMPART_PASSPHRASE, else stdin. With confirm, a passphrase typed on a terminal is asked for
 * twice and must match. RP_EXIT_OK or an exit code (printed); on failure out is wiped.
 */
static int passphrase_get(const char *file, char **envp, int confirm, char *out, size_t *len)
{
    const size_t cap = RP_CMD_PASSPHRASE_MAX + 1;
    const char *env;
    char again[RP_CMD_PASSPHRASE_MAX + 1];
    size_t alen = 0;
    int exitc;

    *len = 0;
    if (file != NULL)
        return secret_from_file("passphrase", file, out, cap, len);
    env = env_value(envp, "RAMPART_PASSPHRASE");
    if (env != NULL) {
        if (strlen(env) >= cap)
            return rp_cli_usage_error("RAMPART_PASSPHRASE is longer than %d bytes",
                                      RP_CMD_PASSPHRASE_MAX);
        *len = strlen(env);
        memcpy(out, env, *len + 1);
        return RP_EXIT_OK;
    }
    exitc = rp_cli_read_secret("Passphrase: ", "passphrase", out, cap, len);
    if (exitc != RP_EXIT_OK || !confirm || !isatty(STDIN_FILENO))
        return exitc;
    exitc = rp_cli_read_secret("Again: ", "passphrase", again, sizeof(again), &alen);
    if (exitc == RP_EXIT_OK && (alen != *len || CRYPTO_memcmp(again, out, alen) != 0))
        exitc = rp_cli_usage_error("the passphrases do not match");
    OPENSSL_cleanse(again, sizeof(again));
    if (exitc != RP_EXIT_OK) {
        OPENSSL_cleanse(out, cap);
        *len = 0;
    }
    return exitc;
}

/* ---------------------------------------------------------------- init's key options */

/* Counts UTF-8 code points (continuation bytes do not start a character). */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            c++;
    return c;
}

int rp_cmd_init_keys_load(rp_cmd_init_keys *k, const rp_opt *opts, size_t nopts, char **envp)
{
    const char *prov = rp_opt_get(opts, nopts, "key-provider");
    const char *pfile = rp_opt_get(opts, nopts, "passphrase-file");
    const char *module = rp_opt_get(opts, nopts, "pkcs11-module");
    const char *token = rp_opt_get(opts, nopts, "pkcs11-token");
    const char *pinfile = rp_opt_get(opts, nopts, "pkcs11-pin-file");
    const char *env;
    size_t len = 0;
    int exitc;

    memset(k, 0, sizeof(*k));
    if (prov == NULL || strcmp(prov, "file") == 0)
        k->ko.provider = RP_ROOT_FILE;
    else if (strcmp(prov, "passphrase") == 0)
        k->ko.provider = RP_ROOT_PASSPHRASE;
    else if (strcmp(prov, "pkcs11") == 0)
        k->ko.provider = RP_ROOT_PKCS11;
    else
        return rp_cli_usage_error("--key-provider must be file, passphrase or pkcs11");
    if (pfile != NULL && k->ko.provider != RP_ROOT_PASSPHRASE)
        return rp_cli_usage_error("--passphrase-file goes with --key-provider passphrase");
    if ((module != NULL || token != NULL || pinfile != NULL) && k->ko.provider != RP_ROOT_PKCS11)
        return rp_cli_usage_error("--pkcs11-module, --pkcs11-token and --pkcs11-pin-file go with "
                                  "--key-provider pkcs11");
    if (k->ko.provider == RP_ROOT_PASSPHRASE) {
        exitc = passphrase_get(pfile, envp, 1, k->passphrase, &len);
        if (exitc != RP_EXIT_OK)
            return exitc;
        if (utf8_chars(k->passphrase, len) < RP_CMD_PASSPHRASE_MIN) {
            OPENSSL_cleanse(k->passphrase, sizeof(k->passphrase));
            return rp_cli_usage_error("the passphrase must have at least %d characters",
                                      RP_CMD_PASSPHRASE_MIN);
        }
        k->ko.passphrase = k->passphrase;
        k->ko.passphrase_len = len;
    } else if (k->ko.provider == RP_ROOT_PKCS11) {
        if (module == NULL || module[0] == '\0' || token == NULL || token[0] == '\0')
            return rp_cli_usage_error("--key-provider pkcs11 needs --pkcs11-module PATH and "
                                      "--pkcs11-token LABEL");
        if (pinfile != NULL) {
            exitc = secret_from_file("PIN", pinfile, k->pin, sizeof(k->pin), &len);
            if (exitc != RP_EXIT_OK)
                return exitc;
        } else if ((env = env_value(envp, "RAMPART_PKCS11_PIN")) != NULL) {
            if (strlen(env) >= sizeof(k->pin))
                return rp_cli_usage_error("RAMPART_PKCS11_PIN is longer than %d bytes",
                                          RP_CMD_PIN_MAX);
            memcpy(k->pin, env, strlen(env) + 1);
        } else {
            return rp_cli_usage_error("--key-provider pkcs11 needs the user PIN: "
                                      "--pkcs11-pin-file FILE or RAMPART_PKCS11_PIN");
        }
        k->ko.pkcs11_module = module;
        k->ko.pkcs11_token = token;
        k->ko.pkcs11_pin = k->pin;
    }
    return RP_EXIT_OK;
}

void rp_cmd_init_keys_wipe(rp_cmd_init_keys *k)
{
    if (k != NULL)
        OPENSSL_cleanse(k, sizeof(*k));
}

/* ---------------------------------------------------------------- keys */

static int keys_status(int argc, char **argv, char **envp)
{
    static const rp_col f[] = {
        {"root key provider", "provider", RP_COL_TEXT},
        {"generation", "generation", RP_COL_TEXT},
        {"resource keys", "keks", RP_COL_TEXT},
        {"customer-managed", "cmkKeks", RP_COL_TEXT},
    };
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0, "rampart keys status", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = rp_cli_request(&c, "GET", "/api/keys", NULL, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json)
        rp_cli_print_json(json_incref(answer));
    else if (rc == RP_EXIT_OK)
        rp_cli_fields(stdout, f, NOPTS(f), answer);
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int keys_rotate_root(int argc, char **argv, char **envp)
{
    static const rp_col gen = {"generation", "generation", RP_COL_TEXT};
    static const rp_col keks = {"keks", "keks", RP_COL_TEXT};
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char g[64], k[64];
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0, "rampart keys rotate-root", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = rp_cli_request(&c, "POST", "/api/keys/rotate-root", NULL, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        rp_cli_cell(answer, &gen, g, sizeof(g));
        rp_cli_cell(answer, &keks, k, sizeof(k));
        printf("root key rotated: generation %s (%s keys re-wrapped)\n", g, k);
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

int rp_cmd_keys(int argc, char **argv, char **envp)
{
    if (argc < 1)
        return rp_cli_usage_error("keys needs a subcommand: status, rotate-root");
    if (strcmp(argv[0], "status") == 0)
        return keys_status(argc - 1, argv + 1, envp);
    if (strcmp(argv[0], "rotate-root") == 0)
        return keys_rotate_root(argc - 1, argv + 1, envp);
    return rp_cli_usage_error("unknown keys subcommand '%.60s' (expected status, rotate-root)",
                              argv[0]);
}

/* ---------------------------------------------------------------- unseal */

int rp_cmd_unseal_endpoint(const char *url, char *out, size_t cap)
{
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *x = NULL;
    int rc = RP_EINVAL, n;

    if (cap > 0)
        out[0] = '\0';
    if (url == NULL || (u = curl_url()) == NULL)
        return url == NULL ? RP_EINVAL : RP_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || strcmp(scheme, "http") != 0 ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    /* Only loopback: the passphrase must not leave this machine (and libcurl resolves
     * "localhost" to loopback itself, without asking DNS). */
    if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "[::1]") != 0 &&
        strcasecmp(host, "localhost") != 0)
        goto out;
    if (curl_url_get(u, CURLUPART_ZONEID, &x, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_USER, &x, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &x, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &x, 0) == CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
        (strcmp(path, "/") != 0 && strcmp(path, "/unseal") != 0))
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL; /* none given: 80 */
    n = snprintf(out, cap, "http://%s%s%s/unseal",
                 strcasecmp(host, "localhost") == 0 ? "localhost" : host, port != NULL ? ":" : "",
                 port != NULL ? port : "");
    rc = n >= 0 && (size_t)n < cap ? 0 : RP_ETOOBIG;
    if (rc != 0 && cap > 0)
        out[0] = '\0';
out:
    curl_free(x);
    curl_free(path);
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static size_t on_answer(char *p, size_t size, size_t n, void *arg)
{
    (void)size; /* always 1 */
    return rp_buf_append(arg, p, n) == 0 ? n : 0;
}

/*
 * POSTs body[0..len) as JSON to endpoint (http only, no proxy, no redirects) and collects the
 * answer in out. 0 and *status, or RP_EIO / RP_ETIMEDOUT / RP_ENOMEM with err saying why.
 */
static int unseal_post(const char *endpoint, const char *body, size_t len, long *status,
                       rp_buf *out, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    struct curl_slist *headers = NULL, *l;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode cc;
    int rc = 0;

    errbuf[0] = '\0';
    if (h == NULL) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return RP_ENOMEM;
    }
    /* "Expect:" keeps libcurl from waiting for a 100 Continue the server never sends. */
    for (size_t i = 0; i < 2; i++) {
        l = curl_slist_append(headers, i == 0 ? "Content-Type: application/json" : "Expect:");
        if (l == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = RP_ENOMEM;
            goto out;
        }
        headers = l;
    }
    if (curl_easy_setopt(h, CURLOPT_URL, endpoint) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "rampart/" RP_VERSION) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)UNSEAL_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK) {
        snprintf(err, errlen, "cannot set up the request (libcurl without http?)");
        rc = RP_EIO;
        goto out;
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "cannot reach the sealed server at %s: %s", endpoint,
                 cc == CURLE_WRITE_ERROR ? "the answer is too large"
                 : errbuf[0]             ? errbuf
                                         : curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? RP_ETIMEDOUT : RP_EIO;
        goto out;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
        snprintf(err, errlen, "no answer from %s", endpoint);
        rc = RP_EIO;
    }
out:
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc;
}

/*
 * {"passphrase":"..."} for pass[0..len) into body[cap] with *blen, through jansson (escaping)
 * without heap copies except jansson's string, which is wiped. RP_EXIT_OK, or RP_EXIT_USAGE
 * when the passphrase is not UTF-8 text.
 */
static int unseal_body(const char *pass, size_t len, char *body, size_t cap, size_t *blen)
{
    json_t *o = json_object(), *s = json_stringn(pass, len);
    size_t n = 0;
    int exitc = RP_EXIT_OK;

    if (s == NULL) {
        exitc = o != NULL ? rp_cli_usage_error("the passphrase must be UTF-8 text")
                          : rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    if (o == NULL || json_object_set(o, "passphrase", s) != 0 ||
        (n = json_dumpb(o, body, cap, JSON_COMPACT)) == 0 || n > cap) {
        exitc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    *blen = n;
out:
    if (s != NULL)
        OPENSSL_cleanse((void *)json_string_value(s), json_string_length(s));
    json_decref(s);
    json_decref(o);
    return exitc;
}

int rp_cmd_unseal(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPT("url", RP_OPT_VALUE), RP_OPT("passphrase-file", RP_OPT_VALUE),
                     RP_OPT("output", RP_OPT_VALUE)};
    static const char usage[] = "rampart unseal [--url http://127.0.0.1:8459] "
                                "[--passphrase-file FILE]";
    char endpoint[RP_CMD_UNSEAL_URL_MAX], pass[RP_CMD_PASSPHRASE_MAX + 1], msg[600], err[1024];
    char body[UNSEAL_BODY_CAP];
    const char *url, *status_text;
    json_t *answer = NULL;
    size_t plen = 0, blen = 0;
    rp_args args;
    rp_buf out;
    long status = 0;
    int json, rc, exitc;

    rp_buf_init(&out, UNSEAL_ANSWER_MAX);
    if (rp_args_parse(argc, argv, opts, NOPTS(opts), 0, 0, &args, err, sizeof(err)) != 0) {
        exitc = rp_cli_usage_error("%s\nusage: %s", err, usage);
        goto out;
    }
    if ((exitc = rp_cli_output(rp_opt_get(opts, NOPTS(opts), "output"), &json)) != RP_EXIT_OK)
        goto out;
    url = rp_opt_get(opts, NOPTS(opts), "url");
    if (url == NULL)
        url = env_value(envp, "RAMPART_UNSEAL_URL");
    if (url == NULL)
        url = RP_CMD_UNSEAL_URL;
    rc = rp_cmd_unseal_endpoint(url, endpoint, sizeof(endpoint));
    if (rc != 0) {
        exitc = rp_cli_usage_error(
            "unseal: the URL must be http://127.0.0.1, http://[::1] or http://localhost with an "
            "optional port (the sealed server's loopback listener): the passphrase must never "
            "leave this machine\nusage: %s",
            usage);
        goto out;
    }
    exitc = passphrase_get(rp_opt_get(opts, NOPTS(opts), "passphrase-file"), envp, 0, pass, &plen);
    if (exitc != RP_EXIT_OK)
        goto out;
    exitc = unseal_body(pass, plen, body, sizeof(body), &blen);
    if (exitc != RP_EXIT_OK)
        goto out;
    rc = unseal_post(endpoint, body, blen, &status, &out, err, sizeof(err));
    if (rc != 0) {
        exitc = rp_cli_fail(RP_EXIT_SERVER, "unseal: %s", err);
        goto out;
    }
    if (status == 403) {
        exitc =
            rp_cli_fail(RP_EXIT_UNAUTHORIZED, "unseal: the passphrase does not open the root key");
        goto out;
    }
    if (status == 409) {
        exitc = rp_cli_fail(RP_EXIT_CONFLICT, "unseal: the server is already unsealed");
        goto out;
    }
    /* Once unsealed, the port serves the managed identity endpoint, which has no /unseal. */
    if (status == 404) {
        exitc = rp_cli_fail(RP_EXIT_CONFLICT,
                            "unseal: nothing is sealed at %s (already unsealed, or not the "
                            "sealed server's listener)",
                            endpoint);
        goto out;
    }
    if (status != 200) {
        rp_cli_error_text(out.data, out.len, msg, sizeof(msg));
        exitc = rp_cli_fail(RP_EXIT_SERVER, "unseal: %s answered HTTP %ld%s%s", endpoint, status,
                            msg[0] ? ": " : "", msg);
        goto out;
    }
    answer = json_loadb(out.data != NULL ? out.data : "", out.len, JSON_REJECT_DUPLICATES, NULL);
    status_text = json_string_value(json_object_get(answer, "status"));
    if (status_text == NULL || strcmp(status_text, "unsealed") != 0) {
        exitc = rp_cli_fail(RP_EXIT_SERVER,
                            "unseal: %s answered 200 without {\"status\":\"unsealed\"}: is it a "
                            "sealed rampart server?",
                            endpoint);
        goto out;
    }
    if (json)
        rp_cli_print_json(json_incref(answer));
    else
        puts("unsealed");
out:
    json_decref(answer);
    rp_buf_free(&out);
    OPENSSL_cleanse(body, sizeof(body));
    OPENSSL_cleanse(pass, sizeof(pass));
    return exitc;
}
