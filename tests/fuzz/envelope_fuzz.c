/*
 * envelope_fuzz.c - every decoder of the key hierarchy's byte formats on arbitrary bytes, with
 * fixed keys: the wrapped DEK ("RPK1"), the object and key envelopes ("RPE1") and the
 * passphrase-sealed root key file ("RPS1").
 *
 * The first input byte picks how the rest is cut (so one input exercises a wrapped DEK and an
 * object together, as rp_keyring_open_object sees them); every decoder also sees the whole input.
 * Properties checked (abort() on violation, so the fuzzer reports it):
 *   - nothing crashes or reads past the input (libFuzzer's buffer is exactly size bytes);
 *   - nothing opens: the keys below never seal a fuzzer input, so an envelope or wrapped DEK
 *     that authenticates is a forgery and a bug. The seed corpus holds well-formed blobs sealed
 *     under other keys; they must parse and then fail with RP_ECRYPTO;
 *   - a decoder that refuses leaves its output as it was (length 0, key bytes wiped).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "crypto/aead.h"
#include "crypto/keyprov.h"
#include "crypto/keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char KEK[32] = "fuzz key-encryption key .......";
static const unsigned char DEK[32] = "fuzz data-encryption key ......";

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static void wdek(const uint8_t *d, size_t n)
{
    unsigned char out[32];
    uint32_t ver = 0;
    int rc = rp_keyring_wdek_parse(d, n, &ver);

    if (rc != 0 && rc != RP_EPARSE)
        abort();
    if (rc == 0 && (n != RP_KEYRING_WDEK_LEN || ver == 0))
        abort();
    memset(out, 0xa5, sizeof(out));
    rc = rp_keyring_wdek_open(KEK, "/vaults/fuzz", "secrets/s/1", d, n, out);
    if (rc == 0 || (rc != RP_EPARSE && rc != RP_ECRYPTO) || !all_zero(out, sizeof(out)))
        abort();
}

static void envelope(const uint8_t *d, size_t n)
{
    rp_buf out;
    int rc;

    rp_buf_init(&out, 1 << 20);
    rc = rp_keyring_obj_open(DEK, "/vaults/fuzz", "secrets/s/1", d, n, &out);
    if (rc == 0 || (rc != RP_EPARSE && rc != RP_ECRYPTO) || out.len != 0)
        abort();
    rc = rp_aead_open(KEK, "aad", 3, d, n, &out);
    if (rc == 0 || (rc != RP_EPARSE && rc != RP_ECRYPTO) || out.len != 0)
        abort();
    rp_buf_free_secret(&out);
}

static void sealed(const uint8_t *d, size_t n)
{
    rp_keyprov_sealed s;
    unsigned char key[32];
    int rc = rp_keyprov_sealed_parse(d, n, &s);

    if (rc != 0) {
        if (rc != RP_EPARSE)
            abort();
        return;
    }
    if (n != RP_KEYPROV_SEALED_LEN || s.t_cost < 1 || s.t_cost > 16 || s.lanes < 1 ||
        s.lanes > 16 || s.m_kib < 8 * s.lanes || s.m_kib > 1024 * 1024 || s.hdr != d ||
        s.env != d + RP_KEYPROV_SEALED_HDR_LEN)
        abort();
    /* the Argon2id step is skipped: a fixed KEK stands for its output */
    memset(key, 0xa5, sizeof(key));
    rc = rp_keyprov_sealed_open(&s, KEK, key);
    if (rc == 0 || !all_zero(key, sizeof(key)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cut;

    wdek(data, size);
    envelope(data, size);
    sealed(data, size);
    if (size == 0)
        return 0;
    /* byte 0: where the wrapped DEK ends and the object begins */
    cut = data[0] % (size < 128 ? size : 128);
    wdek(data + 1, cut > size - 1 ? size - 1 : cut);
    if (cut < size - 1)
        envelope(data + 1 + cut, size - 1 - cut);
    return 0;
}
