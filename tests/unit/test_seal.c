/*
 * test_seal.c - broker/seal.c: AES-256-GCM at rest and HMAC-SHA-256
 * pseudonyms against known answers computed without it, and the checks on
 * the key file.
 *
 * The vectors below were computed once with python3, python3-cryptography
 * and the standard library, never with seal.c or OpenSSL's C API:
 *
 *   from cryptography.hazmat.primitives.ciphers.aead import AESGCM
 *   import hashlib, hmac
 *   aes, mac = bytes(range(0x40, 0x60)), bytes(range(0x80, 0xa0))
 *   sealed = nonce + AESGCM(aes).encrypt(nonce, plain, ad or None)
 *   pseudonym = hmac.new(mac, scheme + b":" + value,
 *       hashlib.sha256).digest()
 *
 * AESGCM.encrypt returns the ciphertext followed by its 16-byte tag, so
 * `sealed` has seal.c's layout, nonce (12) | ciphertext | tag (16).  The
 * record id is the associated data: a message's or consent's 16-byte UUID
 * (store_queue.c, store_consent.c).  The key file holds aes then mac.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "seal.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define BYTES(s)	(const uint8_t *)s, sizeof(s) - 1

struct vector {
	const uint8_t	*ad;
	size_t		 adlen;
	const uint8_t	*plain;
	size_t		 plainlen;
	const uint8_t	*sealed;
	size_t		 sealedlen;
};

static const struct vector vectors[] = {
	/* nonce c0..cb, AD the mid 6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f */
	{ BYTES("\x6f\x1c\x2d\x3e\x4a\x5b\x4c\x6d\x8e\x9f\x0a\x1b"
	    "\x2c\x3d\x4e\x5f"),
	  BYTES("release-plan frame"),
	  BYTES("\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb"
	    "\x2d\x21\x5c\xab\x1b\xe9\x58\xc6\x04\xd5\x45\x58"
	    "\x8b\xc5\xd0\xac\xf2\x90\xb0\xec\x94\x42\x3d\x59"
	    "\xe6\x04\x13\x2e\xba\x70\xc0\x88\xed\x31") },
	/* nonce d0..db, AD the cid d4c3b2a1-0f9e-4d8c-b7a6-958473625140 */
	{ BYTES("\xd4\xc3\xb2\xa1\x0f\x9e\x4d\x8c\xb7\xa6\x95\x84"
	    "\x73\x62\x51\x40"),
	  BYTES(""),
	  BYTES("\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb"
	    "\x41\x17\xb5\xdc\xad\x2b\xb8\xd5\x61\x69\x6c\xec"
	    "\xb6\x61\x23\xf7") },
	/* nonce all zero, no AD */
	{ BYTES(""),
	  BYTES("a consent history of 32 bytes..."),
	  BYTES("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	    "\x3b\x14\x53\x17\xfa\x1b\xb7\xc5\xac\xab\xf0\x9a"
	    "\x4c\x89\x0d\x34\x56\xa2\x6f\xf8\xb6\x25\x83\x71"
	    "\xd9\xdd\xa9\x98\x9d\x1e\x3c\x68\xf7\x6a\x73\x84"
	    "\x21\xbe\xfd\x3d\x79\x71\x71\x64\x31\x7a\x90\xb4") },
};

/* A key file in a fresh directory. */
struct keydir {
	char	dir[64];
	char	path[128];
};

static void	test_key(uint8_t key[SEAL_KEYLEN]);
static void	keydir_new(struct keydir *);
static void	keydir_write(struct keydir *, const uint8_t *, size_t, mode_t);
static void	keydir_remove(struct keydir *);
static void	load(struct seal *, const uint8_t key[SEAL_KEYLEN]);

/* aes 40..5f, mac 80..9f, as in the vectors. */
static void
test_key(uint8_t key[SEAL_KEYLEN])
{
	size_t	i;

	for (i = 0; i < 32; i++) {
		key[i] = (uint8_t)(0x40 + i);
		key[32 + i] = (uint8_t)(0x80 + i);
	}
}

static void
keydir_new(struct keydir *kd)
{
	(void)snprintf(kd->dir, sizeof(kd->dir), "/tmp/test_seal.XXXXXX");
	cr_assert_not_null(mkdtemp(kd->dir), "mkdtemp: %s", strerror(errno));
	(void)snprintf(kd->path, sizeof(kd->path), "%s/%s", kd->dir,
	    SEAL_KEYFILE);
}

/* fchmod sets the mode whatever the umask. */
static void
keydir_write(struct keydir *kd, const uint8_t *key, size_t len, mode_t mode)
{
	int	fd;

	fd = open(kd->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_neq(fd, -1, "%s: %s", kd->path, strerror(errno));
	cr_assert_eq(write(fd, key, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	cr_assert_eq(close(fd), 0);
}

static void
keydir_remove(struct keydir *kd)
{
	(void)unlink(kd->path);
	cr_expect_eq(rmdir(kd->dir), 0, "%s: %s", kd->dir, strerror(errno));
}

static void
load(struct seal *s, const uint8_t key[SEAL_KEYLEN])
{
	struct keydir	kd;
	char		err[256];

	keydir_new(&kd);
	keydir_write(&kd, key, SEAL_KEYLEN, 0600);
	cr_assert_eq(seal_load(s, kd.dir, err, sizeof(err)), 0, "%s", err);
	keydir_remove(&kd);
}

Test(seal, open_gives_the_known_plaintext)
{
	struct seal	s;
	uint8_t		key[SEAL_KEYLEN], out[64];
	size_t		i;

	test_key(key);
	load(&s, key);
	for (i = 0; i < NITEMS(vectors); i++) {
		const struct vector *v = &vectors[i];

		cr_assert_eq(v->sealedlen, v->plainlen + SEAL_OVERHEAD);
		memset(out, '#', sizeof(out));
		cr_expect_eq(seal_open(&s, v->ad, v->adlen, v->sealed,
		    v->sealedlen, out), 0, "vector %zu", i);
		cr_expect_eq(memcmp(out, v->plain, v->plainlen), 0,
		    "vector %zu", i);
	}
	seal_clear(&s);
}

/*
 * Vector 0 altered, opened with the wrong record id, or with another key:
 * only the untouched value, and a key differing in its MAC half alone,
 * open.
 */
enum alter {
	AL_NONE,
	AL_FLIP,	/* flip the low bit of byte `at` */
	AL_CUT,		/* drop the last `at` bytes */
	AL_AD_OTHER,	/* vector 1's record id */
	AL_AD_NONE,
	AL_AD_LONGER,	/* one byte more */
	AL_AD_SHORTER,	/* one byte less */
	AL_KEY_AES,	/* first key byte changed */
	AL_KEY_MAC	/* last key byte changed */
};

Test(seal, altered_moved_or_foreign_values_do_not_open)
{
	static const struct {
		const char	*what;
		enum alter	 alter;
		size_t		 at;
		int		 rc;
	} rows[] = {
		{ "untouched", AL_NONE, 0, 0 },
		{ "nonce, first byte", AL_FLIP, 0, -1 },
		{ "nonce, last byte", AL_FLIP, 11, -1 },
		{ "ciphertext, first byte", AL_FLIP, 12, -1 },
		{ "ciphertext, last byte", AL_FLIP, 29, -1 },
		{ "tag, first byte", AL_FLIP, 30, -1 },
		{ "tag, last byte", AL_FLIP, 45, -1 },
		{ "tag one byte short", AL_CUT, 1, -1 },
		{ "no ciphertext left", AL_CUT, 18, -1 },
		{ "shorter than nonce and tag", AL_CUT, 19, -1 },
		{ "empty", AL_CUT, 46, -1 },
		{ "another record's id", AL_AD_OTHER, 0, -1 },
		{ "no record id", AL_AD_NONE, 0, -1 },
		{ "record id one byte longer", AL_AD_LONGER, 0, -1 },
		{ "record id one byte shorter", AL_AD_SHORTER, 0, -1 },
		{ "another AES key", AL_KEY_AES, 0, -1 },
		{ "another MAC key only", AL_KEY_MAC, 0, 0 },
	};
	const struct vector	*v = &vectors[0];
	uint8_t			 key[SEAL_KEYLEN], in[64], ad[32], out[64];
	size_t			 i, len, adlen;

	cr_assert_eq(v->sealedlen, 46);
	for (i = 0; i < NITEMS(rows); i++) {
		struct seal	s;

		test_key(key);
		memcpy(in, v->sealed, v->sealedlen);
		len = v->sealedlen;
		memcpy(ad, v->ad, v->adlen);
		ad[v->adlen] = 0;
		adlen = v->adlen;
		switch (rows[i].alter) {
		case AL_NONE:
			break;
		case AL_FLIP:
			in[rows[i].at] ^= 1;
			break;
		case AL_CUT:
			len -= rows[i].at;
			break;
		case AL_AD_OTHER:
			memcpy(ad, vectors[1].ad, vectors[1].adlen);
			adlen = vectors[1].adlen;
			break;
		case AL_AD_NONE:
			adlen = 0;
			break;
		case AL_AD_LONGER:
			adlen++;
			break;
		case AL_AD_SHORTER:
			adlen--;
			break;
		case AL_KEY_AES:
			key[0] ^= 1;
			break;
		case AL_KEY_MAC:
			key[SEAL_KEYLEN - 1] ^= 1;
			break;
		}
		load(&s, key);
		cr_expect_eq(seal_open(&s, ad, adlen, in, len, out),
		    rows[i].rc, "%s", rows[i].what);
		if (rows[i].rc == 0)
			cr_expect_eq(memcmp(out, v->plain, v->plainlen), 0,
			    "%s", rows[i].what);
		seal_clear(&s);
	}
}

Test(seal, pseudonym_is_hmac_sha256_of_scheme_colon_value)
{
	static const struct {
		const char	*scheme, *value;
		int		 rc;
		const char	*mac;
	} rows[] = {
		{ "pnc", "2004/0012345D", 0,
		  "\xe9\x86\xd1\xd1\x70\x5c\x95\xcd\xd5\xd0\x1d\x11"
		  "\x85\xf7\xac\xd5\x2b\x3e\x98\x65\x0a\xe1\xcc\xd7"
		  "\x45\xa1\x7f\x4b\xea\x53\x06\xf2" },
		{ "noms", "A1234BC", 0,
		  "\x8c\x34\xf3\xaf\x30\x41\x88\x2c\x21\x82\x39\x0b"
		  "\x32\xb1\xe9\xf9\xe7\x89\x21\x6b\x27\xd6\xd0\x83"
		  "\x14\x52\x5f\x88\xea\x1c\x7a\x6e" },
		{ "crn", "X123456", 0,
		  "\xe9\x80\x59\x78\x3f\x2a\x43\xf3\xad\x77\x5a\xb7"
		  "\xed\x90\xe8\x99\x66\x4f\x8d\xd7\xa6\x22\x03\x9b"
		  "\xc3\x0c\x60\x06\x3f\xbb\x3b\x56" },
		{ "pnc", "", 0,
		  "\xad\xd4\x24\xa4\x3e\x28\x2e\x22\x17\x23\x76\x7c"
		  "\x89\xe6\x59\x34\xfa\xb4\xee\x75\x44\xe1\x5e\xc6"
		  "\x18\x06\x0a\x76\x17\x7b\xcf\x89" },
		/* "crn:" and 59 characters: 63, the most that fits. */
		{ "crn", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
		  "XXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
		  0,
		  "\x38\x8b\xb5\x5f\x32\xc4\xde\xf6\x75\x7d\x88\x9a"
		  "\x9f\x1f\x93\x6f\xda\xb3\x86\x29\x0f\x79\x32\xb9"
		  "\xdc\x2f\xe5\x4f\x7d\x5d\xc4\x9d" },
		{ "crn", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
		  "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
		  -1, NULL },
	};
	struct seal	s;
	uint8_t		key[SEAL_KEYLEN], out[PSEUDO_LEN];
	size_t		i, round;

	test_key(key);
	load(&s, key);
	/* Twice over: the MAC context is keyed once and reused. */
	for (round = 0; round < 2; round++)
		for (i = 0; i < NITEMS(rows); i++) {
			cr_expect_eq(seal_pseudonym(&s, rows[i].scheme,
			    rows[i].value, out), rows[i].rc, "%s:%s",
			    rows[i].scheme, rows[i].value);
			if (rows[i].mac != NULL)
				cr_expect_eq(memcmp(out, rows[i].mac,
				    PSEUDO_LEN), 0, "%s:%s", rows[i].scheme,
				    rows[i].value);
		}
	seal_clear(&s);
}

Test(seal, seal_then_open_round_trips_with_a_fresh_nonce)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 1000, 65536 };
	static const uint8_t rid[16] = {
		0x6f, 0x1c, 0x2d, 0x3e, 0x4a, 0x5b, 0x4c, 0x6d,
		0x8e, 0x9f, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f
	};
	struct seal	 s;
	uint8_t		 key[SEAL_KEYLEN], *plain, *a, *b, *back;
	size_t		 i, k, max = 65536;

	test_key(key);
	load(&s, key);
	cr_assert_not_null(plain = malloc(max));
	cr_assert_not_null(a = malloc(max + SEAL_OVERHEAD));
	cr_assert_not_null(b = malloc(max + SEAL_OVERHEAD));
	cr_assert_not_null(back = malloc(max + 1));
	for (k = 0; k < max; k++)
		plain[k] = (uint8_t)(k * 31 + 7);
	for (i = 0; i < NITEMS(lens); i++) {
		cr_assert_eq(seal_seal(&s, rid, sizeof(rid), plain, lens[i],
		    a), 0, "%zu bytes", lens[i]);
		cr_assert_eq(seal_seal(&s, rid, sizeof(rid), plain, lens[i],
		    b), 0, "%zu bytes", lens[i]);
		cr_expect_neq(memcmp(a, b, 12), 0, "%zu bytes: nonce reused",
		    lens[i]);
		memset(back, '#', lens[i] + 1);
		cr_expect_eq(seal_open(&s, rid, sizeof(rid), a,
		    lens[i] + SEAL_OVERHEAD, back), 0, "%zu bytes", lens[i]);
		cr_expect_eq(memcmp(back, plain, lens[i]), 0, "%zu bytes",
		    lens[i]);
		cr_expect_eq(back[lens[i]], '#', "%zu bytes: wrote past",
		    lens[i]);
		cr_expect_eq(seal_open(&s, rid, sizeof(rid) - 1, a,
		    lens[i] + SEAL_OVERHEAD, back), -1, "%zu bytes", lens[i]);
	}
	free(plain);
	free(a);
	free(b);
	free(back);
	seal_clear(&s);
}

/*
 * seal_load: the key is refused when group or others have any access to
 * it, when it is short, missing or a symbolic link.  Reasons are exact
 * after "DIR/key: ".
 */
Test(seal, key_file_mode_size_and_kind_are_checked)
{
	static const struct {
		mode_t		 mode;
		size_t		 len;
		int		 kind;		/* 0 file, 1 none, 2 symlink */
		int		 rc;
		const char	*reason;
	} rows[] = {
		{ 0600, SEAL_KEYLEN, 0, 0, "" },
		{ 0400, SEAL_KEYLEN, 0, 0, "" },
		{ 0700, SEAL_KEYLEN, 0, 0, "" },
		{ 0640, SEAL_KEYLEN, 0, -1,
		  "readable by group or others (chmod 600)" },
		{ 0604, SEAL_KEYLEN, 0, -1,
		  "readable by group or others (chmod 600)" },
		{ 0620, SEAL_KEYLEN, 0, -1,
		  "readable by group or others (chmod 600)" },
		{ 0610, SEAL_KEYLEN, 0, -1,
		  "readable by group or others (chmod 600)" },
		{ 0601, SEAL_KEYLEN, 0, -1,
		  "readable by group or others (chmod 600)" },
		{ 0644, SEAL_KEYLEN, 0, -1,
		  "readable by group or others (chmod 600)" },
		{ 0600, SEAL_KEYLEN - 1, 0, -1, "short key file" },
		{ 0600, 0, 0, -1, "short key file" },
		{ 0600, 0, 1, -1,
		  "No such file or directory (did you run ccbroker init?)" },
		{ 0600, SEAL_KEYLEN, 2, -1,
		  "Too many levels of symbolic links (did you run ccbroker "
		  "init?)" },
	};
	uint8_t	key[SEAL_KEYLEN];
	char	err[256], want[384], real[96];
	size_t	i;

	test_key(key);
	for (i = 0; i < NITEMS(rows); i++) {
		struct keydir	kd;
		struct seal	s;
		int		rc;

		keydir_new(&kd);
		if (rows[i].kind == 0)
			keydir_write(&kd, key, rows[i].len, rows[i].mode);
		else if (rows[i].kind == 2) {
			/* A good key, reached through a link. */
			(void)snprintf(real, sizeof(real), "%s/real",
			    kd.dir);
			cr_assert_eq(symlink("real", kd.path), 0);
			(void)snprintf(kd.path, sizeof(kd.path), "%s", real);
			keydir_write(&kd, key, rows[i].len, rows[i].mode);
			(void)snprintf(kd.path, sizeof(kd.path), "%s/%s",
			    kd.dir, SEAL_KEYFILE);
		}
		err[0] = '\0';
		rc = seal_load(&s, kd.dir, err, sizeof(err));
		cr_expect_eq(rc, rows[i].rc, "row %zu (%04o): %s", i,
		    (unsigned)rows[i].mode, err);
		if (rc == 0)
			seal_clear(&s);
		else {
			(void)snprintf(want, sizeof(want), "%s/%s: %s", kd.dir,
			    SEAL_KEYFILE, rows[i].reason);
			cr_expect_str_eq(err, want, "row %zu", i);
		}
		if (rows[i].kind == 2)
			(void)unlink(real);
		keydir_remove(&kd);
	}
}

/* The key ccbroker init makes: 64 random bytes, 0600, never replaced. */
Test(seal, keygen_writes_a_private_key_once)
{
	struct keydir	 kd;
	struct seal	 s;
	struct stat	 sb;
	char		 err[256], want[384];
	uint8_t		 sealed[5 + SEAL_OVERHEAD], back[5];

	keydir_new(&kd);
	cr_assert_eq(seal_keygen(kd.dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(kd.path, &sb), 0);
	cr_expect_eq(sb.st_mode & 07777, 0600, "%04o",
	    (unsigned)(sb.st_mode & 07777));
	cr_expect_eq(sb.st_size, SEAL_KEYLEN);

	cr_expect_eq(seal_keygen(kd.dir, err, sizeof(err)), -1);
	(void)snprintf(want, sizeof(want), "%s: File exists", kd.path);
	cr_expect_str_eq(err, want);
	cr_expect_eq(stat(kd.path, &sb), 0);
	cr_expect_eq(sb.st_size, SEAL_KEYLEN);

	cr_assert_eq(seal_load(&s, kd.dir, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(seal_seal(&s, "id", 2, "hello", 5, sealed), 0);
	cr_expect_eq(seal_open(&s, "id", 2, sealed, sizeof(sealed), back), 0);
	cr_expect_eq(memcmp(back, "hello", 5), 0);
	seal_clear(&s);
	keydir_remove(&kd);
}
