/* abi/: Hyper-V state lifecycle, KVM_GET_SUPPORTED_HV_CPUID, the vCPU's Hyper-V CPUID
 * cache, the vCPU capabilities and the reference TSC page (Linux 6.12 hyperv.c
 * kvm_get_hv_cpuid, kvm_hv_set_cpuid, kvm_hv_activate_synic, kvm_hv_setup_tsc_page,
 * get_time_ref_counter). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi/abi_internal.h"
#include "abi/hyperv.h"

struct abi_hv_vm *abi_hv_vm_create(void)
{
    struct abi_hv_vm *hv = calloc(1, sizeof *hv);
    if (hv)
        pthread_mutex_init(&hv->lock, NULL);
    return hv;
}

void abi_hv_vm_destroy(struct abi_hv_vm *hv)
{
    if (!hv)
        return;
    pthread_mutex_destroy(&hv->lock);
    free(hv);
}

/* kvm_hv_vcpu_init + synic_init + stimer_init: every SINT masked, SynIC version 1, the VP
 * index is the vCPU's creation index. KVM allocates this lazily; softkvm up front (the
 * state is the same either way, as nothing is visible before it would be allocated). */
struct abi_hv_vcpu *abi_hv_vcpu_create(struct abi_vcpu *v, uint32_t vcpu_idx)
{
    (void)v;
    struct abi_hv_vcpu *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->vcpu_idx = vcpu_idx;
    atomic_store(&h->vp_index, vcpu_idx);
    h->synic.version = 1; /* HV_SYNIC_VERSION_1 */
    for (unsigned i = 0; i < HV_NR_SINTS; i++)
        atomic_store(&h->synic.sint[i], HV_SYNIC_SINT_MASKED);
    return h;
}

void abi_hv_vcpu_destroy(struct abi_hv_vcpu *h)
{
    free(h);
}

/* cpu_smt_possible(): SMT is possible unless the host forced it off or has none */
static bool smt_possible(void)
{
    char buf[16] = {0};
    FILE *f = fopen("/sys/devices/system/cpu/smt/control", "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return !(n && (!strncmp(buf, "forceoff", 8) || !strncmp(buf, "notsupported", 12)));
}

static void signature(struct kvm_cpuid_entry2 *e, const char s[12])
{
    memcpy(&e->ebx, s, 4);
    memcpy(&e->ecx, s + 4, 4);
    memcpy(&e->edx, s + 8, 4);
}

/* kvm_get_hv_cpuid(): the same ten leaves, minus what softkvm lacks:
 *  - no synthetic timers that fire (HV_MSR_SYNTIMER_AVAILABLE, STIMER_DIRECT_MODE): the
 *    STIMER MSRs keep their values but nothing expires;
 *  - no enlightened VMCS (evmcs_ver 0, no ENLIGHTENED_VMCS_RECOMMENDED), so no eVMCS
 *    version in NESTED_FEATURES even where nested VMX exists;
 *  - no nested enlightenments but the MSR-bitmap hint (see NESTED_FEATURES below). */
static unsigned hv_cpuid(bool lapic_in_kernel, struct kvm_cpuid_entry2 *out)
{
    static const uint32_t leaves[] = {
        HV_CPUID_VENDOR,          HV_CPUID_INTERFACE,        HV_CPUID_VERSION,
        HV_CPUID_FEATURES,        HV_CPUID_ENLIGHTMENT_INFO, HV_CPUID_IMPLEMENT_LIMITS,
        HV_CPUID_SYNDBG_VENDOR,   HV_CPUID_SYNDBG_INTERFACE, HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES,
        HV_CPUID_NESTED_FEATURES,
    };
    unsigned n = sizeof leaves / sizeof leaves[0];
    memset(out, 0, n * sizeof *out);
    for (unsigned i = 0; i < n; i++) {
        struct kvm_cpuid_entry2 *e = &out[i];
        e->function = leaves[i];
        switch (e->function) {
        case HV_CPUID_VENDOR:
            e->eax = HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES;
            signature(e, "Linux KVM Hv");
            break;
        case HV_CPUID_INTERFACE:
            e->eax = HV_CPUID_SIGNATURE_EAX;
            break;
        case HV_CPUID_VERSION: /* "some Hyper-V 2016 functions" */
            e->eax = 0x00003839;
            e->ebx = 0x000a0000;
            break;
        case HV_CPUID_FEATURES:
            e->eax = HV_F_VP_RUNTIME | HV_F_TIME_REF_COUNT | HV_F_SYNIC | HV_F_APIC_ACCESS |
                     HV_F_HYPERCALL | HV_F_VP_INDEX | HV_F_RESET | HV_F_REFERENCE_TSC |
                     HV_F_FREQUENCY_MSRS | HV_F_REENLIGHTENMENT | HV_F_TSC_INVARIANT;
            e->ebx = HV_F_POST_MESSAGES | HV_F_SIGNAL_EVENTS | HV_F_EXTENDED_HYPERCALLS |
                     HV_F_DEBUGGING;
            e->edx = HV_F_XMM_INPUT | HV_F_FREQUENCY_MSRS_EDX | HV_F_CRASH_MSRS |
                     HV_F_GUEST_DEBUGGING | HV_F_DEBUG_MSRS | HV_F_EXT_GVA_RANGES_FLUSH;
            break;
        case HV_CPUID_ENLIGHTMENT_INFO:
            e->eax = HV_E_REMOTE_TLB_FLUSH | HV_E_APIC_ACCESS | HV_E_RELAXED_TIMING |
                     HV_E_EX_PROCESSOR_MASKS | HV_E_DEPRECATING_AEOI;
            if (lapic_in_kernel)
                e->eax |= HV_E_CLUSTER_IPI;
            if (!smt_possible())
                e->eax |= HV_E_NO_NONARCH_CORESHARING;
            e->ebx = 0x00000fff; /* spinlock retries, as Hyper-V 2016 */
            break;
        case HV_CPUID_IMPLEMENT_LIMITS:
            e->eax = ABI_MAX_VCPUS;
            e->ebx = 64;
            break;
        case HV_CPUID_NESTED_FEATURES:
            /* kvm_get_hv_cpuid: direct TLB flush (an L2's flush hypercalls served by L0)
             * and the enlightened MSR bitmap, both for nested SVM in emu/svm.c (nested
             * VMX would need eVMCS for them). No eVMCS version: softkvm has no eVMCS,
             * nor its PERF_GLOBAL_CTRL field (EBX). */
            e->eax = HV_N_DIRECT_FLUSH | HV_N_MSR_BITMAP;
            break;
        case HV_CPUID_SYNDBG_VENDOR:
            signature(e, "Linux KVM Hv");
            break;
        case HV_CPUID_SYNDBG_INTERFACE:
            memcpy(&e->eax, "VS#1", 4);
            break;
        case HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES:
            e->eax = HV_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING;
            break;
        }
    }
    return n;
}

long abi_hv_get_supported_cpuid(struct abi_vcpu *v, unsigned long arg)
{
    struct kvm_cpuid2 hdr;
    struct kvm_cpuid_entry2 e[10];
    if (abi_copy_from_user(&hdr, (void *)arg, sizeof hdr))
        return -EFAULT;
    /* system fd: "!vcpu" counts as an in-kernel LAPIC */
    unsigned n = hv_cpuid(!v || v->lapic, e);
    if (hdr.nent < n)
        return -E2BIG; /* nent is left alone, as KVM does */
    hdr.nent = n;
    if (abi_copy_to_user((void *)arg, &hdr, sizeof hdr) ||
        abi_copy_to_user((char *)arg + sizeof hdr, e, n * sizeof e[0]))
        return -EFAULT;
    return 0;
}

void abi_hv_set_cpuid(struct abi_vcpu *v)
{
    struct abi_hv_vcpu *h = v->hv;
    const struct kvm_cpuid_entry2 *e;
    e = abi_cpuid_find(v->cpuid, v->ncpuid, HV_CPUID_INTERFACE, 0);
    h->enabled = e && e->eax == HV_CPUID_SIGNATURE_EAX;
    memset(&h->cpuid, 0, sizeof h->cpuid);
    if (!h->enabled) {
        abi_hv_sync_invtsc(v);
        return;
    }
    if ((e = abi_cpuid_find(v->cpuid, v->ncpuid, HV_CPUID_FEATURES, 0))) {
        h->cpuid.features_eax = e->eax;
        h->cpuid.features_ebx = e->ebx;
        h->cpuid.features_edx = e->edx;
    }
    if ((e = abi_cpuid_find(v->cpuid, v->ncpuid, HV_CPUID_ENLIGHTMENT_INFO, 0))) {
        h->cpuid.enlightenments_eax = e->eax;
        h->cpuid.enlightenments_ebx = e->ebx;
    }
    if ((e = abi_cpuid_find(v->cpuid, v->ncpuid, HV_CPUID_SYNDBG_PLATFORM_CAPABILITIES, 0)))
        h->cpuid.syndbg_cap_eax = e->eax;
    abi_hv_sync_invtsc(v);
}

/* kvm_hv_invtsc_suppressed() (hyperv.h), applied where KVM applies it, in the CPUID the
 * guest executes (kvm_cpuid): with HV_ACCESS_TSC_INVARIANT in the Hyper-V CPUID, the
 * invariant TSC bit (0x80000007.EDX[8]) only shows once the guest set
 * HV_X64_MSR_TSC_INVARIANT_CONTROL bit 0. KVM_GET_CPUID2 keeps what user space set. The
 * writer vCPU sees the change at once, other vCPUs from their next KVM_RUN. */
void abi_hv_sync_invtsc(struct abi_vcpu *v)
{
    struct abi_hv_vcpu *h = v->hv;
    const struct kvm_cpuid_entry2 *src = abi_cpuid_find(v->cpuid, v->ncpuid, 0x80000007, 0);
    if (!src || !v->emu_cpuid)
        return;
    bool suppressed = h->enabled && (h->cpuid.features_eax & HV_F_TSC_INVARIANT) &&
                      !(__atomic_load_n(&v->vm->hv->invtsc_control, __ATOMIC_RELAXED) & 1);
    uint32_t edx = suppressed ? src->edx & ~(1u << 8) : src->edx;
    for (unsigned i = 0; i < v->ncpuid; i++) {
        struct emu_cpuid_entry *e = &v->emu_cpuid[i];
        if (e->function == 0x80000007 && e->edx != edx) {
            e->edx = edx;
            emu_set_cpuid(v->emu, v->emu_cpuid, v->ncpuid);
        }
    }
}

/* kvm_vcpu_ioctl_enable_cap (x86.c): SYNIC2 takes no argument bits; both need the LAPIC in
 * the kernel (kvm_hv_activate_synic: active, control = ENABLE). */
long abi_hv_enable_cap(struct abi_vcpu *v, const struct kvm_enable_cap *c)
{
    struct abi_hv_vcpu *h = v->hv;
    switch (c->cap) {
    case KVM_CAP_HYPERV_SYNIC2:
        if (c->args[0])
            return -EINVAL;
        /* fall through */
    case KVM_CAP_HYPERV_SYNIC:
        if (!v->vm->irqchip_state)
            return -EINVAL;
        h->synic.active = true;
        h->synic.dont_zero_pages = c->cap == KVM_CAP_HYPERV_SYNIC2;
        h->synic.control = 1; /* HV_SYNIC_CONTROL_ENABLE */
        return 0;
    case KVM_CAP_HYPERV_ENFORCE_CPUID:
        h->enforce_cpuid = c->args[0] != 0;
        return 0;
    default:
        return -ENOTTY;
    }
}

int abi_hv_guest_write(struct abi_vm *vm, uint64_t gpa, const void *src, size_t len)
{
    return vm->msr.guest_write ? vm->msr.guest_write(vm->msr.guest_mem_ctx, gpa, src, len) : -EFAULT;
}

int abi_hv_guest_read(struct abi_vm *vm, uint64_t gpa, void *dst, size_t len)
{
    return vm->msr.guest_read ? vm->msr.guest_read(vm->msr.guest_mem_ctx, gpa, dst, len) : -EFAULT;
}

static uint64_t kvmclock_ns(struct abi_vm *vm)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - vm->msr.boot_ns_at_create;
}

/* get_time_ref_counter(): the kvmclock in 100 ns units, or, once the TSC page is set, the
 * page's formula applied to the TSC (so the MSR and the page never disagree). */
uint64_t abi_hv_time_ref_locked(struct abi_vcpu *v)
{
    struct abi_hv_vm *hv = v->vm->hv;
    if (hv->tsc_status != HV_TSC_SET)
        return kvmclock_ns(v->vm) / 100;
    uint64_t tsc = emu_read_l1_tsc(v->emu);
    return (uint64_t)(((unsigned __int128)tsc * hv->tsc_ref.scale) >> 64) +
           (uint64_t)hv->tsc_ref.offset;
}

/* KVM's tsc_page_update_unsafe(): after the guest opted into TSC emulation (migration
 * re-enlightenment), the page stays as it was until the guest changes it itself. */
static bool update_unsafe(const struct abi_hv_vm *hv)
{
    return hv->tsc_status != HV_TSC_GUEST_CHANGED && hv->tsc_emulation_control;
}

/* kvm_hv_setup_tsc_page(): sequence 0 while the parameters change, then a new non-zero
 * sequence. KVM derives scale/offset from the kvmclock parameters (compute_tsc_page_
 * parameters); the same result from the clock directly: 100 ns per TSC tick is
 * 10^4 / tsc_khz, offset makes "now" read the kvmclock now. */
void abi_hv_setup_tsc_page_locked(struct abi_vcpu *v)
{
    struct abi_hv_vm *hv = v->vm->hv;
    if (hv->tsc_status == HV_TSC_BROKEN || hv->tsc_status == HV_TSC_SET ||
        hv->tsc_status == HV_TSC_UNSET || !(hv->tsc_page & 1))
        return;
    uint64_t gpa = hv->tsc_page & ~0xfffull;
    uint32_t seq;
    if (abi_hv_guest_read(v->vm, gpa, &seq, sizeof seq))
        goto broken;
    if (seq && update_unsafe(hv)) {
        if (abi_hv_guest_read(v->vm, gpa, &hv->tsc_ref, sizeof hv->tsc_ref))
            goto broken;
        hv->tsc_status = HV_TSC_SET;
        return;
    }
    hv->tsc_ref.sequence = 0;
    if (abi_hv_guest_write(v->vm, gpa, &hv->tsc_ref.sequence, sizeof hv->tsc_ref.sequence))
        goto broken;
    uint64_t khz = msr_vcpu_tsc_khz(v->msr); /* the guest's rate (hv_clock of this vCPU) */
    if (khz <= 10000) /* scale would overflow: KVM falls back to the MSR (BROKEN) */
        goto broken;
    hv->tsc_ref.scale = (uint64_t)(((unsigned __int128)10000 << 64) / khz);
    uint64_t tsc = emu_read_l1_tsc(v->emu);
    uint64_t now100 = kvmclock_ns(v->vm) / 100;
    hv->tsc_ref.offset =
        (int64_t)(now100 - (uint64_t)(((unsigned __int128)tsc * hv->tsc_ref.scale) >> 64));
    if (abi_hv_guest_write(v->vm, gpa, &hv->tsc_ref, sizeof hv->tsc_ref))
        goto broken;
    __atomic_thread_fence(__ATOMIC_RELEASE); /* the struct before the non-zero sequence */
    seq++;
    if (seq == 0xffffffffu || seq == 0)
        seq = 1;
    hv->tsc_ref.sequence = seq;
    if (abi_hv_guest_write(v->vm, gpa, &seq, sizeof seq))
        goto broken;
    hv->tsc_status = HV_TSC_SET;
    return;
broken:
    hv->tsc_status = HV_TSC_BROKEN;
}

void abi_hv_update_tsc_page(struct abi_vcpu *v)
{
    struct abi_hv_vm *hv = v->vm->hv;
    pthread_mutex_lock(&hv->lock);
    abi_hv_setup_tsc_page_locked(v);
    pthread_mutex_unlock(&hv->lock);
}

/* kvm_hv_request_tsc_page_update(): KVM_SET_CLOCK moves the clock; the page follows at the
 * next entry unless the guest asked for it to stay put. */
void abi_hv_clock_changed(struct abi_vm *vm)
{
    struct abi_hv_vm *hv = vm->hv;
    pthread_mutex_lock(&hv->lock);
    if (hv->tsc_status == HV_TSC_SET && !update_unsafe(hv))
        hv->tsc_status = HV_TSC_HOST_CHANGED;
    pthread_mutex_unlock(&hv->lock);
}
