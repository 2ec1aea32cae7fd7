/*
 * bytes.h - the small byte-level primitives every module shares: 64-bit
 * big-endian integers (keys that sort in numeric order) and hex text.
 */
#ifndef CC_BYTES_H
#define CC_BYTES_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Write v big-endian into the 8 bytes at p (no alignment needed). */
static inline void
be64_put(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

/* The big-endian 64-bit integer at p. */
static inline uint64_t
be64_get(const uint8_t *p)
{
	uint64_t	v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

/* Lower-case hex of n bytes into out, which holds 2 * n + 1 bytes;
 * returns out. */
char	*cc_hex(const uint8_t *p, size_t n, char *out);

#endif /* CC_BYTES_H */
