/*
 * store_pages.c - LMDB's file, page by page: what LMDB trusts and never
 * checks.
 *
 * LMDB reads its pages as it finds them: a flipped bit in a page header's
 * bounds, a node's sizes or flags, or a branch's child page number is
 * followed as it is.  Reads may still work (the damage shows only when a
 * write moves nodes by the wrong sizes, or frees overflow pages that are
 * not), or send LMDB past the end of the file.  No tag can show it: it is
 * below the values.  So the check walks every tree of the snapshot it
 * reads, from the roots of the meta page LMDB opened, as LMDB's own
 * mdb_audit and `mdb_stat` do, and checks each page: its number where it
 * lies, its kind, its bounds and nodes packed within them, keys in order
 * and within the bounds its parent gives, every leaf at the tree's depth,
 * overflow pages where a value says, each page met once, and every page
 * of the file in a tree, on the free list or a meta page.
 *
 * LMDB's file format of 0.9, little-endian words of this machine (a store
 * is not portable across architectures, store.h): page header (page
 * number, pad, flags, lower and upper bounds or, on overflow pages, their
 * count), then 16-bit offsets of the nodes; a node is two 16-bit halves
 * of its data size (in a branch, with the flags, its child's page number),
 * flags, key size, key, data.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

#define P_BRANCH	0x01
#define P_LEAF		0x02
#define P_OVERFLOW	0x04
#define P_META		0x08
#define P_DIRTY		0x10
#define P_SUBP		0x40
#define F_BIGDATA	0x01
#define F_SUBDATA	0x02
#define F_DUPDATA	0x04
#define DB_DUPSORT	0x04
#define DB_INTEGERKEY	0x08
#define PAGE_HDR	(sizeof(size_t) + 8)
#define NODE_HDR	8
#define DBREC_LEN	(4 + 2 + 2 + 5 * sizeof(size_t))
#define META_DBS	(PAGE_HDR + 4 + 4 + sizeof(void *) + sizeof(size_t))
#define DEPTH_MAX	32
#define FAULTS_MAX	8		/* said one by one, per check */

enum seen { UNSEEN, IN_TREE, ON_FREELIST };

/* A database's record: in a meta page, the main database, a DUPSORT key. */
struct dbrec {
	uint16_t	flags;
	uint16_t	depth;
	size_t		branch, leaf, overflow, entries, root;
};

struct walk {
	const uint8_t	*map;
	size_t		 psize, npages;
	uint8_t		*seen;		/* enum seen, per page */
	int		 faults;
	void		(*report)(const char *, void *);
	void		*arg;
};

/* What one tree's walk counts, against its record. */
struct count {
	size_t		branch, leaf, overflow, entries;
};

static void	fault(struct walk *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	dbrec_read(const uint8_t *, struct dbrec *);
static int	keycmp(const uint8_t *, size_t, const uint8_t *, size_t,
		    bool intkey);
static bool	page_take(struct walk *, size_t pgno, const char *);
static bool	nodes_sound(struct walk *, const uint8_t *pg, size_t len,
		    bool branch, const char *);
static void	walk_tree(struct walk *, const char *, const struct dbrec *,
		    bool main, bool freelist);
static void	walk_page(struct walk *, const char *, const struct dbrec *,
		    size_t pgno, unsigned level, const uint8_t *lo,
		    size_t lolen, const uint8_t *hi, size_t hilen, bool main,
		    bool freelist, struct count *);
static void	leaf_node(struct walk *, const char *, const struct dbrec *,
		    const uint8_t *node, bool main, bool freelist,
		    struct count *);
static void	sub_page(struct walk *, const char *, const uint8_t *,
		    size_t, struct count *);

static void
fault(struct walk *w, const char *fmt, ...)
{
	char	line[256];
	int	n;
	va_list	ap;

	if (w->faults++ >= FAULTS_MAX)
		return;
	n = snprintf(line, sizeof(line), "LMDB's pages: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	w->report(line, w->arg);
}

static void
dbrec_read(const uint8_t *p, struct dbrec *d)
{
	memcpy(&d->flags, p + 4, 2);
	memcpy(&d->depth, p + 6, 2);
	memcpy(&d->branch, p + 8, sizeof(size_t));
	memcpy(&d->leaf, p + 8 + sizeof(size_t), sizeof(size_t));
	memcpy(&d->overflow, p + 8 + 2 * sizeof(size_t), sizeof(size_t));
	memcpy(&d->entries, p + 8 + 3 * sizeof(size_t), sizeof(size_t));
	memcpy(&d->root, p + 8 + 4 * sizeof(size_t), sizeof(size_t));
}

/* LMDB's default order (bytes, then length), or native words. */
static int
keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    bool intkey)
{
	size_t	x, y;
	int	c;

	if (intkey && alen == sizeof(size_t) && blen == sizeof(size_t)) {
		memcpy(&x, a, sizeof(x));
		memcpy(&y, b, sizeof(y));
		return x < y ? -1 : x > y;
	}
	if ((c = memcmp(a, b, alen < blen ? alen : blen)) != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* A page of the walk: in the file, not a meta page, met once. */
static bool
page_take(struct walk *w, size_t pgno, const char *db)
{
	if (pgno < 2 || pgno >= w->npages) {
		fault(w, "%s: a page number past the file (%zu)", db, pgno);
		return false;
	}
	if (w->seen[pgno] != UNSEEN) {
		fault(w, "%s: page %zu met twice", db, pgno);
		return false;
	}
	w->seen[pgno] = IN_TREE;
	return true;
}

/*
 * A page's (or sub-page's, len bytes) bounds and nodes: lower after the
 * header and the offsets, upper below the end, every node within it and
 * the nodes packed from upper to the end, as LMDB keeps them.
 */
static bool
nodes_sound(struct walk *w, const uint8_t *pg, size_t len, bool branch,
    const char *db)
{
	uint16_t	lower, upper, off, lo, hi, flags, ksize;
	size_t		n, i, sz, used = 0;

	memcpy(&lower, pg + PAGE_HDR - 4, 2);
	memcpy(&upper, pg + PAGE_HDR - 2, 2);
	if (lower < PAGE_HDR + 2 || (lower - PAGE_HDR) % 2 != 0 ||
	    upper < lower || upper > len) {
		fault(w, "%s: a page's bounds (%u, %u)", db, lower, upper);
		return false;
	}
	n = (lower - PAGE_HDR) / 2;
	for (i = 0; i < n; i++) {
		memcpy(&off, pg + PAGE_HDR + 2 * i, 2);
		if (off < upper || off % 2 != 0 ||
		    (size_t)off + NODE_HDR > len) {
			fault(w, "%s: a node's place in its page", db);
			return false;
		}
		memcpy(&lo, pg + off, 2);
		memcpy(&hi, pg + off + 2, 2);
		memcpy(&flags, pg + off + 4, 2);
		memcpy(&ksize, pg + off + 6, 2);
		sz = NODE_HDR + ksize;
		if (!branch)
			sz += flags & F_BIGDATA ? sizeof(size_t) :
			    (size_t)lo | (size_t)hi << 16;
		if ((size_t)off + sz > len) {
			fault(w, "%s: a node runs past its page", db);
			return false;
		}
		used += sz + (sz & 1);
	}
	if (used != len - upper) {
		fault(w, "%s: a page's nodes (%zu bytes) do not fill it from "
		    "its upper bound (%zu)", db, used, len - upper);
		return false;
	}
	return true;
}

static void
walk_tree(struct walk *w, const char *db, const struct dbrec *d, bool main,
    bool freelist)
{
	struct count	c;
	int		faults;

	memset(&c, 0, sizeof(c));
	if (d->root == SIZE_MAX) {
		if (d->depth != 0 || d->entries != 0 || d->branch != 0 ||
		    d->leaf != 0 || d->overflow != 0)
			fault(w, "%s: the record of an empty database", db);
		return;
	}
	if (d->depth < 1 || d->depth > DEPTH_MAX) {
		fault(w, "%s: a depth of %u", db, d->depth);
		return;
	}
	faults = w->faults;
	walk_page(w, db, d, d->root, 1, NULL, 0, NULL, 0, main, freelist, &c);
	/* A page not walked is said already: its counts say nothing. */
	if (w->faults == faults && (c.branch != d->branch ||
	    c.leaf != d->leaf ||
	    c.overflow != d->overflow || c.entries != d->entries))
		fault(w, "%s: %zu branch, %zu leaf, %zu overflow pages and %zu "
		    "entries, but its record says %zu, %zu, %zu and %zu", db,
		    c.branch, c.leaf, c.overflow, c.entries, d->branch,
		    d->leaf, d->overflow, d->entries);
}

/*
 * One page of a tree at `level` (the root is 1), whose keys lie in
 * [lo, hi) (NULL: unbounded), as its parent's keys say.
 */
static void
walk_page(struct walk *w, const char *db, const struct dbrec *d,
    size_t pgno, unsigned level, const uint8_t *lo, size_t lolen,
    const uint8_t *hi, size_t hilen, bool main, bool freelist,
    struct count *c)
{
	const uint8_t	*pg, *node, *key, *prev = NULL, *nkey;
	uint16_t	 flags, lower, off, nflags, ksize, nks, a, b;
	size_t		 stored, n, i, prevlen = 0, child;
	bool		 intkey = (d->flags & DB_INTEGERKEY) != 0;

	if (!page_take(w, pgno, db))
		return;
	pg = w->map + pgno * w->psize;
	memcpy(&stored, pg, sizeof(stored));
	memcpy(&flags, pg + sizeof(size_t) + 2, 2);
	if (stored != pgno) {
		fault(w, "%s: page %zu says it is page %zu", db, pgno, stored);
		return;
	}
	if (flags != (level < d->depth ? P_BRANCH : P_LEAF)) {
		fault(w, "%s: page %zu is of kind %#x, not a %s", db, pgno,
		    flags, level < d->depth ? "branch" : "leaf");
		return;
	}
	if (!nodes_sound(w, pg, w->psize, flags == P_BRANCH, db))
		return;
	memcpy(&lower, pg + PAGE_HDR - 4, 2);
	n = (lower - PAGE_HDR) / 2;
	if (flags == P_BRANCH)
		c->branch++;
	else
		c->leaf++;
	for (i = 0; i < n; i++) {
		memcpy(&off, pg + PAGE_HDR + 2 * i, 2);
		node = pg + off;
		memcpy(&ksize, node + 6, 2);
		key = node + NODE_HDR;
		/* A branch's first key is empty: its child starts at lo. */
		if (!(flags == P_BRANCH && i == 0)) {
			if ((prev != NULL && keycmp(prev, prevlen, key, ksize,
			    intkey) >= 0) ||
			    (lo != NULL && keycmp(lo, lolen, key, ksize,
			    intkey) > 0) ||
			    (hi != NULL && keycmp(key, ksize, hi, hilen,
			    intkey) >= 0)) {
				fault(w, "%s: keys out of order in page %zu",
				    db, pgno);
				return;
			}
			prev = key;
			prevlen = ksize;
		}
		if (flags == P_LEAF) {
			leaf_node(w, db, d, node, main, freelist, c);
			continue;
		}
		memcpy(&a, node, 2);
		memcpy(&b, node + 2, 2);
		memcpy(&nflags, node + 4, 2);
		child = (size_t)a | (size_t)b << 16 | (size_t)nflags << 32;
		nkey = NULL;
		nks = 0;
		if (i + 1 < n) {
			memcpy(&off, pg + PAGE_HDR + 2 * (i + 1), 2);
			memcpy(&nks, pg + off + 6, 2);
			nkey = pg + off + NODE_HDR;
		}
		walk_page(w, db, d, child, level + 1,
		    i == 0 ? lo : key, i == 0 ? lolen : ksize,
		    nkey != NULL ? nkey : hi, nkey != NULL ? nks : hilen,
		    main, freelist, c);
	}
}

/* A key's few duplicates, kept in a page inside its node. */
static void
sub_page(struct walk *w, const char *db, const uint8_t *sub, size_t len,
    struct count *c)
{
	const uint8_t	*prev = NULL, *node;
	uint16_t	 lower, off, ksize, prevlen = 0, flags;
	size_t		 n, i;

	if (!nodes_sound(w, sub, len, false, db))
		return;
	memcpy(&lower, sub + PAGE_HDR - 4, 2);
	n = (lower - PAGE_HDR) / 2;
	for (i = 0; i < n; i++) {
		memcpy(&off, sub + PAGE_HDR + 2 * i, 2);
		node = sub + off;
		memcpy(&flags, node + 4, 2);
		memcpy(&ksize, node + 6, 2);
		if (flags != 0 || node[0] != 0 || node[1] != 0 ||
		    node[2] != 0 || node[3] != 0 ||
		    (prev != NULL && keycmp(prev, prevlen, node + NODE_HDR,
		    ksize, false) >= 0)) {
			fault(w, "%s: a key's duplicates", db);
			return;
		}
		prev = node + NODE_HDR;
		prevlen = ksize;
	}
	c->entries += n;
}

/* One node of a leaf: its value where it says, sub-databases walked. */
static void
leaf_node(struct walk *w, const char *db, const struct dbrec *d,
    const uint8_t *node, bool main, bool freelist, struct count *c)
{
	const uint8_t	*data, *ov;
	uint16_t	 a, b, nflags, ksize, sflags;
	size_t		 dsize, opg, pages, stored, j, pg, prevpg;
	uint32_t	 npg;
	struct dbrec	 sd;
	char		 name[80];
	bool		 ok;

	memcpy(&a, node, 2);
	memcpy(&b, node + 2, 2);
	memcpy(&nflags, node + 4, 2);
	memcpy(&ksize, node + 6, 2);
	dsize = (size_t)a | (size_t)b << 16;
	data = node + NODE_HDR + ksize;
	/* The flags each kind of database has. */
	if (main)
		ok = nflags == F_SUBDATA;
	else if (d->flags & DB_DUPSORT)
		ok = nflags == 0 || nflags == F_DUPDATA ||
		    nflags == (F_SUBDATA | F_DUPDATA);
	else
		ok = nflags == 0 || nflags == F_BIGDATA;
	if (!ok) {
		fault(w, "%s: a node's flags (%#x)", db, nflags);
		return;
	}
	if (nflags & F_BIGDATA) {
		memcpy(&opg, data, sizeof(opg));
		if (opg < 2 || opg >= w->npages) {
			fault(w, "%s: a value's overflow page past the file",
			    db);
			return;
		}
		ov = w->map + opg * w->psize;
		memcpy(&stored, ov, sizeof(stored));
		memcpy(&sflags, ov + sizeof(size_t) + 2, 2);
		memcpy(&npg, ov + sizeof(size_t) + 4, 4);
		pages = npg;
		if (stored != opg || sflags != P_OVERFLOW ||
		    pages != (PAGE_HDR - 1 + dsize) / w->psize + 1 ||
		    opg + pages > w->npages) {
			fault(w, "%s: a value's overflow pages", db);
			return;
		}
		for (j = 0; j < pages; j++)
			if (!page_take(w, opg + j, db))
				return;
		c->overflow += pages;
		data = ov + PAGE_HDR;
	}
	if (freelist) {
		/* A list of free pages: count, then numbers, descending. */
		if (dsize < sizeof(size_t) || dsize % sizeof(size_t) != 0) {
			fault(w, "free list: a list's length");
			return;
		}
		memcpy(&pages, data, sizeof(pages));
		if (pages != dsize / sizeof(size_t) - 1) {
			fault(w, "free list: a list's count");
			return;
		}
		for (j = 1, prevpg = SIZE_MAX; j <= pages; j++, prevpg = pg) {
			memcpy(&pg, data + j * sizeof(pg), sizeof(pg));
			if (pg < 2 || pg >= w->npages || pg >= prevpg) {
				fault(w, "free list: a page number (%zu)", pg);
				return;
			}
			if (w->seen[pg] != UNSEEN) {
				fault(w, "free list: page %zu %s", pg,
				    w->seen[pg] == IN_TREE ? "is in use" :
				    "is listed twice");
				return;
			}
			w->seen[pg] = ON_FREELIST;
		}
		c->entries++;
		return;
	}
	if (nflags & F_SUBDATA) {
		/* A named database (main), or a key's many duplicates. */
		if (dsize != DBREC_LEN) {
			fault(w, "%s: a database record's length", db);
			return;
		}
		dbrec_read(data, &sd);
		if (main) {
			snprintf(name, sizeof(name), "%.*s", ksize > 64 ? 64 :
			    (int)ksize, (const char *)node + NODE_HDR);
			if ((sd.flags & ~DB_DUPSORT) != 0) {
				fault(w, "%s: its record's flags", name);
				return;
			}
			walk_tree(w, name, &sd, false, false);
			c->entries++;
			return;
		}
		if (sd.flags != 0) {
			fault(w, "%s: a key's duplicates' flags", db);
			return;
		}
		walk_tree(w, db, &sd, false, false);
		c->entries += sd.entries;
		return;
	}
	if (nflags & F_DUPDATA) {
		if (dsize < PAGE_HDR + 2) {
			fault(w, "%s: a key's duplicates' page", db);
			return;
		}
		/* (LMDB leaves its "dirty" mark on these.) */
		memcpy(&sflags, data + sizeof(size_t) + 2, 2);
		if ((sflags & ~P_DIRTY) != (P_LEAF | P_SUBP)) {
			fault(w, "%s: a key's duplicates' page (kind %#x)", db,
			    sflags);
			return;
		}
		sub_page(w, db, data, dsize, c);
		return;
	}
	c->entries++;
}

int
store_pages_check(struct store *st, MDB_txn *txn,
    void (*report)(const char *, void *), void *arg)
{
	mdb_filehandle_t	 fd;
	struct stat		 sb;
	struct walk		 w;
	struct dbrec		 freedb, maindb;
	const uint8_t		*meta = NULL;
	uint8_t			*map;
	size_t			 snap, id, last, unseen = 0, i, len;

	memset(&w, 0, sizeof(w));
	w.psize = st->psize;
	w.report = report;
	w.arg = arg;
	/* The snapshot of txn: a writer's is the last commit. */
	snap = mdb_txn_id(txn) - (st->readonly ? 0 : 1);
	if (mdb_env_get_fd(st->env, &fd) != 0 || fstat(fd, &sb) == -1 ||
	    (size_t)sb.st_size < 2 * w.psize)
		return -1;
	len = (size_t)sb.st_size;
	if ((map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED)
		return -1;
	for (i = 0; i < 2 && meta == NULL; i++) {
		memcpy(&id, map + i * w.psize + META_DBS + 2 * DBREC_LEN +
		    sizeof(size_t), sizeof(id));
		if (id == snap)
			meta = map + i * w.psize;
	}
	if (meta == NULL) {
		/* store_open checked the meta pages: a commit meanwhile. */
		munmap(map, len);
		return 0;
	}
	memcpy(&last, meta + META_DBS + 2 * DBREC_LEN, sizeof(last));
	if (last + 1 > len / w.psize) {
		fault(&w, "the last page (%zu) past the end of the file", last);
		munmap(map, len);
		return w.faults;
	}
	w.map = map;
	w.npages = last + 1;
	if ((w.seen = calloc(w.npages, 1)) == NULL) {
		munmap(map, len);
		return -1;
	}
	w.seen[0] = w.seen[1] = IN_TREE;
	dbrec_read(meta + META_DBS, &freedb);
	dbrec_read(meta + META_DBS + DBREC_LEN, &maindb);
	walk_tree(&w, "LMDB's main database", &maindb, true, false);
	walk_tree(&w, "free list", &freedb, false, true);
	/* Every page in a tree, on the free list, or a meta page. */
	if (w.faults == 0) {
		for (i = 2; i < w.npages; i++)
			unseen += w.seen[i] == UNSEEN;
		if (unseen > 0)
			fault(&w, "%zu pages in no tree and not free", unseen);
	}
	free(w.seen);
	munmap(map, len);
	return w.faults;
}
