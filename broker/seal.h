/*
 * seal.h - encryption at rest and keyed pseudonyms.
 *
 * The data directory holds `key` (0600): 32 bytes for AES-256-GCM, which
 * seals stored payloads and consent histories with the record id as
 * associated data, and 32 bytes for HMAC-SHA-256, which turns subject
 * identifiers into pseudonyms so none is stored in clear.
 */
#ifndef CC_SEAL_H
#define CC_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cc_proto.h"

#define SEAL_KEYFILE	"key"
#define SEAL_KEYLEN	64
#define SEAL_OVERHEAD	(12 + 16)	/* nonce + tag */
#define PSEUDO_LEN	32
#define SEAL_TAGLEN	16	/* integrity tag of a stored value */

/* The keys, and what OpenSSL would otherwise look up on every use. */
struct seal {
	uint8_t			 aes[32];
	uint8_t			 mac[32];
	struct evp_cipher_st	*gcm;		/* AES-256-GCM, fetched */
	struct evp_mac_ctx_st	*hmac;		/* HMAC-SHA-256, keyed */
	struct evp_mac_ctx_st	*tag;		/* SipHash-2-4-128, keyed */
};

/* Create DIR/key with fresh random bytes, refusing to overwrite. */
int	seal_keygen(const char *dir, char *err, size_t errlen) CC_WUR;

/* Load DIR/key; refuses a key file readable by group or others. */
int	seal_load(struct seal *, const char *dir, char *err,
	    size_t errlen) CC_WUR;

/* Wipe the key from memory. */
void	seal_clear(struct seal *);

/*
 * Seal `len` bytes into out, which must hold len + SEAL_OVERHEAD bytes:
 * random nonce, ciphertext, tag.  The record id is the associated data, so
 * a sealed value moved to another record fails to open.  Returns 0 or -1.
 */
int	seal_seal(const struct seal *, const void *ad, size_t adlen,
	    const void *in, size_t len, uint8_t *out) CC_WUR;

/* Open a sealed value into out (len - SEAL_OVERHEAD bytes).  Returns 0, or
 * -1 when it was altered, moved or sealed with another key. */
int	seal_open(const struct seal *, const void *ad, size_t adlen,
	    const uint8_t *in, size_t len, uint8_t *out) CC_WUR;

/*
 * The integrity tag of a stored value: a MAC, under a key derived from
 * the MAC key, of the domain (which database), the key's length, the key
 * and the value.  A value changed, or moved to another key or database,
 * no longer matches its tag.  Returns 0, or -1 if it could not be made.
 */
int	seal_tag(const struct seal *, uint8_t domain, const void *key,
	    size_t klen, const void *val, size_t vlen,
	    uint8_t out[SEAL_TAGLEN]) CC_WUR;

/* The pseudonym of one identifier: HMAC(key, scheme ":" value).
 * Returns 0, or -1 if the MAC could not be computed. */
int	seal_pseudonym(const struct seal *, const char *scheme,
	    const char *value, uint8_t out[PSEUDO_LEN]) CC_WUR;

#endif /* CC_SEAL_H */
