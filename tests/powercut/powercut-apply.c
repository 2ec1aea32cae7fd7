/*
 * powercut-apply - after the process under libpowercut.so was killed, make
 * its directory what the disk would hold had the power been cut at that
 * moment: every change that no sync made durable is undone.
 *
 *	powercut-apply [-n] JOURNAL
 *
 * -n reports what would be undone and changes nothing.  One line per file
 * on stdout.  Exit status 0 when applied, 1 on a usage or I/O error or a
 * corrupt journal, 2 when the journal says it cannot be trusted (a shared
 * writable mapping of a journalled file).
 *
 * The journal is walked backwards.  A file's records before its last
 * PC_SYNC are durable and kept.  After it, each PC_WRITE is undone (its old
 * bytes written back, bytes past the old end zeroed) unless it went through
 * an O_DSYNC fd and returned (PC_DONE): those are kept, and no undo of an
 * earlier write may overwrite them.  PC_TRUNC is undone the same way.  At
 * the end each file is cut back to its size at the last sync (grown only by
 * durable writes since), and a file created since its last sync, with no
 * durable write, is removed.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "powercut.h"

struct rec {
	struct pc_rec		 h;	/* copied: the journal is unaligned */
	const uint8_t		*extra;
	int			 path;	/* index into paths */
};

struct range {
	uint64_t	lo, hi;		/* [lo, hi) */
};

struct path {
	char		*name;
	long		 last_sync;	/* index of the last PC_SYNC, or -1 */
	long		 first_change;	/* first PC_WRITE/PC_TRUNC after it */
	bool		 created;	/* PC_CREATE after the last sync */
	uint64_t	 durable_end;	/* end of the furthest durable write */
	struct range	*keep;		/* durable writes since the sync */
	size_t		 nkeep, capkeep;
	int		 fd;
	size_t		 undone, undone_bytes, kept;
};

struct fileid {
	uint32_t	pid, file;
	int		path;
};

static struct rec	*recs;
static size_t		 nrecs;
static struct path	*paths;
static size_t		 npaths;
static struct fileid	*ids;
static size_t		 nids;
static uint64_t		*done;		/* (pid << 32 | seq) of PC_DONE */
static size_t		 ndone;
static bool		 dry_run;

static void	 usage(void) __attribute__((noreturn));
static void	 die(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
static uint8_t	*slurp(const char *, size_t *);
static void	*grow(void *, size_t *cap, size_t n, size_t size);
static int	 path_of(uint32_t pid, uint32_t file);
static int	 path_add(uint32_t pid, uint32_t file, const char *, size_t);
static int	 cmp_u64(const void *, const void *);
static bool	 is_done(uint32_t pid, uint64_t seq);
static void	 put(struct path *, uint64_t off, const uint8_t *buf,
		    uint64_t len, size_t k);
static int	 path_fd(struct path *);

static void
usage(void)
{
	fprintf(stderr, "usage: powercut-apply [-n] JOURNAL\n");
	exit(1);
}

static void
die(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "powercut-apply: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	uint8_t		*buf;
	size_t		 got = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &sb) == -1)
		die("%s: %s", path, strerror(errno));
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL)
		die("out of memory");
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: %s", path, n == 0 ? "short read" :
			    strerror(errno));
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static void *
grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 64;
	if ((p = realloc(p, *cap * size)) == NULL)
		die("out of memory");
	return p;
}

static int
path_of(uint32_t pid, uint32_t file)
{
	size_t	i;

	for (i = 0; i < nids; i++)
		if (ids[i].pid == pid && ids[i].file == file)
			return ids[i].path;
	return -1;
}

/* A PC_FILE record: the same path from any process is the same file. */
static int
path_add(uint32_t pid, uint32_t file, const char *name, size_t len)
{
	static size_t	capp, capi;
	size_t		i;

	for (i = 0; i < npaths; i++)
		if (strlen(paths[i].name) == len &&
		    memcmp(paths[i].name, name, len) == 0)
			break;
	if (i == npaths) {
		paths = grow(paths, &capp, npaths, sizeof(*paths));
		memset(&paths[i], 0, sizeof(paths[i]));
		if ((paths[i].name = strndup(name, len)) == NULL)
			die("out of memory");
		paths[i].last_sync = -1;
		paths[i].first_change = -1;
		paths[i].fd = -1;
		npaths++;
	}
	ids = grow(ids, &capi, nids, sizeof(*ids));
	ids[nids].pid = pid;
	ids[nids].file = file;
	ids[nids++].path = (int)i;
	return (int)i;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool
is_done(uint32_t pid, uint64_t seq)
{
	uint64_t key = (uint64_t)pid << 32 | (seq & 0xffffffffu);

	return bsearch(&key, done, ndone, sizeof(*done), cmp_u64) != NULL;
}

/* The file to write back into; -1 when the process removed it. */
static int
path_fd(struct path *p)
{
	if (p->fd == -1 && (p->fd = open(p->name, O_WRONLY)) == -1 &&
	    errno != ENOENT)
		die("%s: %s", p->name, strerror(errno));
	return p->fd;
}

/*
 * Write buf (NULL: zeros) at off, except where a durable write since the
 * last sync lies: keep[k..] are the ranges still to cut out.
 */
static void
put(struct path *p, uint64_t off, const uint8_t *buf, uint64_t len, size_t k)
{
	static const uint8_t	zeros[65536];
	uint64_t		end = off + len;

	if (len == 0)
		return;
	for (; k < p->nkeep; k++) {
		const struct range *r = &p->keep[k];

		if (r->hi <= off || r->lo >= end)
			continue;
		if (r->lo > off)
			put(p, off, buf, r->lo - off, k + 1);
		if (r->hi < end)
			put(p, r->hi, buf ? buf + (r->hi - off) : NULL,
			    end - r->hi, k + 1);
		return;
	}
	if (dry_run || path_fd(p) == -1)
		return;
	while (len > 0) {
		size_t	n = buf ? len : (len < sizeof(zeros) ? len :
		    sizeof(zeros));
		ssize_t	w = pwrite(path_fd(p), buf ? buf : zeros, n,
		    (off_t)off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			die("%s: %s", p->name, strerror(errno));
		off += (uint64_t)w;
		len -= (uint64_t)w;
		if (buf)
			buf += w;
	}
}

int
main(int argc, char **argv)
{
	uint8_t		*j;
	size_t		 jlen, off = 0, capr = 0, capd = 0, i, tail = 0;
	long		 k;
	int		 c, status = 0;

	while ((c = getopt(argc, argv, "n")) != -1) {
		if (c == 'n')
			dry_run = true;
		else
			usage();
	}
	if (optind != argc - 1)
		usage();
	j = slurp(argv[optind], &jlen);

	/* Parse; a record cut short by the kill ends the journal. */
	while (off < jlen) {
		struct pc_rec	hc;

		if (jlen - off < sizeof(hc)) {
			tail = jlen - off;
			break;
		}
		memcpy(&hc, j + off, sizeof(hc));
		if (hc.magic != PC_MAGIC || hc.type < PC_FILE ||
		    hc.type > PC_UNSUPPORTED)
			die("%s: corrupt record at byte %zu", argv[optind], off);
		if (hc.nextra > jlen - off - sizeof(hc)) {
			tail = jlen - off;
			break;
		}
		recs = grow(recs, &capr, nrecs, sizeof(*recs));
		recs[nrecs].h = hc;
		recs[nrecs].extra = j + off + sizeof(hc);
		if (hc.type == PC_FILE)
			recs[nrecs].path = path_add(hc.pid, hc.file,
			    (const char *)recs[nrecs].extra, hc.nextra);
		else if ((recs[nrecs].path = path_of(hc.pid, hc.file)) == -1)
			die("%s: record at byte %zu names no file",
			    argv[optind], off);
		if (hc.type == PC_DONE) {
			done = grow(done, &capd, ndone, sizeof(*done));
			done[ndone++] = (uint64_t)hc.pid << 32 |
			    (hc.off & 0xffffffffu);
		}
		if (hc.type == PC_UNSUPPORTED) {
			printf("powercut-apply: cannot be applied: %.*s\n",
			    (int)hc.nextra, (const char *)recs[nrecs].extra);
			status = 2;
		}
		nrecs++;
		off += sizeof(hc) + hc.nextra;
	}
	if (status != 0)
		return status;
	qsort(done, ndone, sizeof(*done), cmp_u64);

	for (i = 0; i < nrecs; i++)
		if (recs[i].h.type == PC_SYNC)
			paths[recs[i].path].last_sync = (long)i;
	for (i = 0; i < nrecs; i++) {
		struct path *p = &paths[recs[i].path];

		if ((long)i > p->last_sync && p->first_change == -1 &&
		    (recs[i].h.type == PC_WRITE || recs[i].h.type == PC_TRUNC))
			p->first_change = (long)i;
	}

	/* Backwards: the newest change first. */
	for (k = (long)nrecs - 1; k >= 0; k--) {
		const struct pc_rec	*h = &recs[k].h;
		struct path		*p = &paths[recs[k].path];
		uint64_t		 end = h->off + h->len;

		if (k <= p->last_sync)
			continue;
		switch (h->type) {
		case PC_CREATE:
			p->created = true;
			break;
		case PC_WRITE:
			if ((h->flags & PC_F_DSYNC) && is_done(h->pid, h->seq)) {
				p->keep = grow(p->keep, &p->capkeep, p->nkeep,
				    sizeof(*p->keep));
				p->keep[p->nkeep].lo = h->off;
				p->keep[p->nkeep++].hi = end;
				if (end > p->durable_end)
					p->durable_end = end;
				p->kept++;
				break;
			}
			put(p, h->off, recs[k].extra, h->nextra, 0);
			if (end > h->off + h->nextra)
				put(p, h->off + h->nextra, NULL,
				    end - h->off - h->nextra, 0);
			p->undone++;
			p->undone_bytes += h->len;
			break;
		case PC_TRUNC:
			put(p, h->off, recs[k].extra, h->nextra, 0);
			p->undone++;
			break;
		default:
			break;
		}
	}

	for (i = 0; i < npaths; i++) {
		struct path	*p = &paths[i];
		struct stat	 sb;
		uint64_t	 size;
		bool		 gone;

		if (stat(p->name, &sb) == -1) {
			if (errno != ENOENT)
				die("%s: %s", p->name, strerror(errno));
			printf("powercut-apply: %s: gone (removed by the "
			    "process; not modelled)\n", p->name);
			continue;
		}
		gone = p->created && p->kept == 0;
		size = p->first_change == -1 ? (uint64_t)sb.st_size :
		    recs[p->first_change].h.old_size;
		if (p->durable_end > size)
			size = p->durable_end;
		if (!dry_run && gone && unlink(p->name) == -1)
			die("%s: %s", p->name, strerror(errno));
		if (!dry_run && !gone && size != (uint64_t)sb.st_size &&
		    truncate(p->name, (off_t)size) == -1)
			die("%s: %s", p->name, strerror(errno));
		printf("powercut-apply: %s: %zu change%s undone (%zu bytes),"
		    " %zu O_DSYNC write%s kept, size %lld -> %lld%s%s\n",
		    p->name, p->undone, p->undone == 1 ? "" : "s",
		    p->undone_bytes, p->kept, p->kept == 1 ? "" : "s",
		    (long long)sb.st_size, gone ? 0LL : (long long)size,
		    gone ? ", removed (created since its last sync)" : "",
		    p->last_sync == -1 ? ", no fsync" : "");
		if (p->fd != -1 && close(p->fd) == -1)
			die("%s: %s", p->name, strerror(errno));
	}
	printf("powercut-apply: %zu records, %zu files%s%s\n", nrecs, npaths,
	    tail ? ", a record cut short by the kill ignored" : "",
	    dry_run ? " (dry run: nothing changed)" : "");
	return 0;
}
