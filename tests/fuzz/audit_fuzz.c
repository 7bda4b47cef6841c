/*
 * audit_fuzz.c - the audit log's line parser (rp_audit_parse_line), which `rampart audit
 * verify`, `rampart audit tail` and GET /api/audit run over a file that an attacker may have
 * edited. Arbitrary bytes must never crash it or leak, and whatever it accepts must be what
 * the writer could have produced: one line, every field present, a checkpoint's signed part
 * where the format says it is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_audit_entry e;
    const char *why = NULL;
    char *copy;
    int rc;

    /* An exact-size heap copy, so reading one byte past the line is caught. */
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    rc = rp_audit_parse_line(copy, size, &e, &why);
    if (rc != 0) {
        if (why == NULL || e.obj != NULL)
            abort();
        free(copy);
        return 0;
    }
    if (why != NULL || e.obj == NULL || e.seq == 0 || e.time == NULL || e.kind == NULL)
        abort();
    if (memchr(copy, '\n', size) != NULL || memchr(copy, '\0', size) != NULL)
        abort(); /* a record is always exactly one line */
    if (e.checkpoint) {
        if (e.principal != NULL || e.signed_len == 0 || e.signed_len >= size ||
            copy[e.signed_len] != ',' || strcmp(e.kind, "checkpoint") != 0)
            abort();
    } else {
        if (e.principal == NULL || e.action == NULL || e.scope == NULL || e.result == NULL ||
            e.request_id == NULL || e.client == NULL || e.signed_len != 0)
            abort();
        if (e.detail != NULL && !json_is_object(e.detail))
            abort();
    }
    rp_audit_entry_clear(&e);
    if (e.obj != NULL)
        abort();
    free(copy);
    return 0;
}
