/*
 * pki.h - the install's local certificate authority and its server certificates.
 *
 * `rampart init` creates a CA (ECDSA P-256, self-signed) and issues the front door's server
 * certificate from it, with SANs for the platform domain and its per-service wildcards
 * (ARCHITECTURE "Names and origins"). Operators trust the CA certificate on their clients;
 * production installs may bring their own certificates instead.
 *
 * Private keys never touch the disk in clear: rp_pki_key_seal stores the PKCS#8 DER sealed with
 * rp_aead_seal under a key derived from the root key (label "rampart/v1/keyfile"), with the
 * file's label ("ca", "server") as AAD so sealed key files cannot be swapped.
 *
 * Returned EVP_PKEY / X509 objects belong to the caller (EVP_PKEY_free / X509_free).
 * Functions are thread-safe; issuance is rare (init, renewal), so nothing is cached.
 */
#ifndef RP_CRYPTO_PKI_H
#define RP_CRYPTO_PKI_H

#include "base/buf.h"
#include "crypto/rootkey.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>
#include <sys/types.h>

/* Validity limits accepted by the issuing calls (days). */
#define RP_PKI_MAX_DAYS 36500
/* Longest DNS name / IP text accepted in a SAN, and the most SAN entries per certificate. */
#define RP_PKI_MAX_NAME 253
#define RP_PKI_MAX_SANS 64
/* Largest sealed key file read back. */
#define RP_PKI_MAX_KEYFILE 65536
/* Root-key derivation label for sealed key files. */
#define RP_PKI_KEYFILE_LABEL "rampart/v1/keyfile"

/*
 * Creates a self-signed CA: a new P-256 key, subject CN=common_name (1..64 bytes), random
 * 128-bit serial, valid from 5 minutes ago for days days (1..RP_PKI_MAX_DAYS), SHA-256
 * signature, X509v3 with basicConstraints critical CA:TRUE pathlen:0, keyUsage critical
 * keyCertSign,cRLSign, subject and authority key identifiers.
 * 0 and *key, *cert (caller frees); RP_EINVAL, RP_ENOMEM or RP_ECRYPTO (nothing returned).
 */
int rp_pki_create_ca(const char *common_name, int days, EVP_PKEY **key, X509 **cert);

/*
 * Issues a server certificate signed by ca_key/ca_cert (which must match: RP_EINVAL otherwise):
 * a new P-256 key, CN=cn (1..64 bytes), SAN with the ndns DNS names (letters, digits, '-', '.'
 * and a leading "*." wildcard) and the nips IP addresses (IPv4 or IPv6 text), at least one SAN,
 * at most RP_PKI_MAX_SANS; EKU serverAuth, keyUsage critical digitalSignature, basicConstraints
 * critical CA:FALSE, SKI and AKI, random 128-bit serial, notBefore now-5min, days validity.
 * 0 and *key, *cert (caller frees); RP_EINVAL (bad name, bad IP, bad days), RP_ENOMEM,
 * RP_ECRYPTO.
 */
int rp_pki_issue_server(EVP_PKEY *ca_key, X509 *ca_cert, const char *cn, const char *const *dns,
                        size_t ndns, const char *const *ips, size_t nips, int days, EVP_PKEY **key,
                        X509 **cert);

/* Writes cert as PEM to path (mode 0644), atomically. 0, RP_EINVAL, RP_ENOMEM, RP_EIO. */
int rp_pki_write_cert(const char *path, X509 *cert);

/*
 * Writes n certificates as consecutive PEM blocks (leaf first, then its issuers: what a TLS
 * server sends) to path (mode 0644), atomically. 0, RP_EINVAL, RP_ENOMEM, RP_EIO.
 */
int rp_pki_write_chain(const char *path, X509 *const *certs, size_t n);

/*
 * Seals key (PKCS#8 DER) under rp_rootkey_derive(rk, RP_PKI_KEYFILE_LABEL) with AAD = label and
 * writes the envelope to path, mode 0600, atomically (temp file, fsync, rename, fsync dir).
 * The clear DER is wiped before returning. 0, RP_EINVAL, RP_ENOMEM, RP_ECRYPTO, RP_EIO.
 */
int rp_pki_key_seal(const rp_rootkey *rk, const char *label, EVP_PKEY *key, const char *path);

/*
 * Reads and opens a file written by rp_pki_key_seal with the same root key and label.
 * 0 and *out (caller frees); RP_ENOENT (no file), RP_EPARSE (not an envelope, or a DER that is
 * not a private key), RP_ECRYPTO (other root key, other label, altered file), RP_ETOOBIG,
 * RP_ENOMEM, RP_EIO.
 */
int rp_pki_key_unseal(const rp_rootkey *rk, const char *label, const char *path, EVP_PKEY **out);

#endif
