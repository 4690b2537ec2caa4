/* msr/: per-vCPU MSR state: creation, reset values (KVM kvm_arch_vcpu_create /
 * kvm_vcpu_reset), guest CPUID gates (kvm_vcpu_after_set_cpuid), filter-generation sync. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msr/internal.h"
#include "msr/vmx_caps.h"
#include "msr/bitmap.h"

struct msr_vcpu *msr_vcpu_create(struct msr_vm *vm, struct cpu *cpu)
{
    struct msr_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->vm = vm;
    v->cpu = cpu;
    v->k.mcg_cap = MSR_MCG_CAP_DEFAULT;
    /* 6.12 x86.c kvm_arch_vcpu_create 11586-11590: only with the quirk */
    if (!vm->no_stuff_feature_msrs) {
        v->k.arch_capabilities = MSR_ARCH_CAP_DEFAULT;
        v->k.perf_capabilities = msr_pmu_supported_perf_cap(vm->vendor); /* kvm_caps.supported_perf_cap */
        v->k.platform_info = MSR_PLATFORM_INFO_CPUID_FAULT;
    }
    v->k.pv_poll_control = 1; /* kvm_arch_vcpu_create */
    v->k.tsc_ratio = 1ull << 32; /* SVM_TSC_RATIO_DEFAULT */
    msr_vcpu_reset(v, false);
    /* pick up the current filter, then derive gates and bitmaps from the (empty) CPUID */
    v->filter_gen = UINT64_MAX;
    v->filter = atomic_load_explicit(&vm->filter, memory_order_acquire);
    v->filter_gen = atomic_load_explicit(&vm->filter_gen, memory_order_acquire);
    msr_vcpu_set_cpuid(v, NULL, 0);
    /* kvm_arch_vcpu_postcreate -> kvm_synchronize_tsc: the first vCPU's TSC starts at 0,
     * later ones join it */
    msr_tsc_host_write(v, 0, true);
    return v;
}

void msr_vcpu_set_tsc_source(struct msr_vcpu *v, uint64_t (*read)(void *ctx), void *ctx,
                             uint64_t khz)
{
    v->tsc_read = read;
    v->tsc_ctx = ctx;
    if (khz)
        v->vm->tsc_khz = khz;
    msr_tsc_host_write(v, 0, true);
}

void msr_vcpu_destroy(struct msr_vcpu *v)
{
    free(v);
}

void msr_vcpu_reset(struct msr_vcpu *v, bool init_event)
{
    /* kvm_vcpu_reset(): on RESET and INIT */
    v->k.pv_async_pf_en = v->k.pv_async_pf_int = 0;
    v->k.pv_steal_time = 0;
    v->k.pv_system_time = 0; /* kvmclock_reset: also kvm_gpc_deactivate(pv_time) */
    v->k.pv_time_active = false;
    v->k.pv_eoi_en = 0;      /* kvm_lapic_reset */
    v->cpu->spec_ctrl = 0;   /* vmx/svm vcpu_reset */
    v->k.umwait_control = 0;
    v->cpu->smi_count = 0;      /* 6.12 x86.c kvm_vcpu_reset (11705), INIT and RESET alike */
    if (init_event)
        return;
    /* RESET only */
    v->cpu->smbase = 0x30000;
    v->cpu->pat = MSR_PAT_DEFAULT;
    v->k.misc_features_enables = 0;
    v->k.misc_enable = MSR_MISC_ENABLE_DEFAULT;
    v->cpu->xss = 0;
    msr_pmu_reset(v); /* kvm_vcpu_reset: kvm_pmu_reset on RESET only */
    /* KVM_X86_QUIRK_STUFF_FEATURE_MSRS: __svm_vcpu_reset 0x01000065, __vmx_vcpu_reset
     * 0x100000000 (both on RESET only) */
    if (v->vm->no_stuff_feature_msrs)
        return; /* svm.c 1387, vmx.c 4876/4889: nothing stuffed without the quirk */
    v->k.ucode_rev = v->vm->vendor == MSR_VENDOR_AMD ? MSR_UCODE_REV_AMD : MSR_UCODE_REV_INTEL;
    /* vmx_vcpu_create: vmx->nested.msrs = vmcs_config.nested (the vCPU's creation; KVM's
     * RESET keeps them, and nothing resets a vCPU twice here) */
    if (!v->cpu->vmx_caps.basic) {
        msr_vmx_caps_default(&v->cpu->vmx_caps);
        msr_vmx_caps_cpuid_changed(v);
    }
}

int msr_vcpu_enable_pv_enforcement(struct msr_vcpu *v, uint64_t enable)
{
    v->enforce_pv_cpuid = enable != 0;
    return 0;
}

void msr_vcpu_sync(struct msr_vcpu *v)
{
    v->has_run = true;
    /* KVM_REQ_PMU after KVM_SET_PMU_EVENT_FILTER: reprogram with the new filter */
    uint64_t pgen = atomic_load_explicit(&v->vm->pmu_filter_gen, memory_order_acquire);
    if (pgen != v->pmu.filter_gen) {
        v->pmu.filter_gen = pgen;
        msr_pmu_refilter(v);
    }
    uint64_t gen = atomic_load_explicit(&v->vm->filter_gen, memory_order_acquire);
    if (gen == v->filter_gen)
        return;
    v->filter = atomic_load_explicit(&v->vm->filter, memory_order_acquire);
    v->filter_gen = gen;
    msr_bitmaps_recompute(v);
}

/* ---------------- CPUID -> gates ---------------- */

static const struct kvm_cpuid_entry2 *find_leaf(const struct msr_vcpu *v, uint32_t fn, uint32_t idx)
{
    for (unsigned i = 0; i < v->ncpuid; i++) {
        const struct kvm_cpuid_entry2 *e = &v->cpuid[i];
        if (e->function == fn && (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx))
            return e;
    }
    return NULL;
}

enum reg { EAX, EBX, ECX, EDX };
static bool bit(const struct msr_vcpu *v, uint32_t fn, uint32_t idx, enum reg r, unsigned b)
{
    const struct kvm_cpuid_entry2 *e = find_leaf(v, fn, idx);
    if (!e)
        return false;
    uint32_t val = r == EAX ? e->eax : r == EBX ? e->ebx : r == ECX ? e->ecx : e->edx;
    return (val >> b) & 1;
}

/* KVM finds its leaves by the "KVMKVMKVM\0\0\0" signature in 0x40000000..0x4000ff00.
 * Without the leaf the PV feature word keeps its previous value: 6.12 cpuid.c
 * kvm_update_pv_runtime (266-276) assigns pv_cpuid.features only `if (best)`. */
static void find_kvm_leaf(struct msr_vcpu *v, uint32_t old_features)
{
    v->feat.kvm_leaf_present = false;
    v->feat.kvm_features = old_features;
    for (uint32_t base = 0x40000000; base < 0x40010000; base += 0x100) {
        const struct kvm_cpuid_entry2 *e = find_leaf(v, base, 0);
        if (!e)
            continue;
        if (e->ebx == 0x4b4d564b && e->ecx == 0x564b4d56 && e->edx == 0x4d) {
            const struct kvm_cpuid_entry2 *f = find_leaf(v, base + 1, 0);
            v->feat.kvm_leaf_present = true;
            v->feat.kvm_features = f ? f->eax : 0;
            return;
        }
    }
}

void msr_vcpu_set_cpuid(struct msr_vcpu *v, const struct kvm_cpuid_entry2 *e, unsigned n)
{
    if (n > MSR_MAX_CPUID)
        n = MSR_MAX_CPUID;
    if (n)
        memcpy(v->cpuid, e, n * sizeof(*e));
    v->ncpuid = n;
    struct msr_guest_features *f = &v->feat;
    uint32_t old_pv_features = f->kvm_features;
    memset(f, 0, sizeof(*f));
    const struct kvm_cpuid_entry2 *l0 = find_leaf(v, 0, 0);
    /* KVM: AMD-compatible = AuthenticAMD or HygonGenuine; "Intel-compatible" is everything
     * else, including a vCPU with no CPUID at all (cpuid.h guest_cpuid_is_intel_compatible) */
    f->amd = l0 && ((l0->ebx == 0x68747541) || (l0->ebx == 0x6f677948));
    f->intel = !f->amd;
    f->sse3 = bit(v, 1, 0, ECX, 0);
    f->vmx = bit(v, 1, 0, ECX, 5);
    f->smx = bit(v, 1, 0, ECX, 6);
    f->pdcm = bit(v, 1, 0, ECX, 15);
    f->x2apic = bit(v, 1, 0, ECX, 21);
    f->tsc_deadline = bit(v, 1, 0, ECX, 24);
    f->mce = bit(v, 1, 0, EDX, 7);
    f->mtrr = bit(v, 1, 0, EDX, 12);
    f->mca = bit(v, 1, 0, EDX, 14);
    f->pat = bit(v, 1, 0, EDX, 16);
    f->tsc_adjust = bit(v, 7, 0, EBX, 1);
    f->sgx = bit(v, 7, 0, EBX, 2);
    f->mpx = bit(v, 7, 0, EBX, 14);
    f->waitpkg = bit(v, 7, 0, ECX, 5);
    f->la57 = bit(v, 7, 0, ECX, 16);
    f->rdpid = bit(v, 7, 0, ECX, 22);
    f->sgx_lc = bit(v, 7, 0, ECX, 30);
    f->spec_ctrl = bit(v, 7, 0, EDX, 26);
    f->ibpb = f->ibrs = f->spec_ctrl;
    f->stibp = bit(v, 7, 0, EDX, 27);
    f->flush_l1d = bit(v, 7, 0, EDX, 28);
    f->arch_capabilities = bit(v, 7, 0, EDX, 29);
    f->ssbd = bit(v, 7, 0, EDX, 31);
    f->xsaves = bit(v, 0xd, 1, EAX, 3);
    f->xfd = bit(v, 0xd, 1, EAX, 4);
    f->svm = bit(v, 0x80000001, 0, ECX, 2);
    f->osvw = bit(v, 0x80000001, 0, ECX, 9);
    f->syscall = bit(v, 0x80000001, 0, EDX, 11);
    f->nx = bit(v, 0x80000001, 0, EDX, 20);
    f->ffxsr = bit(v, 0x80000001, 0, EDX, 25);
    f->rdtscp = bit(v, 0x80000001, 0, EDX, 27);
    f->lm = bit(v, 0x80000001, 0, EDX, 29);
    f->amd_ibpb = bit(v, 0x80000008, 0, EBX, 12);
    f->amd_ibrs = bit(v, 0x80000008, 0, EBX, 14);
    f->amd_stibp = bit(v, 0x80000008, 0, EBX, 15);
    f->amd_ssbd = bit(v, 0x80000008, 0, EBX, 24);
    f->virt_ssbd = bit(v, 0x80000008, 0, EBX, 25);
    f->autoibrs = bit(v, 0x80000021, 0, EAX, 8);
    f->sbpb = bit(v, 0x80000021, 0, EAX, 27);
    const struct kvm_cpuid_entry2 *l88 = find_leaf(v, 0x80000008, 0);
    f->maxphyaddr = l88 ? (uint8_t)(l88->eax & 0xff) : 36;
    /* user space may claim any width; no x86 CPU has more than 52 physical address bits
     * (SDM vol.3 4.1.4) and the reserved-bit masks are shifts by it */
    if (f->maxphyaddr > 52)
        f->maxphyaddr = 52;
    find_kvm_leaf(v, old_pv_features);
    /* kvm_set_cpuid -> __kvm_update_cpuid_runtime: without KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT
     * the new table's MONITOR bit is IA32_MISC_ENABLE.MWAIT; with it, the table's own */
    if (v->vm->misc_enable_mwait_cpuid)
        v->cpu->cpuid_mwait = (v->k.misc_enable & (1ull << 18)) ? EMU_CPUID_MWAIT_SET
                                                                : EMU_CPUID_MWAIT_CLEAR;
    else
        v->cpu->cpuid_mwait = EMU_CPUID_MWAIT_TABLE;
    msr_vmx_caps_cpuid_changed(v);
    /* CPUID-dependent pass-through (PRED_CMD, FLUSH_CMD, XFD_ERR) and the filter */
    msr_bitmaps_recompute(v);
    msr_pmu_refresh(v); /* kvm_vcpu_after_set_cpuid -> kvm_pmu_refresh */
}
