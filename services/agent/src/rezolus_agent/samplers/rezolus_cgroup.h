/* Per-cgroup slot tables, assigned in the kernel on a cgroup's first event.
 *
 * A line RZ_CGROUP_TABLE(P, MAX) in a sampler's source is expanded by the
 * loader (from rezolus_cgroup_table.h) and declares, for that sampler:
 * - P_cgroup_slot:  hash, cgroup v2 id -> slot, 2 * MAX entries (live
 *                   cgroups, overflow markers, removed cgroups not yet freed).
 * - P_cgroup_free:  queue of free slots; the agent pushes 0..MAX-1 at start
 *                   and a slot again after it published a removed cgroup.
 * - P_cgroup_owner: [MAX + 1][2] u64 (mmapable): the cgroup id owning a slot
 *                   (0 = free) and 1 once cgroup:cgroup_rmdir has fired for
 *                   it.  Entry [MAX][0] counts cgroups that found no free
 *                   slot (the overflow row's "owner" is the overflow count).
 * and the functions P_cgroup_slot_of(id) and P_cgroup_rmdir(id).
 *
 * Invariants:
 * - Counting needs no user-space step: the first event of a cgroup pops a
 *   free slot, writes the owner, then publishes id -> slot with BPF_NOEXIST.
 *   Two CPUs racing on one new cgroup: the loser pushes its slot back and
 *   uses the winner's.
 * - Slot MAX is the overflow row: a cgroup that finds the queue empty is
 *   stored as id -> MAX (counted once in [MAX][0]) and all its events go to
 *   row MAX.  If even the hash is full, its events still go to row MAX (not
 *   counted as a cgroup: the hash is twice the slots, so this needs more than
 *   MAX cgroups waiting to be freed at once).
 * - A slot is reused only after the agent has read its final counts, removed
 *   the id from the hash and zeroed its rows; owner[slot][0] == id is what
 *   makes a slot cached elsewhere (task storage) valid.
 */
#ifndef REZOLUS_CGROUP_H
#define REZOLUS_CGROUP_H

/* cgroup v2 paths seen at cgroup:cgroup_mkdir, for naming cgroups that are
 * gone before the agent's next walk.  Shared by every cgroup sampler; the
 * agent keeps a path once read, so entries are needed only from mkdir to the
 * next frame (2048 entries of 256 bytes: about 0.7 MB of kernel memory). */
#define RZ_CGROUP_PATH_LEN 256
#ifndef RZ_CGROUP_NAMES_MAX
#define RZ_CGROUP_NAMES_MAX 2048
#endif
struct rz_cgroup_path {
    char path[RZ_CGROUP_PATH_LEN];
};
BPF_TABLE("lru_hash", u64, struct rz_cgroup_path, rz_cgroup_names, RZ_CGROUP_NAMES_MAX);
BPF_PERCPU_ARRAY(rz_cgroup_path_scratch, struct rz_cgroup_path, 1);

static __always_inline int rz_cgroup__mkdir(void *raw)
{
    struct tracepoint__cgroup__cgroup_mkdir *args = raw;
    if (args->root != 0) /* hierarchy 0 is cgroup v2 */
        return 0;
    u32 zero = 0;
    struct rz_cgroup_path *buf = rz_cgroup_path_scratch.lookup(&zero);
    if (!buf)
        return 0;
    u64 id = args->id;
    u16 off = args->data_loc_path & 0xFFFF;
    bpf_probe_read_kernel_str(buf->path, sizeof(buf->path), (char *)args + off);
    rz_cgroup_names.update(&id, buf);
    return 0;
}

#endif
