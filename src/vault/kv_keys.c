/*
 * kv_keys.c - the keys collection of a vault (docs/vault.md "Keys").
 */
#include "vault/vault_int.h"

void rp__kv_keys(rp__kv_call *c)
{
    rp__kv_error(c->req, 501, "NotImplemented", NULL, "Keys are not available yet.");
}
