/* Template of one per-cgroup slot table: the loader expands a line
 * "RZ_CGROUP_TABLE(prefix, MAX_MACRO)" of a sampler's source into this text
 * with $${P} = prefix and $${MAX} = the macro (bcc refuses map calls inside C
 * macros, so this cannot be a #define).  See rezolus_cgroup.h.
 */
BPF_HASH(${P}_cgroup_slot, u64, u32, 2 * ${MAX});
BPF_QUEUE(${P}_cgroup_free, u32, ${MAX});
RZ_ARRAY(${P}_cgroup_owner, 2 * (${MAX} + 1));

/* The last word of the owner table counts changes to the owners and removal
 * flags of the slots, bumped after each change, so the agent re-reads the
 * table only when it moved. */
static __always_inline void ${P}_cgroup_changed(void)
{
    u32 gidx = 2 * ${MAX} + 1;
    u64 *generation = ${P}_cgroup_owner.lookup(&gidx);
    if (generation)
        __sync_fetch_and_add(generation, 1);
}

static __always_inline u32 ${P}_cgroup_claim(u64 cgroup)
{
    u32 slot = ${MAX};
    if (${P}_cgroup_free.pop(&slot) != 0 || slot >= ${MAX})
        slot = ${MAX};
    u32 oidx = 2 * slot;
    u32 ridx = oidx + 1;
    u64 *owner = ${P}_cgroup_owner.lookup(&oidx);
    u64 *removed = ${P}_cgroup_owner.lookup(&ridx);
    if (slot < ${MAX} && owner && removed) {
        *removed = 0;
        *owner = cgroup;
    }
    if (${P}_cgroup_slot.insert(&cgroup, &slot) != 0) {
        if (slot < ${MAX}) {
            if (owner)
                *owner = 0;
            ${P}_cgroup_free.push(&slot, 0);
            ${P}_cgroup_changed();
        }
        u32 *won = ${P}_cgroup_slot.lookup(&cgroup);
        return won ? *won : ${MAX};
    }
    if (slot == ${MAX} && owner)
        __sync_fetch_and_add(owner, 1);
    if (slot < ${MAX})
        ${P}_cgroup_changed();
    return slot;
}

static __always_inline u32 ${P}_cgroup_slot_of(u64 cgroup)
{
    u32 *found = ${P}_cgroup_slot.lookup(&cgroup);
    if (found)
        return *found;
    return ${P}_cgroup_claim(cgroup);
}

static __always_inline int ${P}_cgroup_owns(u32 slot, u64 cgroup)
{
    u32 oidx = 2 * slot;
    u64 *owner = ${P}_cgroup_owner.lookup(&oidx);
    return slot < ${MAX} && owner && *owner == cgroup;
}

static __always_inline void ${P}_cgroup_rmdir(u64 cgroup)
{
    u32 *found = ${P}_cgroup_slot.lookup(&cgroup);
    if (!found)
        return;
    u32 slot = *found;
    if (slot >= ${MAX}) {
        ${P}_cgroup_slot.delete(&cgroup);
        return;
    }
    u32 ridx = 2 * slot + 1;
    u64 *removed = ${P}_cgroup_owner.lookup(&ridx);
    if (removed) {
        *removed = 1;
        ${P}_cgroup_changed();
    }
}
