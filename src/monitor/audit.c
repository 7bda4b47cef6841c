/*
 * audit.c - the audit log: record serializer and line parser, the group-commit writer thread
 * with completion ports, checkpoints, repair, verification and the tail reader.
 *
 * Workload: a record per authenticated request from every loop thread; most are not waited
 * for, a few (secret reads) must be durable before their request is answered. Design:
 *
 *   rp_audit_log: serialize the record body on the caller's thread (the detail object is only
 *                 borrowed), then --(log mutex: FIFO of ops, cond signal)--> writer thread
 *   writer: take up to RP_AUDIT_BATCH_MAX ops / RP_AUDIT_BATCH_BYTES; under flock(LOCK_EX)
 *           give each its seq and prev, add a checkpoint every RP_AUDIT_CHECKPOINT_EVERY
 *           records, one write(2) of the whole group; unlock; one fdatasync if the group holds
 *           a durable record; then hand each op back:
 *   writer --(port mutex: completion FIFO, uv_async_send)--> the op's loop runs done(status)
 *
 * While a group is being synced the next one queues up, so under load groups grow by
 * themselves. Between groups the writer sleeps on its condition variable with a timeout: the
 * next lazy fdatasync (RP_AUDIT_SYNC_MS after the first unsynced record) or time-based
 * checkpoint (RP_AUDIT_CHECKPOINT_MS after the first unsigned record), whichever is first.
 *
 * Canonical form: the parser decodes a line with jansson, re-serializes the decoded fields
 * with the writer's own serializer and requires the same bytes. So the writer's escaping and
 * truncation must be idempotent on their own output: escaping decodes to the same text,
 * truncation leaves a string whose escaped form fits its cap, and detail is dumped by jansson
 * with fixed flags (compact, sorted keys, ASCII only), which re-dumps to the same bytes.
 *
 * Lifetimes are the store's: the log is held by its owner (until rp_audit_close), by each port
 * and by each waiting rp_audit_log_sync caller; a port by its uv handle and each op in flight.
 * Lock order: never hold the log mutex and a port mutex at the same time. Fields marked
 * "writer" are touched only by the writer thread once it runs (and by open before that).
 */
#include "monitor/audit.h"
#include "base/alloc.h"
#include "base/cport.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "base/time.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIME_LEN      24 /* 2026-11-29T05:31:02.123Z */
#define HASH_LEN      32
#define SIG_B64_LEN   86 /* 64 bytes in base64url without padding */
#define SIG_SUFFIX    ",\"sig\":\""
#define SIG_TAIL_LEN  (sizeof(SIG_SUFFIX) - 1 + SIG_B64_LEN + 2) /* ,"sig":"...."} */
#define BODY_MAX      8192 /* a serialized record body: 7,600 bytes at the caps */
#define LINE_OVERHEAD 128  /* {"seq":N, ... ,"prev":"<64>"}\n around a body */
#define CP_LINE_MAX   512  /* a checkpoint line, signature included */
#define OP_COST       (LINE_OVERHEAD + CP_LINE_MAX) /* room per op beyond its body */
#define WBUF_CAP      (RP_AUDIT_BATCH_BYTES + BODY_MAX + OP_COST)
#define RBUF_CAP      (2 * (RP_AUDIT_LINE_MAX + 1)) /* two longest lines with their '\n' */
#define DETAIL_FLAGS  (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

static const char *const kinds[] = {"authn", "authz", "change", "read", "system"};
static const char *const results[] = {"success", "failure", "allowed", "denied"};

/* ---------------------------------------------------------------- serializer */

/* Output into a fixed buffer; over is set (and nothing more written) once it would overflow. */
typedef struct sink {
    char *p;
    size_t len;
    size_t cap;
    int over;
} sink;

static void sk_init(sink *s, char *p, size_t cap)
{
    s->p = p;
    s->len = 0;
    s->cap = cap;
    s->over = 0;
}

static void sk_put(sink *s, const void *d, size_t n)
{
    if (s->over || n > s->cap - s->len) {
        s->over = 1;
        return;
    }
    memcpy(s->p + s->len, d, n);
    s->len += n;
}

static void sk_lit(sink *s, const char *lit)
{
    sk_put(s, lit, strlen(lit));
}

static void sk_u64(sink *s, uint64_t v)
{
    char t[24];
    int k = snprintf(t, sizeof(t), "%" PRIu64, v);

    sk_put(s, t, (size_t)k);
}

static void sk_hex(sink *s, const unsigned char h[HASH_LEN])
{
    char t[2 * HASH_LEN + 1];

    rp_hex_encode(h, HASH_LEN, t);
    sk_put(s, t, 2 * HASH_LEN);
}

/*
 * Length of the UTF-8 sequence at s[0..n) (1-4), or 0 if it is not valid UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF are invalid, as in RFC 3629 and jansson).
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned d = s[i];
        if (d < lo || d > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (d & 0x3F);
    }
    *cp = v;
    return len;
}

/*
 * The escaped form of the character at s[0..n) into out (at most 6 bytes); *used gets the
 * input bytes it stands for. Controls, DEL, C1 controls and U+2028/9 are escaped so a record
 * is one line and cannot drive a terminal; an invalid byte becomes U+FFFD.
 */
static size_t esc_char(const unsigned char *s, size_t n, char out[8], size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    uint32_t cp = 0;
    size_t len = utf8_seq(s, n, &cp);

    if (len == 0) {
        *used = 1;
        memcpy(out, "\xef\xbf\xbd", 3);
        return 3;
    }
    *used = len;
    switch (cp) {
    case '"':
    case '\\':
        out[0] = '\\';
        out[1] = (char)cp;
        return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    default: break;
    }
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
        out[0] = '\\';
        out[1] = 'u';
        out[2] = hex[(cp >> 12) & 15];
        out[3] = hex[(cp >> 8) & 15];
        out[4] = hex[(cp >> 4) & 15];
        out[5] = hex[cp & 15];
        return 6;
    }
    memcpy(out, s, len);
    return len;
}

/*
 * Writes s[0..n) as a JSON string whose escaped content is at most cap bytes: if it would be
 * longer, it is cut on a character boundary and ends in RP_AUDIT_TRUNCATED (the result's
 * escaped form fits cap, so writing it again gives the same bytes).
 */
static void sk_str(sink *sk, const char *s, size_t n, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t total = 0, i, used, k;
    char e[8];

    /* Most fields are plain printable ASCII: those go out as they are. */
    for (i = 0; i < n && u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\'; i++)
        ;
    if (i == n && n <= cap) {
        sk_put(sk, "\"", 1);
        sk_put(sk, s, n);
        sk_put(sk, "\"", 1);
        return;
    }
    for (i = 0; i < n && total <= cap; i += used)
        total += esc_char(u + i, n - i, e, &used);
    sk_put(sk, "\"", 1);
    if (total <= cap) {
        for (i = 0; i < n; i += used) {
            k = esc_char(u + i, n - i, e, &used);
            sk_put(sk, e, k);
        }
    } else {
        size_t budget = cap - (sizeof(RP_AUDIT_TRUNCATED) - 1), out = 0;

        for (i = 0; i < n; i += used) {
            k = esc_char(u + i, n - i, e, &used);
            if (out + k > budget)
                break;
            sk_put(sk, e, k);
            out += k;
        }
        sk_lit(sk, RP_AUDIT_TRUNCATED);
    }
    sk_put(sk, "\"", 1);
}

/* A caller's detail: an object as is, anything else as {"value":...}, oversize as a marker. */
static void sk_detail_rec(sink *s, const json_t *d)
{
    json_t *wrap = NULL;
    const json_t *obj = d;
    size_t room = s->cap - s->len, n = 0;
    char m[64];

    if (room > RP_AUDIT_DETAIL_MAX)
        room = RP_AUDIT_DETAIL_MAX;
    if (!json_is_object(d)) {
        wrap = json_pack("{s:O}", "value", (json_t *)d);
        obj = wrap;
    }
    if (obj != NULL && !s->over)
        n = json_dumpb(obj, s->p + s->len, room, DETAIL_FLAGS);
    if (n == 0) {
        sk_lit(s, "{\"unserializable\":true}");
    } else if (n > room) {
        /* Keys in sorted order, as the parser's re-dump will write them. */
        snprintf(m, sizeof(m), "{\"bytes\":%zu,\"truncated\":true}", n);
        sk_lit(s, m);
    } else {
        s->len += n;
    }
    json_decref(wrap);
}

/* A detail read back from a line: must re-dump to at most RP_AUDIT_DETAIL_MAX bytes. */
static void sk_detail_parsed(sink *s, const json_t *d)
{
    size_t room = s->cap - s->len, n;

    if (room > RP_AUDIT_DETAIL_MAX)
        room = RP_AUDIT_DETAIL_MAX;
    n = s->over ? 0 : json_dumpb(d, s->p + s->len, room, DETAIL_FLAGS);
    if (n == 0 || n > room)
        s->over = 1;
    else
        s->len += n;
}

/* The fields of an event record as (pointer, length) views. */
typedef struct ev_view {
    const char *time; /* TIME_LEN bytes */
    rp_str principal, kind, action, scope, result, request, client;
} ev_view;

/* Everything of an event line between {"seq":N, and ,"prev":..., except the detail. */
static void sk_body(sink *s, const ev_view *v)
{
    sk_lit(s, "\"time\":\"");
    sk_put(s, v->time, TIME_LEN);
    sk_lit(s, "\",\"principal\":");
    sk_str(s, v->principal.p, v->principal.n, RP_AUDIT_FIELD_MAX);
    sk_lit(s, ",\"kind\":");
    sk_str(s, v->kind.p, v->kind.n, RP_AUDIT_FIELD_MAX);
    sk_lit(s, ",\"action\":");
    sk_str(s, v->action.p, v->action.n, RP_AUDIT_PATH_MAX);
    sk_lit(s, ",\"scope\":");
    sk_str(s, v->scope.p, v->scope.n, RP_AUDIT_PATH_MAX);
    sk_lit(s, ",\"result\":");
    sk_str(s, v->result.p, v->result.n, RP_AUDIT_FIELD_MAX);
    sk_lit(s, ",\"request\":");
    sk_str(s, v->request.p, v->request.n, RP_AUDIT_FIELD_MAX);
    sk_lit(s, ",\"client\":");
    sk_str(s, v->client.p, v->client.n, RP_AUDIT_FIELD_MAX);
}

static void sk_event_head(sink *s, uint64_t seq)
{
    sk_lit(s, "{\"seq\":");
    sk_u64(s, seq);
    sk_put(s, ",", 1);
}

static void sk_event_tail(sink *s, const unsigned char prev[HASH_LEN])
{
    sk_lit(s, ",\"prev\":\"");
    sk_hex(s, prev);
    sk_lit(s, "\"}");
}

/* The signed part of a checkpoint line: the line without its sig member. */
static void sk_checkpoint(sink *s, uint64_t seq, const char *stamp, uint64_t count,
                          const unsigned char head[HASH_LEN], const unsigned char prev[HASH_LEN])
{
    sk_lit(s, "{\"seq\":");
    sk_u64(s, seq);
    sk_lit(s, ",\"time\":\"");
    sk_put(s, stamp, TIME_LEN);
    sk_lit(s, "\",\"kind\":\"checkpoint\",\"count\":");
    sk_u64(s, count);
    sk_lit(s, ",\"head\":\"");
    sk_hex(s, head);
    sk_lit(s, "\",\"prev\":\"");
    sk_hex(s, prev);
    sk_lit(s, "\"}");
}

/* Replaces the final '}' of a signed checkpoint part with the sig member and '}'. */
static void sk_checkpoint_sig(sink *s, const unsigned char sig[RP_AUDIT_SIG_LEN])
{
    char b64[SIG_B64_LEN + 4];

    rp_b64url_encode(sig, RP_AUDIT_SIG_LEN, b64, sizeof(b64));
    s->len--;
    sk_lit(s, SIG_SUFFIX);
    sk_put(s, b64, SIG_B64_LEN);
    sk_lit(s, "\"}");
}

/* Wall-clock time as 2026-11-29T05:31:02.123Z into out[32]. */
static void now_iso(char out[32])
{
    struct timespec ts;
    struct tm tm;
    char tmp[80];
    int year;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    year = tm.tm_year + 1900;
    if (year < 0)
        year = 0;
    if (year > 9999)
        year = 9999;
    /* Every field is in range, so this is exactly TIME_LEN bytes; the copy bounds it anyway. */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    rp_strlcpy(out, tmp, TIME_LEN + 1);
}

static int in_list(const char *s, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(list[i]) == n && memcmp(s, list[i], n) == 0)
            return 1;
    return 0;
}

static int sha256_line(EVP_MD_CTX *ctx, const EVP_MD *md, const char *p, size_t n, int add_nl,
                       unsigned char out[HASH_LEN])
{
    unsigned int len = 0;

    if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
        (add_nl && EVP_DigestUpdate(ctx, "\n", 1) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != HASH_LEN)
        return RP_ECRYPTO;
    return 0;
}

/* ---------------------------------------------------------------- parser */

static int hex32(const char *s, size_t n, unsigned char out[HASH_LEN])
{
    if (n != 2 * HASH_LEN)
        return RP_EPARSE;
    for (size_t i = 0; i < HASH_LEN; i++) {
        int hi = rp_hex_value((unsigned char)s[2 * i]);
        int lo = rp_hex_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RP_EPARSE;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* 2026-11-29T05:31:02.123Z with plausible field ranges. */
static int time_ok(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    uint64_t mo, d, h, mi, se;

    if (n != TIME_LEN)
        return 0;
    for (size_t i = 0; i < TIME_LEN; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return 0;
    }
    if (rp_parse_u64(s + 5, 2, 12, &mo) || rp_parse_u64(s + 8, 2, 31, &d) ||
        rp_parse_u64(s + 11, 2, 23, &h) || rp_parse_u64(s + 14, 2, 59, &mi) ||
        rp_parse_u64(s + 17, 2, 60, &se))
        return 0;
    return mo >= 1 && d >= 1;
}

static const char *get_str(const json_t *o, const char *key, size_t *n)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_string(v))
        return NULL;
    *n = json_string_length(v);
    return json_string_value(v);
}

static int get_u64(const json_t *o, const char *key, uint64_t min, uint64_t *out)
{
    const json_t *v = json_object_get(o, key);
    json_int_t i;

    if (!json_is_integer(v))
        return RP_EPARSE;
    i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min)
        return RP_EPARSE;
    *out = (uint64_t)i;
    return 0;
}

static int get_hex(const json_t *o, const char *key, unsigned char out[HASH_LEN])
{
    size_t n = 0;
    const char *s = get_str(o, key, &n);

    return s != NULL ? hex32(s, n, out) : RP_EPARSE;
}

/* Fills the event fields of e from its object; canonical bytes into s. */
static int parse_event(rp_audit_entry *e, sink *s, const char **why)
{
    const json_t *o = e->obj;
    ev_view v;
    const char **dst[6] = {&e->principal, &e->action,     &e->scope,
                           &e->result,    &e->request_id, &e->client};
    rp_str *src[6] = {&v.principal, &v.action, &v.scope, &v.result, &v.request, &v.client};
    static const char *const keys[6] = {"principal", "action",  "scope",
                                        "result",    "request", "client"};

    memset(&v, 0, sizeof(v));
    v.time = e->time;
    v.kind = (rp_str){e->kind, strlen(e->kind)};
    if (!in_list(v.kind.p, v.kind.n, kinds, sizeof(kinds) / sizeof(kinds[0]))) {
        *why = "unknown kind";
        return RP_EPARSE;
    }
    for (int i = 0; i < 6; i++) {
        *dst[i] = get_str(o, keys[i], &src[i]->n);
        src[i]->p = *dst[i];
        if (*dst[i] == NULL) {
            *why = "a record field is missing or not a string";
            return RP_EPARSE;
        }
    }
    if (!in_list(v.result.p, v.result.n, results, sizeof(results) / sizeof(results[0]))) {
        *why = "unknown result";
        return RP_EPARSE;
    }
    e->detail = json_object_get(o, "detail");
    if (e->detail != NULL && !json_is_object(e->detail)) {
        *why = "detail is not an object";
        return RP_EPARSE;
    }
    sk_event_head(s, e->seq);
    sk_body(s, &v);
    if (e->detail != NULL) {
        sk_lit(s, ",\"detail\":");
        sk_detail_parsed(s, e->detail);
    }
    sk_event_tail(s, e->prev);
    return 0;
}

/* Fills the checkpoint fields of e from its object; canonical bytes into s. */
static int parse_checkpoint(rp_audit_entry *e, sink *s, const char **why)
{
    const json_t *o = e->obj;
    size_t n = 0, got = 0;
    const char *sig;

    if (get_u64(o, "count", 0, &e->count) != 0) {
        *why = "checkpoint count missing or not a count";
        return RP_EPARSE;
    }
    if (get_hex(o, "head", e->head) != 0) {
        *why = "checkpoint head missing or not 64 hex digits";
        return RP_EPARSE;
    }
    sig = get_str(o, "sig", &n);
    if (sig == NULL || n != SIG_B64_LEN ||
        rp_b64url_decode(sig, n, e->sig, sizeof(e->sig), &got) != 0 || got != RP_AUDIT_SIG_LEN) {
        *why = "checkpoint sig missing or not a base64url Ed25519 signature";
        return RP_EPARSE;
    }
    e->checkpoint = 1;
    sk_checkpoint(s, e->seq, e->time, e->count, e->head, e->prev);
    sk_checkpoint_sig(s, e->sig);
    return 0;
}

void rp_audit_entry_clear(rp_audit_entry *e)
{
    if (e == NULL)
        return;
    json_decref(e->obj);
    memset(e, 0, sizeof(*e));
}

int rp_audit_parse_line(const char *line, size_t n, rp_audit_entry *out, const char **why)
{
    const char *w = NULL;
    json_error_t jerr;
    char *canon = NULL;
    size_t tn = 0;
    sink s;
    int rc = RP_EPARSE;

    if (why != NULL)
        *why = NULL;
    if (out == NULL || (line == NULL && n > 0))
        return RP_EINVAL;
    memset(out, 0, sizeof(*out));
    if (n > RP_AUDIT_LINE_MAX) {
        w = "record longer than the line limit";
        rc = RP_ETOOBIG;
        goto fail;
    }
    out->obj = json_loadb(n > 0 ? line : "", n, JSON_REJECT_DUPLICATES, &jerr);
    if (out->obj == NULL) {
        w = "not valid JSON";
        goto fail;
    }
    if (!json_is_object(out->obj)) {
        w = "not a JSON object";
        goto fail;
    }
    if (get_u64(out->obj, "seq", 1, &out->seq) != 0) {
        w = "seq missing or not a positive integer";
        goto fail;
    }
    out->time = get_str(out->obj, "time", &tn);
    if (out->time == NULL || !time_ok(out->time, tn)) {
        w = "time missing or not an RFC 3339 UTC time with milliseconds";
        goto fail;
    }
    out->kind = get_str(out->obj, "kind", &tn);
    if (out->kind == NULL) {
        w = "kind missing or not a string";
        goto fail;
    }
    if (get_hex(out->obj, "prev", out->prev) != 0) {
        w = "prev missing or not 64 hex digits";
        goto fail;
    }
    canon = rp_malloc(n + 1);
    if (canon == NULL) {
        rc = RP_ENOMEM;
        goto fail;
    }
    sk_init(&s, canon, n);
    if (strcmp(out->kind, "checkpoint") == 0)
        rc = parse_checkpoint(out, &s, &w);
    else
        rc = parse_event(out, &s, &w);
    if (rc != 0)
        goto fail;
    if (s.over || s.len != n || memcmp(canon, line, n) != 0) {
        w = "record is not in canonical form (edited, or not written by rampart)";
        rc = RP_EPARSE;
        goto fail;
    }
    if (out->checkpoint)
        out->signed_len = n - SIG_TAIL_LEN;
    rp_free(canon);
    return 0;
fail:
    rp_free(canon);
    rp_audit_entry_clear(out);
    if (why != NULL)
        *why = w != NULL ? w : "out of memory";
    return rc;
}

static int is_repair(const rp_audit_entry *e)
{
    return !e->checkpoint && strcmp(e->kind, "system") == 0 &&
           strcmp(e->action, RP_AUDIT_REPAIR_ACTION) == 0;
}

/* ---------------------------------------------------------------- keys */

static int signing_key(const rp_rootkey *rk, EVP_PKEY **out)
{
    unsigned char seed[32];
    int rc;

    *out = NULL;
    rc = rp_rootkey_derive(rk, RP_AUDIT_SIGNING_LABEL, seed, sizeof(seed));
    if (rc != 0)
        return rc;
    *out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    OPENSSL_cleanse(seed, sizeof(seed));
    return *out != NULL ? 0 : RP_ECRYPTO;
}

static int raw_public(EVP_PKEY *k, unsigned char pub[RP_AUDIT_PUBKEY_LEN])
{
    size_t len = RP_AUDIT_PUBKEY_LEN;

    if (EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 || len != RP_AUDIT_PUBKEY_LEN)
        return RP_ECRYPTO;
    return 0;
}

int rp_audit_public_key(const rp_rootkey *rk, unsigned char pub[RP_AUDIT_PUBKEY_LEN])
{
    EVP_PKEY *k = NULL;
    int rc;

    if (rk == NULL || pub == NULL)
        return RP_EINVAL;
    rc = signing_key(rk, &k);
    if (rc == 0)
        rc = raw_public(k, pub);
    EVP_PKEY_free(k);
    return rc;
}

int rp_audit_pubkey_load(const char *pubpath, unsigned char pub[RP_AUDIT_PUBKEY_LEN])
{
    rp_buf b;
    size_t n, got = 0;
    int rc;

    if (pubpath == NULL || pub == NULL)
        return RP_EINVAL;
    rp_buf_init(&b, 256);
    rc = rp_file_read(pubpath, &b);
    if (rc == RP_ETOOBIG)
        rc = RP_EPARSE;
    if (rc != 0)
        goto out;
    n = b.len;
    if (n > 0 && b.data[n - 1] == '\n')
        n--;
    rc = RP_EPARSE;
    if (n == 43 && rp_b64url_decode(b.data, n, pub, RP_AUDIT_PUBKEY_LEN, &got) == 0 &&
        got == RP_AUDIT_PUBKEY_LEN)
        rc = 0;
out:
    rp_buf_free(&b);
    return rc;
}

/* "<path>.pub" holds pub, or is created with it. RP_ECONFLICT if it holds anything else. */
static int pubkey_ensure(const char *pubpath, const unsigned char pub[RP_AUDIT_PUBKEY_LEN])
{
    unsigned char cur[RP_AUDIT_PUBKEY_LEN];
    char text[64];
    size_t n;
    int rc = rp_audit_pubkey_load(pubpath, cur);

    if (rc == 0 && memcmp(cur, pub, sizeof(cur)) == 0)
        return 0;
    if (rc == 0 || rc == RP_EPARSE) {
        rp_log_msg(RP_LOG_ERROR, "audit.pubkey",
                   "the audit public key file does not match this root key: the log was signed "
                   "with another key, or the file was altered");
        return RP_ECONFLICT;
    }
    if (rc != RP_ENOENT)
        return rc;
    rp_b64url_encode(pub, RP_AUDIT_PUBKEY_LEN, text, sizeof(text) - 1);
    n = strlen(text);
    text[n] = '\n';
    /* Public, and meant to be copied off the host. */
    return rp_file_write_atomic(pubpath, text, n + 1, 0644);
}

/* ---------------------------------------------------------------- state */

#define OP_CHECKPOINT (1u << 31) /* internal: write a checkpoint right after this record */

typedef struct audit_op {
    rp_cport_item item; /* first: next (the writer's queue, then the port's), done, arg, status */
    rp_cport *port;     /* NULL for rp_audit_log_sync: then its caller frees the op */
    unsigned flags;
    int finished; /* log_sync only; guarded by the log mutex */
    size_t body_len;
    char body[]; /* the line between {"seq":N, and ,"prev":... */
} audit_op;

struct rp_audit {
    int fd;
    EVP_PKEY *key; /* the Ed25519 signing key */
    EVP_MD *md;    /* SHA-256, fetched once */
    EVP_MD_CTX *mdctx;
    uv_thread_t thread;
    int sync_ready;     /* mu and the conds exist */
    int thread_started; /* thread must be joined */

    uv_mutex_t mu;     /* guards head, tail, refs, closing, stats, fail_after, the *_ms knobs */
    uv_cond_t work_cv; /* the writer waits here for ops, closing or its next timed duty */
    uv_cond_t sync_cv; /* rp_audit_log_sync callers wait here */
    audit_op *head;
    audit_op *tail;
    size_t qlen;         /* ops in head..tail */
    int wstate;          /* W_*: what the writer is doing, so enqueue wakes it only when it must */
    size_t held;         /* while W_LINGER: ops the writer holds for its group */
    size_t last_durable; /* writer: size of the last group that was synced */
    unsigned refs;
    int closing;
    rp_audit_stats stats;
    long fail_after;
    unsigned sync_ms;
    unsigned cp_ms;

    /* writer */
    uint64_t seq;                 /* last line's seq */
    unsigned char prev[HASH_LEN]; /* last line's hash */
    uint64_t size;                /* file size after our last write */
    uint64_t since_cp;            /* lines since the last checkpoint */
    uint64_t cp_due;              /* rp_mono_ms when they must be signed */
    uint64_t unsynced;            /* lines written since the last fdatasync */
    uint64_t sync_due;            /* rp_mono_ms when they must be synced */
    unsigned w_sync_ms, w_cp_ms;  /* copies of the knobs */
    int broken;                   /* an I/O error happened: write nothing more */
    rp_audit_stats w;             /* counters, published into stats */
    char *wbuf;                   /* the group being built, WBUF_CAP */
    size_t wlen;
    uint64_t wcps; /* checkpoints in wbuf */
    char *rbuf;    /* tail reads, RBUF_CAP */
    audit_op *batch[RP_AUDIT_BATCH_MAX];
};

/* An audit port is a completion port (base/cport.h) whose owner is the log. */
static rp_cport *cport_of(rp_audit_port *p)
{
    return (rp_cport *)p;
}

/* ---------------------------------------------------------------- files */

static int errno_rc(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR: return RP_ENOENT;
    case EACCES:
    case EPERM:
    case EROFS: return RP_EPERM;
    case ELOOP: return RP_EINVAL;
    default: return RP_EIO;
    }
}

static int lock_fd(int fd, int op)
{
    while (flock(fd, op) != 0) {
        if (errno != EINTR)
            return RP_EIO;
    }
    return 0;
}

static int pread_all(int fd, char *buf, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return RP_EIO;
        }
        if (r == 0)
            return RP_EIO; /* shorter than fstat said */
        buf += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* A size at which no group is half written: taken under a shared lock, for readers. */
static int stable_size(int fd, uint64_t *size)
{
    struct stat st;
    int rc = lock_fd(fd, LOCK_SH);

    if (rc != 0)
        return rc;
    rc = fstat(fd, &st) == 0 ? 0 : RP_EIO;
    if (rc == 0)
        *size = (uint64_t)st.st_size;
    lock_fd(fd, LOCK_UN);
    return rc;
}

/* Opens path for reading: a regular file, never through a symlink. */
static int open_read(const char *path, int *out)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0)
        return errno_rc(errno);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RP_EINVAL;
    }
    *out = fd;
    return 0;
}

static int fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0;

    if (slash == NULL)
        dir = rp_strdup(".");
    else
        dir = rp_strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (dir == NULL)
        return RP_ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rp_free(dir);
    if (fd < 0)
        return RP_EIO;
    if (fsync(fd) != 0)
        rc = RP_EIO;
    close(fd);
    return rc;
}

/* Opens (creating: 0600, directory entry synced) the log for appending and reading its tail. */
static int open_log(const char *path, int *out)
{
    struct stat st;
    int fd = -1, rc;

    for (int tries = 0; tries < 2 && fd < 0; tries++) {
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  S_IRUSR | S_IWUSR);
        if (fd >= 0) {
            /* The umask may have narrowed the mode; the file is durable before its first byte. */
            rc = fchmod(fd, S_IRUSR | S_IWUSR) == 0 ? 0 : RP_EIO;
            if (rc == 0)
                rc = fsync_dir_of(path);
            if (rc != 0) {
                close(fd);
                return rc;
            }
            break;
        }
        if (errno != EEXIST)
            return errno_rc(errno);
        fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 && errno != ENOENT) /* ENOENT: removed meanwhile, create it again */
            return errno_rc(errno);
    }
    if (fd < 0)
        return RP_EIO;
    rc = 0;
    if (fstat(fd, &st) != 0)
        rc = RP_EIO;
    else if (!S_ISREG(st.st_mode))
        rc = RP_EINVAL;
    else if ((st.st_mode & 077) != 0) {
        rc = fchmod(fd, S_IRUSR | S_IWUSR) == 0 ? 0 : RP_EIO;
        rp_log_msg(RP_LOG_WARN, "audit.mode", "audit log file mode tightened to 0600");
    }
    if (rc == 0 && fcntl(fd, F_SETFL, O_APPEND) != 0) /* drop O_NONBLOCK */
        rc = RP_EIO;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/*
 * Start of the line whose content ends at buf[e]: just after the last '\n' before e, or 0 if
 * buf begins the file. -1 if neither (the line began before buf) or it is over the limit.
 */
static long line_start(const char *buf, size_t e, int at_bof)
{
    const char *nl = e > 0 ? memrchr(buf, '\n', e) : NULL;
    size_t s;

    if (nl == NULL && !at_bof)
        return -1;
    s = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
    if (e - s > RP_AUDIT_LINE_MAX)
        return -1;
    return (long)s;
}

typedef struct tail_info {
    uint64_t seq;                 /* the last valid line's seq (0: none) */
    unsigned char prev[HASH_LEN]; /* hash of the file's last line with its '\n' */
    int last_cp;                  /* the last line is a checkpoint */
    int torn;                     /* the file does not end in '\n' */
    int damaged;                  /* the last line is not a valid record */
    size_t bad_len;               /* its length then */
} tail_info;

/*
 * Reads the end of a file of size bytes: the last line and, when it is damaged and we are
 * repairing, the one before. Without repair a torn or damaged end is RP_EPARSE.
 */
static int tail_read(rp_audit *a, uint64_t size, int repair, tail_info *t)
{
    size_t want = size < RBUF_CAP ? (size_t)size : RBUF_CAP, le;
    uint64_t from = size - want;
    rp_audit_entry e;
    long ls, ps;
    int rc;

    memset(t, 0, sizeof(*t));
    if (size == 0)
        return 0;
    rc = pread_all(a->fd, a->rbuf, want, from);
    if (rc != 0)
        return rc;
    t->torn = a->rbuf[want - 1] != '\n';
    le = t->torn ? want : want - 1;
    ls = line_start(a->rbuf, le, from == 0);
    if (ls < 0) {
        rp_log_msg(RP_LOG_ERROR, "audit.open", "the last line of the audit log is too long");
        return repair ? RP_ETOOBIG : RP_EPARSE;
    }
    rc = rp_audit_parse_line(a->rbuf + ls, le - (size_t)ls, &e, NULL);
    if (rc == RP_ENOMEM)
        return rc;
    t->damaged = rc != 0;
    if (rc == 0) {
        t->seq = e.seq;
        t->last_cp = e.checkpoint;
        rp_audit_entry_clear(&e);
    }
    rc = sha256_line(a->mdctx, a->md, a->rbuf + ls, le - (size_t)ls, 1, t->prev);
    if (rc != 0 || (!t->torn && !t->damaged))
        return rc;
    if (!repair) {
        rp_log_msg(RP_LOG_ERROR, "audit.open",
                   t->torn ? "the audit log ends in a torn line (a write was cut short): "
                             "run rampart audit repair"
                           : "the last line of the audit log is not a valid record: "
                             "run rampart audit verify, then rampart audit repair");
        return RP_EPARSE;
    }
    if (!t->damaged)
        return 0; /* only the final '\n' is missing */
    t->bad_len = le - (size_t)ls;
    if (ls == 0)
        return 0; /* the damaged line is the first: the repair record is seq 1 */
    ps = line_start(a->rbuf, (size_t)ls - 1, from == 0);
    if (ps < 0)
        return RP_EPARSE;
    rc = rp_audit_parse_line(a->rbuf + ps, (size_t)(ls - 1 - ps), &e, NULL);
    if (rc != 0)
        return rc == RP_ENOMEM ? rc : RP_EPARSE;
    t->seq = e.seq;
    rp_audit_entry_clear(&e);
    return 0;
}

/* Continues the chain from what tail_read found. */
static void tail_apply(rp_audit *a, const tail_info *t)
{
    a->seq = t->seq;
    memcpy(a->prev, t->prev, HASH_LEN);
    if (t->last_cp) {
        a->since_cp = 0;
    } else if (a->size > 0 && a->since_cp == 0) {
        /* Unsigned lines of unknown number: sign them at the next timed checkpoint. */
        a->since_cp = 1;
        a->cp_due = rp_mono_ms() + a->w_cp_ms;
    }
}

/* ---------------------------------------------------------------- lifetimes */

static void audit_free(rp_audit *a)
{
    if (a == NULL)
        return;
    if (a->sync_ready) {
        uv_cond_destroy(&a->sync_cv);
        uv_cond_destroy(&a->work_cv);
        uv_mutex_destroy(&a->mu);
    }
    if (a->fd >= 0)
        close(a->fd);
    EVP_PKEY_free(a->key);
    EVP_MD_CTX_free(a->mdctx);
    EVP_MD_free(a->md);
    rp_free(a->rbuf);
    rp_free(a->wbuf);
    rp_free(a);
}

static int audit_ref(rp_audit *a)
{
    int rc = 0;

    uv_mutex_lock(&a->mu);
    if (a->closing)
        rc = RP_ECLOSED;
    else
        a->refs++;
    uv_mutex_unlock(&a->mu);
    return rc;
}

static void audit_unref(rp_audit *a)
{
    int last;

    uv_mutex_lock(&a->mu);
    last = --a->refs == 0;
    uv_mutex_unlock(&a->mu);
    if (last)
        audit_free(a);
}

/* ---------------------------------------------------------------- the writer thread */

/* Counts one file operation against the test hook: 1 if it must fail. */
static int io_fault(rp_audit *a)
{
    int fail = 0;

    uv_mutex_lock(&a->mu);
    if (a->fail_after == 0)
        fail = 1;
    else if (a->fail_after > 0)
        a->fail_after--;
    uv_mutex_unlock(&a->mu);
    return fail;
}

static int file_write(rp_audit *a)
{
    if (io_fault(a))
        return RP_EIO;
    return rp_file_write_all(a->fd, a->wbuf, a->wlen);
}

/*
 * One fdatasync. After a failed one the kernel may have dropped the dirty pages and a retry
 * can "succeed" without them, which is why a failure stops the writer for good.
 */
static int file_sync(rp_audit *a)
{
    int r;

    if (io_fault(a))
        return RP_EIO;
    do
        r = fdatasync(a->fd);
    while (r != 0 && errno == EINTR);
    if (r != 0)
        return RP_EIO;
    a->w.syncs++;
    a->w.synced = a->w.records;
    a->unsynced = 0;
    return 0;
}

/*
 * Takes the file lock for a group. If the file grew behind our back (another handle or process
 * appended), continues its chain; if it shrank, refuses.
 */
static int group_lock(rp_audit *a)
{
    struct stat st;
    tail_info t;
    int rc = lock_fd(a->fd, LOCK_EX);

    if (rc != 0)
        return rc;
    if (fstat(a->fd, &st) != 0) {
        rc = RP_EIO;
    } else if ((uint64_t)st.st_size < a->size) {
        /* Someone cut the log: continuing its chain would hide that. Fail closed. */
        rp_log_msg(RP_LOG_ERROR, "audit.shrunk", "the audit log shrank behind the writer");
        rc = RP_EIO;
    } else if ((uint64_t)st.st_size != a->size) {
        rc = tail_read(a, (uint64_t)st.st_size, 0, &t);
        if (rc == 0) {
            a->size = (uint64_t)st.st_size;
            tail_apply(a, &t);
        }
    }
    if (rc != 0)
        lock_fd(a->fd, LOCK_UN);
    return rc;
}

/* Appends the op's line to wbuf with the next seq and the chain's prev. */
static int append_event(rp_audit *a, const audit_op *op)
{
    sink s;
    int rc;

    sk_init(&s, a->wbuf + a->wlen, WBUF_CAP - a->wlen);
    sk_event_head(&s, a->seq + 1);
    sk_put(&s, op->body, op->body_len);
    sk_event_tail(&s, a->prev);
    sk_put(&s, "\n", 1);
    if (s.over)
        return RP_ETOOBIG; /* cannot happen: the group was sized for it */
    rc = sha256_line(a->mdctx, a->md, s.p, s.len, 0, a->prev);
    if (rc != 0)
        return rc;
    a->seq++;
    a->wlen += s.len;
    if (a->since_cp++ == 0)
        a->cp_due = rp_mono_ms() + a->w_cp_ms;
    return 0;
}

/* Appends a signed checkpoint over everything before it. */
static int append_checkpoint(rp_audit *a)
{
    unsigned char sig[RP_AUDIT_SIG_LEN];
    size_t siglen = sizeof(sig);
    char stamp[32];
    EVP_MD_CTX *ctx;
    sink s;
    int rc = RP_ECRYPTO;

    now_iso(stamp);
    sk_init(&s, a->wbuf + a->wlen, WBUF_CAP - a->wlen);
    sk_checkpoint(&s, a->seq + 1, stamp, a->seq, a->prev, a->prev);
    if (s.over)
        return RP_ETOOBIG;
    ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, a->key) == 1 &&
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)s.p, s.len) == 1 &&
        siglen == sizeof(sig))
        rc = 0;
    EVP_MD_CTX_free(ctx);
    if (rc != 0)
        return rc;
    sk_checkpoint_sig(&s, sig);
    sk_put(&s, "\n", 1);
    if (s.over)
        return RP_ETOOBIG;
    rc = sha256_line(a->mdctx, a->md, s.p, s.len, 0, a->prev);
    if (rc != 0)
        return rc;
    a->seq++;
    a->wlen += s.len;
    a->wcps++;
    a->since_cp = 0;
    return 0;
}

/* Books a successful write of wbuf holding records event lines and wcps checkpoints. */
static void note_written(rp_audit *a, size_t records)
{
    a->size += a->wlen;
    a->w.records += records;
    a->w.checkpoints += a->wcps;
    a->w.seq = a->seq;
    if (a->unsynced == 0)
        a->sync_due = rp_mono_ms() + a->w_sync_ms;
    a->unsynced += records + a->wcps;
}

static void writer_fail(rp_audit *a, int rc)
{
    if (a->broken)
        return;
    a->broken = 1;
    rp_log_err("audit.write",
               "the audit log cannot be written: every record fails from now on (durable ones "
               "refuse their request, the others are lost) until the log is reopened",
               rc);
}

static void publish(rp_audit *a)
{
    uv_mutex_lock(&a->mu);
    a->stats = a->w;
    uv_mutex_unlock(&a->mu);
}

/*
 * Gives the group's n ops their status and publishes: counters first (a test that saw its
 * callbacks sees the counters), then the synchronous callers, then the ports. A log_sync op
 * must not be touched once finished is set, so port ops are compacted into batch[0..k) first.
 */
static void writer_finish(rp_audit *a, size_t n, int status)
{
    size_t i, k = 0;
    int woke = 0;

    for (i = 0; i < n; i++) {
        audit_op *op = a->batch[i];

        op->item.status = status;
        if (status != 0) {
            a->w.failed++;
            if (!(op->flags & RP_AUDIT_DURABLE))
                a->w.lost++;
        } else if (op->flags & RP_AUDIT_DURABLE) {
            a->w.durable++;
        }
    }
    uv_mutex_lock(&a->mu);
    a->stats = a->w;
    for (i = 0; i < n; i++) {
        audit_op *op = a->batch[i];

        if (op->port == NULL) {
            op->finished = 1;
            woke = 1;
        } else {
            a->batch[k++] = op;
        }
    }
    if (woke)
        uv_cond_broadcast(&a->sync_cv);
    uv_mutex_unlock(&a->mu);
    for (i = 0; i < k; i++)
        rp_cport_deliver(a->batch[i]->port, &a->batch[i]->item);
}

/* Writes the n ops in a->batch as one group: one write(2), one fdatasync if any is durable. */
static void writer_group(rp_audit *a, size_t n)
{
    int rc = 0, durable = 0;
    size_t i;

    a->wlen = 0;
    a->wcps = 0;
    if (a->broken)
        rc = RP_EIO;
    if (rc == 0)
        rc = group_lock(a);
    if (rc == 0) {
        for (i = 0; rc == 0 && i < n; i++) {
            const audit_op *op = a->batch[i];

            if (op->flags & RP_AUDIT_DURABLE)
                durable = 1;
            rc = append_event(a, op);
            if (rc == 0 &&
                (a->since_cp >= RP_AUDIT_CHECKPOINT_EVERY || (op->flags & OP_CHECKPOINT)))
                rc = append_checkpoint(a);
        }
        if (rc == 0)
            rc = file_write(a);
        lock_fd(a->fd, LOCK_UN);
    }
    if (rc == 0)
        note_written(a, n);
    if (rc == 0 && durable)
        rc = file_sync(a);
    if (rc != 0)
        writer_fail(a, rc);
    writer_finish(a, n, rc != 0 ? RP_EIO : 0);
}

/* The timed duties: a checkpoint over unsigned lines, an fdatasync of unsynced ones. */
static void writer_timers(rp_audit *a, int final)
{
    uint64_t now = rp_mono_ms();
    int rc = 0, changed = 0;

    if (a->broken)
        return;
    if (a->since_cp > 0 && (final || now >= a->cp_due)) {
        changed = 1;
        a->wlen = 0;
        a->wcps = 0;
        rc = group_lock(a);
        if (rc == 0) {
            if (a->since_cp > 0) /* unless the file's new tail is someone else's checkpoint */
                rc = append_checkpoint(a);
            if (rc == 0 && a->wlen > 0)
                rc = file_write(a);
            lock_fd(a->fd, LOCK_UN);
            if (rc == 0)
                note_written(a, 0);
        }
    }
    /* A checkpoint is worth its fdatasync at once: it is what makes the chain signed. */
    if (rc == 0 && a->unsynced > 0 && (final || changed || now >= a->sync_due)) {
        changed = 1;
        rc = file_sync(a);
    }
    if (rc != 0)
        writer_fail(a, rc);
    if (changed)
        publish(a);
}

/* Milliseconds until the next timed duty, UINT64_MAX if none. Writer thread. */
static uint64_t writer_wait_ms(const rp_audit *a)
{
    uint64_t now = rp_mono_ms(), due = UINT64_MAX;

    if (a->broken)
        return UINT64_MAX;
    if (a->since_cp > 0)
        due = a->cp_due;
    if (a->unsynced > 0 && a->sync_due < due)
        due = a->sync_due;
    if (due == UINT64_MAX)
        return due;
    return due > now ? due - now : 0;
}

enum { W_BUSY = 0, W_IDLE, W_LINGER };

static void writer_main(void *arg)
{
    rp_audit *a = arg;

    uv_mutex_lock(&a->mu);
    for (;;) {
        size_t n = 0, bytes = 0;
        int final;

        for (;;) {
            uint64_t wait;

            a->w_sync_ms = a->sync_ms;
            a->w_cp_ms = a->cp_ms;
            if (a->head != NULL || a->closing)
                break;
            wait = writer_wait_ms(a);
            if (wait == 0)
                break;
            a->wstate = W_IDLE;
            if (wait == UINT64_MAX) {
                uv_cond_wait(&a->work_cv, &a->mu);
            } else if (uv_cond_timedwait(&a->work_cv, &a->mu, wait * 1000000u) == UV_ETIMEDOUT) {
                a->wstate = W_BUSY;
                break;
            }
            a->wstate = W_BUSY;
        }
        for (uint64_t deadline = 0;;) {
            int durable = 0;
            uint64_t now;
            while (a->head != NULL && n < RP_AUDIT_BATCH_MAX) {
                size_t cost = a->head->body_len + OP_COST;

                if (n > 0 && bytes + cost > RP_AUDIT_BATCH_BYTES)
                    break;
                a->batch[n++] = a->head;
                a->qlen--;
                bytes += cost;
                a->head = (audit_op *)a->head->item.next;
            }
            if (a->head == NULL)
                a->tail = NULL;
            for (size_t i = 0; i < n && !durable; i++)
                durable = (a->batch[i]->flags & RP_AUDIT_DURABLE) != 0;
            /* A small group that needs an fdatasync waits a moment for company: under load
             * (reads of secrets, each durable) the sync is the cost, and sharing it matters more
             * than the fraction of a millisecond the first record waits. Enqueue wakes the
             * writer only once the group is full, the deadline otherwise. */
            if (!durable || n >= RP_AUDIT_LINGER_GROUP || a->closing || n >= RP_AUDIT_BATCH_MAX ||
                a->head != NULL || a->last_durable < 2)
                break;
            now = rp_mono_us();
            if (deadline == 0)
                deadline = now + RP_AUDIT_LINGER_US;
            if (now >= deadline)
                break;
            a->wstate = W_LINGER;
            a->held = n;
            (void)uv_cond_timedwait(&a->work_cv, &a->mu, (deadline - now) * 1000u);
            a->wstate = W_BUSY;
        }
        final = a->closing && a->head == NULL;
        for (size_t i = 0; i < n; i++) {
            if (a->batch[i]->flags & RP_AUDIT_DURABLE) {
                a->last_durable = n;
                break;
            }
        }
        uv_mutex_unlock(&a->mu);
        if (n > 0)
            writer_group(a, n);
        writer_timers(a, final);
        uv_mutex_lock(&a->mu);
        if (final)
            break; /* closing refuses new ops, so nothing came in meanwhile */
    }
    uv_mutex_unlock(&a->mu);
}

/* Appends op to the writer's queue: 0 or RP_ECLOSED. Caller holds a->mu. */
static int enqueue_locked(rp_audit *a, audit_op *op)
{
    if (a->closing)
        return RP_ECLOSED;
    op->item.next = NULL;
    if (a->tail != NULL)
        a->tail->item.next = &op->item;
    else
        a->head = op;
    a->tail = op;
    a->qlen++;
    /* A busy writer looks at the queue before it waits again: no wake-up (a futex call) per op. */
    if (a->wstate == W_IDLE ||
        (a->wstate == W_LINGER && a->qlen + a->held >= RP_AUDIT_LINGER_GROUP))
        uv_cond_signal(&a->work_cv);
    return 0;
}

/* ---------------------------------------------------------------- open and close */

static char *pubkey_path(const char *path)
{
    size_t n = strlen(path);
    char *p = rp_malloc(n + 5);

    if (p != NULL) {
        memcpy(p, path, n);
        memcpy(p + n, ".pub", 5);
    }
    return p;
}

/*
 * Opens the log; with repair, terminates a torn last line and reports through *fixed and
 * *bad_len whether a repair record is due.
 */
static int audit_open(const char *path, const rp_rootkey *rk, int repair, rp_audit **out,
                      int *fixed, uint64_t *bad_len)
{
    unsigned char pub[RP_AUDIT_PUBKEY_LEN];
    char *pubpath = NULL;
    struct stat st;
    tail_info t;
    rp_audit *a;
    int rc, locked = 0;

    if (out == NULL)
        return RP_EINVAL;
    *out = NULL;
    if (path == NULL || path[0] == '\0' || rk == NULL)
        return RP_EINVAL;
    a = rp_calloc(1, sizeof(*a));
    if (a == NULL)
        return RP_ENOMEM;
    a->fd = -1;
    a->refs = 1;
    a->fail_after = -1;
    a->sync_ms = a->w_sync_ms = RP_AUDIT_SYNC_MS;
    a->cp_ms = a->w_cp_ms = RP_AUDIT_CHECKPOINT_MS;
    rc = RP_ENOMEM;
    pubpath = pubkey_path(path);
    a->wbuf = rp_malloc(WBUF_CAP);
    a->rbuf = rp_malloc(RBUF_CAP);
    if (pubpath == NULL || a->wbuf == NULL || a->rbuf == NULL)
        goto fail;
    rc = RP_EIO;
    if (uv_mutex_init(&a->mu) != 0)
        goto fail;
    if (uv_cond_init(&a->work_cv) != 0) {
        uv_mutex_destroy(&a->mu);
        goto fail;
    }
    if (uv_cond_init(&a->sync_cv) != 0) {
        uv_cond_destroy(&a->work_cv);
        uv_mutex_destroy(&a->mu);
        goto fail;
    }
    a->sync_ready = 1;
    rc = RP_ECRYPTO;
    a->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    a->mdctx = EVP_MD_CTX_new();
    if (a->md == NULL || a->mdctx == NULL)
        goto fail;
    rc = signing_key(rk, &a->key);
    if (rc == 0)
        rc = raw_public(a->key, pub);
    if (rc == 0)
        rc = pubkey_ensure(pubpath, pub);
    if (rc == 0)
        rc = open_log(path, &a->fd);
    if (rc == 0)
        rc = lock_fd(a->fd, LOCK_EX);
    if (rc != 0)
        goto fail;
    locked = 1;
    if (fstat(a->fd, &st) != 0) {
        rc = RP_EIO;
        goto fail;
    }
    a->size = (uint64_t)st.st_size;
    rc = tail_read(a, a->size, repair, &t);
    if (rc != 0)
        goto fail;
    if (repair && t.torn) {
        /* Close the torn line, keeping its bytes: it becomes a line of its own. */
        rc = rp_file_write_all(a->fd, "\n", 1);
        if (rc == 0 && fdatasync(a->fd) != 0)
            rc = RP_EIO;
        if (rc != 0)
            goto fail;
        a->size++;
    }
    tail_apply(a, &t);
    lock_fd(a->fd, LOCK_UN);
    locked = 0;
    if (fixed != NULL)
        *fixed = t.torn || t.damaged;
    if (bad_len != NULL)
        *bad_len = t.bad_len;
    if (uv_thread_create(&a->thread, writer_main, a) != 0) {
        rc = RP_EIO;
        goto fail;
    }
    a->thread_started = 1;
    rp_free(pubpath);
    *out = a;
    return 0;
fail:
    if (locked)
        lock_fd(a->fd, LOCK_UN);
    rp_free(pubpath);
    audit_free(a);
    return rc;
}

int rp_audit_open(const char *path, const rp_rootkey *rk, rp_audit **out)
{
    return audit_open(path, rk, 0, out, NULL, NULL);
}

static int op_new(const rp_audit_rec *rec, unsigned flags, audit_op **out);

int rp_audit_repair(const char *path, const rp_rootkey *rk, uint64_t *damaged_bytes)
{
    rp_audit *a = NULL;
    uint64_t bad = 0;
    int fixed = 0, rc;

    if (damaged_bytes != NULL)
        *damaged_bytes = 0;
    rc = audit_open(path, rk, 1, &a, &fixed, &bad);
    if (rc != 0)
        return rc;
    if (fixed) {
        json_t *d = json_pack("{s:I,s:b}", "damaged_bytes", (json_int_t)bad, "parsed", bad == 0);
        rp_audit_rec rec = {"rampart", "system", RP_AUDIT_REPAIR_ACTION, "/", "success", "", "", d};
        audit_op *op = NULL;

        /* The repair record and a checkpoint signing it go out as one durable group. */
        rc = d != NULL ? op_new(&rec, RP_AUDIT_DURABLE | OP_CHECKPOINT, &op) : RP_ENOMEM;
        json_decref(d);
        if (rc == 0) {
            uv_mutex_lock(&a->mu);
            rc = enqueue_locked(a, op);
            while (rc == 0 && !op->finished)
                uv_cond_wait(&a->sync_cv, &a->mu);
            uv_mutex_unlock(&a->mu);
            if (rc == 0)
                rc = op->item.status;
            rp_free(op);
        }
    }
    rp_audit_close(a);
    if (rc == 0 && damaged_bytes != NULL)
        *damaged_bytes = bad;
    return rc;
}

void rp_audit_close(rp_audit *a)
{
    if (a == NULL)
        return;
    uv_mutex_lock(&a->mu);
    a->closing = 1;
    uv_cond_signal(&a->work_cv);
    uv_mutex_unlock(&a->mu);
    if (a->thread_started)
        uv_thread_join(&a->thread);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    audit_unref(a);
}

/* ---------------------------------------------------------------- ports */

static void port_release(void *owner)
{
    audit_unref(owner);
}

int rp_audit_port_open(rp_audit *a, uv_loop_t *loop, rp_audit_port **out)
{
    rp_cport *p;
    int rc;

    if (out == NULL)
        return RP_EINVAL;
    *out = NULL;
    if (a == NULL || loop == NULL)
        return RP_EINVAL;
    rc = audit_ref(a);
    if (rc != 0)
        return rc;
    rc = rp_cport_open(loop, port_release, a, &p);
    if (rc != 0) {
        audit_unref(a);
        return rc;
    }
    *out = (rp_audit_port *)p;
    return 0;
}

void rp_audit_port_close(rp_audit_port *p)
{
    rp_cport_close(cport_of(p));
}

/* ---------------------------------------------------------------- logging */

static rp_str view_of(const char *s, const char *fallback)
{
    if (s == NULL)
        s = fallback;
    return (rp_str){s, strlen(s)};
}

/* Serializes rec into a new op (time = now). */
static int op_new(const rp_audit_rec *rec, unsigned flags, audit_op **out)
{
    char body[BODY_MAX], stamp[32];
    audit_op *op;
    ev_view v;
    sink s;

    *out = NULL;
    if (rec->kind == NULL || rec->result == NULL ||
        !in_list(rec->kind, strlen(rec->kind), kinds, sizeof(kinds) / sizeof(kinds[0])) ||
        !in_list(rec->result, strlen(rec->result), results, sizeof(results) / sizeof(results[0])))
        return RP_EINVAL;
    now_iso(stamp);
    v.time = stamp;
    v.principal = view_of(rec->principal, "anonymous");
    v.kind = view_of(rec->kind, "");
    v.action = view_of(rec->action, "");
    v.scope = view_of(rec->scope, "");
    v.result = view_of(rec->result, "");
    v.request = view_of(rec->request_id, "");
    v.client = view_of(rec->client, "");
    sk_init(&s, body, sizeof(body));
    sk_body(&s, &v);
    if (rec->detail != NULL) {
        sk_lit(&s, ",\"detail\":");
        sk_detail_rec(&s, rec->detail);
    }
    if (s.over)
        return RP_ETOOBIG; /* cannot happen: BODY_MAX covers every field at its cap */
    op = rp_malloc(sizeof(*op) + s.len);
    if (op == NULL)
        return RP_ENOMEM;
    memset(op, 0, sizeof(*op));
    memcpy(op->body, body, s.len);
    op->body_len = s.len;
    op->flags = flags;
    *out = op;
    return 0;
}

int rp_audit_log(rp_audit_port *p, const rp_audit_rec *rec, unsigned flags, rp_audit_done_fn done,
                 void *arg)
{
    rp_audit *a;
    audit_op *op;
    int rc;

    if (p == NULL || rec == NULL || (flags & ~RP_AUDIT_DURABLE) != 0)
        return RP_EINVAL;
    a = rp_cport_owner(cport_of(p));
    rc = op_new(rec, flags, &op);
    if (rc != 0)
        return rc;
    op->item.done = done;
    op->item.arg = arg;
    op->port = cport_of(p);
    rp_cport_hold(op->port);
    uv_mutex_lock(&a->mu);
    rc = enqueue_locked(a, op);
    uv_mutex_unlock(&a->mu);
    if (rc != 0) {
        rp_cport_drop(op->port); /* never the last reference: the handle holds one */
        rp_free(op);
    }
    return rc;
}

int rp_audit_log_sync(rp_audit *a, const rp_audit_rec *rec, unsigned flags)
{
    audit_op *op;
    int last, rc;

    if (a == NULL || rec == NULL || (flags & ~RP_AUDIT_DURABLE) != 0)
        return RP_EINVAL;
    rc = op_new(rec, flags, &op);
    if (rc != 0)
        return rc;
    uv_mutex_lock(&a->mu);
    rc = enqueue_locked(a, op);
    if (rc != 0) {
        uv_mutex_unlock(&a->mu);
        rp_free(op);
        return rc;
    }
    a->refs++; /* rp_audit_close may run while we wait; the last one out frees */
    while (!op->finished)
        uv_cond_wait(&a->sync_cv, &a->mu);
    last = --a->refs == 0;
    uv_mutex_unlock(&a->mu);
    rc = op->item.status;
    rp_free(op);
    if (last)
        audit_free(a);
    return rc;
}

void rp_audit_get_stats(rp_audit *a, rp_audit_stats *out)
{
    uv_mutex_lock(&a->mu);
    *out = a->stats;
    uv_mutex_unlock(&a->mu);
}

void rp_audit_set_timing(rp_audit *a, unsigned sync_ms, unsigned checkpoint_ms)
{
    uv_mutex_lock(&a->mu);
    if (sync_ms > 0)
        a->sync_ms = sync_ms;
    if (checkpoint_ms > 0)
        a->cp_ms = checkpoint_ms;
    uv_cond_signal(&a->work_cv);
    uv_mutex_unlock(&a->mu);
}

void rp_audit_fail_io_after(rp_audit *a, long n)
{
    uv_mutex_lock(&a->mu);
    a->fail_after = n < 0 ? -1 : n;
    uv_mutex_unlock(&a->mu);
}

/* ---------------------------------------------------------------- reading */

/* Lines of a file region with bounded memory: buf holds RBUF_CAP bytes. */
typedef struct lreader {
    int fd;
    uint64_t off; /* next file offset to read */
    uint64_t end; /* stop there */
    char *buf;
    size_t beg; /* unconsumed bytes are buf[beg..len) */
    size_t len;
} lreader;

enum { LR_EOF, LR_LINE, LR_TORN, LR_LONG };

static void lr_init(lreader *r, int fd, char *buf, uint64_t from, uint64_t end)
{
    r->fd = fd;
    r->off = from;
    r->end = end;
    r->buf = buf;
    r->beg = 0;
    r->len = 0;
}

/*
 * The next line: LR_LINE (line[n] is its '\n'), LR_TORN (the final bytes, without '\n'),
 * LR_LONG (over RP_AUDIT_LINE_MAX: the caller stops), LR_EOF, or RP_EIO.
 */
static int lr_next(lreader *r, char **line, size_t *n)
{
    for (;;) {
        char *p = r->buf + r->beg;
        size_t have = r->len - r->beg, want;
        char *nl = memchr(p, '\n', have);
        ssize_t got;

        if (nl != NULL) {
            *line = p;
            *n = (size_t)(nl - p);
            r->beg += *n + 1;
            return *n > RP_AUDIT_LINE_MAX ? LR_LONG : LR_LINE;
        }
        if (have > RP_AUDIT_LINE_MAX)
            return LR_LONG;
        if (r->off >= r->end) {
            if (have == 0)
                return LR_EOF;
            *line = p;
            *n = have;
            r->beg = r->len;
            return LR_TORN;
        }
        memmove(r->buf, p, have);
        r->beg = 0;
        r->len = have;
        want = RBUF_CAP - have;
        if (want > r->end - r->off)
            want = (size_t)(r->end - r->off);
        got = pread(r->fd, r->buf + have, want, (off_t)r->off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return RP_EIO;
        }
        if (got == 0) {
            r->end = r->off; /* the file shrank */
            continue;
        }
        r->off += (uint64_t)got;
        r->len += (size_t)got;
    }
}

/* ---------------------------------------------------------------- verify */

typedef struct vstate {
    rp_audit_verify_result *res;
    EVP_PKEY *pub;
    EVP_MD *md;
    EVP_MD_CTX *ctx;
    lreader r;
    uint64_t lineno;
    uint64_t expect;               /* the next line's seq */
    unsigned char chain[HASH_LEN]; /* hash of the previous line */
    uint64_t damaged_line;         /* an unparseable line waiting for its repair record */
    uint64_t damaged_seq;
    const char *damaged_why;
} vstate;

static void vfail(vstate *v, uint64_t line, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void vfail(vstate *v, uint64_t line, uint64_t seq, const char *fmt, ...)
{
    va_list ap;

    v->res->ok = 0;
    v->res->bad_line = line;
    v->res->bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(v->res->reason, sizeof(v->res->reason), fmt, ap);
    va_end(ap);
}

static int sig_ok(const vstate *v, const char *line, const rp_audit_entry *e)
{
    char msg[CP_LINE_MAX];
    EVP_MD_CTX *ctx;
    int ok = 0;

    if (e->signed_len + 1 > sizeof(msg))
        return 0;
    memcpy(msg, line, e->signed_len);
    msg[e->signed_len] = '}';
    ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, v->pub) == 1 &&
        EVP_DigestVerify(ctx, e->sig, RP_AUDIT_SIG_LEN, (const unsigned char *)msg,
                         e->signed_len + 1) == 1)
        ok = 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/*
 * Names a sequence break at the current line: a gap (records dropped), or records out of
 * order, told apart by looking for the expected seq further on.
 */
static void seq_break(vstate *v, uint64_t found)
{
    uint64_t line = v->lineno, at = 0, l = v->lineno;
    rp_audit_entry e;
    char *p;
    size_t n;

    if (found < v->expect) {
        vfail(v, line, v->expect,
              "sequence out of order: expected record %" PRIu64 ", found record %" PRIu64
              " (a record was moved or repeated)",
              v->expect, found);
        return;
    }
    while (lr_next(&v->r, &p, &n) == LR_LINE) {
        l++;
        if (rp_audit_parse_line(p, n, &e, NULL) != 0)
            continue;
        if (e.seq == v->expect)
            at = l;
        rp_audit_entry_clear(&e);
        if (at != 0)
            break;
    }
    if (at != 0)
        vfail(v, line, v->expect,
              "records out of order: expected record %" PRIu64 " here, found record %" PRIu64
              "; record %" PRIu64 " is at line %" PRIu64,
              v->expect, found, v->expect, at);
    else
        vfail(v, line, v->expect,
              "sequence gap: expected record %" PRIu64 ", found record %" PRIu64
              " (records %" PRIu64 " to %" PRIu64 " were dropped)",
              v->expect, found, v->expect, found - 1);
}

/* Checks one parsed line against the chain so far: 0 to go on, 1 when it is bad. */
static int verify_entry(vstate *v, const char *line, const rp_audit_entry *e)
{
    rp_audit_verify_result *res = v->res;

    if (v->damaged_line != 0) {
        if (!is_repair(e) || e->seq != v->expect) {
            vfail(v, v->damaged_line, v->damaged_seq, "record does not parse: %s", v->damaged_why);
            return 1;
        }
        res->repaired++;
        v->damaged_line = 0;
    }
    if (e->seq != v->expect) {
        seq_break(v, e->seq);
        return 1;
    }
    if (memcmp(e->prev, v->chain, HASH_LEN) != 0) {
        if (v->lineno == 1)
            vfail(v, 1, 1,
                  "hash chain broken: the first record's prev is not zero (records before it "
                  "were removed)");
        else
            vfail(v, v->lineno - 1, v->expect - 1,
                  "hash chain broken: record %" PRIu64 " (line %" PRIu64
                  ") does not match the hash record %" PRIu64
                  " holds: it was edited, or records after it were removed and renumbered",
                  v->expect - 1, v->lineno - 1, e->seq);
        return 1;
    }
    if (!e->checkpoint)
        return 0;
    if (e->count != e->seq - 1 || memcmp(e->head, e->prev, HASH_LEN) != 0) {
        vfail(v, v->lineno, e->seq, "checkpoint %" PRIu64 " has a wrong count or head", e->seq);
        return 1;
    }
    if (!sig_ok(v, line, e)) {
        vfail(v, v->lineno, e->seq, "checkpoint signature invalid (record %" PRIu64 ")", e->seq);
        return 1;
    }
    return 0;
}

/* Reads every line; stops at the first bad one. 0, or RP_EIO / RP_ENOMEM. */
static int verify_scan(vstate *v)
{
    rp_audit_verify_result *res = v->res;
    rp_audit_entry e;
    const char *why = NULL;
    char *line;
    size_t n;
    int k, rc;

    for (;;) {
        k = lr_next(&v->r, &line, &n);
        if (k < 0)
            return k;
        if (k == LR_EOF)
            break;
        v->lineno++;
        if (k == LR_LONG) {
            vfail(v, v->lineno, v->expect, "line longer than %d bytes", RP_AUDIT_LINE_MAX);
            return 0;
        }
        if (k == LR_TORN) {
            vfail(v, v->lineno, v->expect,
                  "truncated final line: a write was cut short (run rampart audit repair)");
            return 0;
        }
        rc = rp_audit_parse_line(line, n, &e, &why);
        if (rc == RP_ENOMEM)
            return rc;
        if (rc != 0) {
            if (v->damaged_line != 0) {
                vfail(v, v->damaged_line, v->damaged_seq, "record does not parse: %s",
                      v->damaged_why);
                return 0;
            }
            /* Bad unless the next line is the repair record that closed it. */
            v->damaged_line = v->lineno;
            v->damaged_seq = v->expect;
            v->damaged_why = why;
        } else {
            rc = verify_entry(v, line, &e);
            if (rc != 0) {
                rp_audit_entry_clear(&e);
                return 0;
            }
            if (e.checkpoint) {
                res->checkpoints++;
                res->unsigned_records = 0;
                res->last_checkpoint_seq = e.seq;
                rp_strlcpy(res->last_checkpoint_time, e.time, sizeof(res->last_checkpoint_time));
            } else {
                res->records++;
                res->unsigned_records++;
            }
            v->expect = e.seq + 1;
            res->last_seq = e.seq;
            rp_audit_entry_clear(&e);
        }
        rc = sha256_line(v->ctx, v->md, line, n, 1, v->chain);
        if (rc != 0)
            return rc;
        if (v->damaged_line == 0 && res->last_checkpoint_seq == res->last_seq && res->last_seq != 0)
            rp_hex_encode(v->chain, HASH_LEN, res->last_checkpoint_head);
        res->lines = v->lineno;
    }
    if (v->damaged_line != 0) {
        vfail(v, v->damaged_line, v->damaged_seq, "record does not parse: %s", v->damaged_why);
        return 0;
    }
    res->ok = 1;
    return 0;
}

int rp_audit_verify(const char *path, const unsigned char *pub, rp_audit_verify_result *res)
{
    unsigned char key[RP_AUDIT_PUBKEY_LEN];
    char *buf = NULL, *pubpath = NULL;
    uint64_t size = 0;
    vstate v;
    int fd = -1, rc;

    if (res == NULL)
        return RP_EINVAL;
    memset(res, 0, sizeof(*res));
    memset(&v, 0, sizeof(v));
    v.res = res;
    v.expect = 1;
    if (path == NULL || path[0] == '\0')
        return RP_EINVAL;
    if (pub == NULL) {
        pubpath = pubkey_path(path);
        rc = pubpath != NULL ? rp_audit_pubkey_load(pubpath, key) : RP_ENOMEM;
        rp_free(pubpath);
        if (rc != 0)
            return rc;
    } else {
        memcpy(key, pub, sizeof(key));
    }
    rc = RP_ECRYPTO;
    v.pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, sizeof(key));
    v.md = EVP_MD_fetch(NULL, "SHA256", NULL);
    v.ctx = EVP_MD_CTX_new();
    if (v.pub == NULL || v.md == NULL || v.ctx == NULL)
        goto out;
    rc = RP_ENOMEM;
    buf = rp_malloc(RBUF_CAP);
    if (buf == NULL)
        goto out;
    rc = open_read(path, &fd);
    if (rc == 0)
        rc = stable_size(fd, &size);
    if (rc != 0)
        goto out;
    lr_init(&v.r, fd, buf, 0, size);
    rc = verify_scan(&v);
    if (rc == 0 && !res->ok)
        rc = RP_ECRYPTO;
out:
    if (rc != 0 && rc != RP_ECRYPTO)
        res->ok = 0;
    if (fd >= 0)
        close(fd);
    rp_free(buf);
    EVP_MD_CTX_free(v.ctx);
    EVP_MD_free(v.md);
    EVP_PKEY_free(v.pub);
    return rc;
}

/* ---------------------------------------------------------------- read */

/* The seq of the first whole line starting at or after offset at (> 0). */
static int probe(int fd, uint64_t size, uint64_t at, char *buf, uint64_t *start, uint64_t *seq)
{
    uint64_t from = at - 1;
    size_t want = size - from < RBUF_CAP ? (size_t)(size - from) : RBUF_CAP;
    rp_audit_entry e;
    char *nl1, *nl2;
    int rc = pread_all(fd, buf, want, from);

    if (rc != 0)
        return rc;
    nl1 = memchr(buf, '\n', want);
    if (nl1 == NULL)
        return RP_EPARSE;
    nl2 = memchr(nl1 + 1, '\n', want - (size_t)(nl1 + 1 - buf));
    if (nl2 == NULL)
        return RP_EPARSE;
    rc = rp_audit_parse_line(nl1 + 1, (size_t)(nl2 - nl1 - 1), &e, NULL);
    if (rc != 0)
        return rc;
    *start = from + (uint64_t)(nl1 + 1 - buf);
    *seq = e.seq;
    rp_audit_entry_clear(&e);
    return 0;
}

/*
 * A line start at or before the first line with seq > after: binary search while the window
 * is wide, relying on seq growing with the offset. Any surprise ends the search early, which
 * only makes the linear part longer.
 */
static uint64_t find_start(int fd, uint64_t size, uint64_t after, char *buf)
{
    uint64_t lo = 0, hi = size;

    while (hi - lo > RP_AUDIT_LINE_MAX) {
        uint64_t mid = lo + (hi - lo) / 2, s = 0, seq = 0;

        if (probe(fd, size, mid, buf, &s, &seq) != 0)
            break;
        if (s >= hi || seq > after)
            hi = mid;
        else
            lo = s;
    }
    return lo;
}

int rp_audit_read(const char *path, uint64_t after_seq, size_t limit, rp_audit_read_fn fn,
                  void *arg, uint64_t *last_seq)
{
    char *buf = NULL, *line;
    uint64_t size = 0;
    size_t n, delivered = 0;
    int fd = -1, k, rc, damaged = 0;
    rp_audit_entry e;
    lreader r;

    if (last_seq != NULL)
        *last_seq = after_seq;
    if (path == NULL || fn == NULL || limit == 0)
        return RP_EINVAL;
    buf = rp_malloc(RBUF_CAP);
    if (buf == NULL)
        return RP_ENOMEM;
    rc = open_read(path, &fd);
    if (rc == 0)
        rc = stable_size(fd, &size);
    if (rc != 0)
        goto out;
    lr_init(&r, fd, buf, after_seq > 0 ? find_start(fd, size, after_seq, buf) : 0, size);
    for (;;) {
        k = lr_next(&r, &line, &n);
        if (k < 0) {
            rc = k;
            break;
        }
        if (k == LR_EOF || k == LR_TORN) /* a torn final line is not there yet */
            break;
        if (k == LR_LONG) {
            rc = RP_ETOOBIG;
            break;
        }
        rc = rp_audit_parse_line(line, n, &e, NULL);
        if (rc == RP_ENOMEM || (rc != 0 && damaged))
            break;
        if (rc != 0) {
            damaged = 1; /* skipped if a repair record closed it */
            continue;
        }
        if (damaged && !is_repair(&e)) {
            rp_audit_entry_clear(&e);
            rc = RP_EPARSE;
            break;
        }
        damaged = 0;
        if (e.seq > after_seq) {
            rc = fn(&e, line, n, arg);
            if (last_seq != NULL)
                *last_seq = e.seq;
            delivered++;
        }
        rp_audit_entry_clear(&e);
        if (rc != 0 || delivered == limit)
            break;
    }
    if (rc == 0 && damaged)
        rc = RP_EPARSE;
out:
    if (fd >= 0)
        close(fd);
    rp_free(buf);
    return rc;
}
