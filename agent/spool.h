/*
 * spool.h - the agent's folders (DESIGN §8): out/ sent/ rejected/ in/
 * receipts/ notices/, and tmp/ where files are written before they are
 * renamed into place, so a reader never sees half a file.
 */
#ifndef CC_SPOOL_H
#define CC_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cc_proto.h"

enum spool_dir {
	SP_OUT,
	SP_SENT,
	SP_REJECTED,
	SP_IN,
	SP_RECEIPTS,
	SP_NOTICES,
	SP_TMP,
	SP__COUNT
};

struct spool {
	char	root[4096];
	int	dfd[SP__COUNT];		/* each folder, O_DIRECTORY */
	int	ino;			/* inotify on one folder, or -1 */
};

/* A file of a folder, for scans in arrival order. */
struct spool_file {
	char		name[256];
	struct timespec	mtime;
};

/* Create the folders that are missing (0770) and open them.  0, or -1
 * with err. */
int	spool_open(struct spool *, const char *root, char *err, size_t errlen)
	    CC_WUR;
void	spool_close(struct spool *);
const char *spool_dirname(enum spool_dir);

/*
 * Write data to dir/name atomically: tmp/, fsync, rename, fsync of the
 * folder.  0, or -1 with errno.
 */
int	spool_write(struct spool *, enum spool_dir, const char *name,
	    const void *data, size_t len) CC_WUR;
/* The two halves: write tmp/tmpname durably; rename it to dir/name and
 * sync the folder. */
int	spool_write_tmp(struct spool *, const char *tmpname, const void *data,
	    size_t len) CC_WUR;
int	spool_commit(struct spool *, const char *tmpname, enum spool_dir,
	    const char *name) CC_WUR;
bool	spool_exists(struct spool *, enum spool_dir, const char *name);
/* Rename between folders.  0, or -1 with errno. */
int	spool_move(struct spool *, enum spool_dir, const char *name,
	    enum spool_dir, const char *newname) CC_WUR;
int	spool_unlink(struct spool *, enum spool_dir, const char *name);

/* Read a regular file of at most max bytes (NUL-terminated, malloc'd).
 * 0, or -1 with errno (EFBIG when larger). */
int	spool_read(struct spool *, enum spool_dir, const char *name,
	    size_t max, char **data, size_t *len) CC_WUR;

/*
 * The *.json files of a folder (no dot files), oldest first (then by
 * name).  Files modified less than min_age_ms ago are left out.
 * *files is malloc'd.  Returns the count, or -1.
 */
int	spool_scan(struct spool *, enum spool_dir, int min_age_ms,
	    struct spool_file **files) CC_WUR;

/* Watch one folder for files renamed or written into it.  0 or -1. */
int	spool_watch(struct spool *, enum spool_dir) CC_WUR;
/* Read the pending events; call fn for each *.json name.  0 or -1 (the
 * queue overflowed: rescan). */
int	spool_events(struct spool *, void (*fn)(void *, const char *),
	    void *arg);

/* Is this a name the agent takes: "*.json", no dot first, no slash. */
bool	spool_json_name(const char *);

/*
 * A free name in dir for a file to be filed with its answer beside it,
 * NAME`beside` (NULL: none): name, else "STEM.TAG.json", else
 * "STEM.TAG.N.json" for N from 2, the first that dir holds neither as a
 * file nor with `beside` added; so no file filed there ever replaces
 * another.  0, or -1 when none fits in size bytes.
 */
int	spool_unique(struct spool *, enum spool_dir, const char *name,
	    const char *tag, const char *beside, char *out, size_t size)
	    CC_WUR;

#endif /* CC_SPOOL_H */
