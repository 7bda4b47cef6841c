/*
 * jwt_fuzz.c - the JWT decoder, verifier and claim checks on arbitrary bytes.
 *
 * Properties checked (abort() on violation, so the fuzzer reports it):
 *   - decode never crashes, reads only the bytes it is given (libFuzzer's input buffer is exactly
 *     size bytes, so ASan sees any over-read), and leaves *out untouched when it refuses;
 *   - nothing verifies: the two keys below are generated afresh at start-up and never sign a
 *     fuzzer input, so a token that verifies under either is a forgery and a bug. The seed corpus
 *     holds well-formed tokens signed by other keys; they must fail with RP_JWT_SIGNATURE;
 *   - every decoded token's claims re-sign (ES256, the fast key) into a token that decodes,
 *     verifies and carries equal claims: the signer and the decoder agree on what a claims
 *     object is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rp_jwt_key *rsa, *ec;

static void setup(void)
{
    if (rp_jwt_key_generate_rsa(2048, "fuzz-rsa", &rsa) != 0 ||
        rp_jwt_key_generate_p256("fuzz-ec", &ec) != 0)
        abort();
}

/* Signs j's claims with ec and checks the result round-trips. */
static void resign(const rp_jwt *j)
{
    char *tok = NULL;
    size_t n = 0;
    rp_jwt *back = NULL;
    int rc = rp_jwt_sign(ec, RP_JWT_ES256, NULL, rp_jwt_claims(j), &tok, &n);

    if (rc == RP_ETOOBIG)
        return; /* re-serialised claims can be longer than the original text (1e5 -> 100000.0) */
    if (rc != 0 || n != strlen(tok))
        abort();
    if (rp_jwt_decode(tok, n, RP_JWT_ES256, &back) != RP_JWT_OK ||
        rp_jwt_verify(back, ec) != RP_JWT_OK ||
        !json_equal((json_t *)rp_jwt_claims(back), (json_t *)rp_jwt_claims(j)))
        abort();
    rp_jwt_free(back);
    rp_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const auds[] = {"api://rampart", "https://vault.rampart.localhost", NULL};
    rp_jwt_expect strict = {"https://login.rampart.localhost/t/v2.0", auds, 1700000000, 60, 1, 600};
    rp_jwt_expect loose = {NULL, NULL, 1700000000, 300, 0, 0};
    rp_jwt *j = NULL;
    rp_jwt_status st;
    const char *s;

    if (rsa == NULL)
        setup();
    st = rp_jwt_decode((const char *)data, size, RP_JWT_ALL_ALGS, &j);
    if (st != RP_JWT_OK) {
        if (j != NULL || st == RP_JWT_NOMEM)
            abort();
        return 0;
    }
    /* the accessors on whatever was accepted */
    if (rp_jwt_alg_of(j) != RP_JWT_RS256 && rp_jwt_alg_of(j) != RP_JWT_PS256 &&
        rp_jwt_alg_of(j) != RP_JWT_ES256)
        abort();
    s = rp_jwt_kid(j);
    if (s != NULL && (strlen(s) == 0 || strlen(s) > RP_JWT_MAX_KID))
        abort();
    (void)rp_jwt_header_str(j, "x5t#S256");
    (void)rp_jwt_claim_str(j, "sub");
    if (!json_is_object(rp_jwt_claims(j)))
        abort();
    /* no forgery under either key, whatever the alg says */
    if (rp_jwt_verify(j, rsa) == RP_JWT_OK || rp_jwt_verify(j, ec) == RP_JWT_OK)
        abort();
    if (rp_jwt_verify(j, NULL) != RP_JWT_KID)
        abort();
    st = rp_jwt_check_claims(j, &strict);
    if (st == RP_JWT_OK && (rp_jwt_claim_str(j, "iss") == NULL ||
                            strcmp(rp_jwt_claim_str(j, "iss"), strict.issuer) != 0))
        abort();
    (void)rp_jwt_check_claims(j, &loose);
    resign(j);
    rp_jwt_free(j);
    return 0;
}
