/*
 * capacity.c - room in the store.
 *
 * The store is measured at most once a second, or sooner when a publish
 * gets near the mark: publishes are refused above the mark so that acks,
 * consent changes and purges (which need pages too, LMDB being
 * copy-on-write) always find room.
 */
#include "broker_impl.h"
#include "log.h"

#define USAGE_EVERY_MS	1000

static size_t	reserve_of(size_t);

/*
 * The reserve kept free for everything but publishes: a tenth of the map,
 * and at least 8 MiB (half of a small map), because LMDB needs runs of
 * contiguous free pages for large values and its own free list, and a
 * fragmented store runs out of those long before it runs out of pages.
 */
static size_t
reserve_of(size_t map)
{
	size_t	r = map / 10, floor = 8u << 20;

	if (floor > map / 2)
		floor = map / 2;
	return r > floor ? r : floor;
}

void
capacity_measure(struct broker *b, bool now)
{
	bool	was = b->nearly_full;
	size_t	disk;

	if (!now && b->now - b->usage_at < USAGE_EVERY_MS)
		return;
	if (store_usage(b->st, &b->used, &b->map) != 0)
		return;
	/*
	 * A map larger than its filesystem can hold is limited by the
	 * filesystem: a publish is refused before a write could fail for
	 * want of space.  And the reserve is held on disk, allocated past
	 * the last page, so that acks and consent changes still find
	 * blocks when something else fills the filesystem.
	 */
	if (store_disk_bytes(b->st, &disk) == 0 && disk < b->map)
		b->map = disk;
	(void)store_hold_disk(b->st, reserve_of(b->map));
	b->usage_at = b->now;
	b->nearly_full = b->used + reserve_of(b->map) > b->map;
	if (b->nearly_full != was)
		log_warnx("store %s: %zu of %zu bytes used",
		    b->nearly_full ? "full, refusing publishes" : "has room again",
		    b->used, b->map);
}

bool
broker_room(struct broker *b, size_t cost)
{
	if (b->used + b->batch_est + cost + reserve_of(b->map) <= b->map)
		goto room;
	/* Committed batches may have freed pages since: look again. */
	if (b->now - b->usage_at >= USAGE_EVERY_MS / 10)
		capacity_measure(b, true);
	if (b->used + b->batch_est + cost + reserve_of(b->map) > b->map) {
		if (!b->nearly_full)
			log_warnx("store full, refusing publishes: %zu of %zu "
			    "bytes used", b->used, b->map);
		b->nearly_full = true;
		return false;
	}
room:
	b->batch_est += cost;
	return true;
}
