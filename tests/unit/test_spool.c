/*
 * test_spool.c - the agent's folders (agent/spool.c) on real files in a
 * temporary directory: what spool_open makes, atomic writes and their two
 * halves, moves, reads and what they refuse, which files a scan takes and
 * in what order, the watch on a folder, names the agent takes, and the
 * unique names of sent/ and rejected/.
 */
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "spool.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static char		 root[PATH_MAX];	/* this test's spool */
static struct spool	 sp;

static void	 setup(void);
static void	 teardown(void);
static const char *path(enum spool_dir, const char *);
static void	 put(enum spool_dir, const char *, const char *);
static char	*get(enum spool_dir, const char *);
static int	 count(enum spool_dir);
static void	 age(enum spool_dir, const char *, time_t);
static void	 collect(void *, const char *);

static void
setup(void)
{
	char	err[256];

	/* Modes below are those spool_open asks for. */
	(void)umask(0);
	(void)snprintf(root, sizeof(root), "%s/cc-spool-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(spool_open(&sp, root, err, sizeof(err)), 0, "%s", err);
}

static void
teardown(void)
{
	char	cmd[PATH_MAX + 16];

	spool_close(&sp);
	if (getenv("KEEP") == NULL) {
		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		cr_assert_eq(system(cmd), 0);
	}
}

TestSuite(spool, .init = setup, .fini = teardown);

/* ROOT/DIR/NAME, in one of a few static buffers. */
static const char *
path(enum spool_dir d, const char *name)
{
	static char	p[4][PATH_MAX + 300];
	static int	i;

	i = (i + 1) % 4;
	(void)snprintf(p[i], sizeof(p[i]), "%s/%s/%s", root,
	    spool_dirname(d), name);
	return p[i];
}

/* Write a file as the case system would, without the spool API. */
static void
put(enum spool_dir d, const char *name, const char *text)
{
	FILE	*f;

	cr_assert_not_null(f = fopen(path(d, name), "w"), "%s",
	    path(d, name));
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

/* A file's whole text (malloc'd), or NULL when there is none. */
static char *
get(enum spool_dir d, const char *name)
{
	FILE	*f;
	char	*buf;
	size_t	 n;

	if ((f = fopen(path(d, name), "r")) == NULL)
		return NULL;
	cr_assert_not_null(buf = calloc(1, 1 << 16));
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	(void)fclose(f);
	return buf;
}

/* Entries of a folder, . and .. aside. */
static int
count(enum spool_dir d)
{
	DIR		*dir;
	struct dirent	*de;
	int		 n = 0;
	char		 p[PATH_MAX + 16];

	(void)snprintf(p, sizeof(p), "%s/%s", root, spool_dirname(d));
	cr_assert_not_null(dir = opendir(p));
	while ((de = readdir(dir)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..");
	(void)closedir(dir);
	return n;
}

/* Set a file's mtime to `when` (seconds since the epoch). */
static void
age(enum spool_dir d, const char *name, time_t when)
{
	struct timespec	ts[2] = { { when, 0 }, { when, 0 } };

	cr_assert_eq(utimensat(AT_FDCWD, path(d, name), ts,
	    AT_SYMLINK_NOFOLLOW), 0, "%s", path(d, name));
}

/* spool_events' callback: names joined by spaces. */
static void
collect(void *arg, const char *name)
{
	char	*seen = arg;

	(void)strncat(seen, name, 4000 - strlen(seen));
	(void)strncat(seen, " ", 4000 - strlen(seen));
}

/* Every folder exists with the mode asked for, tmp/ the agent's only. */
Test(spool, open_makes_every_folder_with_its_mode)
{
	static const struct {
		enum spool_dir	 d;
		const char	*name;
		mode_t		 mode;
	} cases[] = {
		{ SP_OUT, "out", 0770 },
		{ SP_SENT, "sent", 0770 },
		{ SP_REJECTED, "rejected", 0770 },
		{ SP_IN, "in", 0770 },
		{ SP_RECEIPTS, "receipts", 0770 },
		{ SP_NOTICES, "notices", 0770 },
		{ SP_TMP, "tmp", 0700 },
	};
	struct stat	st;
	char		p[PATH_MAX + 16];
	size_t		i;

	cr_assert_eq(NITEMS(cases), SP__COUNT);
	for (i = 0; i < NITEMS(cases); i++) {
		cr_expect_str_eq(spool_dirname(cases[i].d), cases[i].name);
		(void)snprintf(p, sizeof(p), "%s/%s", root, cases[i].name);
		cr_assert_eq(stat(p, &st), 0, "%s", p);
		cr_expect(S_ISDIR(st.st_mode), "%s", p);
		cr_expect_eq(st.st_mode & 07777, cases[i].mode, "%s: %o", p,
		    (unsigned)(st.st_mode & 07777));
		cr_expect_geq(sp.dfd[cases[i].d], 0);
	}
}

/* Opening again keeps what the folders hold. */
Test(spool, open_again_keeps_existing_files)
{
	char	err[256], *text;

	put(SP_OUT, "waiting.json", "{}");
	put(SP_IN, "delivered.json", "{\"a\":1}");
	spool_close(&sp);
	cr_assert_eq(spool_open(&sp, root, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(text = get(SP_OUT, "waiting.json"), "{}");
	free(text);
	cr_expect_str_eq(text = get(SP_IN, "delivered.json"), "{\"a\":1}");
	free(text);
}

/* A spool that cannot be made is refused, naming the path at fault. */
Test(spool, open_refuses_what_it_cannot_use_naming_the_path)
{
	static const struct {
		const char	*name;
		const char	*setup;		/* shell, in the test dir */
		const char	*sub;		/* the spool root in it */
		const char	*err;		/* in the message */
	} cases[] = {
		{ "parent_missing", "true", "no/such/dir",
		  "no/such/dir: No such file or directory" },
		{ "root_is_a_file", "touch file", "file",
		  "file: Not a directory" },
		{ "a_folder_is_a_file", "mkdir sp && touch sp/out", "sp",
		  "sp/out: Not a directory" },
		{ "a_folder_is_unreadable", "mkdir -p sp/in && chmod 0 sp/in",
		  "sp", "sp/in: Permission denied" },
	};
	struct spool	s2;
	char		err[PATH_MAX + 256], cmd[PATH_MAX * 2 + 64];
	char		p[PATH_MAX + 64];
	size_t		i;
	int		j;

	for (i = 0; i < NITEMS(cases); i++) {
		if (geteuid() == 0 && strstr(cases[i].name, "unreadable"))
			continue;	/* root reads anything */
		(void)snprintf(cmd, sizeof(cmd), "cd '%s' && mkdir c%zu && "
		    "cd c%zu && %s", root, i, i, cases[i].setup);
		cr_assert_eq(system(cmd), 0, "%s", cmd);
		(void)snprintf(p, sizeof(p), "%s/c%zu/%s", root, i,
		    cases[i].sub);
		err[0] = '\0';
		cr_expect_eq(spool_open(&s2, p, err, sizeof(err)), -1, "%s",
		    cases[i].name);
		cr_expect_not_null(strstr(err, cases[i].err),
		    "%s: '%s' lacks '%s'", cases[i].name, err, cases[i].err);
		/* Nothing stays open after a refusal. */
		for (j = 0; j < SP__COUNT; j++)
			cr_expect_eq(s2.dfd[j], -1, "%s: dfd[%d]",
			    cases[i].name, j);
	}
	(void)snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

/* spool_close is safe twice: the daemon closes on every exit path. */
Test(spool, close_twice_is_harmless)
{
	int	i;

	spool_close(&sp);
	spool_close(&sp);
	for (i = 0; i < SP__COUNT; i++)
		cr_expect_eq(sp.dfd[i], -1);
	cr_expect_eq(sp.ino, -1);
}

/* A write lands whole under its name and leaves nothing in tmp/. */
Test(spool, write_lands_whole_and_leaves_tmp_empty)
{
	static const struct {
		enum spool_dir	 d;
		const char	*name, *text;
	} cases[] = {
		{ SP_IN, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.json",
		  "{\n  \"mid\": \"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f\"\n}" },
		{ SP_SENT, "plan.json", "{}" },
		{ SP_REJECTED, "plan.json.error.json", "{\"code\":\"x\"}" },
		{ SP_RECEIPTS, "m.cjit.leeds.delivered.json", "" },
		{ SP_NOTICES, "7c1e2d3f-4a5b-4c6d-8e9f-101010101010.json",
		  "{\n  \"nid\": \"7c1e2d3f-4a5b-4c6d-8e9f-101010101010\"\n}" },
	};
	struct stat	 st;
	char		*text;
	size_t		 i;

	for (i = 0; i < NITEMS(cases); i++) {
		cr_assert_eq(spool_write(&sp, cases[i].d, cases[i].name,
		    cases[i].text, strlen(cases[i].text)), 0, "%s: %s",
		    cases[i].name, strerror(errno));
		cr_expect_str_eq(text = get(cases[i].d, cases[i].name),
		    cases[i].text);
		free(text);
		cr_assert_eq(stat(path(cases[i].d, cases[i].name), &st), 0);
		cr_expect_eq(st.st_mode & 0777, 0640, "%s: mode %o",
		    cases[i].name, (unsigned)(st.st_mode & 0777));
	}
	cr_expect_eq(count(SP_TMP), 0, "tmp/ not empty");
}

/*
 * A write replaces a file by rename, never in place: a reader that had
 * the old file open still reads all of the old text.
 */
Test(spool, write_replaces_by_rename_so_a_reader_never_sees_half)
{
	struct stat	before, after;
	char		buf[64];
	ssize_t		n;
	int		fd;

	cr_assert_eq(spool_write(&sp, SP_IN, "m.json", "old text", 8), 0);
	cr_assert_eq(stat(path(SP_IN, "m.json"), &before), 0);
	cr_assert_neq(fd = open(path(SP_IN, "m.json"), O_RDONLY), -1);
	cr_assert_eq(spool_write(&sp, SP_IN, "m.json", "the new text", 12),
	    0);
	cr_assert_eq(stat(path(SP_IN, "m.json"), &after), 0);
	cr_expect_neq(before.st_ino, after.st_ino, "written in place");
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	cr_assert_eq(n, 8);
	buf[n] = '\0';
	cr_expect_str_eq(buf, "old text");
	cr_expect_eq(count(SP_IN), 1);
	cr_expect_eq(count(SP_TMP), 0);
}

/* A write that cannot land says why and leaves no tmp file behind. */
Test(spool, failed_write_sets_errno_and_cleans_tmp)
{
	errno = 0;
	cr_expect_eq(spool_write(&sp, SP_IN, "no-such-dir/m.json", "x", 1),
	    -1);
	cr_expect_eq(errno, ENOENT, "errno %d", errno);
	cr_expect_eq(count(SP_TMP), 0, "a tmp file stayed");
	cr_expect_eq(count(SP_IN), 0);
}

/*
 * The two halves: the tmp file is whole before anything shows in the
 * folder, and the commit is what makes it appear (the daemon records the
 * seen key between the two).
 */
Test(spool, write_tmp_then_commit_is_the_moment_of_delivery)
{
	const char	*mid = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.json";
	char		*text;

	cr_assert_eq(spool_write_tmp(&sp, "in.m.json", "{\"a\":1}", 7), 0);
	cr_expect_str_eq(text = get(SP_TMP, "in.m.json"), "{\"a\":1}");
	free(text);
	cr_expect_eq(count(SP_IN), 0, "in/ shows the file before commit");
	cr_expect(spool_exists(&sp, SP_TMP, "in.m.json"));
	cr_assert_eq(spool_commit(&sp, "in.m.json", SP_IN, mid), 0);
	cr_expect_not(spool_exists(&sp, SP_TMP, "in.m.json"));
	cr_expect_str_eq(text = get(SP_IN, mid), "{\"a\":1}");
	free(text);
	/* A commit whose tmp file is gone (committed before) fails. */
	errno = 0;
	cr_expect_eq(spool_commit(&sp, "in.m.json", SP_IN, mid), -1);
	cr_expect_eq(errno, ENOENT);
	cr_expect_str_eq(text = get(SP_IN, mid), "{\"a\":1}");
	free(text);
}

/* exists, move and unlink on every kind of name. */
Test(spool, exists_move_and_unlink)
{
	char	*text;

	cr_expect_not(spool_exists(&sp, SP_OUT, "a.json"));
	put(SP_OUT, "a.json", "{\"a\":1}");
	cr_expect(spool_exists(&sp, SP_OUT, "a.json"));
	/* A dangling symlink is there too: its name is taken. */
	cr_assert_eq(symlink("/nonexistent", path(SP_OUT, "l.json")), 0);
	cr_expect(spool_exists(&sp, SP_OUT, "l.json"));

	cr_assert_eq(spool_move(&sp, SP_OUT, "a.json", SP_REJECTED,
	    "a.1.json"), 0);
	cr_expect_not(spool_exists(&sp, SP_OUT, "a.json"));
	cr_expect_str_eq(text = get(SP_REJECTED, "a.1.json"), "{\"a\":1}");
	free(text);
	errno = 0;
	cr_expect_eq(spool_move(&sp, SP_OUT, "a.json", SP_SENT, "a.json"),
	    -1);
	cr_expect_eq(errno, ENOENT);

	cr_expect_eq(spool_unlink(&sp, SP_REJECTED, "a.1.json"), 0);
	cr_expect_not(spool_exists(&sp, SP_REJECTED, "a.1.json"));
	cr_expect_eq(spool_unlink(&sp, SP_REJECTED, "a.1.json"), -1);
	cr_expect_eq(errno, ENOENT);
}

/* spool_read: regular files up to max, NUL-terminated; nothing else. */
Test(spool, read_takes_regular_files_up_to_max_and_refuses_the_rest,
    .timeout = 10)
{
	static const struct {
		const char	*name;
		size_t		 max;
		int		 rc, err;
		const char	*text;
	} cases[] = {
		{ "ok.json", 64, 0, 0, "{\"a\":1}" },
		{ "ok.json", 7, 0, 0, "{\"a\":1}" },	/* exactly max */
		{ "ok.json", 6, -1, EFBIG, NULL },
		{ "empty.json", 64, 0, 0, "" },
		{ "missing.json", 64, -1, ENOENT, NULL },
		{ "link.json", 64, -1, ELOOP, NULL },
		{ "dir.json", 64, -1, EINVAL, NULL },
		/* Opening a FIFO must not wait for a writer. */
		{ "fifo.json", 64, -1, EINVAL, NULL },
	};
	char	*data;
	size_t	 len, i;
	int	 rc;

	put(SP_OUT, "ok.json", "{\"a\":1}");
	put(SP_OUT, "empty.json", "");
	cr_assert_eq(symlink("ok.json", path(SP_OUT, "link.json")), 0);
	cr_assert_eq(mkdir(path(SP_OUT, "dir.json"), 0700), 0);
	cr_assert_eq(mkfifo(path(SP_OUT, "fifo.json"), 0600), 0);
	for (i = 0; i < NITEMS(cases); i++) {
		errno = 0;
		data = (char *)"untouched";
		len = 99;
		rc = spool_read(&sp, SP_OUT, cases[i].name, cases[i].max,
		    &data, &len);
		cr_expect_eq(rc, cases[i].rc, "%s max %zu: rc %d",
		    cases[i].name, cases[i].max, rc);
		if (rc == 0) {
			cr_expect_str_eq(data, cases[i].text);
			cr_expect_eq(len, strlen(cases[i].text));
			free(data);
		} else {
			cr_expect_eq(errno, cases[i].err, "%s: errno %d (%s)",
			    cases[i].name, errno, strerror(errno));
			cr_expect_null(data);
			cr_expect_eq(len, 0);
		}
	}
}

/*
 * A scan takes finished *.json files only, oldest first and then by
 * name; files younger than min_age_ms wait (perhaps still being written).
 */
Test(spool, scan_takes_json_files_oldest_first)
{
	static const struct {
		const char	*name;
		time_t		 mtime;		/* 0: now */
	} files[] = {
		{ "a.json", 200 }, { "b.json", 100 }, { "c.json", 100 },
		{ "z.json", 50 }, { "fresh.json", 0 },
		/* None of these is a record to send. */
		{ ".hidden.json", 10 }, { "notes.txt", 10 },
		{ "upload.json.part", 10 }, { "UPPER.JSON", 10 },
		{ ".json", 10 },
	};
	static const struct {
		int		 min_age_ms;
		const char	*order;
	} cases[] = {
		{ 0, "z.json b.json c.json a.json fresh.json " },
		{ 60000, "z.json b.json c.json a.json " },
	};
	struct spool_file	*f;
	char			 got[512];
	size_t			 i;
	int			 n, k;

	for (i = 0; i < NITEMS(files); i++) {
		put(SP_OUT, files[i].name, "{}");
		if (files[i].mtime != 0)
			age(SP_OUT, files[i].name, files[i].mtime);
	}
	/* Not regular files: never taken, whatever their name. */
	cr_assert_eq(mkdir(path(SP_OUT, "dir.json"), 0700), 0);
	cr_assert_eq(symlink("a.json", path(SP_OUT, "link.json")), 0);
	cr_assert_eq(mkfifo(path(SP_OUT, "fifo.json"), 0600), 0);
	for (i = 0; i < NITEMS(cases); i++) {
		n = spool_scan(&sp, SP_OUT, cases[i].min_age_ms, &f);
		cr_assert_geq(n, 0);
		got[0] = '\0';
		for (k = 0; k < n; k++) {
			(void)strcat(got, f[k].name);
			(void)strcat(got, " ");
		}
		free(f);
		cr_expect_str_eq(got, cases[i].order, "min_age %d",
		    cases[i].min_age_ms);
	}
	/* An empty folder is no error. */
	cr_expect_eq(spool_scan(&sp, SP_SENT, 0, &f), 0);
	free(f);
}

/*
 * The watch reports a *.json closed after writing or renamed in, once
 * finished: not a file still open, nor other names.
 */
Test(spool, watch_reports_finished_json_files_only, .timeout = 10)
{
	char	seen[4096] = "";
	FILE	*open_file;

	cr_assert_eq(spool_watch(&sp, SP_OUT), 0);
	cr_expect_eq(spool_events(&sp, collect, seen), 0);
	cr_expect_str_eq(seen, "", "events before any file");

	put(SP_OUT, "written.json", "{}");
	put(SP_TMP, "renamed.json", "{}");
	cr_assert_eq(rename(path(SP_TMP, "renamed.json"),
	    path(SP_OUT, "renamed.json")), 0);
	put(SP_OUT, "notes.txt", "x");
	put(SP_OUT, ".hidden.json", "{}");
	put(SP_OUT, "upload.json.part", "{}");
	cr_assert_not_null(open_file = fopen(path(SP_OUT, "busy.json"), "w"));
	cr_assert_eq(fputs("{", open_file) >= 0, true);
	cr_assert_eq(fflush(open_file), 0);
	cr_assert_eq(mkdir(path(SP_OUT, "dir.json"), 0700), 0);

	cr_expect_eq(spool_events(&sp, collect, seen), 0);
	cr_expect_str_eq(seen, "written.json renamed.json ");

	/* Renaming the finished upload in is what counts. */
	seen[0] = '\0';
	cr_assert_eq(fclose(open_file), 0);
	cr_assert_eq(rename(path(SP_OUT, "upload.json.part"),
	    path(SP_OUT, "upload.json")), 0);
	cr_expect_eq(spool_events(&sp, collect, seen), 0);
	cr_expect_str_eq(seen, "busy.json upload.json ");
}

/* More events than the kernel queues: -1, so the daemon rescans. */
Test(spool, watch_overflow_says_rescan, .timeout = 120)
{
	char	seen[4096] = "", name[32];
	FILE	*f;
	long	 max = 16384, i;
	int	 fd;

	if ((f = fopen("/proc/sys/fs/inotify/max_queued_events", "r")) !=
	    NULL) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 16384;
		(void)fclose(f);
	}
	cr_assert_eq(spool_watch(&sp, SP_OUT), 0);
	for (i = 0; i <= max; i++) {
		(void)snprintf(name, sizeof(name), "%ld.txt", i);
		cr_assert_neq(fd = openat(sp.dfd[SP_OUT], name,
		    O_WRONLY | O_CREAT, 0600), -1);
		(void)close(fd);
	}
	cr_expect_eq(spool_events(&sp, collect, seen), -1);
}

/* The names the agent takes from out/. */
Test(spool, json_names_the_agent_takes)
{
	static char	long255[256], long256[257];
	static const struct {
		const char	*name;
		bool		 ok;
	} cases[] = {
		{ "a.json", true },
		{ "release-plan 2026-05-01.json", true },
		{ "x.y.json", true },
		{ ".json", false },
		{ "json", false },
		{ "a.JSON", false },
		{ ".a.json", false },
		{ "a.json.tmp", false },
		{ "a.json~", false },
		{ "dir/a.json", false },
		{ "", false },
	};
	size_t	i;

	for (i = 0; i < NITEMS(cases); i++)
		cr_expect_eq(spool_json_name(cases[i].name), cases[i].ok,
		    "'%s'", cases[i].name);
	memset(long255, 'n', 250);
	memcpy(long255 + 250, ".json", 6);
	memset(long256, 'n', 251);
	memcpy(long256 + 251, ".json", 6);
	cr_expect(spool_json_name(long255), "255 bytes refused");
	cr_expect_not(spool_json_name(long256), "256 bytes taken");
}

/* sent/ and rejected/ never lose an earlier file of the same name. */
Test(spool, unique_names_keep_earlier_files)
{
	static const struct {
		const char	*existing;	/* NULL: none */
		const char	*name, *tag, *out;
	} cases[] = {
		{ NULL, "plan.json", "t1", "plan.json" },
		{ "plan.json", "plan.json", "t1", "plan.t1.json" },
		{ "noext", "noext", "t2", "noext.t2" ".json" },
		{ "a.b.json", "a.b.json",
		  "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		  "a.b.6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.json" },
		/* The tagged name taken too: numbered from 2. */
		{ "plan.t1.json", "plan.json", "t1", "plan.t1.2.json" },
		{ "plan.t1.2.json", "plan.json", "t1", "plan.t1.3.json" },
		/* An answer of that name beside it takes the name as well. */
		{ "x.json.error.json", "x.json", "t3", "x.t3.json" },
	};
	char	out[300];
	size_t	i;

	for (i = 0; i < NITEMS(cases); i++) {
		if (cases[i].existing != NULL)
			put(SP_REJECTED, cases[i].existing, "{}");
		cr_assert_eq(spool_unique(&sp, SP_REJECTED, cases[i].name,
		    cases[i].tag, ".error.json", out, sizeof(out)), 0);
		cr_expect_str_eq(out, cases[i].out, "case %zu", i);
		/* The folder the name is asked of is the one looked in. */
		cr_assert_eq(spool_unique(&sp, SP_SENT, cases[i].name,
		    cases[i].tag, ".error.json", out, sizeof(out)), 0);
		cr_expect_str_eq(out, cases[i].name, "sent/ case %zu", i);
	}
	/* No name that fits: refused, never cut. */
	cr_expect_eq(spool_unique(&sp, SP_REJECTED, "plan.json", "t1", NULL,
	    out, 12), -1);
}
