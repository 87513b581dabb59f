/* Shared definitions for every Rezolus BPF sampler.
 *
 * Invariants:
 * - Histograms use the original Rezolus layout: grouping power 3, max value
 *   power 64, 496 buckets; rz_hist_index() is exact for all u64 values.
 *   Per-cgroup histograms use grouping power 2 (252 buckets), so a thousand
 *   cgroups fit in a few MiB; the agent widens them to the 496-bucket layout.
 * - Counter and histogram maps are BPF_F_MMAPABLE arrays with one row per
 *   CPU; each row starts on a 64-byte boundary, so CPUs never share a cache
 *   line and plain increments are safe (a program runs on one CPU with
 *   migration disabled).
 * - A histogram map's row of n histograms is RZ_HIST_ROW(n) u64: the
 *   histograms, then from RZ_HIST_EVENTS(n) one word per histogram counting
 *   the CPU's events in it (whole cache lines).  rz_hist_add bumps it after
 *   the bucket, so a reader that loads the counts before the buckets and
 *   finds a histogram's unchanged on every CPU may keep the sum it made the
 *   last time (the agent does on x86-64).
 * - No struct layout is read through kernel headers: only tracepoint fields,
 *   helpers and raw tracepoint arguments.
 */
#ifndef REZOLUS_H
#define REZOLUS_H

#ifndef RZ_NR_CPUS
#error "RZ_NR_CPUS must be defined by the loader"
#endif

#define RZ_HIST_GROUPING_POWER 3
#define RZ_HIST_BUCKETS 496
/* per-cgroup histograms: grouping power 2, max value power 64 */
#define RZ_CG_HIST_GROUPING_POWER 2
#define RZ_CG_HIST_BUCKETS 252
/* u64 slots per cache line */
#define RZ_CACHELINE_U64 8
/* round n (in u64 slots) up to whole cache lines */
#define RZ_ROW(n) ((((n) + RZ_CACHELINE_U64 - 1) / RZ_CACHELINE_U64) * RZ_CACHELINE_U64)

/* u64 slots per CPU of a histogram map of n histograms, and where its event count is */
#define RZ_HIST_ROW(n) ((n) * RZ_HIST_BUCKETS + RZ_ROW(n))
#define RZ_HIST_EVENTS(n) ((n) * RZ_HIST_BUCKETS)

#define RZ_ARRAY(name, entries) BPF_F_TABLE("array", u32, u64, name, (entries), BPF_F_MMAPABLE)

static __always_inline u32 rz_log2(u64 v)
{
    u32 r = 0, s;
    s = (v > 0xFFFFFFFFULL) << 5; v >>= s; r |= s;
    s = (v > 0xFFFFULL) << 4; v >>= s; r |= s;
    s = (v > 0xFFULL) << 3; v >>= s; r |= s;
    s = (v > 0xFULL) << 2; v >>= s; r |= s;
    s = (v > 0x3ULL) << 1; v >>= s; r |= s;
    r |= (u32)(v >> 1);
    return r;
}

static __always_inline u32 rz_hist_index_g(u64 v, u32 g)
{
    if (v < (1ULL << (g + 1)))
        return (u32)v;
    u32 p = rz_log2(v);
    u64 offset = (v - (1ULL << p)) >> (p - g);
    return ((p - g + 1) << g) + (u32)offset;
}

static __always_inline u32 rz_hist_index(u64 v)
{
    return rz_hist_index_g(v, RZ_HIST_GROUPING_POWER);
}

/* Count one event in a bucket of this CPU's row, then in that histogram's
 * event count: the compiler barrier keeps the two stores in that order. */
static __always_inline void rz_hist_add(u64 *bucket, u64 *events)
{
    if (!bucket || !events)
        return;
    *bucket += 1;
    asm volatile("" ::: "memory");
    *events += 1;
}

#endif
