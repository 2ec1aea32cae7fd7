/*
 * spool.c - the agent's folders, atomic writes and the watch on out/.
 *
 * Everything goes through descriptors of the folders (openat, renameat),
 * so a folder renamed under us is never half-used.  tmp/ lies inside the
 * spool, on the same file system, so rename(2) is atomic.
 */
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

static const char *const spool_names[SP__COUNT] = {
	[SP_OUT] = "out",
	[SP_SENT] = "sent",
	[SP_REJECTED] = "rejected",
	[SP_IN] = "in",
	[SP_RECEIPTS] = "receipts",
	[SP_NOTICES] = "notices",
	[SP_TMP] = "tmp",
};

static int	write_all(int, const void *, size_t);
static int	file_cmp(const void *, const void *);
static bool	name_free(struct spool *, enum spool_dir, const char *,
		    const char *);

const char *
spool_dirname(enum spool_dir d)
{
	return spool_names[d];
}

int
spool_open(struct spool *sp, const char *root, char *err, size_t errlen)
{
	int	i, rootfd = -1;

	memset(sp, 0, sizeof(*sp));
	for (i = 0; i < SP__COUNT; i++)
		sp->dfd[i] = -1;
	sp->ino = -1;
	(void)snprintf(sp->root, sizeof(sp->root), "%s", root);
	if (mkdir(root, 0770) == -1 && errno != EEXIST)
		goto fail;
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	for (i = 0; i < SP__COUNT; i++) {
		if (mkdirat(rootfd, spool_names[i], i == SP_TMP ? 0700 :
		    0770) == -1 && errno != EEXIST)
			goto faildir;
		if ((sp->dfd[i] = openat(rootfd, spool_names[i],
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
			goto faildir;
	}
	(void)close(rootfd);
	return 0;
faildir:
	(void)snprintf(err, errlen, "%s/%s: %s", root, spool_names[i],
	    strerror(errno));
	(void)close(rootfd);
	spool_close(sp);
	return -1;
fail:
	(void)snprintf(err, errlen, "%s: %s", root, strerror(errno));
	spool_close(sp);
	return -1;
}

void
spool_close(struct spool *sp)
{
	int	i;

	for (i = 0; i < SP__COUNT; i++)
		if (sp->dfd[i] != -1) {
			(void)close(sp->dfd[i]);
			sp->dfd[i] = -1;
		}
	if (sp->ino != -1) {
		(void)close(sp->ino);
		sp->ino = -1;
	}
}

bool
spool_json_name(const char *name)
{
	size_t	len = strlen(name);

	return len > 5 && len < 256 && name[0] != '.' &&
	    strchr(name, '/') == NULL &&
	    strcmp(name + len - 5, ".json") == 0;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
spool_write_tmp(struct spool *sp, const char *tmpname, const void *data,
    size_t len)
{
	int	fd, saved;

	if ((fd = openat(sp->dfd[SP_TMP], tmpname, O_WRONLY | O_CREAT |
	    O_TRUNC | O_CLOEXEC, 0640)) == -1)
		return -1;
	if (write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		(void)close(fd);
		(void)unlinkat(sp->dfd[SP_TMP], tmpname, 0);
		errno = saved;
		return -1;
	}
	return close(fd);
}

int
spool_commit(struct spool *sp, const char *tmpname, enum spool_dir d,
    const char *name)
{
	if (renameat(sp->dfd[SP_TMP], tmpname, sp->dfd[d], name) == -1)
		return -1;
	return fsync(sp->dfd[d]);
}

int
spool_write(struct spool *sp, enum spool_dir d, const char *name,
    const void *data, size_t len)
{
	static unsigned	 counter;
	char		 tmp[64];

	(void)snprintf(tmp, sizeof(tmp), "w.%ld.%u", (long)getpid(), counter++);
	if (spool_write_tmp(sp, tmp, data, len) == -1)
		return -1;
	if (spool_commit(sp, tmp, d, name) == -1) {
		int saved = errno;

		(void)unlinkat(sp->dfd[SP_TMP], tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

bool
spool_exists(struct spool *sp, enum spool_dir d, const char *name)
{
	struct stat	st;

	return fstatat(sp->dfd[d], name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int
spool_move(struct spool *sp, enum spool_dir from, const char *name,
    enum spool_dir to, const char *newname)
{
	if (renameat(sp->dfd[from], name, sp->dfd[to], newname) == -1)
		return -1;
	return fsync(sp->dfd[to]);
}

int
spool_unlink(struct spool *sp, enum spool_dir d, const char *name)
{
	return unlinkat(sp->dfd[d], name, 0);
}

int
spool_read(struct spool *sp, enum spool_dir d, const char *name, size_t max,
    char **data, size_t *len)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd, saved;

	*data = NULL;
	*len = 0;
	/*
	 * O_NONBLOCK: a FIFO renamed into out/ would otherwise hold the
	 * daemon in open(2) until someone wrote to it; it is refused below
	 * as not a regular file.  Regular files ignore the flag.
	 */
	if ((fd = openat(sp->dfd[d], name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		goto fail;
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	(void)close(fd);
	*data = buf;
	*len = off;
	return 0;
fail:
	saved = errno;
	free(buf);
	(void)close(fd);
	errno = saved;
	return -1;
}

static int
file_cmp(const void *a, const void *b)
{
	const struct spool_file	*x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
spool_scan(struct spool *sp, enum spool_dir d, int min_age_ms,
    struct spool_file **files)
{
	struct spool_file	*v = NULL, *nv;
	struct dirent		*de;
	struct stat		 st;
	struct timespec		 now;
	DIR			*dir;
	size_t			 n = 0, cap = 0;
	int			 fd;

	*files = NULL;
	(void)clock_gettime(CLOCK_REALTIME, &now);
	if ((fd = dup(sp->dfd[d])) == -1)
		return -1;
	if ((dir = fdopendir(fd)) == NULL) {
		(void)close(fd);
		return -1;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		if (!spool_json_name(de->d_name) ||
		    fstatat(sp->dfd[d], de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (min_age_ms > 0 && (now.tv_sec - st.st_mtim.tv_sec) * 1000 +
		    (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000 < min_age_ms)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				free(v);
				(void)closedir(dir);
				return -1;
			}
			v = nv;
		}
		(void)snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
		v[n].mtime = st.st_mtim;
		n++;
	}
	(void)closedir(dir);
	if (n > 0)
		qsort(v, n, sizeof(*v), file_cmp);
	*files = v;
	return (int)n;
}

int
spool_watch(struct spool *sp, enum spool_dir d)
{
	char	path[sizeof(sp->root) + 16];

	(void)snprintf(path, sizeof(path), "%s/%s", sp->root, spool_names[d]);
	if ((sp->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return -1;
	if (inotify_add_watch(sp->ino, path, IN_MOVED_TO | IN_CLOSE_WRITE) ==
	    -1) {
		(void)close(sp->ino);
		sp->ino = -1;
		return -1;
	}
	return 0;
}

int
spool_events(struct spool *sp, void (*fn)(void *, const char *), void *arg)
{
	char			 buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t			 n;
	char			*p;
	int			 rc = 0;

	for (;;) {
		if ((n = read(sp->ino, buf, sizeof(buf))) == -1) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? rc : -1;
		}
		if (n == 0)
			return rc;
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				rc = -1;
			else if (ev->len > 0 && spool_json_name(ev->name))
				fn(arg, ev->name);
		}
	}
}

/* Is name free in d, and name`beside` with it? */
static bool
name_free(struct spool *sp, enum spool_dir d, const char *name,
    const char *beside)
{
	char	full[512];

	if (spool_exists(sp, d, name))
		return false;
	if (beside == NULL)
		return true;
	if ((size_t)snprintf(full, sizeof(full), "%s%s", name, beside) >=
	    sizeof(full))
		return false;
	return !spool_exists(sp, d, full);
}

int
spool_unique(struct spool *sp, enum spool_dir d, const char *name,
    const char *tag, const char *beside, char *out, size_t size)
{
	size_t		len = strlen(name);
	unsigned	n;
	int		w;

	if (len < size && name_free(sp, d, name, beside)) {
		(void)snprintf(out, size, "%s", name);
		return 0;
	}
	if (len > 5 && strcmp(name + len - 5, ".json") == 0)
		len -= 5;
	for (n = 1; n < 100000; n++) {
		if (n == 1)
			w = snprintf(out, size, "%.*s.%s.json", (int)len, name,
			    tag);
		else
			w = snprintf(out, size, "%.*s.%s.%u.json", (int)len,
			    name, tag, n);
		if (w < 0 || (size_t)w >= size)
			break;
		if (name_free(sp, d, out, beside))
			return 0;
	}
	if (size > 0)
		out[0] = '\0';
	return -1;
}
