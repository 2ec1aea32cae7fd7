/*
 * seal.c - AES-256-GCM at rest and HMAC-SHA-256 pseudonyms (OpenSSL 3).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "seal.h"

static int	seal_prepare(struct seal *);

int
seal_keygen(const char *dir, char *err, size_t errlen)
{
	char	path[4096];
	uint8_t	key[SEAL_KEYLEN];
	int	fd = -1, rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, SEAL_KEYFILE);
	if (RAND_bytes(key, sizeof(key)) != 1) {
		snprintf(err, errlen, "cannot get random bytes for %s", path);
		goto fail;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	if (fd != -1 && close(fd) == -1 && rc == 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

int
seal_load(struct seal *s, const char *dir, char *err, size_t errlen)
{
	char		path[4096];
	uint8_t		key[SEAL_KEYLEN];
	struct stat	st;
	int		fd, rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, SEAL_KEYFILE);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "%s: %s (did you run ccbroker init?)",
		    path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "%s: readable by group or others "
		    "(chmod 600)", path);
		goto fail;
	}
	if (read(fd, key, sizeof(key)) != (ssize_t)sizeof(key)) {
		snprintf(err, errlen, "%s: short key file", path);
		goto fail;
	}
	memcpy(s->aes, key, 32);
	memcpy(s->mac, key + 32, 32);
	if (seal_prepare(s) == -1) {
		snprintf(err, errlen, "OpenSSL has no AES-256-GCM or "
		    "HMAC-SHA-256");
		seal_clear(s);
		goto fail;
	}
	rc = 0;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	close(fd);
	return rc;
}

/*
 * Fetch the cipher once and key the MAC once: OpenSSL 3 looks both up
 * again on every call of EVP_aes_256_gcm()'s init and of HMAC().
 */
static int
seal_prepare(struct seal *s)
{
	EVP_MAC		*mac;
	OSSL_PARAM	 params[2];
	size_t		 tlen = SEAL_TAGLEN;
	uint8_t		 tkey[PSEUDO_LEN];
	int		 rc;

	s->gcm = NULL;
	s->hmac = NULL;
	s->tag = NULL;
	if ((s->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL ||
	    (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return -1;
	s->hmac = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (s->hmac == NULL ||
	    EVP_MAC_init(s->hmac, s->mac, sizeof(s->mac), params) != 1)
		return -1;
	/*
	 * The integrity tags of stored values: SipHash-2-4 with a 128-bit
	 * tag, keyed from the MAC key (a pseudonym of a name no identifier
	 * scheme has, so the two uses never meet).  SipHash, not HMAC: a
	 * tag is made or checked on every store read and write, and it
	 * costs a third of HMAC-SHA-256 there.
	 */
	if (seal_pseudonym(s, "store-tag", "v1", tkey) == -1 ||
	    (mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL)
		return -1;
	s->tag = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	params[0] = OSSL_PARAM_construct_size_t("size", &tlen);
	params[1] = OSSL_PARAM_construct_end();
	rc = s->tag != NULL && EVP_MAC_init(s->tag, tkey, 16, params) == 1 ?
	    0 : -1;
	OPENSSL_cleanse(tkey, sizeof(tkey));
	return rc;
}

int
seal_tag(const struct seal *s, uint8_t domain, const void *key, size_t klen,
    const void *val, size_t vlen, uint8_t out[SEAL_TAGLEN])
{
	uint8_t	hdr[5];
	size_t	len;

	hdr[0] = domain;
	hdr[1] = (uint8_t)(klen >> 24);
	hdr[2] = (uint8_t)(klen >> 16);
	hdr[3] = (uint8_t)(klen >> 8);
	hdr[4] = (uint8_t)klen;
	/* Initialised again with the key it holds (a NULL key keeps it). */
	if (EVP_MAC_init(s->tag, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(s->tag, hdr, sizeof(hdr)) != 1 ||
	    (klen > 0 && EVP_MAC_update(s->tag, key, klen) != 1) ||
	    (vlen > 0 && EVP_MAC_update(s->tag, val, vlen) != 1) ||
	    EVP_MAC_final(s->tag, out, &len, SEAL_TAGLEN) != 1 ||
	    len != SEAL_TAGLEN)
		return -1;
	return 0;
}

void
seal_clear(struct seal *s)
{
	EVP_CIPHER_free(s->gcm);
	EVP_MAC_CTX_free(s->hmac);
	EVP_MAC_CTX_free(s->tag);
	OPENSSL_cleanse(s, sizeof(*s));
}

int
seal_seal(const struct seal *s, const void *ad, size_t adlen, const void *in,
    size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX	*c;
	int		 n, rc = -1;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (RAND_bytes(out, 12) != 1)
		goto fail;
	if (EVP_EncryptInit_ex2(c, s->gcm, s->aes, out, NULL) != 1)
		goto fail;
	if (adlen > 0 && EVP_EncryptUpdate(c, NULL, &n, ad, (int)adlen) != 1)
		goto fail;
	if (len > 0 && EVP_EncryptUpdate(c, out + 12, &n, in, (int)len) != 1)
		goto fail;
	if (EVP_EncryptFinal_ex(c, out + 12 + len, &n) != 1)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16,
	    out + 12 + len) != 1)
		goto fail;
	rc = 0;
fail:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int
seal_open(const struct seal *s, const void *ad, size_t adlen,
    const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX	*c;
	size_t		 clen;
	int		 n, rc = -1;

	if (len < SEAL_OVERHEAD)
		return -1;
	clen = len - SEAL_OVERHEAD;
	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_DecryptInit_ex2(c, s->gcm, s->aes, in, NULL) != 1)
		goto fail;
	if (adlen > 0 && EVP_DecryptUpdate(c, NULL, &n, ad, (int)adlen) != 1)
		goto fail;
	if (clen > 0 && EVP_DecryptUpdate(c, out, &n, in + 12, (int)clen) != 1)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
	    (void *)(in + 12 + clen)) != 1)
		goto fail;
	if (EVP_DecryptFinal_ex(c, out + clen, &n) != 1)
		goto fail;
	rc = 0;
fail:
	/* What failed to authenticate is never left for a caller to read. */
	if (rc != 0 && clen > 0)
		explicit_bzero(out, clen);
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int
seal_pseudonym(const struct seal *s, const char *scheme, const char *value,
    uint8_t out[PSEUDO_LEN])
{
	char		buf[64];
	size_t		len;
	int		n, rc = 0;

	n = snprintf(buf, sizeof(buf), "%s:%s", scheme, value);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	/* Initialised again with the key it holds (a NULL key keeps it). */
	if (EVP_MAC_init(s->hmac, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(s->hmac, (uint8_t *)buf, (size_t)n) != 1 ||
	    EVP_MAC_final(s->hmac, out, &len, PSEUDO_LEN) != 1 ||
	    len != PSEUDO_LEN)
		rc = -1;
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
