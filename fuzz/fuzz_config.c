/*
 * fuzz_config.c - libFuzzer harness for the INI configuration loader:
 * broker.conf and agent.conf through proto/iniconf.c and their tables.
 *
 * The loader reads a file by name, so each input is written to one file in
 * a directory made once per process.  That directory also holds the files
 * and directories the seed configurations name (relative paths are taken
 * from the file's directory), so the path checks can pass and the fuzzer
 * gets past them to the rest of the table.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../broker/config.h"
#include "../agent/config.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_cleanup(void);
static void	fuzz_fail(const char *) __attribute__((noreturn));

/* What the seed configurations name, beside the file itself. */
static const char *const fuzz_files[] = {
	"broker.crt", "broker.key", "ca.crt", "ca.crl", "cjit.crt", "cjit.key"
};
static const char *const fuzz_dirs[] = { "agencies", "data", "spool" };

static char	fuzz_dir[64];
static char	fuzz_conf[PATH_MAX];

static void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_config: %s\n", what);
	abort();
}

static void
fuzz_cleanup(void)
{
	char	p[PATH_MAX];
	size_t	i;

	if (fuzz_dir[0] == '\0')
		return;
	(void)unlink(fuzz_conf);
	for (i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir, fuzz_files[i]);
		(void)unlink(p);
	}
	for (i = 0; i < sizeof(fuzz_dirs) / sizeof(fuzz_dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir, fuzz_dirs[i]);
		(void)rmdir(p);
	}
	(void)rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	p[PATH_MAX];
	size_t	i;
	int	fd;

	(void)argc;
	(void)argv;
	/*
	 * On tmpfs when there is one: truncating a file on ext4 waits for
	 * the disk's discard, which costs most of the time of a run.
	 */
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/ccfuzz-config-%d",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
	    (int)getpid());
	if (mkdir(fuzz_dir, 0700) == -1)
		fuzz_fail("cannot make the work directory");
	atexit(fuzz_cleanup);
	for (i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir, fuzz_files[i]);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
			fuzz_fail("cannot make a named file");
		close(fd);
	}
	for (i = 0; i < sizeof(fuzz_dirs) / sizeof(fuzz_dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir, fuzz_dirs[i]);
		if (mkdir(p, 0700) == -1)
			fuzz_fail("cannot make a named directory");
	}
	snprintf(fuzz_conf, sizeof(fuzz_conf), "%s/fuzz.conf", fuzz_dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct broker_conf	*bc;
	struct agent_conf	*ac;
	char			 err[512];
	size_t			 off = 0;
	ssize_t			 n;
	int			 fd;

	if ((fd = open(fuzz_conf, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		fuzz_fail("cannot write the configuration");
	while (off < size) {
		if ((n = write(fd, data + off, size - off)) <= 0)
			fuzz_fail("cannot write the configuration");
		off += (size_t)n;
	}
	close(fd);

	/* Both are large (PATH_MAX members): keep them off the stack. */
	if ((bc = malloc(sizeof(*bc))) == NULL ||
	    (ac = malloc(sizeof(*ac))) == NULL)
		fuzz_fail("out of memory");

	memset(err, 'x', sizeof(err));
	if (broker_conf_load(fuzz_conf, bc, err, sizeof(err)) == 0) {
		if (bc->bind[0] == '\0' || bc->data[0] != '/' ||
		    bc->certificate[0] != '/' || bc->key[0] != '/' ||
		    bc->ca[0] != '/' || bc->agencies[0] != '/')
			fuzz_fail("broker.conf accepted without its paths");
		if (bc->nagency > 0 && bc->agency == NULL)
			fuzz_fail("agencies counted but not kept");
		(void)broker_conf_agency(bc, "cjit.leeds");
		broker_conf_free(bc);
	} else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
		fuzz_fail("broker.conf refused without a reason");

	memset(err, 'x', sizeof(err));
	if (agent_conf_load(fuzz_conf, ac, err, sizeof(err)) == 0) {
		if (ac->broker[0] == '\0' || ac->ca[0] != '/' ||
		    ac->certificate[0] != '/' || ac->key[0] != '/' ||
		    ac->data[0] != '/' || ac->spool[0] != '/' ||
		    ac->nareas > AGENT_AREAS_MAX)
			fuzz_fail("agent.conf accepted without its paths");
	} else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
		fuzz_fail("agent.conf refused without a reason");

	free(ac);
	free(bc);
	return 0;
}
