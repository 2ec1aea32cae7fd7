/*
 * powercut.h - the undo journal shared by the power-cut simulator
 * (libpowercut.so, preloaded into the process under test) and the tool that
 * applies it after a SIGKILL (powercut-apply).
 *
 * The journal is a sequence of records, each a struct pc_rec followed by
 * `nextra` bytes.  Every record names a file by (pid, file): the process
 * that wrote it and that process's index of the file, which a PC_FILE
 * record of the same process maps to a path.  Records are appended with
 * write(2) before the change they undo, so a record may describe a write
 * that never happened (the process died in between); undoing it is then
 * harmless, it restores what is there.  A record cut short by the kill is
 * the last one and describes nothing that happened.
 *
 * What counts as durable, as on Linux:
 *   - fsync/fdatasync of any fd of a file, once it returned, makes every
 *     earlier change to that file durable, whichever process made it
 *     (PC_SYNC);
 *   - a write through an fd opened with O_DSYNC or O_SYNC is durable once
 *     it returned (PC_WRITE with PC_F_DSYNC, then PC_DONE of its seq), and
 *     only that write: the file's other dirty pages are not;
 *   - nothing else: write, pwrite, writev, ftruncate, O_TRUNC and file
 *     creation are lost unless one of the above follows.
 * Directory entries are not modelled beyond this: a file created after its
 * last sync (or never synced) is removed by the apply.
 */
#ifndef CC_POWERCUT_H
#define CC_POWERCUT_H

#include <stdint.h>

#define PC_MAGIC	0x314a4350u	/* "PCJ1" */

enum pc_type {
	PC_FILE = 1,		/* extra: the file's absolute path */
	PC_WRITE,		/* extra: the old bytes at off (see below) */
	PC_TRUNC,		/* off: new length; extra: old bytes from off */
	PC_CREATE,		/* the open created the file */
	PC_SYNC,		/* fsync/fdatasync of the file returned 0 */
	PC_DONE,		/* the O_DSYNC write `seq` returned */
	PC_UNSUPPORTED		/* extra: why the journal cannot be trusted */
};

#define PC_F_DSYNC	0x1	/* written through an O_DSYNC/O_SYNC fd */

struct pc_rec {
	uint32_t	magic;		/* PC_MAGIC */
	uint32_t	type;		/* enum pc_type */
	uint32_t	pid;		/* the writing process */
	uint32_t	file;		/* its index of the file */
	uint32_t	flags;		/* PC_F_* */
	uint32_t	pad;
	uint64_t	seq;		/* per process, from 1 */
	uint64_t	off;		/* where the write starts */
	uint64_t	len;		/* how many bytes it writes */
	uint64_t	old_size;	/* the file's size before it */
	uint64_t	nextra;		/* bytes following this header */
};

/*
 * PC_WRITE: the old bytes are those of [off, min(off + len, old_size)),
 * nextra of them; the rest of the range lay beyond the end of the file.
 */

#endif /* CC_POWERCUT_H */
