/* msr/: the virtual PMU, Linux 6.12 arch/x86/kvm/pmu.c with vmx/pmu_intel.c (Intel
 * flavour: architectural PMU v2, CPUID 0AH) and svm/pmu.c (AMD flavour: the four legacy
 * K7 counters, no PerfCtrExtCore / PerfMonV2). Design in msr/README.md "vPMU".
 *
 * A running counter reads `value + (source now - base)`, where the source is emu's retired
 * count (instructions/cycles at every CPL: "fast", no per-instruction cost) or the sum of
 * emu's per-class precise counts at the CPLs the counter takes. Counting starts and stops
 * at the instruction boundary after the MSR write that decides it (KVM_REQ_PMU: KVM
 * reprograms at the next entry, after kvm_skip_emulated_instruction counted the WRMSR),
 * so an enabling WRMSR is not counted and a disabling one is. */
#include <string.h>

#include "msr/internal.h"

#define EVENTSEL_USR (1ull << 16)
#define EVENTSEL_OS (1ull << 17)
#define EVENTSEL_INT (1ull << 20)
#define EVENTSEL_ENABLE (1ull << 22)
#define FIXED_OS 0x1
#define FIXED_USR 0x2
#define FIXED_PMI 0x8
#define FIXED_IDX 32          /* KVM_FIXED_PMC_BASE_IDX */
#define RDPMC_FIXED (1u << 30) /* INTEL_RDPMC_FIXED; type mask 31:16 */
#define PMU_CAP_FW_WRITES (1ull << 13)
#define FULL_WIDTH_BIT 0x400   /* MSR_PMC_FULL_WIDTH_BIT: 0x4c1 = 0xc1 | 0x400 */
#define OVF_BUF (1ull << 62)
#define COND_CHGD (1ull << 63)

/* kvm_pmu_cap as this host offers it (perf_get_x86_pmu_capability, capped by KVM) */
#define INTEL_NR_GP 4
#define INTEL_NR_FIXED 3
#define INTEL_EVENTS_LEN 7  /* CPUID.0AH:EAX[31:24]: the seven events up to mispredicts */
#define COUNTER_WIDTH 48
#define AMD_NR_GP 4         /* AMD64_NUM_COUNTERS (no PerfCtrExtCore) */

#define C(x) (1u << EMU_PMU_##x)

uint64_t msr_pmu_supported_perf_cap(enum msr_vendor vendor)
{
    /* vmx_get_perf_capabilities: full-width writes always; no LBR format, no PEBS */
    return vendor == MSR_VENDOR_INTEL ? PMU_CAP_FW_WRITES : 0;
}

static bool has_src(const struct msr_vcpu *v)
{
    return v->pmu.src.retired != NULL;
}

/* The classes an event select counts (0 = nothing softkvm models: the counter stays at
 * its value). Intel: the architectural events (SDM vol.3 table 20-1, pmu_intel.c
 * intel_arch_events) and MEM_INST_RETIRED; AMD: the Zen events KVM's selftests use. */
static uint8_t event_classes(const struct msr_vcpu *v, uint64_t sel)
{
    unsigned umask = (sel >> 8) & 0xff;
    if (v->vm->vendor == MSR_VENDOR_INTEL) {
        /* 6.12 computes available_event_types (CPUID.0AH:EBX) but never consults it: an
         * event CPUID marks unavailable still counts (perf gets the raw select) */
        switch ((sel & 0xff) << 8 | umask) {
        case 0x3c00: return C(INSN);    /* unhalted core cycles: one per instruction */
        case 0xc000: return C(INSN);    /* instructions retired */
        case 0x3c01: return C(INSN);    /* reference cycles */
        case 0x2e4f: return C(CLFLUSH); /* LLC references: a flushed line is refetched */
        case 0x2e41: return C(CLFLUSH); /* LLC misses */
        case 0xc400: return C(BRANCH);  /* branch instructions retired */
        case 0xc500: return 0;          /* mispredicted branches: none (no speculation) */
        case 0xa401: return C(INSN);    /* topdown slots */
        case 0xd081: return C(LOAD) | C(LOADSTORE);            /* MEM_INST_RETIRED.ALL_LOADS */
        case 0xd082: return C(STORE) | C(LOADSTORE);           /* .ALL_STORES */
        case 0xd083: return C(LOAD) | C(STORE) | C(LOADSTORE); /* .ANY */
        default: return 0;
        }
    }
    unsigned ev = (unsigned)((sel & 0xff) | ((sel >> 24) & 0xf00));
    switch (ev) {
    case 0x076: return C(INSN);   /* core cycles */
    case 0x0c0: return C(INSN);   /* retired instructions */
    case 0x0c2: return C(BRANCH); /* retired branch instructions */
    case 0x029:                   /* LS dispatch: bit 0 loads, 1 stores, 2 load-op-stores */
        return (uint8_t)(((umask & 1) ? C(LOAD) : 0) | ((umask & 2) ? C(STORE) : 0) |
                         ((umask & 4) ? C(LOADSTORE) : 0));
    default: return 0;
    }
}

static uint64_t source_now(const struct msr_vcpu *v, const struct msr_pmc *p)
{
    const struct msr_pmu_source *e = &v->pmu.src;
    if (!has_src(v))
        return 0;
    if (p->fast)
        return e->retired(e->ctx);
    const struct emu_pmu_counts *n = e->counts(e->ctx);
    uint64_t sum = 0;
    for (unsigned c = 0; c < EMU_PMU_NCLASS; c++)
        if (p->classes & (1u << c))
            sum += ((p->cpl_mode & 1) ? n->n[0][c] : 0) + ((p->cpl_mode & 2) ? n->n[1][c] : 0);
    return sum;
}

static uint64_t pmc_mask(const struct msr_pmu *pmu, const struct msr_pmc *p)
{
    return p >= pmu->fixed && p < pmu->fixed + MSR_PMU_MAX_FIXED ? pmu->fixed_mask : pmu->gp_mask;
}

/* pmc_read_counter */
static uint64_t pmc_read(const struct msr_vcpu *v, const struct msr_pmc *p)
{
    uint64_t val = p->value;
    if (p->classes)
        val += source_now(v, p) - p->base;
    return val & pmc_mask(&v->pmu, p);
}

/* Fold what a running counter counted into its value; an overflow sets its
 * GLOBAL_STATUS bit and, with its PMI enabled, delivers LVTPC (__kvm_perf_overflow). */
static void pmc_fold(struct msr_vcpu *v, struct msr_pmc *p, unsigned idx)
{
    if (!p->classes)
        return;
    uint64_t now = source_now(v, p), mask = pmc_mask(&v->pmu, p);
    uint64_t sum = p->value + (now - p->base);
    p->base = now;
    p->value = sum & mask;
    if (sum > mask) {
        if (v->pmu.version > 1)
            v->pmu.global_status |= 1ull << idx;
        if (p->intr && v->apic.pmi)
            v->apic.pmi(v->apic.ctx, !v->feat.amd);
    }
}

static void fold_all(struct msr_vcpu *v)
{
    struct msr_pmu *pmu = &v->pmu;
    for (unsigned i = 0; i < pmu->nr_gp; i++)
        pmc_fold(v, &pmu->gp[i], i);
    for (unsigned i = 0; i < pmu->nr_fixed; i++)
        pmc_fold(v, &pmu->fixed[i], FIXED_IDX + i);
}

/* check_pmu_event_filter (pmu.c): masked entries, includes minus excludes */
static bool filter_match(const struct msr_pmu_filter *f, uint32_t from, uint32_t to,
                         uint64_t evmask, uint64_t sel)
{
    for (uint32_t i = from; i < to; i++) {
        uint64_t e = f->events[i];
        if ((e & evmask) != (sel & evmask))
            continue;
        uint64_t mask = (e >> 56) & 0xff, match = (e >> 8) & 0xff;
        if ((((sel >> 8) & 0xff) & mask) == match)
            return true;
    }
    return false;
}

static bool event_allowed(const struct msr_vcpu *v, bool fixed, unsigned idx, uint64_t sel)
{
    const struct msr_pmu_filter *f = atomic_load_explicit(&v->vm->pmu_filter, memory_order_acquire);
    if (!f)
        return true;
    if (fixed) {
        bool in = (f->fixed_counter_bitmap >> idx) & 1;
        return f->action == KVM_PMU_EVENT_ALLOW ? in : !in;
    }
    uint64_t evmask = v->vm->vendor == MSR_VENDOR_AMD ? 0xf000000ffull : 0xffull;
    if (filter_match(f, 0, f->nr_includes, evmask, sel) &&
        !filter_match(f, f->nr_includes, f->nevents, evmask, sel))
        return f->action == KVM_PMU_EVENT_ALLOW;
    return f->action == KVM_PMU_EVENT_DENY;
}

static void pmc_program(struct msr_vcpu *v, struct msr_pmc *p, uint8_t classes, uint8_t mode,
                        bool intr)
{
    p->classes = classes && mode ? classes : 0;
    p->cpl_mode = mode;
    p->intr = intr;
    /* instructions and cycles at every CPL are the retired count itself */
    p->fast = p->classes == C(INSN) && mode == 3;
    p->base = p->classes ? source_now(v, p) : 0;
}

/* reprogram_counter for every counter, then arm emu: the nearest overflow of a fast
 * counter as a stop point, precise mode while another counter runs. */
static void arm(struct msr_vcpu *v);

static void reprogram(struct msr_vcpu *v)
{
    struct msr_pmu *pmu = &v->pmu;
    fold_all(v);
    pmu->need_reprogram = false;
    for (unsigned i = 0; i < pmu->nr_gp; i++) {
        struct msr_pmc *p = &pmu->gp[i];
        uint64_t sel = p->eventsel;
        bool on = (sel & EVENTSEL_ENABLE) && (pmu->version < 2 || ((pmu->global_ctrl >> i) & 1)) &&
                  event_allowed(v, false, i, sel);
        uint8_t mode = (uint8_t)(((sel & EVENTSEL_OS) ? 1 : 0) | ((sel & EVENTSEL_USR) ? 2 : 0));
        pmc_program(v, p, on ? event_classes(v, sel) : 0, mode, (sel & EVENTSEL_INT) != 0);
    }
    for (unsigned i = 0; i < pmu->nr_fixed; i++) {
        struct msr_pmc *p = &pmu->fixed[i];
        unsigned ctrl = (pmu->fixed_ctr_ctrl >> (4 * i)) & 0xf;
        bool on = ((pmu->global_ctrl >> (FIXED_IDX + i)) & 1) && event_allowed(v, true, i, 0);
        uint8_t mode = (uint8_t)(((ctrl & FIXED_OS) ? 1 : 0) | ((ctrl & FIXED_USR) ? 2 : 0));
        /* fixed 0 instructions, 1 core cycles, 2 reference cycles: all the retired count */
        pmc_program(v, p, on ? C(INSN) : 0, mode, (ctrl & FIXED_PMI) != 0);
    }
    arm(v);
}

static void arm(struct msr_vcpu *v)
{
    struct msr_pmu *pmu = &v->pmu;
    const struct msr_pmu_source *e = &v->pmu.src;
    bool precise = false;
    uint64_t stop = 0;
    if (has_src(v)) {
        uint64_t now = e->retired(e->ctx);
        struct msr_pmc *all[MSR_PMU_MAX_GP + MSR_PMU_MAX_FIXED];
        unsigned n = 0;
        for (unsigned i = 0; i < pmu->nr_gp; i++)
            all[n++] = &pmu->gp[i];
        for (unsigned i = 0; i < pmu->nr_fixed; i++)
            all[n++] = &pmu->fixed[i];
        for (unsigned i = 0; i < n; i++) {
            struct msr_pmc *p = all[i];
            if (!p->classes)
                continue;
            if (!p->fast) {
                precise = true;
                continue;
            }
            /* the instruction that takes the counter past its width retires at `at` */
            uint64_t at = now + (pmc_mask(pmu, p) - p->value) + 1;
            if (!stop || at < stop)
                stop = at;
        }
        /* precise counters are folded after each instruction (watch), so their overflow
         * is exact too */
        e->set_precise(e->ctx, precise, precise);
        e->set_stop(e->ctx, stop);
    }
}

/* emu's hook: at an instruction boundary (the stop point, a request, or every precise
 * instruction) */
void msr_pmu_event(void *ctx)
{
    struct msr_vcpu *v = ctx;
    if (v->pmu.need_reprogram) {
        reprogram(v);
        return;
    }
    fold_all(v);
    arm(v);
}

/* A write that changes what counts: at the next boundary inside a run, at once otherwise. */
static void request_reprogram(struct msr_vcpu *v)
{
    v->pmu.need_reprogram = true;
    if (!has_src(v) || !v->pmu.src.request(v->pmu.src.ctx))
        reprogram(v);
}

void msr_vcpu_set_pmu_source(struct msr_vcpu *v, const struct msr_pmu_source *src)
{
    v->pmu.src = *src;
    reprogram(v);
}

static const struct kvm_cpuid_entry2 *leaf(const struct msr_vcpu *v, uint32_t fn)
{
    for (unsigned i = 0; i < v->ncpuid; i++)
        if (v->cpuid[i].function == fn && v->cpuid[i].index == 0)
            return &v->cpuid[i];
    return NULL;
}

static uint64_t perf_caps(const struct msr_vcpu *v)
{
    return v->feat.pdcm ? v->k.perf_capabilities : 0; /* vcpu_get_perf_capabilities */
}

/* kvm_pmu_reset */
static void pmu_reset(struct msr_vcpu *v)
{
    struct msr_pmu *pmu = &v->pmu;
    for (unsigned i = 0; i < MSR_PMU_MAX_GP; i++)
        pmu->gp[i] = (struct msr_pmc){0};
    for (unsigned i = 0; i < MSR_PMU_MAX_FIXED; i++)
        pmu->fixed[i] = (struct msr_pmc){0};
    pmu->fixed_ctr_ctrl = pmu->global_ctrl = pmu->global_status = 0;
}

/* kvm_pmu_refresh with intel_pmu_refresh / amd_pmu_refresh */
void msr_pmu_refresh(struct msr_vcpu *v)
{
    struct msr_pmu *pmu = &v->pmu;
    pmu_reset(v);
    pmu->version = pmu->nr_gp = pmu->nr_fixed = 0;
    pmu->gp_mask = pmu->fixed_mask = 0;
    pmu->reserved_bits = 0xffffffff00200000ull;
    pmu->global_ctrl_rsvd = pmu->global_status_rsvd = pmu->fixed_ctr_ctrl_rsvd = ~0ull;
    pmu->available_events = 0;
    if (v->vm->pmu_disabled)
        goto out;
    if (v->vm->vendor == MSR_VENDOR_INTEL) {
        const struct kvm_cpuid_entry2 *e = leaf(v, 0xa);
        if (!e || !(e->eax & 0xff))
            goto out;
        pmu->version = e->eax & 0xff;
        unsigned gp = (e->eax >> 8) & 0xff, w = (e->eax >> 16) & 0xff, len = e->eax >> 24;
        pmu->nr_gp = (uint8_t)(gp < INTEL_NR_GP ? gp : INTEL_NR_GP);
        w = w < COUNTER_WIDTH ? w : COUNTER_WIDTH;
        pmu->gp_mask = (1ull << w) - 1;
        len = len < INTEL_EVENTS_LEN ? len : INTEL_EVENTS_LEN;
        pmu->available_events = ~e->ebx & ((1u << len) - 1);
        if (pmu->version > 1) {
            unsigned fx = e->edx & 0x1f, fw = (e->edx >> 5) & 0xff;
            pmu->nr_fixed = (uint8_t)(fx < INTEL_NR_FIXED ? fx : INTEL_NR_FIXED);
            fw = fw < COUNTER_WIDTH ? fw : COUNTER_WIDTH;
            pmu->fixed_mask = (1ull << fw) - 1;
        }
        for (unsigned i = 0; i < pmu->nr_fixed; i++) /* OS | USR | PMI per counter */
            pmu->fixed_ctr_ctrl_rsvd &= ~(0xbull << (4 * i));
        pmu->global_ctrl_rsvd = ~(((1ull << pmu->nr_gp) - 1) |
                                  (((1ull << pmu->nr_fixed) - 1) << FIXED_IDX));
        pmu->global_status_rsvd = pmu->global_ctrl_rsvd & ~(OVF_BUF | COND_CHGD);
    } else {
        /* amd_pmu_refresh without PERFMON_V2: version 1, four (or six with
         * PerfCtrExtCore, which softkvm does not offer) 48-bit counters */
        pmu->version = 1;
        pmu->nr_gp = AMD_NR_GP;
        pmu->gp_mask = (1ull << COUNTER_WIDTH) - 1;
        pmu->reserved_bits = 0xfffffff000280000ull;
    }
    /* at RESET both vendors set the GP enables in PERF_GLOBAL_CTRL */
    if (pmu->version > 1 && pmu->nr_gp)
        pmu->global_ctrl = (1ull << pmu->nr_gp) - 1;
out:
    reprogram(v);
}

void msr_pmu_refilter(struct msr_vcpu *v)
{
    request_reprogram(v);
}

void msr_pmu_reset(struct msr_vcpu *v)
{
    pmu_reset(v);
    reprogram(v);
}

int msr_pmu_rdpmc(struct msr_vcpu *v, uint32_t ecx, uint64_t *value)
{
    struct msr_pmu *pmu = &v->pmu;
    if (!pmu->version)
        return 1;
    if (v->vm->vendor == MSR_VENDOR_AMD) { /* amd_rdpmc_ecx_to_pmc */
        if (ecx >= pmu->nr_gp)
            return 1;
        *value = pmc_read(v, &pmu->gp[ecx]);
        return 0;
    }
    /* intel_rdpmc_ecx_to_pmc: type in 31:16 (GP 0, fixed bit 30; fast mode bit 31 is no
     * type KVM knows), index in 15:0 */
    unsigned type = ecx & 0xffff0000u, idx = ecx & 0xffff;
    if (type == RDPMC_FIXED && idx < pmu->nr_fixed)
        *value = pmc_read(v, &pmu->fixed[idx]) & pmu->fixed_mask;
    else if (type == 0 && idx < pmu->nr_gp)
        *value = pmc_read(v, &pmu->gp[idx]) & pmu->gp_mask;
    else
        return 1;
    return 0;
}

/* ---------------- MSRs (kvm_pmu_get_msr / kvm_pmu_set_msr and the vendor halves) -------- */

enum pmu_reg { R_NONE, R_CTR, R_SEL, R_FIXED, R_FIXED_CTRL, R_STATUS, R_CTRL, R_OVF };

/* kvm_pmu_is_valid_msr: which register `index` is for this vCPU's PMU, and its counter */
static enum pmu_reg decode(const struct msr_vcpu *v, uint32_t index, unsigned *i)
{
    const struct msr_pmu *pmu = &v->pmu;
    if (!pmu->version)
        return R_NONE;
    if (v->vm->vendor == MSR_VENDOR_AMD) { /* get_gp_pmc_amd: K7 select/counter pairs */
        if (index >= MSR_K7_EVNTSEL0 && index < MSR_K7_EVNTSEL0 + pmu->nr_gp) {
            *i = index - MSR_K7_EVNTSEL0;
            return R_SEL;
        }
        if (index >= MSR_K7_EVNTSEL0 + 4 && index < MSR_K7_EVNTSEL0 + 4 + pmu->nr_gp) {
            *i = index - MSR_K7_EVNTSEL0 - 4;
            return R_CTR;
        }
        return R_NONE;
    }
    bool global = pmu->version > 1; /* kvm_pmu_has_perf_global_ctrl */
    if (index >= 0xc1 && index < 0xc1u + pmu->nr_gp) {
        *i = index - 0xc1;
        return R_CTR;
    }
    if (index >= 0x4c1 && index < 0x4c1u + pmu->nr_gp && (perf_caps(v) & PMU_CAP_FW_WRITES)) {
        *i = index - 0x4c1; /* get_fw_gp_pmc */
        return R_CTR;
    }
    if (index >= 0x186 && index < 0x186u + pmu->nr_gp) {
        *i = index - 0x186;
        return R_SEL;
    }
    if (index >= 0x309 && index < 0x309u + pmu->nr_fixed) {
        *i = index - 0x309;
        return R_FIXED;
    }
    switch (index) {
    case 0x38d: return global ? R_FIXED_CTRL : R_NONE;
    case 0x38e: return global ? R_STATUS : R_NONE;
    case 0x38f: return global ? R_CTRL : R_NONE;
    case 0x390: return global ? R_OVF : R_NONE;
    default: return R_NONE;
    }
}

/* kvm_get/set_msr_common: these legacy MSRs read 0 and drop writes when the PMU lacks them */
static bool legacy_ignored(uint32_t index)
{
    return (index >= MSR_K7_EVNTSEL0 && index <= MSR_K7_EVNTSEL0 + 7) ||
           index == 0xc1 || index == 0xc2 || index == 0x186 || index == 0x187;
}

int msr_get_pmu(struct msr_vcpu *v, uint32_t index, uint64_t *val, bool host)
{
    (void)host;
    struct msr_pmu *pmu = &v->pmu;
    unsigned i = 0;
    switch (decode(v, index, &i)) {
    case R_CTR: *val = pmc_read(v, &pmu->gp[i]) & pmu->gp_mask; return MSR_RET_OK;
    case R_SEL: *val = pmu->gp[i].eventsel; return MSR_RET_OK;
    case R_FIXED: *val = pmc_read(v, &pmu->fixed[i]) & pmu->fixed_mask; return MSR_RET_OK;
    case R_FIXED_CTRL: *val = pmu->fixed_ctr_ctrl; return MSR_RET_OK;
    case R_STATUS:
        fold_all(v); /* an overflow not yet folded is already visible */
        *val = pmu->global_status;
        return MSR_RET_OK;
    case R_CTRL: *val = pmu->global_ctrl; return MSR_RET_OK;
    case R_OVF: *val = 0; return MSR_RET_OK;
    case R_NONE: break;
    }
    if (legacy_ignored(index)) {
        *val = 0;
        return MSR_RET_OK;
    }
    return MSR_RET_UNSUPPORTED;
}

/* pmc_write_counter */
static void pmc_write(struct msr_vcpu *v, struct msr_pmc *p, uint64_t data)
{
    p->value = data & pmc_mask(&v->pmu, p);
    if (p->classes)
        p->base = source_now(v, p);
    request_reprogram(v); /* pmc_update_sample_period: a new overflow point */
}

int msr_set_pmu(struct msr_vcpu *v, uint32_t index, uint64_t data, bool host)
{
    struct msr_pmu *pmu = &v->pmu;
    unsigned i = 0;
    switch (decode(v, index, &i)) {
    case R_CTR:
        if (v->vm->vendor == MSR_VENDOR_INTEL) {
            if ((index & FULL_WIDTH_BIT) && (data & ~pmu->gp_mask))
                return MSR_RET_INVAL;
            if (!host && !(index & FULL_WIDTH_BIT))
                data = (uint64_t)(int64_t)(int32_t)data; /* legacy writes sign-extend bit 31 */
        }
        pmc_write(v, &pmu->gp[i], data);
        return MSR_RET_OK;
    case R_SEL:
        if (v->vm->vendor == MSR_VENDOR_AMD)
            data &= ~pmu->reserved_bits; /* AMD drops reserved bits */
        else if (data & pmu->reserved_bits)
            return MSR_RET_INVAL;
        if (data != pmu->gp[i].eventsel) {
            fold_all(v);
            pmu->gp[i].eventsel = data;
            request_reprogram(v);
        }
        return MSR_RET_OK;
    case R_FIXED:
        pmc_write(v, &pmu->fixed[i], data);
        return MSR_RET_OK;
    case R_FIXED_CTRL:
        if (data & pmu->fixed_ctr_ctrl_rsvd)
            return MSR_RET_INVAL;
        if (data != pmu->fixed_ctr_ctrl) {
            fold_all(v);
            pmu->fixed_ctr_ctrl = data;
            request_reprogram(v);
        }
        return MSR_RET_OK;
    case R_STATUS:
        if (!host)
            return MSR_RET_INVAL; /* read-only for the guest */
        if (data & pmu->global_status_rsvd)
            return MSR_RET_INVAL;
        pmu->global_status = data;
        return MSR_RET_OK;
    case R_CTRL:
        if (data & pmu->global_ctrl_rsvd) /* kvm_valid_perf_global_ctrl */
            return MSR_RET_INVAL;
        if (data != pmu->global_ctrl) {
            fold_all(v);
            pmu->global_ctrl = data;
            request_reprogram(v);
        }
        return MSR_RET_OK;
    case R_OVF:
        if (data & pmu->global_status_rsvd)
            return MSR_RET_INVAL;
        if (!host) {
            fold_all(v);
            pmu->global_status &= ~data;
        }
        return MSR_RET_OK;
    case R_NONE: break;
    }
    if (legacy_ignored(index))
        return MSR_RET_OK;
    return MSR_RET_UNSUPPORTED;
}
