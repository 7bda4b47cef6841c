/*
 * audit_test.c - the audit log against real files under $RP_TEST_TMP, real threads and real
 * libuv loops: a 2,500-record chain with checkpoints verifies; edited, dropped, swapped and
 * forged lines and a bad checkpoint signature are named; a torn tail is refused, reported and
 * repaired without losing a byte; reopening continues the chain; durable records complete only
 * after fdatasync, and many share one (group commit); I/O failures fail closed; hostile
 * strings are escaped and long ones truncated; the tail reader and the line parser.
 * Every test closes its uv handles and checks uv_loop_close so the leak checker sees zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/rootkey.h"
#include "monitor/audit.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHAIN_RECORDS 2500
/* Records 1..1000, checkpoint 1001, 1002..2001, checkpoint 2002, 2003..2502, checkpoint 2503. */
#define CHAIN_LINES (CHAIN_RECORDS + 3)

typedef struct fixture {
    char dir[512];
    char path[640];
    char pub[650];
    rp_rootkey *rk;
} fixture;

static int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char keypath[640];

    assert_non_null(f);
    rp_test_scratch("audit", f->dir, sizeof(f->dir));
    snprintf(keypath, sizeof(keypath), "%s/root.key", f->dir);
    assert_int_equal(rp_rootkey_file_create(keypath), 0);
    assert_int_equal(rp_rootkey_file_load(keypath, &f->rk), 0);
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    snprintf(f->pub, sizeof(f->pub), "%s.pub", f->path);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;

    rp_rootkey_free(f->rk);
    rp_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* ---- file helpers ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void append_bytes(const char *path, const char *buf, size_t len)
{
    FILE *fp = fopen(path, "ab");

    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Offset and length (without '\n') of 1-based line no. */
static void line_span(const char *buf, size_t len, size_t no, size_t *off, size_t *n)
{
    size_t i = 0, cur = 1;

    while (cur < no) {
        const char *nl = memchr(buf + i, '\n', len - i);
        assert_non_null(nl);
        i = (size_t)(nl - buf) + 1;
        cur++;
    }
    *off = i;
    {
        const char *nl = memchr(buf + i, '\n', len - i);
        *n = nl != NULL ? (size_t)(nl - (buf + i)) : len - i;
    }
}

static size_t count_lines(const char *buf, size_t len)
{
    size_t c = 0;

    for (size_t i = 0; i < len; i++)
        c += buf[i] == '\n';
    return c;
}

static off_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void sha256_hex(const char *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;

    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    rp_hex_encode(md, 32, out);
}

/* ---- writing through a port on a real loop ---- */

typedef struct burst burst;

typedef struct item {
    burst *b;
    int i;
    char scope[64];
    char request[32];
    char client[32];
} item;

struct burst {
    rp_audit *a;
    rp_audit_port *port;
    uv_loop_t loop;
    unsigned flags;
    int total;
    int done;
    int bad_status;
    int want_status;
    int out_of_order;
    int unsynced_completions; /* durable completions seen before the stats showed them synced */
    uint64_t synced_base;
    int submit_rc;
    int loop_close_rc;
    item *items;
};

static void burst_done(int status, void *arg)
{
    item *it = arg;
    burst *b = it->b;
    rp_audit_stats st;

    if (status != b->want_status)
        b->bad_status++;
    if (it->i != b->done)
        b->out_of_order++;
    b->done++;
    if ((b->flags & RP_AUDIT_DURABLE) && status == 0) {
        rp_audit_get_stats(b->a, &st);
        /* This record and every one before it on this port are on disk. */
        if (st.synced < b->synced_base + (uint64_t)b->done)
            b->unsynced_completions++;
    }
    if (b->done == b->total)
        rp_audit_port_close(b->port);
}

static void fill_rec(item *it, rp_audit_rec *rec, json_t **detail)
{
    snprintf(it->scope, sizeof(it->scope), "/vaults/v1/secrets/s%d", it->i);
    snprintf(it->request, sizeof(it->request), "req-%d", it->i);
    snprintf(it->client, sizeof(it->client), "10.0.%d.%d", it->i / 250, it->i % 250);
    *detail = json_pack("{s:i,s:s}", "i", it->i, "role", "Key Vault Secrets User");
    rec->principal = "user:alice";
    rec->kind = it->i % 3 == 0 ? "read" : "authz";
    rec->action = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
    rec->scope = it->scope;
    rec->result = it->i % 3 == 0 ? "success" : "allowed";
    rec->request_id = it->request;
    rec->client = it->client;
    rec->detail = *detail;
}

/* Opens a loop and a port, logs b->total records, runs the loop until all completed. */
static void run_burst(burst *b)
{
    rp_audit_stats st;

    b->loop_close_rc = -1;
    b->submit_rc = uv_loop_init(&b->loop);
    if (b->submit_rc != 0)
        return;
    rp_audit_get_stats(b->a, &st);
    b->synced_base = st.synced;
    b->submit_rc = rp_audit_port_open(b->a, &b->loop, &b->port);
    if (b->submit_rc != 0)
        goto out;
    b->items = calloc((size_t)b->total, sizeof(*b->items));
    for (int i = 0; i < b->total && b->submit_rc == 0; i++) {
        rp_audit_rec rec;
        json_t *detail = NULL;

        b->items[i].b = b;
        b->items[i].i = i;
        fill_rec(&b->items[i], &rec, &detail);
        b->submit_rc = rp_audit_log(b->port, &rec, b->flags, burst_done, &b->items[i]);
        json_decref(detail); /* borrowed only for the call */
    }
    if (b->submit_rc != 0)
        rp_audit_port_close(b->port);
    uv_run(&b->loop, UV_RUN_DEFAULT);
out:
    b->loop_close_rc = uv_loop_close(&b->loop);
}

static void burst_thread(void *arg)
{
    run_burst(arg);
}

static void burst_ok(burst *b)
{
    assert_int_equal(b->submit_rc, 0);
    assert_int_equal(b->loop_close_rc, 0);
    assert_int_equal(b->done, b->total);
    assert_int_equal(b->bad_status, 0);
    assert_int_equal(b->out_of_order, 0);
    assert_int_equal(b->unsynced_completions, 0);
    free(b->items);
    b->items = NULL;
}

/* Writes the standard 2,500-record log at f->path and closes it. */
static void make_chain(fixture *f)
{
    burst b;

    unlink(f->path);
    memset(&b, 0, sizeof(b));
    assert_int_equal(rp_audit_open(f->path, f->rk, &b.a), 0);
    b.total = CHAIN_RECORDS;
    run_burst(&b);
    burst_ok(&b);
    rp_audit_close(b.a);
}

static void expect_bad(const char *path, uint64_t line, uint64_t seq, const char *needle)
{
    rp_audit_verify_result res;
    int rc = rp_audit_verify(path, NULL, &res);

    if (rc != RP_ECRYPTO || res.bad_line != line ||
        (needle != NULL && strstr(res.reason, needle) == NULL))
        print_error("verify: rc %d line %llu seq %llu: %s\n", rc, (unsigned long long)res.bad_line,
                    (unsigned long long)res.bad_seq, res.reason);
    assert_int_equal(rc, RP_ECRYPTO);
    assert_int_equal(res.ok, 0);
    assert_int_equal(res.bad_line, line);
    if (seq != 0)
        assert_int_equal(res.bad_seq, seq);
    if (needle != NULL)
        assert_non_null(strstr(res.reason, needle));
}

static void expect_ok(const char *path, rp_audit_verify_result *res)
{
    int rc = rp_audit_verify(path, NULL, res);

    if (rc != 0)
        print_error("verify: rc %d line %llu: %s\n", rc, (unsigned long long)res->bad_line,
                    res->reason);
    assert_int_equal(rc, 0);
    assert_int_equal(res->ok, 1);
    assert_int_equal(res->bad_line, 0);
}

/* ---- the chain ---- */

static void test_chain_verifies(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    unsigned char pub[32], filepub[32];
    rp_audit_entry e;
    struct stat st;
    size_t len, off, n;
    char *buf;

    make_chain(f);
    expect_ok(f->path, &res);
    assert_int_equal(res.records, CHAIN_RECORDS);
    assert_int_equal(res.checkpoints, 3);
    assert_int_equal(res.lines, CHAIN_LINES);
    assert_int_equal(res.last_seq, CHAIN_LINES);
    assert_int_equal(res.last_checkpoint_seq, CHAIN_LINES);
    assert_int_equal(res.unsigned_records, 0);
    assert_int_equal(res.repaired, 0);
    assert_int_equal(strlen(res.last_checkpoint_head), 64);
    assert_int_equal(strlen(res.last_checkpoint_time), 24);

    /* The file: 0600, one record per line, checkpoints where expected. */
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    buf = slurp(f->path, &len);
    assert_int_equal(count_lines(buf, len), CHAIN_LINES);
    assert_int_equal(buf[len - 1], '\n');
    line_span(buf, len, 1001, &off, &n);
    assert_int_equal(rp_audit_parse_line(buf + off, n, &e, NULL), 0);
    assert_int_equal(e.checkpoint, 1);
    assert_int_equal(e.seq, 1001);
    assert_int_equal(e.count, 1000);
    rp_audit_entry_clear(&e);
    line_span(buf, len, 1, &off, &n);
    assert_int_equal(rp_audit_parse_line(buf + off, n, &e, NULL), 0);
    assert_int_equal(e.seq, 1);
    assert_string_equal(e.principal, "user:alice");
    assert_string_equal(e.request_id, "req-0");
    assert_non_null(strstr(buf + off, "\"prev\":\"000000000000"));
    assert_int_equal(json_integer_value(json_object_get(e.detail, "i")), 0);
    rp_audit_entry_clear(&e);
    free(buf);

    /* The public key beside the log is the root key's, and verifies on its own too. */
    assert_int_equal(rp_audit_public_key(f->rk, pub), 0);
    assert_int_equal(rp_audit_pubkey_load(f->pub, filepub), 0);
    assert_memory_equal(pub, filepub, 32);
    assert_int_equal(rp_audit_verify(f->path, pub, &res), 0);
}

static void test_edited_record_named(void **state)
{
    fixture *f = *state;
    size_t len, off, n;
    char *buf, *p;

    make_chain(f);
    buf = slurp(f->path, &len);
    /* One byte of the client address, still valid JSON in canonical form. */
    line_span(buf, len, 1250, &off, &n);
    p = strstr(buf + off, "\"client\":\"10.");
    assert_non_null(p);
    assert_true((size_t)(p - buf) < off + n);
    p[strlen("\"client\":\"")] = '9';
    spit(f->path, buf, len);
    expect_bad(f->path, 1250, 1250, "hash chain broken");

    /* A byte that breaks the JSON names the same record. */
    p[strlen("\"client\":\"")] = '1';
    buf[off + 3] = 'X'; /* {"sXq": */
    spit(f->path, buf, len);
    expect_bad(f->path, 1250, 1250, "does not parse");
    free(buf);
}

static void test_dropped_record_named(void **state)
{
    fixture *f = *state;
    size_t len, off, n;
    char *buf;

    make_chain(f);
    buf = slurp(f->path, &len);
    line_span(buf, len, 1250, &off, &n);
    memmove(buf + off, buf + off + n + 1, len - (off + n + 1));
    spit(f->path, buf, len - (n + 1));
    expect_bad(f->path, 1250, 1250, "sequence gap: expected record 1250, found record 1251");

    /* Dropping the first line is caught too. */
    free(buf);
    make_chain(f);
    buf = slurp(f->path, &len);
    line_span(buf, len, 1, &off, &n);
    spit(f->path, buf + n + 1, len - (n + 1));
    expect_bad(f->path, 1, 1, "sequence gap");
    free(buf);
}

static void test_swapped_records_named(void **state)
{
    fixture *f = *state;
    size_t len, off1, n1, off2, n2;
    char *buf, *out;

    make_chain(f);
    buf = slurp(f->path, &len);
    line_span(buf, len, 1250, &off1, &n1);
    line_span(buf, len, 1251, &off2, &n2);
    out = malloc(len);
    assert_non_null(out);
    memcpy(out, buf, off1);
    memcpy(out + off1, buf + off2, n2 + 1);
    memcpy(out + off1 + n2 + 1, buf + off1, n1 + 1);
    memcpy(out + off2 + n2 + 1, buf + off2 + n2 + 1, len - (off2 + n2 + 1));
    spit(f->path, out, len);
    expect_bad(f->path, 1250, 1250, "records out of order");
    expect_bad(f->path, 1250, 1250, "record 1250 is at line 1251");
    free(out);
    free(buf);
}

static void test_checkpoint_signature_named(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    unsigned char other[32];
    size_t len, off, n;
    char *buf, *sig;

    make_chain(f);
    /* Another key: the first checkpoint is where that shows. */
    memset(other, 0x42, sizeof(other));
    assert_int_equal(rp_audit_verify(f->path, other, &res), RP_ECRYPTO);
    assert_int_equal(res.bad_line, 1001);
    assert_non_null(strstr(res.reason, "checkpoint signature invalid"));

    buf = slurp(f->path, &len);
    line_span(buf, len, 2002, &off, &n);
    sig = strstr(buf + off, "\"sig\":\"");
    assert_non_null(sig);
    sig += strlen("\"sig\":\"") + 40;
    *sig = *sig == 'A' ? 'B' : 'A';
    spit(f->path, buf, len);
    expect_bad(f->path, 2002, 2002, "checkpoint signature invalid");
    free(buf);
}

static void test_forged_tail_reported_unsigned(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    size_t len, off, n;
    char *buf, hex[65], line[512];
    int k;

    make_chain(f);
    buf = slurp(f->path, &len);
    line_span(buf, len, CHAIN_LINES, &off, &n);
    sha256_hex(buf + off, n + 1, hex);
    k = snprintf(line, sizeof(line),
                 "{\"seq\":%d,\"time\":\"2026-01-01T00:00:00.000Z\",\"principal\":\"mallory\","
                 "\"kind\":\"change\",\"action\":\"x\",\"scope\":\"/\",\"result\":\"success\","
                 "\"request\":\"r\",\"client\":\"10.9.9.9\",\"prev\":\"%s\"}\n",
                 CHAIN_LINES + 1, hex);
    append_bytes(f->path, line, (size_t)k);
    /* The chain holds, so verify passes, but says the last record is not signed. */
    expect_ok(f->path, &res);
    assert_int_equal(res.unsigned_records, 1);
    assert_int_equal(res.last_seq, CHAIN_LINES + 1);
    assert_int_equal(res.last_checkpoint_seq, CHAIN_LINES);
    free(buf);
}

static void test_torn_tail_refused_and_repaired(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"admin", "change", "users/write", "/", "success", "r1", "127.0.0.1", NULL};
    uint64_t damaged = 99;
    off_t before;
    size_t len;
    char *buf;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), 0);
    rp_audit_close(a);
    /* An intact log needs no repair and gets no write. */
    before = file_size(f->path);
    assert_int_equal(rp_audit_repair(f->path, f->rk, &damaged), 0);
    assert_int_equal(damaged, 0);
    assert_int_equal(file_size(f->path), before);

    /* A write cut short: 40 bytes of a record, no newline. */
    append_bytes(f->path, "{\"seq\":7,\"time\":\"2026-01-01T00:00:00.000", 40);
    expect_bad(f->path, 7, 7, "truncated final line");
    a = NULL;
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), RP_EPARSE);
    assert_null(a);

    assert_int_equal(rp_audit_repair(f->path, f->rk, &damaged), 0);
    assert_int_equal(damaged, 40);
    buf = slurp(f->path, &len);
    /* Nothing was removed: the torn bytes are still there, now a line of their own. */
    assert_non_null(strstr(buf, "{\"seq\":7,\"time\":\"2026-01-01T00:00:00.000\n"));
    assert_non_null(strstr(buf, "\"action\":\"audit/repair\""));
    assert_non_null(strstr(buf, "\"detail\":{\"damaged_bytes\":40,\"parsed\":false}"));
    free(buf);
    expect_ok(f->path, &res);
    assert_int_equal(res.repaired, 1);
    assert_int_equal(res.unsigned_records, 0);
    /* Lines: records 1-5, checkpoint 6, the torn line, repair record 7, checkpoint 8. */
    assert_int_equal(res.last_seq, 8);
    assert_int_equal(res.lines, 9);

    /* The log is usable again and keeps verifying. */
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_close(a);
    expect_ok(f->path, &res);
    assert_int_equal(res.repaired, 1);
    assert_int_equal(res.last_seq, 10);
}

static void test_missing_final_newline_repaired(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"admin", "system", "start", "/", "success", "", "", NULL};
    uint64_t damaged = 99;
    size_t len;
    char *buf;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_close(a);
    /* Cut exactly before the last newline: the record is whole, only '\n' is missing. */
    buf = slurp(f->path, &len);
    spit(f->path, buf, len - 1);
    free(buf);
    expect_bad(f->path, 2, 2, "truncated final line");
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), RP_EPARSE);
    assert_int_equal(rp_audit_repair(f->path, f->rk, &damaged), 0);
    assert_int_equal(damaged, 0);
    expect_ok(f->path, &res);
    assert_int_equal(res.repaired, 0); /* no damaged line, just a repair record */
    assert_int_equal(res.records, 2);

    /* A damaged line that is not the last, or without its repair record, stays bad. */
    append_bytes(f->path, "garbage\n", 8);
    expect_bad(f->path, 5, 5, "does not parse");
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), RP_EPARSE);
}

static void test_reopen_continues_chain(void **state)
{
    fixture *f = *state;
    char copy[700];
    rp_audit_verify_result res;
    rp_audit_stats st;
    rp_audit *a = NULL;
    rp_audit_rec rec = {NULL, "authn", "login", "/", "failure", "r", "::1", NULL};
    size_t len;
    char *buf;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), 0);
    /* A crash now: copy the file as it is on disk (all durable, no final checkpoint). */
    buf = slurp(f->path, &len);
    snprintf(copy, sizeof(copy), "%s/crashed.log", f->dir);
    spit(copy, buf, len);
    free(buf);
    rp_audit_close(a);

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_get_stats(a, &st);
    assert_int_equal(st.seq, 16); /* 10 records, checkpoint 11, then 12..16 */
    assert_int_equal(st.records, 5);
    rp_audit_close(a);
    expect_ok(f->path, &res);
    assert_int_equal(res.lines, 17);
    assert_int_equal(res.checkpoints, 2);
    assert_int_equal(res.records, 15);

    /* The crashed copy reopens, continues at 11, and its unsigned tail gets signed. */
    assert_int_equal(rp_audit_open(copy, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_get_stats(a, &st);
    assert_int_equal(st.seq, 11);
    rp_audit_close(a);
    expect_ok(copy, &res);
    assert_int_equal(res.lines, 12);
    assert_int_equal(res.unsigned_records, 0);
    buf = slurp(copy, &len);
    assert_non_null(strstr(buf, "\"principal\":\"anonymous\""));
    free(buf);
}

/* ---- durability and group commit ---- */

static void test_durable_group_commit_one_loop(void **state)
{
    fixture *f = *state;
    rp_audit_stats st;
    burst b;

    memset(&b, 0, sizeof(b));
    assert_int_equal(rp_audit_open(f->path, f->rk, &b.a), 0);
    b.total = 1000;
    b.flags = RP_AUDIT_DURABLE;
    run_burst(&b);
    burst_ok(&b); /* includes: each completion came after a sync covering it */
    rp_audit_get_stats(b.a, &st);
    assert_int_equal(st.records, 1000);
    assert_int_equal(st.durable, 1000);
    assert_int_equal(st.synced, 1000);
    assert_int_equal(st.failed, 0);
    assert_true(st.syncs >= 1);
    assert_true(st.syncs <= 1000 / 4);
    print_message("      1000 durable records from one loop: %llu fdatasyncs\n",
                  (unsigned long long)st.syncs);
    rp_audit_close(b.a);
}

static void test_durable_group_commit_four_threads(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit_stats st;
    rp_audit *a = NULL;
    uv_thread_t t[4];
    burst b[4];

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 4; i++) {
        b[i].a = a;
        b[i].total = 500;
        b[i].flags = RP_AUDIT_DURABLE;
        assert_int_equal(uv_thread_create(&t[i], burst_thread, &b[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(uv_thread_join(&t[i]), 0);
        /* synced_base was read when each thread started: the check is "synced >= base + k". */
        burst_ok(&b[i]);
    }
    rp_audit_get_stats(a, &st);
    assert_int_equal(st.records, 2000);
    assert_int_equal(st.durable, 2000);
    assert_true(st.syncs <= 2000 / 4);
    print_message("      2000 durable records from four loops: %llu fdatasyncs\n",
                  (unsigned long long)st.syncs);
    rp_audit_close(a);
    expect_ok(f->path, &res);
    assert_int_equal(res.records, 2000);
    assert_int_equal(res.checkpoints, 2); /* after 1000 and 2000 records; none left at close */
}

static uint64_t wait_stat(rp_audit *a, size_t field, uint64_t want, int ms)
{
    rp_audit_stats st;
    uint64_t v = 0;

    for (int i = 0; i < ms / 10; i++) {
        rp_audit_get_stats(a, &st);
        memcpy(&v, (const char *)&st + field, sizeof(v));
        if (v >= want)
            break;
        usleep(10000);
    }
    return v;
}

static void test_lazy_sync_and_timed_checkpoint(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit_stats st;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"sp:ci", "authz", "read", "/", "denied", "r", "10.0.0.1", NULL};

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    rp_audit_set_timing(a, 200, 500);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_get_stats(a, &st);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.synced, 0); /* written, not yet synced */
    assert_int_equal(wait_stat(a, offsetof(rp_audit_stats, synced), 3, 3000), 3);
    assert_int_equal(wait_stat(a, offsetof(rp_audit_stats, checkpoints), 1, 3000), 1);
    /* The checkpoint is on disk and signs everything: verify sees no unsigned tail. */
    assert_int_equal(wait_stat(a, offsetof(rp_audit_stats, syncs), 2, 3000), 2);
    expect_ok(f->path, &res);
    assert_int_equal(res.unsigned_records, 0);
    assert_int_equal(res.checkpoints, 1);
    rp_audit_close(a);
    /* Nothing new since the checkpoint: close adds none. */
    expect_ok(f->path, &res);
    assert_int_equal(res.checkpoints, 1);
}

/* ---- failing closed ---- */

static void test_write_failure_fails_closed(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit_stats st;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"user:bob", "read", "secrets/get", "/vaults/v/secrets/db",
                        "success",  "r",    "10.1.1.1",    NULL};
    burst b;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), 0);
    rp_audit_fail_io_after(a, 0); /* the next write fails */
    memset(&b, 0, sizeof(b));
    b.a = a;
    b.total = 50;
    b.flags = RP_AUDIT_DURABLE;
    b.want_status = RP_EIO;
    run_burst(&b);
    burst_ok(&b);
    /* Stays failed for everything after, durable or not, even with the disk "back". */
    rp_audit_fail_io_after(a, -1);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), RP_EIO);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), RP_EIO);
    rp_audit_get_stats(a, &st);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.durable, 1);
    assert_int_equal(st.failed, 52);
    assert_int_equal(st.lost, 1);
    rp_audit_close(a);
    expect_ok(f->path, &res);
    assert_int_equal(res.records, 1);
    assert_int_equal(res.unsigned_records, 1); /* no checkpoint once failed */

    /* Reopened, it writes again. */
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), 0);
    rp_audit_close(a);
    expect_ok(f->path, &res);
    assert_int_equal(res.records, 2);
}

static void test_sync_failure_fails_closed(void **state)
{
    fixture *f = *state;
    rp_audit_stats st;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"user:bob", "read", "secrets/get", "/", "success", "r", "10.1.1.1", NULL};

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    rp_audit_fail_io_after(a, 1); /* the write succeeds, its fdatasync fails */
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), RP_EIO);
    rp_audit_get_stats(a, &st);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.synced, 0);
    assert_int_equal(st.durable, 0);
    assert_int_equal(st.failed, 1);
    rp_audit_close(a);
}

/* Finds our descriptor of path in /proc/self/fd. */
static int fd_of(const char *path)
{
    char real[PATH_MAX], link[PATH_MAX + 64], target[PATH_MAX];
    struct dirent *d;
    DIR *dir;
    int found = -1;

    assert_non_null(realpath(path, real));
    dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    while ((d = readdir(dir)) != NULL) {
        ssize_t n;
        uint64_t v;

        if (rp_parse_u64(d->d_name, strlen(d->d_name), INT_MAX, &v) != 0)
            continue;
        snprintf(link, sizeof(link), "/proc/self/fd/%s", d->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, real) == 0)
            found = (int)v;
    }
    closedir(dir);
    return found;
}

static void test_real_write_error_fails_closed(void **state)
{
    fixture *f = *state;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"user:bob", "read", "secrets/get", "/", "success", "r", "10.1.1.1", NULL};
    int fd, ro;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), 0);
    fd = fd_of(f->path);
    assert_true(fd >= 0);
    /* The same file, read-only, under the writer's descriptor: write(2) itself fails (EBADF). */
    ro = open(f->path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    assert_int_equal(dup2(ro, fd), fd);
    close(ro);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), RP_EIO);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), RP_EIO);
    rp_audit_close(a);
}

static void test_shrunk_log_fails_closed(void **state)
{
    fixture *f = *state;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"user:bob", "change", "x", "/", "success", "r", "10.1.1.1", NULL};

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    assert_int_equal(truncate(f->path, 10), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, RP_AUDIT_DURABLE), RP_EIO);
    rp_audit_close(a);
}

/* ---- several writers on one file ---- */

static void test_two_handles_share_chain(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit *a = NULL, *b = NULL;
    rp_audit_rec ra = {"server", "authz", "a", "/", "allowed", "r", "10.0.0.1", NULL};
    rp_audit_rec rb = {"cli", "change", "b", "/", "success", "r", "local", NULL};

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_open(f->path, f->rk, &b), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rp_audit_log_sync(a, &ra, 0), 0);
        assert_int_equal(rp_audit_log_sync(b, &rb, i % 2 ? RP_AUDIT_DURABLE : 0), 0);
    }
    rp_audit_close(b);
    assert_int_equal(rp_audit_log_sync(a, &ra, 0), 0);
    rp_audit_close(a);
    expect_ok(f->path, &res);
    assert_int_equal(res.records, 41);
    assert_int_equal(res.checkpoints, 2);
    assert_int_equal(res.unsigned_records, 0);
}

/* ---- hostile input ---- */

static void test_hostile_strings_escaped(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit *a = NULL;
    rp_audit_entry e;
    const char *detail_str;
    json_t *detail =
        json_pack("{s:s,s:s}", "reason", "bad \"token\"\n\x1b[31mred", "u", "\xc3\xa9");
    rp_audit_rec rec = {"a\"b\nc\\d",
                        "authn",
                        "line\u2028sep\xc2\x85next",
                        "/caf\xc3\xa9/\xe6\x97\xa5",
                        "failure",
                        "id\x01\x1b[2J\x7f",
                        "\xff\xfe\xc0\xaf\xed\xa0\x80",
                        detail};
    size_t len;
    char *buf;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    json_decref(detail);
    rp_audit_close(a);
    buf = slurp(f->path, &len);
    assert_int_equal(count_lines(buf, len), 2);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        assert_false(c < 0x20 && c != '\n');
        assert_false(c == 0x7f);
    }
    assert_non_null(strstr(buf, "\"principal\":\"a\\\"b\\nc\\\\d\""));
    assert_non_null(strstr(buf, "\"request\":\"id\\u0001\\u001b[2J\\u007f\""));
    assert_non_null(strstr(buf, "line\\u2028sep\\u0085next"));
    assert_non_null(strstr(buf, "\"scope\":\"/caf\xc3\xa9/\xe6\x97\xa5\""));
    assert_int_equal(rp_audit_parse_line(buf, (size_t)(strchr(buf, '\n') - buf), &e, NULL), 0);
    assert_string_equal(e.principal, "a\"b\nc\\d");
    assert_string_equal(e.request_id, "id\x01\x1b[2J\x7f");
    /* Each invalid byte became U+FFFD (7 bytes: FF, FE, C0, AF, ED, A0, 80). */
    assert_int_equal(strlen(e.client), 21);
    for (int i = 0; i < 7; i++)
        assert_memory_equal(e.client + 3 * i, "\xef\xbf\xbd", 3);
    detail_str = json_string_value(json_object_get(e.detail, "reason"));
    assert_string_equal(detail_str, "bad \"token\"\n\x1b[31mred");
    assert_string_equal(json_string_value(json_object_get(e.detail, "u")), "\xc3\xa9");
    rp_audit_entry_clear(&e);
    free(buf);
    expect_ok(f->path, &res);
}

static void test_long_fields_truncated(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit *a = NULL;
    rp_audit_entry e;
    static char longp[1000], longa[5000], ctl[400], cjk[1201];
    json_t *big, *num = json_integer(5);
    rp_audit_rec rec = {longp, "change", longa, cjk, "success", ctl, "c", NULL};
    size_t len, off, n, m = sizeof(RP_AUDIT_TRUNCATED) - 1;
    char *buf;

    memset(longp, 'p', sizeof(longp) - 1);
    memset(longa, 'a', sizeof(longa) - 1);
    memset(ctl, '\x01', sizeof(ctl) - 1);
    for (int i = 0; i < 400; i++)
        memcpy(cjk + 3 * i, "\xe6\x97\xa5", 3);
    big = json_pack("{s:s}", "blob", longa);
    assert_non_null(big);
    rec.detail = big;
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rec.detail = num;
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_close(a);
    json_decref(big);
    json_decref(num);
    buf = slurp(f->path, &len);
    assert_int_equal(count_lines(buf, len), 3);
    line_span(buf, len, 1, &off, &n);
    assert_int_equal(rp_audit_parse_line(buf + off, n, &e, NULL), 0);
    assert_int_equal(strlen(e.principal), RP_AUDIT_FIELD_MAX);
    assert_string_equal(e.principal + RP_AUDIT_FIELD_MAX - m, RP_AUDIT_TRUNCATED);
    assert_int_equal(strlen(e.action), RP_AUDIT_PATH_MAX);
    /* 3-byte characters are cut on a boundary: 1010 bytes fit, 336 whole characters. */
    assert_int_equal(strlen(e.scope), 336 * 3 + m);
    assert_int_equal((strlen(e.scope) - m) % 3, 0);
    assert_true(strlen(e.scope) <= RP_AUDIT_PATH_MAX);
    /* \u0001 is 6 escaped bytes: the cap counts them, not the raw byte. */
    assert_int_equal(strlen(e.request_id) - m, (RP_AUDIT_FIELD_MAX - m) / 6);
    assert_true(json_is_true(json_object_get(e.detail, "truncated")));
    assert_true(json_integer_value(json_object_get(e.detail, "bytes")) > RP_AUDIT_DETAIL_MAX);
    rp_audit_entry_clear(&e);
    line_span(buf, len, 2, &off, &n);
    assert_int_equal(rp_audit_parse_line(buf + off, n, &e, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(e.detail, "value")), 5);
    rp_audit_entry_clear(&e);
    free(buf);
    expect_ok(f->path, &res);
}

static void test_invalid_arguments(void **state)
{
    fixture *f = *state;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"x", "authz", "a", "/", "allowed", "r", "c", NULL};
    char link[700];

    assert_int_equal(rp_audit_open(f->path, NULL, &a), RP_EINVAL);
    assert_int_equal(rp_audit_open("", f->rk, &a), RP_EINVAL);
    assert_int_equal(rp_audit_open(f->path, f->rk, NULL), RP_EINVAL);
    snprintf(link, sizeof(link), "%s/link.log", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    assert_int_equal(rp_audit_open(link, f->rk, &a), RP_EINVAL);
    assert_null(a);

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    rec.kind = "checkpoint"; /* reserved for the writer */
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), RP_EINVAL);
    rec.kind = "authz";
    rec.result = "maybe";
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), RP_EINVAL);
    rec.result = NULL;
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), RP_EINVAL);
    rec.result = "allowed";
    assert_int_equal(rp_audit_log_sync(a, &rec, 4), RP_EINVAL);
    assert_int_equal(rp_audit_log_sync(a, NULL, 0), RP_EINVAL);
    assert_int_equal(rp_audit_log(NULL, &rec, 0, NULL, NULL), RP_EINVAL);
    rp_audit_close(a);
    rp_audit_close(NULL);
    rp_audit_port_close(NULL);
}

static void test_pubkey_conflict(void **state)
{
    fixture *f = *state;
    char keypath[700];
    rp_rootkey *other = NULL;
    rp_audit *a = NULL;
    struct stat st;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    rp_audit_close(a);
    assert_int_equal(stat(f->pub, &st), 0);
    assert_int_equal(st.st_size, 44);
    snprintf(keypath, sizeof(keypath), "%s/other.key", f->dir);
    assert_int_equal(rp_rootkey_file_create(keypath), 0);
    assert_int_equal(rp_rootkey_file_load(keypath, &other), 0);
    a = NULL;
    assert_int_equal(rp_audit_open(f->path, other, &a), RP_ECONFLICT);
    assert_null(a);
    rp_rootkey_free(other);
}

static void test_alloc_failure(void **state)
{
    fixture *f = *state;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"x", "authz", "a", "/", "allowed", "r", "c", NULL};
    int rc = RP_ENOMEM;
    long n;

    for (n = 0; n < 50 && rc == RP_ENOMEM; n++) {
        rp_alloc_fail_after(n);
        rc = rp_audit_open(f->path, f->rk, &a);
        rp_alloc_fail_after(-1);
        if (rc != 0)
            assert_null(a);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 1);
    rp_alloc_fail_after(0);
    rc = rp_audit_log_sync(a, &rec, 0);
    rp_alloc_fail_after(-1);
    assert_int_equal(rc, RP_ENOMEM);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_close(a);
}

static void test_port_close_with_records_in_flight(void **state)
{
    fixture *f = *state;
    rp_audit_verify_result res;
    rp_audit *a = NULL;
    rp_audit_port *p = NULL;
    rp_audit_rec rec = {"x", "authz", "a", "/", "allowed", "r", "c", NULL};
    uv_loop_t loop;
    int calls = 0;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_port_open(a, &loop, &p), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(rp_audit_log(p, &rec, RP_AUDIT_DURABLE, NULL, &calls), 0);
    rp_audit_port_close(p);
    /* Close the log before the loop has run: the port still holds it. */
    rp_audit_close(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    expect_ok(f->path, &res);
    assert_int_equal(res.records, 100);
}

/* ---- reading ---- */

typedef struct reader {
    uint64_t seqs[64];
    int n;
    int stop_at;
} reader;

static int read_cb(const rp_audit_entry *e, const char *line, size_t n, void *arg)
{
    reader *r = arg;

    assert_true(n > 0 && line[0] == '{' && line[n - 1] == '}');
    assert_non_null(e->obj);
    if (r->n < 64)
        r->seqs[r->n] = e->seq;
    r->n++;
    return r->stop_at != 0 && r->n == r->stop_at ? 7 : 0;
}

static void test_read_tail(void **state)
{
    fixture *f = *state;
    reader r;
    uint64_t last = 0;

    make_chain(f);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, 0, 10, read_cb, &r, &last), 0);
    assert_int_equal(r.n, 10);
    assert_int_equal(r.seqs[0], 1);
    assert_int_equal(r.seqs[9], 10);
    assert_int_equal(last, 10);

    /* A start deep in the file is found by bisection; every after gives the next seqs. */
    for (uint64_t after = 990; after < 1010; after++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(rp_audit_read(f->path, after, 5, read_cb, &r, &last), 0);
        assert_int_equal(r.n, 5);
        for (int i = 0; i < 5; i++)
            assert_int_equal(r.seqs[i], after + 1 + (uint64_t)i);
        assert_int_equal(last, after + 5);
    }
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, 2499, SIZE_MAX, read_cb, &r, &last), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(last, CHAIN_LINES);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, CHAIN_LINES, 10, read_cb, &r, &last), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(last, CHAIN_LINES);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, 0, SIZE_MAX, read_cb, &r, NULL), 0);
    assert_int_equal(r.n, CHAIN_LINES);
    memset(&r, 0, sizeof(r));
    r.stop_at = 3;
    assert_int_equal(rp_audit_read(f->path, 100, SIZE_MAX, read_cb, &r, &last), 7);
    assert_int_equal(last, 103);
    assert_int_equal(rp_audit_read(f->path, 0, 0, read_cb, &r, NULL), RP_EINVAL);
    assert_int_equal(rp_audit_read("/nonexistent/audit.log", 0, 1, read_cb, &r, NULL), RP_ENOENT);

    /* A torn tail is not there yet for readers. */
    append_bytes(f->path, "{\"seq\":2504", 11);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, 2500, SIZE_MAX, read_cb, &r, &last), 0);
    assert_int_equal(r.n, 3);
}

static void test_read_skips_repaired_line(void **state)
{
    fixture *f = *state;
    rp_audit *a = NULL;
    rp_audit_rec rec = {"x", "authz", "a", "/", "allowed", "r", "c", NULL};
    reader r;
    uint64_t last = 0;

    assert_int_equal(rp_audit_open(f->path, f->rk, &a), 0);
    assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    rp_audit_close(a);
    append_bytes(f->path, "{\"se", 4);
    assert_int_equal(rp_audit_repair(f->path, f->rk, NULL), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, 0, SIZE_MAX, read_cb, &r, &last), 0);
    /* record 1, checkpoint 2, (damaged line), repair 3, checkpoint 4 */
    assert_int_equal(r.n, 4);
    assert_int_equal(last, 4);
    append_bytes(f->path, "junk\n", 5);
    memset(&r, 0, sizeof(r));
    assert_int_equal(rp_audit_read(f->path, 0, SIZE_MAX, read_cb, &r, &last), RP_EPARSE);
    assert_int_equal(r.n, 4);
}

/* ---- the line parser ---- */

static void test_parse_line(void **state)
{
    static const char good[] =
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"detail\":{\"a\":1,\"b\":[true,null,\"x\"]},\"prev\":"
        "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}";
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"seq\":3 }",
        /* spaces, key order, duplicate and extra keys, number and hex spellings */
        "{\"seq\": 3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"time\":\"2026-11-29T05:31:02.123Z\",\"seq\":3,\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"seq\":3,\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":"
        "\"authz\",\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\","
        "\"client\":\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbcc"
        "ddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"x\":1,\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccdd"
        "eeff\"}",
        "{\"seq\":3.0,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\"}",
        /* values */
        "{\"seq\":0,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-13-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"login\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"ok\",\"request\":\"r\",\"client\":"
        "\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"p\",\"kind\":\"authz\","
        "\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\",\"client\":"
        "\"c\",\"detail\":[1],\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aab"
        "bccddeeff\"}",
        /* escapes the writer never uses */
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"\\u0070\",\"kind\":"
        "\"authz\",\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\","
        "\"client\":\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbcc"
        "ddeeff\"}",
        "{\"seq\":3,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":\"\\/\",\"kind\":"
        "\"authz\",\"action\":\"a\",\"scope\":\"/\",\"result\":\"denied\",\"request\":\"r\","
        "\"client\":\"c\",\"prev\":\"00112233445566778899aabbccddeeff00112233445566778899aabbcc"
        "ddeeff\"}",
        /* a checkpoint without its signature */
        "{\"seq\":4,\"time\":\"2026-11-29T05:31:02.123Z\",\"kind\":\"checkpoint\",\"count\":3,"
        "\"head\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\",\"prev\":"
        "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
    };
    rp_audit_entry e;
    const char *why = NULL;
    char *huge;

    (void)state;
    assert_int_equal(rp_audit_parse_line(good, strlen(good), &e, &why), 0);
    assert_null(why);
    assert_int_equal(e.seq, 3);
    assert_int_equal(e.checkpoint, 0);
    assert_string_equal(e.kind, "authz");
    assert_string_equal(e.result, "denied");
    assert_int_equal(e.prev[0], 0x00);
    assert_int_equal(e.prev[31], 0xff);
    assert_true(json_is_array(json_object_get(e.detail, "b")));
    rp_audit_entry_clear(&e);
    rp_audit_entry_clear(&e); /* a cleared entry clears again */

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (rp_audit_parse_line(bad[i], strlen(bad[i]), &e, &why) != RP_EPARSE)
            print_error("accepted: %s\n", bad[i]);
        assert_int_equal(rp_audit_parse_line(bad[i], strlen(bad[i]), &e, &why), RP_EPARSE);
        assert_non_null(why);
        assert_null(e.obj);
    }
    huge = malloc(RP_AUDIT_LINE_MAX + 2);
    assert_non_null(huge);
    memset(huge, ' ', RP_AUDIT_LINE_MAX + 1);
    assert_int_equal(rp_audit_parse_line(huge, RP_AUDIT_LINE_MAX + 1, &e, &why), RP_ETOOBIG);
    free(huge);
    assert_int_equal(rp_audit_parse_line(NULL, 1, &e, NULL), RP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_verifies, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_edited_record_named, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_dropped_record_named, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_swapped_records_named, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_signature_named, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_forged_tail_reported_unsigned, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_refused_and_repaired, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_final_newline_repaired, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues_chain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_durable_group_commit_one_loop, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_durable_group_commit_four_threads, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_lazy_sync_and_timed_checkpoint, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_fails_closed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_fails_closed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_write_error_fails_closed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shrunk_log_fails_closed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_share_chain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_strings_escaped, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_long_fields_truncated, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pubkey_conflict, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failure, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_port_close_with_records_in_flight, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_read_tail, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_read_skips_repaired_line, fx_setup, fx_teardown),
        cmocka_unit_test(test_parse_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
