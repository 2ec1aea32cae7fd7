/*
 * powercut.c - an LD_PRELOAD library that lets a SIGKILL stand in for a
 * power cut.
 *
 * A kill -9 loses only what a process had not yet handed to the kernel;
 * a power cut also loses everything the kernel had not yet written to the
 * disk, that is every write no fsync has covered.  Under this library each
 * change to a file under POWERCUT_DIR is preceded by an undo record in
 * POWERCUT_JOURNAL (the bytes it overwrites and the file's size), and each
 * fsync/fdatasync that returned is recorded too.  After the kill,
 * powercut-apply undoes every change no sync made durable: the directory
 * then holds what the disk would.  powercut.h says what counts as durable.
 *
 * Interposed, as liblmdb 0.9.24 uses them (nm -D; strace of a broker):
 * open (data.mdb O_RDWR, and again O_WRONLY|O_DSYNC for the meta pages),
 * pwrite (single pages and the meta page), lseek + writev (runs of pages),
 * fdatasync (each commit), fsync, ftruncate, close, and mmap, whose shared
 * writable mappings (MDB_WRITEMAP; msync) cannot be journalled and make
 * the journal say so.  Also the obvious neighbours: open64, openat(64),
 * creat(64), the _FORTIFY_SOURCE __open*_2, write, pwrite64, pwritev(64),
 * pwritev2, ftruncate64, sync, syncfs, dup/dup2/dup3 and mmap64.
 * Not covered: fallocate, truncate(2) by path, rename and unlink, writes
 * made inside glibc (stdio), and directory entries beyond file creation.
 *
 * Environment: POWERCUT_DIR (the directory whose files are journalled;
 * unset: the library does nothing), POWERCUT_JOURNAL (the journal, outside
 * that directory; appended to), POWERCUT_IGNORE (comma-separated file
 * names left alone; default "lock.mdb", LMDB's reader table, which is
 * rebuilt on open and written through a shared mapping),
 * POWERCUT_SYNC_DELAY_US (each fsync, fdatasync and O_DSYNC write takes
 * this much longer, as on a disk that really flushes: a cut then often
 * falls inside a commit, between its page writes and its meta page),
 * POWERCUT_KILL_AT (N: the process kills itself with SIGKILL as it starts
 * its Nth change or sync of a journalled file; "sync:N": as it starts its
 * Nth fsync/fdatasync, when a commit's pages are written and not yet
 * durable - a cut that lands inside a commit whatever the timing).
 *
 * The journal itself is written with write(2) and never synced: the
 * machine does not really lose power, the kernel keeps it.  What matters
 * is that each record is in the kernel before the change it undoes.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "powercut.h"

#define PC_MAXFD	65536	/* fds above this are classified each time */
#define PC_MAXFILES	256
#define PC_FD_UNKNOWN	0	/* fdstate: not looked at since open/close */
#define PC_FD_OTHER	(-1)	/* not a file under POWERCUT_DIR */

/* The __open*_2 entry points are declared only under _FORTIFY_SOURCE. */
int	__open_2(const char *, int);
int	__open64_2(const char *, int);
int	__openat_2(int, const char *, int);
int	__openat64_2(int, const char *, int);

struct pc_file {
	dev_t		 dev;
	ino_t		 ino;
	int		 rfd;		/* ours, read-only: the old bytes */
	char		 path[PATH_MAX];
};

/* The next definitions of everything interposed. */
static struct {
	int	(*open)(const char *, int, ...);
	int	(*open64)(const char *, int, ...);
	int	(*openat)(int, const char *, int, ...);
	int	(*openat64)(int, const char *, int, ...);
	int	(*close)(int);
	ssize_t	(*write)(int, const void *, size_t);
	ssize_t	(*pwrite)(int, const void *, size_t, off_t);
	ssize_t	(*pwrite64)(int, const void *, size_t, off64_t);
	ssize_t	(*writev)(int, const struct iovec *, int);
	ssize_t	(*pwritev)(int, const struct iovec *, int, off_t);
	ssize_t	(*pwritev64)(int, const struct iovec *, int, off64_t);
	ssize_t	(*pwritev2)(int, const struct iovec *, int, off_t, int);
	int	(*ftruncate)(int, off_t);
	int	(*ftruncate64)(int, off64_t);
	int	(*fsync)(int);
	int	(*fdatasync)(int);
	void	(*sync)(void);
	int	(*syncfs)(int);
	int	(*dup)(int);
	int	(*dup2)(int, int);
	int	(*dup3)(int, int, int);
	void	*(*mmap)(void *, size_t, int, int, int, off_t);
} real;

static pthread_once_t	 pc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t	 pc_lock = PTHREAD_MUTEX_INITIALIZER;
static bool		 pc_active;	/* POWERCUT_DIR is set */
static char		 pc_prefix[PATH_MAX];	/* realpath(dir) + "/" */
static size_t		 pc_prefixlen;
static char		 pc_ignore[1024] = "lock.mdb";
static int		 pc_jfd = -1;	/* the journal */
static uint64_t		 pc_seq;
static long		 pc_delay_us;	/* POWERCUT_SYNC_DELAY_US */
static long		 pc_kill_at;	/* POWERCUT_KILL_AT, 0: never */
static bool		 pc_kill_sync;	/* ... counts syncs only */
static long		 pc_nops, pc_nsyncs;
static int		 pc_fdstate[PC_MAXFD];	/* PC_FD_*, or file + 1 */
static struct pc_file	 pc_files[PC_MAXFILES];
static int		 pc_nfiles;

static void	 pc_init(void);
static void	 pc_fork_prepare(void);
static void	 pc_fork_parent(void);
static void	 pc_fork_child(void);
static void	 pc_fatal(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
static void	*pc_sym(const char *);
static void	 pc_ensure(void);
static bool	 pc_ignored(const char *path);
static int	 pc_classify(int fd);
static int	 pc_tracked(int fd);
static bool	 pc_ours(int fd);
static void	 pc_set(int fd, int state);
static uint64_t	 pc_log(uint32_t type, int file, uint32_t flags, uint64_t off,
		    uint64_t len, uint64_t old_size, const void *extra,
		    size_t nextra);
static off_t	 pc_size(int file);
static void	 pc_before_write(int file, off_t off, size_t len, bool dsync,
		    uint64_t *seq);
static void	 pc_flush_delay(void);
static void	 pc_cut_here(bool is_sync);
static void	 pc_after_write(int file, bool dsync, uint64_t seq,
		    ssize_t rc);
static bool	 pc_fd_dsync(int fd);
static void	 pc_before_trunc(int file, off_t len);
static int	 pc_real_open(int kind, int dirfd, const char *path,
		    int flags, mode_t mode);
static mode_t	 pc_mode(int flags, va_list ap);
static int	 pc_open(int dirfd, const char *path, int flags, mode_t mode,
		    int kind);
static ssize_t	 pc_pwrite(int fd, const void *buf, size_t n, off_t off,
		    bool is64);
static ssize_t	 pc_real_writev(int fd, const struct iovec *iov, int cnt,
		    off_t off, int rwf, int kind);
static ssize_t	 pc_pwritev(int fd, const struct iovec *iov, int cnt,
		    off_t off, int rwf, int kind);
static int	 pc_ftruncate(int fd, off_t len, bool is64);
static int	 pc_sync_fd(int fd, bool data_only);
static void	 pc_mapping(int fd, int prot, int flags);

enum { K_OPEN, K_OPEN64, K_OPENAT, K_OPENAT64 };
enum { V_PWRITEV, V_PWRITEV64, V_PWRITEV2 };

static void
pc_fatal(const char *fmt, ...)
{
	char	msg[PATH_MAX + 256];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(msg) - 2)
		n = sizeof(msg) - 2;
	msg[n++] = '\n';
	if (real.write != NULL)
		(void)real.write(2, msg, (size_t)n);
	_exit(99);
}

static void *
pc_sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/*
 * Resolve the next definitions and read the environment, once, on first
 * use: a constructor may run after another library already wrote.
 */
static void
pc_init(void)
{
	const char	*dir, *journal, *ign;
	char		 rdir[PATH_MAX];

	real.open = pc_sym("open");
	real.open64 = pc_sym("open64");
	real.openat = pc_sym("openat");
	real.openat64 = pc_sym("openat64");
	real.close = pc_sym("close");
	real.write = pc_sym("write");
	real.pwrite = pc_sym("pwrite");
	real.pwrite64 = pc_sym("pwrite64");
	real.writev = pc_sym("writev");
	real.pwritev = pc_sym("pwritev");
	real.pwritev64 = pc_sym("pwritev64");
	real.pwritev2 = pc_sym("pwritev2");
	real.ftruncate = pc_sym("ftruncate");
	real.ftruncate64 = pc_sym("ftruncate64");
	real.fsync = pc_sym("fsync");
	real.fdatasync = pc_sym("fdatasync");
	real.sync = pc_sym("sync");
	real.syncfs = pc_sym("syncfs");
	real.dup = pc_sym("dup");
	real.dup2 = pc_sym("dup2");
	real.dup3 = pc_sym("dup3");
	real.mmap = pc_sym("mmap");
	if (real.open == NULL || real.openat == NULL || real.close == NULL ||
	    real.write == NULL || real.pwrite == NULL || real.writev == NULL ||
	    real.ftruncate == NULL || real.fsync == NULL ||
	    real.fdatasync == NULL || real.mmap == NULL)
		pc_fatal("powercut: cannot find the C library's functions");

	if ((dir = getenv("POWERCUT_DIR")) == NULL || *dir == '\0')
		return;
	if ((journal = getenv("POWERCUT_JOURNAL")) == NULL || *journal == '\0')
		pc_fatal("powercut: POWERCUT_DIR without POWERCUT_JOURNAL");
	if ((ign = getenv("POWERCUT_IGNORE")) != NULL)
		snprintf(pc_ignore, sizeof(pc_ignore), "%s", ign);
	if ((ign = getenv("POWERCUT_SYNC_DELAY_US")) != NULL)
		pc_delay_us = strtol(ign, NULL, 10);
	if ((ign = getenv("POWERCUT_KILL_AT")) != NULL) {
		if ((pc_kill_sync = strncmp(ign, "sync:", 5) == 0))
			ign += 5;
		pc_kill_at = strtol(ign, NULL, 10);
	}
	if (realpath(dir, rdir) == NULL)
		pc_fatal("powercut: POWERCUT_DIR %s: %s", dir, strerror(errno));
	pc_prefixlen = (size_t)snprintf(pc_prefix, sizeof(pc_prefix), "%s/",
	    strcmp(rdir, "/") == 0 ? "" : rdir);
	if ((pc_jfd = real.open(journal, O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0600)) == -1)
		pc_fatal("powercut: POWERCUT_JOURNAL %s: %s", journal,
		    strerror(errno));
	if (pc_classify(pc_jfd) != PC_FD_OTHER)
		pc_fatal("powercut: the journal %s lies in POWERCUT_DIR",
		    journal);
	if (pthread_atfork(pc_fork_prepare, pc_fork_parent, pc_fork_child))
		pc_fatal("powercut: pthread_atfork failed");
	pc_active = true;
}

/*
 * A fork copies the file table but not the journal's knowledge of it: the
 * child, writing under its own pid, names its files again.  The lock is
 * held across the fork so that the child never inherits it taken.
 */
static void
pc_fork_prepare(void)
{
	pthread_mutex_lock(&pc_lock);
}

static void
pc_fork_parent(void)
{
	pthread_mutex_unlock(&pc_lock);
}

static void
pc_fork_child(void)
{
	int	i;

	for (i = 0; i < pc_nfiles; i++)
		(void)pc_log(PC_FILE, i, 0, 0, 0, 0, pc_files[i].path,
		    strlen(pc_files[i].path));
	pthread_mutex_unlock(&pc_lock);
}

static void
pc_ensure(void)
{
	int	saved = errno;

	(void)pthread_once(&pc_once, pc_init);
	errno = saved;
}

static bool
pc_ignored(const char *path)
{
	const char	*base = strrchr(path, '/'), *p = pc_ignore;
	size_t		 n;

	base = base != NULL ? base + 1 : path;
	n = strlen(base);
	while (*p != '\0') {
		const char *e = strchr(p, ',');
		size_t	    len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, base, n) == 0)
			return true;
		p += len + (e != NULL);
	}
	return false;
}

static void
pc_set(int fd, int state)
{
	if (fd >= 0 && fd < PC_MAXFD)
		__atomic_store_n(&pc_fdstate[fd], state, __ATOMIC_RELAXED);
}

/*
 * Which file under POWERCUT_DIR an fd refers to: its path from /proc,
 * then (dev, ino), registering the file with a PC_FILE record the first
 * time.  Takes the lock only for such files, so that a signal handler
 * writing to a pipe never waits for it.
 */
static int
pc_classify(int fd)
{
	char		 link[64], path[PATH_MAX];
	struct stat	 sb;
	ssize_t		 n;
	int		 i, state = PC_FD_OTHER, saved = errno;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		goto out;
	path[n] = '\0';
	if ((size_t)n <= pc_prefixlen ||
	    strncmp(path, pc_prefix, pc_prefixlen) != 0 || pc_ignored(path))
		goto out;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode))
		goto out;
	pthread_mutex_lock(&pc_lock);
	for (i = 0; i < pc_nfiles; i++)
		if (pc_files[i].dev == sb.st_dev && pc_files[i].ino == sb.st_ino)
			break;
	if (i == pc_nfiles) {
		struct pc_file *f = &pc_files[i];

		if (pc_nfiles == PC_MAXFILES)
			pc_fatal("powercut: more than %d files", PC_MAXFILES);
		f->dev = sb.st_dev;
		f->ino = sb.st_ino;
		snprintf(f->path, sizeof(f->path), "%s", path);
		if ((f->rfd = real.open(link, O_RDONLY | O_CLOEXEC)) == -1)
			pc_fatal("powercut: %s: %s", path, strerror(errno));
		pc_nfiles++;
		(void)pc_log(PC_FILE, i, 0, 0, 0, 0, path, strlen(path));
	}
	pthread_mutex_unlock(&pc_lock);
	state = i + 1;
out:
	pc_set(fd, state);
	errno = saved;
	return state;
}

/* The file index of a journalled fd, or -1. */
static int
pc_tracked(int fd)
{
	int	state;

	pc_ensure();
	if (!pc_active || fd < 0)
		return -1;
	state = fd < PC_MAXFD ? __atomic_load_n(&pc_fdstate[fd],
	    __ATOMIC_RELAXED) : PC_FD_UNKNOWN;
	if (state == PC_FD_UNKNOWN)
		state = pc_classify(fd);
	return state > 0 ? state - 1 : -1;
}

/* The journal and the read-only fds are ours: a close of every fd (as a
 * daemon might do) must not take them. */
static bool
pc_ours(int fd)
{
	int	i;

	if (!pc_active || fd < 0)
		return false;
	if (fd == pc_jfd)
		return true;
	for (i = 0; i < __atomic_load_n(&pc_nfiles, __ATOMIC_RELAXED); i++)
		if (pc_files[i].rfd == fd)
			return true;
	return false;
}

/* Append one record; called with the lock held.  Returns its seq. */
static uint64_t
pc_log(uint32_t type, int file, uint32_t flags, uint64_t off, uint64_t len,
    uint64_t old_size, const void *extra, size_t nextra)
{
	struct pc_rec	 r;
	struct iovec	 iov[2];
	size_t		 total = sizeof(r) + nextra, done = 0;

	memset(&r, 0, sizeof(r));
	r.magic = PC_MAGIC;
	r.type = type;
	r.pid = (uint32_t)getpid();
	r.file = (uint32_t)file;
	r.flags = flags;
	r.seq = ++pc_seq;
	r.off = off;
	r.len = len;
	r.old_size = old_size;
	r.nextra = nextra;
	/* One writev: records of two processes never interleave. */
	while (done < total) {
		int	 cnt = 0;
		ssize_t	 n;

		if (done < sizeof(r)) {
			iov[cnt].iov_base = (char *)&r + done;
			iov[cnt++].iov_len = sizeof(r) - done;
		}
		if (nextra > 0) {
			size_t skip = done > sizeof(r) ? done - sizeof(r) : 0;

			iov[cnt].iov_base = (char *)extra + skip;
			iov[cnt++].iov_len = nextra - skip;
		}
		if ((n = real.writev(pc_jfd, iov, cnt)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			pc_fatal("powercut: cannot write the journal: %s",
			    n == -1 ? strerror(errno) : "no space");
		}
		done += (size_t)n;
	}
	return r.seq;
}

static off_t
pc_size(int file)
{
	struct stat	sb;

	if (fstat(pc_files[file].rfd, &sb) == -1)
		pc_fatal("powercut: %s: %s", pc_files[file].path,
		    strerror(errno));
	return sb.st_size;
}

/*
 * The undo record of a write of len bytes at off; with the lock held,
 * before the write.
 */
static void
pc_before_write(int file, off_t off, size_t len, bool dsync, uint64_t *seq)
{
	off_t	 size, end = off + (off_t)len;
	size_t	 nold = 0, got = 0;
	char	*old = NULL;

	pc_cut_here(false);
	size = pc_size(file);
	if (off < size && len > 0) {
		nold = (size_t)((end < size ? end : size) - off);
		if ((old = malloc(nold)) == NULL)
			pc_fatal("powercut: out of memory");
		while (got < nold) {
			ssize_t n = pread(pc_files[file].rfd, old + got,
			    nold - got, off + (off_t)got);

			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				pc_fatal("powercut: cannot read %s: %s",
				    pc_files[file].path,
				    n == 0 ? "short file" : strerror(errno));
			got += (size_t)n;
		}
	}
	*seq = pc_log(PC_WRITE, file, dsync ? PC_F_DSYNC : 0, (uint64_t)off,
	    len, (uint64_t)size, old, nold);
	free(old);
}

/* POWERCUT_KILL_AT: the power goes as this change or sync begins. */
static void
pc_cut_here(bool is_sync)
{
	if (pc_kill_at <= 0)
		return;
	if (pc_kill_sync ? is_sync && ++pc_nsyncs == pc_kill_at :
	    ++pc_nops == pc_kill_at)
		(void)kill(getpid(), SIGKILL);
}

/* A slow disk's flush: a kill meanwhile finds it not done. */
static void
pc_flush_delay(void)
{
	struct timespec	ts;

	if (pc_delay_us <= 0)
		return;
	ts.tv_sec = pc_delay_us / 1000000;
	ts.tv_nsec = pc_delay_us % 1000000 * 1000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* An O_DSYNC write that returned is on disk: say so. */
static void
pc_after_write(int file, bool dsync, uint64_t seq, ssize_t rc)
{
	if (dsync && rc >= 0) {
		pc_flush_delay();
		(void)pc_log(PC_DONE, file, 0, seq, 0, 0, NULL, 0);
	}
}

static void
pc_before_trunc(int file, off_t len)
{
	off_t	 size;
	size_t	 nold = 0, got = 0;
	char	*old = NULL;

	pc_cut_here(false);
	size = pc_size(file);
	if (len < size) {
		nold = (size_t)(size - len);
		if ((old = malloc(nold)) == NULL)
			pc_fatal("powercut: out of memory");
		while (got < nold) {
			ssize_t n = pread(pc_files[file].rfd, old + got,
			    nold - got, len + (off_t)got);

			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				pc_fatal("powercut: cannot read %s",
				    pc_files[file].path);
			got += (size_t)n;
		}
	}
	(void)pc_log(PC_TRUNC, file, 0, (uint64_t)len, 0, (uint64_t)size, old,
	    nold);
	free(old);
}

/* Is a write through this fd durable when it returns? */
static bool
pc_fd_dsync(int fd)
{
	int	fl = fcntl(fd, F_GETFL);

	return fl != -1 && (fl & O_DSYNC) != 0;	/* O_SYNC includes it */
}

/* ---------------------------------------------------------------- open */

static int
pc_real_open(int kind, int dirfd, const char *path, int flags, mode_t mode)
{
	switch (kind) {
	case K_OPEN:
		return real.open(path, flags, mode);
	case K_OPEN64:
		return (real.open64 ? real.open64 : real.open)(path, flags,
		    mode);
	case K_OPENAT:
		return real.openat(dirfd, path, flags, mode);
	default:
		return (real.openat64 ? real.openat64 : real.openat)(dirfd,
		    path, flags, mode);
	}
}

/*
 * Open, noting whether it creates the file, and turning O_TRUNC of a
 * journalled file into a journalled ftruncate.
 */
static int
pc_open(int dirfd, const char *path, int flags, mode_t mode, int kind)
{
	struct stat	 sb;
	bool		 maybe_new = false, trunc;
	int		 fd, file, saved;

	pc_ensure();
	if (!pc_active)
		return pc_real_open(kind, dirfd, path, flags, mode);
	if (flags & O_CREAT) {
		saved = errno;
		maybe_new = fstatat(kind == K_OPENAT || kind == K_OPENAT64 ?
		    dirfd : AT_FDCWD, path, &sb, 0) == -1 && errno == ENOENT;
		errno = saved;
	}
	trunc = (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY;
	if ((fd = pc_real_open(kind, dirfd, path, trunc ? flags & ~O_TRUNC :
	    flags, mode)) == -1)
		return -1;
	pc_set(fd, PC_FD_UNKNOWN);
	/* A plain read-only open changes nothing: looked at on first write. */
	file = (flags & O_ACCMODE) == O_RDONLY && !maybe_new && !trunc ? -1 :
	    pc_tracked(fd);
	saved = errno;
	if (file >= 0) {
		pthread_mutex_lock(&pc_lock);
		if (maybe_new)
			(void)pc_log(PC_CREATE, file, 0, 0, 0, 0, NULL, 0);
		if (trunc && pc_size(file) > 0) {
			pc_before_trunc(file, 0);
			if (real.ftruncate(fd, 0) == -1) {
				saved = errno;
				pthread_mutex_unlock(&pc_lock);
				(void)real.close(fd);
				pc_set(fd, PC_FD_UNKNOWN);
				errno = saved;
				return -1;
			}
		}
		pthread_mutex_unlock(&pc_lock);
	} else if (trunc && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size > 0 && real.ftruncate(fd, 0) == -1) {
		saved = errno;
		(void)real.close(fd);
		pc_set(fd, PC_FD_UNKNOWN);
		errno = saved;
		return -1;
	}
	errno = saved;
	return fd;
}

static mode_t
pc_mode(int flags, va_list ap)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return (mode_t)va_arg(ap, int);
	return 0;
}

int
open(const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	va_start(ap, flags);
	mode = pc_mode(flags, ap);
	va_end(ap);
	return pc_open(AT_FDCWD, path, flags, mode, K_OPEN);
}

int
open64(const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	va_start(ap, flags);
	mode = pc_mode(flags, ap);
	va_end(ap);
	return pc_open(AT_FDCWD, path, flags, mode, K_OPEN64);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	va_start(ap, flags);
	mode = pc_mode(flags, ap);
	va_end(ap);
	return pc_open(dirfd, path, flags, mode, K_OPENAT);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	va_start(ap, flags);
	mode = pc_mode(flags, ap);
	va_end(ap);
	return pc_open(dirfd, path, flags, mode, K_OPENAT64);
}

int
creat(const char *path, mode_t mode)
{
	return pc_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode,
	    K_OPEN);
}

int
creat64(const char *path, mode_t mode)
{
	return pc_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode,
	    K_OPEN64);
}

int
__open_2(const char *path, int flags)
{
	return pc_open(AT_FDCWD, path, flags, 0, K_OPEN);
}

int
__open64_2(const char *path, int flags)
{
	return pc_open(AT_FDCWD, path, flags, 0, K_OPEN64);
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	return pc_open(dirfd, path, flags, 0, K_OPENAT);
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	return pc_open(dirfd, path, flags, 0, K_OPENAT64);
}

int
close(int fd)
{
	int	rc;

	pc_ensure();
	if (pc_ours(fd))
		return 0;
	rc = real.close(fd);
	pc_set(fd, PC_FD_UNKNOWN);
	return rc;
}

int
dup(int fd)
{
	int	nfd;

	pc_ensure();
	if ((nfd = real.dup(fd)) >= 0)
		pc_set(nfd, PC_FD_UNKNOWN);
	return nfd;
}

int
dup2(int fd, int nfd)
{
	int	rc;

	pc_ensure();
	if (pc_ours(nfd) && nfd != fd) {
		errno = EBUSY;
		return -1;
	}
	if ((rc = real.dup2(fd, nfd)) >= 0)
		pc_set(rc, PC_FD_UNKNOWN);
	return rc;
}

int
dup3(int fd, int nfd, int flags)
{
	int	rc;

	pc_ensure();
	if (pc_ours(nfd)) {
		errno = EBUSY;
		return -1;
	}
	if ((rc = real.dup3(fd, nfd, flags)) >= 0)
		pc_set(rc, PC_FD_UNKNOWN);
	return rc;
}

/* ---------------------------------------------------------------- writes */

ssize_t
write(int fd, const void *buf, size_t n)
{
	uint64_t	seq;
	ssize_t		rc;
	off_t		off;
	bool		dsync;
	int		file, saved;

	if ((file = pc_tracked(fd)) < 0)
		return real.write(fd, buf, n);
	pthread_mutex_lock(&pc_lock);
	dsync = pc_fd_dsync(fd);
	if (fcntl(fd, F_GETFL) & O_APPEND)
		off = pc_size(file);
	else
		off = lseek(fd, 0, SEEK_CUR);
	if (off >= 0)
		pc_before_write(file, off, n, dsync, &seq);
	rc = real.write(fd, buf, n);
	saved = errno;
	if (off >= 0)
		pc_after_write(file, dsync, seq, rc);
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

static ssize_t
pc_pwrite(int fd, const void *buf, size_t n, off_t off, bool is64)
{
	uint64_t	seq;
	ssize_t		rc;
	bool		dsync;
	int		file, saved;

	if ((file = pc_tracked(fd)) < 0)
		return is64 && real.pwrite64 ? real.pwrite64(fd, buf, n, off) :
		    real.pwrite(fd, buf, n, off);
	pthread_mutex_lock(&pc_lock);
	dsync = pc_fd_dsync(fd);
	/* On Linux, pwrite to an O_APPEND fd appends whatever the offset. */
	if (fcntl(fd, F_GETFL) & O_APPEND)
		off = pc_size(file);
	pc_before_write(file, off, n, dsync, &seq);
	rc = is64 && real.pwrite64 ? real.pwrite64(fd, buf, n, off) :
	    real.pwrite(fd, buf, n, off);
	saved = errno;
	pc_after_write(file, dsync, seq, rc);
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pc_pwrite(fd, buf, n, off, false);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return pc_pwrite(fd, buf, n, off, true);
}

static ssize_t
pc_real_writev(int fd, const struct iovec *iov, int cnt, off_t off, int rwf,
    int kind)
{
	switch (kind) {
	case V_PWRITEV:
		return real.pwritev(fd, iov, cnt, off);
	case V_PWRITEV64:
		return (real.pwritev64 ? real.pwritev64 : real.pwritev)(fd, iov,
		    cnt, off);
	case V_PWRITEV2:
		return real.pwritev2(fd, iov, cnt, off, rwf);
	default:
		return real.writev(fd, iov, cnt);
	}
}

/* writev (kind -1, off ignored), pwritev, pwritev64 and pwritev2. */
static ssize_t
pc_pwritev(int fd, const struct iovec *iov, int cnt, off_t off, int rwf,
    int kind)
{
	uint64_t	seq;
	ssize_t		rc;
	size_t		len = 0;
	bool		dsync;
	int		file, saved, i;

	if ((file = pc_tracked(fd)) < 0)
		return pc_real_writev(fd, iov, cnt, off, rwf, kind);
	for (i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	pthread_mutex_lock(&pc_lock);
	dsync = pc_fd_dsync(fd) || (rwf & (RWF_DSYNC | RWF_SYNC)) != 0;
	if ((fcntl(fd, F_GETFL) & O_APPEND) || (rwf & RWF_APPEND))
		off = pc_size(file);
	else if (kind == -1 || off == -1)
		off = lseek(fd, 0, SEEK_CUR);
	if (off >= 0)
		pc_before_write(file, off, len, dsync, &seq);
	rc = pc_real_writev(fd, iov, cnt, off, rwf, kind);
	saved = errno;
	if (off >= 0)
		pc_after_write(file, dsync, seq, rc);
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	return pc_pwritev(fd, iov, cnt, 0, 0, -1);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pc_pwritev(fd, iov, cnt, off, 0, V_PWRITEV);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	return pc_pwritev(fd, iov, cnt, off, 0, V_PWRITEV64);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return pc_pwritev(fd, iov, cnt, off, flags, V_PWRITEV2);
}

static int
pc_ftruncate(int fd, off_t len, bool is64)
{
	int	file, rc, saved;

	if ((file = pc_tracked(fd)) < 0)
		return is64 && real.ftruncate64 ? real.ftruncate64(fd, len) :
		    real.ftruncate(fd, len);
	pthread_mutex_lock(&pc_lock);
	if (len >= 0)
		pc_before_trunc(file, len);
	rc = is64 && real.ftruncate64 ? real.ftruncate64(fd, len) :
	    real.ftruncate(fd, len);
	saved = errno;
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

int
ftruncate(int fd, off_t len)
{
	return pc_ftruncate(fd, len, false);
}

int
ftruncate64(int fd, off64_t len)
{
	return pc_ftruncate(fd, len, true);
}

/* ---------------------------------------------------------------- syncs */

/*
 * A sync counts once it returned, and covers every change made before it
 * began; the lock keeps another thread's write from slipping in between.
 */
static int
pc_sync_fd(int fd, bool data_only)
{
	int	file, rc, saved;

	if ((file = pc_tracked(fd)) < 0)
		return data_only ? real.fdatasync(fd) : real.fsync(fd);
	pthread_mutex_lock(&pc_lock);
	pc_cut_here(true);
	rc = data_only ? real.fdatasync(fd) : real.fsync(fd);
	saved = errno;
	if (rc == 0) {
		pc_flush_delay();
		(void)pc_log(PC_SYNC, file, 0, 0, 0, 0, NULL, 0);
	}
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

int
fsync(int fd)
{
	return pc_sync_fd(fd, false);
}

int
fdatasync(int fd)
{
	return pc_sync_fd(fd, true);
}

void
sync(void)
{
	int	i;

	pc_ensure();
	if (!pc_active) {
		real.sync();
		return;
	}
	pthread_mutex_lock(&pc_lock);
	real.sync();
	for (i = 0; i < pc_nfiles; i++)
		(void)pc_log(PC_SYNC, i, 0, 0, 0, 0, NULL, 0);
	pthread_mutex_unlock(&pc_lock);
}

int
syncfs(int fd)
{
	struct stat	sb;
	int		i, rc, saved;

	pc_ensure();
	if (!pc_active || fstat(fd, &sb) == -1)
		return real.syncfs(fd);
	pthread_mutex_lock(&pc_lock);
	rc = real.syncfs(fd);
	saved = errno;
	for (i = 0; rc == 0 && i < pc_nfiles; i++)
		if (pc_files[i].dev == sb.st_dev)
			(void)pc_log(PC_SYNC, i, 0, 0, 0, 0, NULL, 0);
	pthread_mutex_unlock(&pc_lock);
	errno = saved;
	return rc;
}

/* ---------------------------------------------------------------- mappings */

/*
 * Stores through a shared writable mapping reach the file without a call
 * to journal (LMDB's MDB_WRITEMAP, flushed by msync): the journal says it
 * cannot be trusted, and powercut-apply refuses it.
 */
static void
pc_mapping(int fd, int prot, int flags)
{
	char	why[PATH_MAX + 128];
	int	file, n;

	if (fd < 0 || !(prot & PROT_WRITE) || !(flags & MAP_SHARED) ||
	    (file = pc_tracked(fd)) < 0)
		return;
	n = snprintf(why, sizeof(why), "shared writable mapping of %s "
	    "(MDB_WRITEMAP?): its stores cannot be undone",
	    pc_files[file].path);
	pthread_mutex_lock(&pc_lock);
	(void)pc_log(PC_UNSUPPORTED, file, 0, 0, 0, 0, why, (size_t)n);
	pthread_mutex_unlock(&pc_lock);
	(void)real.write(2, "powercut: ", 10);
	(void)real.write(2, why, (size_t)n);
	(void)real.write(2, "\n", 1);
}

/*
 * Anonymous and private mappings go straight to the kernel, without
 * pc_ensure(): an allocator may map memory while pc_init() runs.
 */
void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fd < 0 || !(prot & PROT_WRITE) || !(flags & MAP_SHARED))
		return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd,
		    off);
	pc_ensure();
	pc_mapping(fd, prot, flags);
	return real.mmap(addr, len, prot, flags, fd, off);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}
