/* token_fuzz.c - the administrator bearer token check: arbitrary Authorization values never
 * match (or crash), the real token always does. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "store/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rp_admin_creds *creds;
static char token[128];

static void setup(void)
{
    sqlite3 *db = NULL;

    if (sqlite3_open(":memory:", &db) != SQLITE_OK || rp_schema_migrate(db) != 0 ||
        rp_admin_token_create(db, token, sizeof(token)) != 0 ||
        rp_admin_creds_load(db, &creds) != 0)
        abort();
    sqlite3_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy;
    int rc;

    if (creds == NULL)
        setup();
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    rc = rp_admin_creds_check(creds, copy, size);
    if (rc == 0 && (size != strlen(token) || memcmp(copy, token, size) != 0))
        abort(); /* something other than the token was accepted */
    free(copy);
    if (rp_admin_creds_check(creds, token, strlen(token)) != 0)
        abort();
    return 0;
}
