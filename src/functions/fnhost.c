/*
 * fnhost.c - the functions host's HTTP side (see fnhost.h for the contract).
 *
 * Workload: every request to a function app. The synchronous part (route match, key check)
 * allocates nothing but the request arena; a forwarded call is the reverse proxy's; an
 * invocation collects the body (bounded), builds the envelope with jansson, and waits for the
 * handler's answer on this loop (functions/invoke). Everything an invocation needs after the
 * handler returns is copied into the request arena first, so the app's index and keys may be
 * replaced (a deploy, a key change) while it runs.
 */
#include "functions/fnhost.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "base/time.h"
#include "functions/invoke.h"

#include <uv.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * One call of a function, from the key check to the end of its request: its throttle ticket,
 * what its invocation record needs, and for a call that waits for a slot, what it goes on with
 * (copied: the target is borrowed for rp_fnhost_serve only). Lives in the request arena.
 */
typedef struct run {
    rp_req *req;
    rp_fn_invlog *log;    /* a reference, or NULL */
    rp_fn_ticket *ticket; /* NULL: no throttle, or refused */
    char *fn;
    int64_t start_ms;
    uint64_t start_us;
    int outcome;  /* rp_fn_outcome, or -1: judged by the status answered */
    json_t *logs; /* the handler's Logs (a reference), or NULL */
    int granted;  /* it holds a slot (or there is no throttle) */
    int cold;     /* it waited for its handler to start */
    int own;      /* the function runs in its own worker */
    int port;     /* where it goes when there is no resolve */
    char *app;    /* for resolve */
    int (*resolve)(void *arg, const char *app, const char *fn, int own, int *slot);
    void (*release)(void *arg, const char *app, int slot);
    void *resolve_arg;
    int slot;         /* the instance resolve placed it on, or -1 */
    uv_timer_t *wait; /* polling for the handler to start, or NULL */
    uint64_t wait_until;
    int forward; /* forwarding mode: pt is what goes to the proxy */
    rp_proxy_target pt;
    struct call *call; /* invocation mode */
} run;

/* An invocation in flight; lives in the request arena. */
typedef struct call {
    rp_req *req;
    run *run;
    rp_fn_gate *gate; /* a reference, or NULL: no throttle */
    int body_ready;   /* the body is in: it goes as soon as the run has a slot */
    rp_invoke *inv;   /* NULL when none is running */
    char *fn, *trigger, *out;
    int ret_value; /* the http output is "$return" */
    int port;
    char *url;
    json_t *params; /* route parameters: name -> value */
    json_t *extra;  /* Easy Auth's headers: name -> value */
    uint64_t timeout_ms;
    rp_buf body;
    int too_big;
} call;

static void empty(rp_req *req, int status)
{
    rp_resp_send(req, status, NULL, NULL, 0);
}

static unsigned method_bit(rp_method m)
{
    switch (m) {
    case RP_METHOD_GET: return RP_FN_GET;
    case RP_METHOD_HEAD: return RP_FN_HEAD;
    case RP_METHOD_POST: return RP_FN_POST;
    case RP_METHOD_PUT: return RP_FN_PUT;
    case RP_METHOD_DELETE: return RP_FN_DELETE;
    case RP_METHOD_PATCH: return RP_FN_PATCH;
    case RP_METHOD_OPTIONS: return RP_FN_OPTIONS;
    default: return 0;
    }
}

static const char *method_name(rp_method m)
{
    return rp_fn_method_name(method_bit(m));
}

/* The ?code= parameter (name compared ignoring case, as ASP.NET's query does), or NULL. */
static const char *code_param(const rp_req *req)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcasecmp(req->query[i].name, "code") == 0)
            return req->query[i].value;
    return NULL;
}

/*
 * The level the caller's key grants for fn (NULL: host-level calls). The key comes from the
 * x-functions-key header, else ?code=; header_only ignores the query. The master key from a
 * URL grants nothing: it would end up in access logs, proxies and browser histories.
 */
static rp_fn_level caller_level(rp_req *req, const rp_fnhost_target *t, const char *fn,
                                int header_only)
{
    rp_fn_key keys[RP_FN_KEYS_FOR_CALL];
    rp_str h = rp_req_header(req, "x-functions-key");
    const char *q = h.p == NULL && !header_only ? code_param(req) : NULL, *name = NULL;
    size_t n = 0;
    rp_fn_level lv;

    if (h.p == NULL && q == NULL)
        return RP_FN_LEVEL_NONE;
    if (t->keys == NULL || rp_fn_keyset_for(t->keys, fn, keys, RP_FN_KEYS_FOR_CALL, &n) != 0)
        return RP_FN_LEVEL_NONE;
    if (h.p != NULL)
        return rp_fn_key_level(keys, n, h.p, h.n, &name);
    lv = q != NULL ? rp_fn_key_level(keys, n, q, strlen(q), &name) : RP_FN_LEVEL_NONE;
    return lv == RP_FN_LEVEL_ADMIN ? RP_FN_LEVEL_NONE : lv;
}

static rp_fn_level need_of(rp_fn_auth a)
{
    return a == RP_FN_AUTH_ANONYMOUS  ? RP_FN_LEVEL_ANONYMOUS
           : a == RP_FN_AUTH_FUNCTION ? RP_FN_LEVEL_FUNCTION
                                      : RP_FN_LEVEL_ADMIN;
}

/* ---- the admin API ------------------------------------------------------------------------- */

static json_t *key_list(const rp_fn_keyset *k, const char *scope)
{
    json_t *doc = rp_fn_keyset_json(k), *keys = json_array(), *o = NULL, *v;
    const char *name;

    if (doc == NULL || keys == NULL)
        goto fail;
    if (strncmp(scope, "functions/", 10) == 0) {
        const char *key;
        json_object_foreach(json_object_get(doc, "functions"), key, v)
        {
            if (strcasecmp(key, scope + 10) == 0)
                o = v;
        }
    } else {
        o = json_object_get(doc, scope);
    }
    json_object_foreach(o, name, v)
    {
        if (json_array_append_new(keys, json_pack("{s:s,s:O}", "name", name, "value", v)) != 0)
            goto fail;
    }
    if (strcmp(scope, "system") == 0 &&
        json_array_append_new(keys, json_pack("{s:s,s:O}", "name", RP_FN_MASTER_NAME, "value",
                                              json_object_get(doc, "master"))) != 0)
        goto fail;
    json_decref(doc);
    return json_pack("{s:o,s:[]}", "keys", keys, "links");
fail:
    json_decref(doc);
    json_decref(keys);
    return NULL;
}

typedef struct admin_put {
    rp_fnhost_keys_fn fn;
    void *arg;
    char scope[16 + RP_FN_NAME_MAX];
    char name[RP_FN_KEY_NAME_MAX + 1];
} admin_put;

static void admin_put_body(rp_req *req)
{
    admin_put *p = req->handler_data;
    json_t *b = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *value = json_string_value(json_object_get(b, "value"));

    /* The value is parsed out: do not leave it in the pooled body buffer. */
    if (req->body.data != NULL)
        OPENSSL_cleanse(req->body.data, req->body.len);
    if (!json_is_object(b) || value == NULL || (name != NULL && strcmp(name, p->name) != 0))
        rp_resp_error(req, 400, "BadRequest",
                      "send {\"name\": NAME, \"value\": VALUE} with the name of the address");
    else if (!rp_fn_key_value_ok(value, strlen(value)))
        rp_resp_error(req, 400, "BadRequest",
                      "Invalid key value: 16 to 1024 printable characters without spaces");
    else
        p->fn(p->arg, req, p->scope, p->name, value, 0); /* copies it; req is not used after */
    /* Nor in jansson's heap. */
    if (value != NULL)
        OPENSSL_cleanse((char *)value, strlen(value));
    json_decref(b);
}

/*
 * /admin/host/{keys|functionkeys|systemkeys}[/NAME] and /admin/functions/F/keys[/NAME].
 * The master key is systemkeys/_master.
 */
static void admin(rp_req *req, const rp_fnhost_target *t)
{
    const char *p = req->path + 6; /* after "/admin" */
    char scope[16 + RP_FN_NAME_MAX], name[RP_FN_KEY_NAME_MAX + 1];
    const char *rest = NULL;
    size_t n;
    json_t *v;

    /* The master key, in the header only. */
    if (caller_level(req, t, NULL, 1) != RP_FN_LEVEL_ADMIN) {
        empty(req, 401);
        return;
    }
    if (strncasecmp(p, "/host/keys", 10) == 0) {
        rp_strlcpy(scope, "host", sizeof(scope));
        rest = p + 10;
    } else if (strncasecmp(p, "/host/functionkeys", 18) == 0) {
        rp_strlcpy(scope, "host", sizeof(scope));
        rest = p + 18;
    } else if (strncasecmp(p, "/host/systemkeys", 16) == 0) {
        rp_strlcpy(scope, "system", sizeof(scope));
        rest = p + 16;
    } else if (strncasecmp(p, "/functions/", 11) == 0) {
        const char *fn = p + 11, *slash = strchr(fn, '/');
        const rp_fn_function *f;
        if (slash == NULL || strncasecmp(slash, "/keys", 5) != 0 ||
            (size_t)(slash - fn) > RP_FN_NAME_MAX)
            goto not_found;
        snprintf(scope, sizeof(scope), "functions/%.*s", (int)(slash - fn), fn);
        if ((f = rp_fn_app_find(t->app, scope + 10)) == NULL)
            goto not_found;
        snprintf(scope, sizeof(scope), "functions/%s", f->name);
        rest = slash + 5;
    } else {
        goto not_found;
    }
    if (rest[0] != '\0' && rest[0] != '/')
        goto not_found;
    if (rest[0] == '\0' || rest[1] == '\0') { /* the list */
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "list keys with GET");
            return;
        }
        v = t->keys != NULL ? key_list(t->keys, scope) : NULL;
        if (v == NULL) {
            rp_resp_error(req, 503, "KeysUnavailable", "the app's keys are not loaded");
            return;
        }
        rp_resp_header(req, "Cache-Control", "no-store");
        rp_resp_json(req, 200, v);
        return;
    }
    n = strlen(rest + 1);
    if (n > RP_FN_KEY_NAME_MAX || strchr(rest + 1, '/') != NULL)
        goto not_found;
    memcpy(name, rest + 1, n + 1);
    if (strcmp(scope, "system") == 0 && strcmp(name, RP_FN_MASTER_NAME) == 0)
        rp_strlcpy(scope, "master", sizeof(scope));
    if (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD) {
        const char *val = t->keys != NULL ? rp_fn_keyset_get(t->keys, scope, name) : NULL;
        if (val == NULL)
            goto not_found;
        rp_resp_header(req, "Cache-Control", "no-store");
        rp_resp_json(req, 200, json_pack("{s:s,s:s,s:[]}", "name", name, "value", val, "links"));
        return;
    }
    if (t->keys_change == NULL) {
        rp_resp_error(req, 405, "MethodNotAllowed", "keys cannot be changed here");
        return;
    }
    if (req->method == RP_METHOD_DELETE) {
        if (strcmp(scope, "master") == 0) {
            rp_resp_error(req, 400, "BadRequest", "Cannot delete System Key.");
            return;
        }
        t->keys_change(t->keys_arg, req, scope, name, NULL, 1);
        return;
    }
    if (!rp_fn_key_name_ok(name) && strcmp(scope, "master") != 0) {
        rp_resp_error(req, 400, "BadRequest", "a key name is 1-128 of A-Z a-z 0-9 _ . -");
        return;
    }
    if (req->method == RP_METHOD_POST) {
        t->keys_change(t->keys_arg, req, scope, name, NULL, 0);
        return;
    }
    if (req->method == RP_METHOD_PUT) {
        admin_put *ap = rp_arena_calloc(req->arena, sizeof(*ap));
        if (ap == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        ap->fn = t->keys_change;
        ap->arg = t->keys_arg;
        rp_strlcpy(ap->scope, scope, sizeof(ap->scope));
        rp_strlcpy(ap->name, name, sizeof(ap->name));
        req->handler_data = ap;
        rp_req_read_body(req, admin_put_body);
        return;
    }
    rp_resp_header(req, "Allow", "GET, HEAD, PUT, POST, DELETE");
    rp_resp_error(req, 405, "MethodNotAllowed", "method not allowed for this resource");
    return;
not_found:
    empty(req, 404);
}

/* ---- what the handler is told the request was --------------------------------------------- */

/* 1 when a raw query name n[0..len) decodes to "code" (any case). */
static int is_code_name(const char *n, size_t len)
{
    char d[5];
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)n[i];
        if (c == '%' && i + 2 < len && rp_hex_value((unsigned char)n[i + 1]) >= 0 &&
            rp_hex_value((unsigned char)n[i + 2]) >= 0) {
            c = rp_hex_value((unsigned char)n[i + 1]) << 4 | rp_hex_value((unsigned char)n[i + 2]);
            i += 2;
        }
        if (o == 4)
            return 0;
        d[o++] = (char)c;
    }
    d[o] = '\0';
    return o == 4 && strcasecmp(d, "code") == 0;
}

/*
 * The request-target the handler sees: the path the route matched (normalised: decoded once,
 * "." and ".." resolved), percent-encoded again, and the query as sent without any code
 * parameter (a key). Forwarding the client's own target instead would let "/api/x/../../pub"
 * pass the key check as "/pub" and reach the handler as the protected "/api/x/...". In the
 * request arena, or NULL.
 */
static char *handler_target(rp_req *req)
{
    static const char keep[] = "-._~!$&'()*+,;=:@/";
    rp_str q = req->head->query;
    size_t cap = 3 * req->path_len + q.n + 2, o = 0;
    char *t = rp_arena_alloc(req->arena, cap);
    int first = 1;

    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < req->path_len; i++) {
        unsigned char c = (unsigned char)req->path[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c != '\0' && strchr(keep, c) != NULL)) {
            t[o++] = (char)c;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            t[o++] = '%';
            t[o++] = hex[c >> 4];
            t[o++] = hex[c & 15];
        }
    }
    for (size_t i = 0; q.p != NULL && i < q.n;) {
        size_t j = i, eq;
        while (j < q.n && q.p[j] != '&')
            j++;
        for (eq = i; eq < j && q.p[eq] != '='; eq++)
            ;
        if (j > i && !is_code_name(q.p + i, eq - i)) {
            t[o++] = first ? '?' : '&';
            memcpy(t + o, q.p + i, j - i);
            o += j - i;
            first = 0;
        }
        i = j + 1;
    }
    t[o] = '\0';
    return t;
}

/* ---- invocations --------------------------------------------------------------------------- */

static void jdecref(void *p)
{
    json_decref(p);
}

static void call_cancel(void *arg)
{
    call *c = arg;

    if (c->inv != NULL)
        rp_invoke_cancel(c->inv);
    c->inv = NULL;
    rp_buf_free(&c->body);
    rp_fn_gate_unref(c->gate);
    c->gate = NULL;
}

/* Headers as Azure passes them: name -> [values]; the client's X-MS-CLIENT-PRINCIPAL*,
 * X-MS-TOKEN-* and X-ARR-* never, Easy Auth's own instead. */
static json_t *headers_json(const call *c)
{
    const rp_http_head *h = c->req->head;
    json_t *o = json_object(), *a;
    const char *k;
    json_t *v;

    for (size_t i = 0; o != NULL && i < h->nheaders; i++) {
        char name[128];
        rp_str n = h->headers[i].name;
        if (n.n >= sizeof(name))
            continue;
        for (size_t j = 0; j < n.n; j++)
            name[j] = rp_lower(n.p[j]);
        name[n.n] = '\0';
        if (strncmp(name, "x-ms-client-principal", 21) == 0 ||
            strncmp(name, "x-ms-token-", 11) == 0 || strncmp(name, "x-ms_", 5) == 0 ||
            strncmp(name, "x-arr-", 6) == 0 || strcmp(name, "x-functions-key") == 0 ||
            json_object_get(c->extra, name) != NULL)
            continue;
        a = json_object_get(o, name);
        if (a == NULL && (a = json_array()) != NULL && json_object_set_new(o, name, a) != 0)
            a = NULL;
        if (a == NULL || json_array_append_new(
                             a, json_stringn(h->headers[i].value.p, h->headers[i].value.n)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    json_object_foreach(c->extra, k, v)
    {
        if (o != NULL && json_object_set_new(o, k, json_pack("[O]", v)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Query as Azure passes it: name -> value, repeated names joined with ','; code never. */
static json_t *query_json(const rp_req *req)
{
    json_t *o = json_object();
    rp_query_param *q = NULL;
    size_t nq = 0;

    /* As ASP.NET reads a query ('+' is a space), not as the front door does (RFC 3986). */
    if (o == NULL ||
        (req->head->query.n > 0 &&
         rp_query_parse(req->arena, req->head->query.p, req->head->query.n, 1, &q, &nq) != 0)) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; o != NULL && i < nq; i++) {
        const rp_query_param *p = &q[i];
        const char *had;
        if (strcasecmp(p->name, "code") == 0)
            continue;
        had = json_string_value(json_object_get(o, p->name));
        if (had != NULL) {
            size_t hl = strlen(had);
            char *j = rp_arena_alloc(req->arena, hl + 1 + p->value_len + 1);
            if (j == NULL) {
                json_decref(o);
                return NULL;
            }
            memcpy(j, had, hl);
            j[hl] = ',';
            memcpy(j + hl + 1, p->value, p->value_len + 1);
            if (json_object_set_new(o, p->name, json_string(j)) != 0) {
                json_decref(o);
                return NULL;
            }
        } else if (json_object_set_new(o, p->name, json_string(p->value)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *envelope(call *c)
{
    rp_req *req = c->req;
    rp_str ct = rp_req_header(req, "content-type");
    char utc[21], guid[37], *url, *target = handler_target(req);
    json_t *body, *trig, *data;
    size_t ul;

    rp_iso_time((int64_t)time(NULL), utc);
    if (target == NULL || rp_random_uuid(guid) != 0)
        return NULL;
    ul = strlen(c->url) + strlen(target) + 1;
    if ((url = rp_arena_alloc(req->arena, ul)) == NULL)
        return NULL;
    snprintf(url, ul, "%s%s", c->url, target);
    /* Binary bodies go as base64, as Azure serialises byte[]; text as a string. Bytes that are
     * not UTF-8 cannot be a JSON string: base64 too, rather than dropping them. */
    if ((ct.p != NULL && (rp_str_has_prefix(ct, "application/octet-stream") ||
                          rp_str_has_prefix(ct, "multipart/"))) ||
        (c->body.len > 0 && !rp_utf8_valid(c->body.data, c->body.len, 0))) {
        size_t cap = (c->body.len + 2) / 3 * 4 + 1;
        char *b64 = rp_arena_alloc(req->arena, cap);
        if (b64 == NULL ||
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)c->body.data,
                            (int)c->body.len) < 0)
            return NULL;
        body = json_string(b64);
    } else {
        body = json_stringn(c->body.data ? c->body.data : "", c->body.len);
    }
    trig = json_pack("{s:s,s:s,s:o,s:o,s:O,s:[],s:o}", "Url", url, "Method",
                     method_name(req->method), "Query", query_json(req), "Headers", headers_json(c),
                     "Params", c->params, "Identities", "Body", body ? body : json_null());
    if (trig == NULL)
        return NULL;
    data = json_object();
    if (data == NULL || json_object_set_new(data, c->trigger, trig) != 0) {
        json_decref(data);
        return NULL;
    }
    return json_pack("{s:o,s:{s:{s:s,s:s,s:s},s:O}}", "Data", data, "Metadata", "sys", "MethodName",
                     c->fn, "UtcNow", utc, "RandGuid", guid, "Params", c->params);
}

/* A member of o by name ignoring ASCII case (the host reads outputs case-insensitively). */
static json_t *member(const json_t *o, const char *name)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)o, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return v;
    }
    return NULL;
}

static int header_ok(const char *name, const char *value)
{
    static const char *const banned[] = {"content-length", "transfer-encoding",
                                         "connection",     "keep-alive",
                                         "upgrade",        "te",
                                         "trailer",        "proxy-connection",
                                         "date",           "strict-transport-security"};

    if (name[0] == '\0' || strlen(name) > 128)
        return 0;
    for (const char *p = name; *p; p++)
        if (!rp_http_tchar((unsigned char)*p))
            return 0;
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        if (strcasecmp(name, banned[i]) == 0)
            return 0;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return 0;
    return 1;
}

/* The handler's http output becomes the response (the call Succeeded): 1; or 0 when it is
 * unusable (500, the call Failed). Nothing of c may be touched after it: the answer may end the
 * request. */
static int answer(call *c, const json_t *out)
{
    rp_req *req = c->req;
    const json_t *st, *hd, *bd;
    const char *ctype = NULL, *k;
    char *dumped = NULL;
    const char *bytes = "";
    size_t blen = 0;
    json_t *v;
    long status = 200;

    if (json_is_string(out)) { /* a bare value is the body */
        bytes = json_string_value(out);
        blen = json_string_length(out);
        c->run->outcome = RP_FN_SUCCEEDED; /* before the send: it may end the request */
        rp_resp_send(req, 200, "text/plain; charset=utf-8", bytes, blen);
        return 1;
    }
    if (!json_is_object(out)) {
        empty(req, 500);
        return 0;
    }
    st = member(out, "statusCode");
    if (st == NULL)
        st = member(out, "status");
    if (json_is_integer(st))
        status = (long)json_integer_value(st);
    else if (json_is_string(st)) {
        uint64_t u;
        if (rp_parse_u64(json_string_value(st), json_string_length(st), 999, &u) != 0)
            status = 0;
        else
            status = (long)u;
    }
    if (status < 200 || status > 599) {
        empty(req, 500);
        return 0;
    }
    hd = member(out, "headers");
    json_object_foreach((json_t *)hd, k, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || !header_ok(k, s))
            continue;
        if (strcasecmp(k, "content-type") == 0)
            ctype = s;
        else
            rp_resp_header(req, k, s);
    }
    bd = member(out, "body");
    if (json_is_string(bd)) {
        bytes = json_string_value(bd);
        blen = json_string_length(bd);
    } else if (bd != NULL && !json_is_null(bd)) {
        dumped = json_dumps(bd, JSON_COMPACT);
        if (dumped == NULL) {
            empty(req, 500);
            return 0;
        }
        bytes = dumped;
        blen = strlen(dumped);
        if (ctype == NULL)
            ctype = "application/json; charset=utf-8";
    }
    if (ctype == NULL && blen > 0)
        ctype = "text/plain; charset=utf-8";
    c->run->outcome = RP_FN_SUCCEEDED; /* before the send: it may end the request */
    rp_resp_send(req, (int)status, ctype, bytes, blen);
    free(dumped); /* jansson's allocator */
    return 1;
}

static void invoked(int rc, const rp_invoke_result *res, void *arg)
{
    call *c = arg;
    rp_req *req = c->req;
    json_t *a = NULL, *out;

    c->inv = NULL;
    c->run->outcome = RP_FN_FAILED;
    /* The handler is done with it: the slot goes on now, not once the client read the answer,
     * and so does its place on the instance (the next call may go there). */
    rp_fn_gate_leave(c->run->ticket);
    c->run->ticket = NULL;
    if (c->run->slot >= 0 && c->run->release != NULL)
        c->run->release(c->run->resolve_arg, c->run->app, c->run->slot);
    c->run->slot = -1;
    if (rc == RP_ETIMEDOUT) {
        c->run->outcome = RP_FN_TIMEDOUT;
        rp_resp_error(req, 504, "GatewayTimeout", "the function did not finish in time");
        return;
    }
    if (rc != 0) {
        rp_resp_error(req, 502, "BadGateway", "the function app's handler did not answer");
        return;
    }
    if (res->status < 200 || res->status > 299 || res->body == NULL ||
        (a = json_loadb(res->body, res->body_len, 0, NULL)) == NULL || !json_is_object(a)) {
        json_decref(a);
        empty(req, 500);
        return;
    }
    if (json_is_array(member(a, "Logs")) && c->run->logs == NULL)
        c->run->logs = json_incref(member(a, "Logs"));
    out = c->ret_value ? member(a, "ReturnValue") : member(member(a, "Outputs"), c->out);
    if (out == NULL)
        out = member(a, "ReturnValue"); /* handlers often answer with it for http outputs too */
    if (out == NULL)
        empty(req, 500);
    else
        (void)answer(c, out);
    json_decref(a);
}

static void invoke_now(call *c)
{
    rp_req *req = c->req;
    json_t *env;
    char *js, path[RP_INVOKE_PATH_MAX], id[37];
    rp_invoke_header extra[2];
    rp_invoke_opts o = {0};
    int rc;

    c->run->outcome = RP_FN_FAILED; /* until the handler's answer says otherwise */
    if (c->too_big) {
        rp_resp_error(req, 413, "PayloadTooLarge", "the request body is over 4 MiB");
        return;
    }
    if ((env = envelope(c)) == NULL || (js = json_dumps(env, JSON_COMPACT)) == NULL) {
        json_decref(env);
        rp_resp_error(req, 500, "InternalError", "the invocation could not be built");
        return;
    }
    json_decref(env);
    rp_buf_free(&c->body);
    snprintf(path, sizeof(path), "/%s", c->fn);
    rp_strlcpy(id, req->id, sizeof(id));
    extra[0] = (rp_invoke_header){"X-Azure-Functions-InvocationId", id};
    extra[1] = (rp_invoke_header){"X-Azure-Functions-HostVersion", "4.0.0-rampart"};
    o.port = c->port;
    o.path = path;
    o.body = js;
    o.body_len = strlen(js);
    o.extra = extra;
    o.nextra = 2;
    o.timeout_ms = c->timeout_ms;
    o.max_body = RP_FNHOST_ANSWER_MAX;
    rc = rp_invoke_start(rp_req_loop(req), &o, invoked, c, &c->inv);
    OPENSSL_cleanse(js, strlen(js)); /* the request's body may be a secret */
    free(js);
    if (rc != 0) {
        c->inv = NULL;
        rp_resp_error(req, 500, "InternalError", "the invocation could not be started");
    }
}

static int body_data(rp_req *req, const char *data, size_t len)
{
    call *c = req->handler_data;

    if (c->too_big || rp_buf_append(&c->body, data, len) != 0)
        c->too_big = 1; /* keep reading (and dropping) to answer 413 at the end */
    return 0;
}

static int run_enter(run *r, rp_fn_gate *g);
static void dispatch(run *r);

/* The body is in: the call takes its slot now (a client still sending holds none). */
static void body_done(rp_req *req)
{
    call *c = req->handler_data;

    c->body_ready = 1;
    if (c->too_big)
        invoke_now(c); /* 413, without a slot */
    else if (run_enter(c->run, c->gate) == 0 && c->run->granted)
        dispatch(c->run);
}

static int invoke(rp_req *req, const rp_fnhost_target *t, const rp_fn_match *m, run *r)
{
    const rp_fn_function *f = m->fn;
    call *c = rp_arena_calloc(req->arena, sizeof(*c));

    if (c == NULL)
        return RP_ENOMEM;
    c->req = req;
    c->run = r;
    r->call = c;
    c->timeout_ms = (uint64_t)rp_fn_app_host(t->app)->timeout_s * 1000u;
    c->fn = rp_arena_strndup(req->arena, f->name, strlen(f->name));
    c->trigger = rp_arena_strndup(req->arena, m->trigger->name, strlen(m->trigger->name));
    c->url = rp_arena_strndup(req->arena, t->origin, strlen(t->origin));
    if (f->http_out < f->nbindings) {
        const char *o = f->bindings[f->http_out].name;
        c->out = rp_arena_strndup(req->arena, o, strlen(o));
        c->ret_value = strcmp(o, "$return") == 0;
    } else {
        c->out = rp_arena_strndup(req->arena, "res", 3);
    }
    rp_buf_init(&c->body, RP_FNHOST_BODY_MAX);
    if (rp_arena_add_cleanup(req->arena, call_cancel, c) != 0)
        return RP_ENOMEM;
    c->gate = t->gate != NULL ? rp_fn_gate_ref(t->gate) : NULL;
    /* Each jansson value is handed to the arena as soon as it exists (freed with the request,
     * whatever the order of the cleanups: none of them uses another's). */
    if ((c->params = json_object()) == NULL)
        return RP_ENOMEM;
    if (rp_arena_add_cleanup(req->arena, jdecref, c->params) != 0) {
        json_decref(c->params);
        return RP_ENOMEM;
    }
    if ((c->extra = json_object()) == NULL)
        return RP_ENOMEM;
    if (rp_arena_add_cleanup(req->arena, jdecref, c->extra) != 0) {
        json_decref(c->extra);
        return RP_ENOMEM;
    }
    for (size_t i = 0; i < m->nparams; i++)
        if (json_object_set_new(c->params, m->params[i].name,
                                json_stringn(m->params[i].value, m->params[i].value_len)) != 0)
            return RP_ENOMEM;
    for (size_t i = 0; i < t->nextra; i++) {
        char name[128];
        size_t n = strlen(t->extra[i].name);
        if (n >= sizeof(name))
            continue;
        for (size_t j = 0; j <= n; j++)
            name[j] = rp_lower(t->extra[i].name[j]);
        if (json_object_set_new(c->extra, name, json_string(t->extra[i].value)) != 0)
            return RP_ENOMEM;
    }
    if (c->fn == NULL || c->trigger == NULL || c->url == NULL || c->out == NULL)
        return RP_ENOMEM;
    req->handler_data = c;
    rp_req_stream_body(req, body_data, body_done);
    return 0;
}

/* ---- the call's life: throttle and invocation record ------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_closed(uv_handle_t *h)
{
    rp_free(h);
}

/* The request's end (answered, or its client gone): the slot goes back and the record is
 * written. Runs once, from the arena's cleanups, on the request's loop. */
static void run_done(void *arg)
{
    run *r = arg;
    rp_req *req = r->req;
    int st = req->status, o = r->outcome;

    rp_fn_gate_leave(r->ticket);
    r->ticket = NULL;
    if (r->slot >= 0 && r->release != NULL)
        r->release(r->resolve_arg, r->app, r->slot);
    r->slot = -1;
    if (r->wait != NULL) {
        uv_close((uv_handle_t *)r->wait, wait_closed);
        r->wait = NULL;
    }
    if (o < 0) /* forwarded: the proxy's own answers are 502 and 504 */
        o = st == 0     ? RP_FN_CANCELLED
            : st == 504 ? RP_FN_TIMEDOUT
            : st == 502 ? RP_FN_FAILED
                        : RP_FN_SUCCEEDED;
    else if (st == 0 && o != RP_FN_THROTTLED)
        o = RP_FN_CANCELLED;
    if (r->log != NULL) {
        rp_fn_inv inv = {.id = req->id,
                         .function = r->fn,
                         .trigger = "httpTrigger",
                         .start_ms = r->start_ms,
                         .duration_us = rp_mono_us() - r->start_us,
                         .status = st,
                         .outcome = (rp_fn_outcome)o,
                         .cold = r->cold,
                         .logs = r->logs};
        rp_fn_invlog_add(r->log, &inv);
    }
    json_decref(r->logs);
    r->logs = NULL;
    rp_fn_invlog_unref(r->log);
    r->log = NULL;
}

static run *run_new(rp_req *req, const rp_fnhost_target *t, const char *fn)
{
    run *r = rp_arena_calloc(req->arena, sizeof(*r));

    if (r == NULL || (r->fn = rp_arena_strndup(req->arena, fn, strlen(fn))) == NULL)
        return NULL;
    r->req = req;
    r->outcome = -1;
    r->start_ms = wall_ms();
    r->start_us = rp_mono_us();
    if (rp_arena_add_cleanup(req->arena, run_done, r) != 0)
        return NULL;
    r->log = t->log != NULL ? rp_fn_invlog_ref(t->log) : NULL;
    r->port = t->port;
    r->resolve = t->resolve;
    r->release = t->release;
    r->resolve_arg = t->resolve_arg;
    r->slot = -1;
    if (t->resolve != NULL &&
        (r->app = rp_arena_strndup(req->arena, t->app_name, strlen(t->app_name))) == NULL)
        return NULL;
    return r;
}

/* A waiting call's turn. */
static void run_go(void *arg)
{
    run *r = arg;

    r->granted = 1;
    if (r->req->status != 0)
        return; /* answered meanwhile (the front door refused its body): nothing to run */
    if (r->forward || (r->call != NULL && r->call->body_ready))
        dispatch(r);
}

/* The call goes to its handler on port. */
static void go_port(run *r, int port)
{
    if (r->forward) {
        r->pt.port = port;
        rp_proxy_forward(r->req, &r->pt);
    } else {
        r->call->port = port;
        invoke_now(r->call);
    }
}

static void not_running(run *r)
{
    r->outcome = RP_FN_FAILED;
    rp_resp_error(r->req, 503, "FunctionHostNotRunning",
                  "the function app's custom handler is not running");
}

static int resolve(run *r)
{
    return r->resolve != NULL ? r->resolve(r->resolve_arg, r->app, r->fn, r->own, &r->slot)
                              : r->port;
}

/* Waiting for the handler to start (a deploy, a restart, scale from zero): asked after 5 ms,
 * the interval doubling to 100 ms. */
static void on_wait(uv_timer_t *h)
{
    run *r = h->data;
    int port;

    if (r->req->status != 0) { /* answered meanwhile: nothing to wait for */
        uv_close((uv_handle_t *)h, wait_closed);
        r->wait = NULL;
        return;
    }
    port = resolve(r);
    if (port == 0 && uv_now(h->loop) < r->wait_until) {
        /* 5 ms, doubling to 100 ms: quick for a quick start, cheap for a slow one. */
        uint64_t rep = uv_timer_get_repeat(h);
        uv_timer_set_repeat(h, rep * 2 > 100 ? 100 : rep * 2);
        return;
    }
    uv_close((uv_handle_t *)h, wait_closed);
    r->wait = NULL;
    if (port <= 0) {
        not_running(r);
        return;
    }
    r->cold = 1;
    go_port(r, port);
}

/* The call has its slot (and its body, for an invocation): to the handler, once it runs. */
static void dispatch(run *r)
{
    int port = resolve(r);

    if (port > 0) {
        go_port(r, port);
        return;
    }
    if (port == 0 && (r->wait = rp_malloc(sizeof(*r->wait))) != NULL) {
        if (uv_timer_init(rp_req_loop(r->req), r->wait) == 0) {
            r->wait->data = r;
            r->wait_until = uv_now(r->wait->loop) + RP_FNHOST_START_MS;
            uv_timer_start(r->wait, on_wait, 5, 5);
            return;
        }
        rp_free(r->wait);
        r->wait = NULL;
    }
    not_running(r);
}

/*
 * Takes r's slot of gate g (NULL: no throttle): 0, and r->granted says whether it goes now (else
 * run_go follows); non-zero when it answered itself: 429 "Too Busy" past maxOutstandingRequests
 * (Azure's answer: Retry-After, nothing else), 500 out of memory.
 */
static int run_enter(run *r, rp_fn_gate *g)
{
    int now = 1,
        rc = g != NULL ? rp_fn_gate_enter(g, rp_req_loop(r->req), run_go, r, &now, &r->ticket) : 0;

    if (rc == RP_EAGAIN) {
        r->outcome = RP_FN_THROTTLED;
        rp_resp_header(r->req, "Retry-After", "1");
        (void)rp_resp_reason(r->req, "Too Busy");
        empty(r->req, 429);
        return rc;
    }
    if (rc != 0) {
        r->outcome = RP_FN_FAILED;
        rp_resp_error(r->req, 500, "InternalError", "out of memory");
        return rc;
    }
    r->granted = now;
    return 0;
}

/* A call that could not be set up after it took its slot: the slot goes back at once. */
static void run_fail(run *r)
{
    rp_fn_gate_leave(r->ticket);
    r->ticket = NULL;
    r->outcome = RP_FN_FAILED;
    rp_resp_error(r->req, 500, "InternalError", "out of memory");
}

/* pt with its strings in the request arena, for a forwarded call that may wait. */
static int keep_target(rp_req *req, run *r, const rp_proxy_target *pt)
{
    rp_proxy_hdr *x = NULL;

    r->pt = *pt;
    if (pt->client_cert != NULL &&
        (r->pt.client_cert =
             rp_arena_strndup(req->arena, pt->client_cert, strlen(pt->client_cert))) == NULL)
        return RP_ENOMEM;
    if (pt->nextra > 0 && (x = rp_arena_alloc(req->arena, pt->nextra * sizeof(*x))) == NULL)
        return RP_ENOMEM;
    for (size_t i = 0; i < pt->nextra; i++) {
        x[i].name = rp_arena_strndup(req->arena, pt->extra[i].name, strlen(pt->extra[i].name));
        x[i].value = rp_arena_strndup(req->arena, pt->extra[i].value, strlen(pt->extra[i].value));
        if (x[i].name == NULL || x[i].value == NULL)
            return RP_ENOMEM;
    }
    r->pt.extra = x;
    return 0;
}

void rp_fnhost_serve(rp_req *req, const rp_fnhost_target *t)
{
    rp_fn_match m;
    rp_fn_level need, have;
    const rp_fn_handler *h = rp_fn_app_host(t->app)->handler;
    unsigned bit = method_bit(req->method);
    run *r;

    /* The host's own paths, ignoring case as ASP.NET routes do. */
    if (strcasecmp(req->path, "/admin") == 0 || strncasecmp(req->path, "/admin/", 7) == 0) {
        admin(req, t);
        return;
    }
    if (strcasecmp(req->path, "/runtime") == 0 || strncasecmp(req->path, "/runtime/", 9) == 0 ||
        bit == 0 || !rp_fn_app_match(t->app, bit, req->path, req->path_len, &m)) {
        empty(req, 404);
        return;
    }
    need = need_of(m.trigger->auth_level);
    if (need != RP_FN_LEVEL_ANONYMOUS) {
        /* An admin-level function takes the master key from the header only. */
        have = caller_level(req, t, m.fn->name, 0);
        if (!rp_fn_authorized(need, have)) {
            empty(req, 401);
            return;
        }
    }
    /* From here on it is an invocation: it gets a record whatever becomes of it. */
    if ((r = run_new(req, t, m.fn->name)) == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    /* A function with an identity of its own runs in its own worker (only its calls go there). */
    r->own = m.fn->own_identity;
    /* A full house is refused before any of the body is read. */
    if (t->gate != NULL && rp_fn_gate_full(t->gate)) {
        (void)run_enter(r, t->gate);
        return;
    }
    if (h != NULL && h->forward && !h->legacy && m.fn->nbindings == 2 &&
        m.fn->http_out < m.fn->nbindings) {
        static const char *const keyhdr[] = {"x-functions-key"};
        rp_proxy_target pt = {.port = 0, /* dispatch's */
                              .client_cert = t->client_cert,
                              .extra = t->extra,
                              .nextra = t->nextra,
                              .response_ms = (uint64_t)rp_fn_app_host(t->app)->timeout_s * 1000u,
                              .target = handler_target(req),
                              .drop = keyhdr,
                              .ndrop = 1};
        r->forward = 1;
        if (pt.target == NULL) {
            run_fail(r);
            return;
        }
        /* Kept (copied): the call may wait for its slot or for its handler to start. */
        if (keep_target(req, r, &pt) != 0) {
            run_fail(r);
            return;
        }
        /* A forwarded call streams its body to the handler: it holds its slot from here. */
        if (run_enter(r, t->gate) == 0 && r->granted)
            dispatch(r); /* else run_go */
        return;
    }
    /* An invocation takes its slot once its body is in (body_done). */
    r->outcome = RP_FN_FAILED; /* until the handler's answer says otherwise */
    if (invoke(req, t, &m, r) != 0)
        run_fail(r);
}
