/* abi/: Xen HVM emulation, VM and vCPU state (Linux 6.12 xen.c; design in abi/xen.h):
 * KVM_XEN_HVM_CONFIG (kvm_xen_hvm_config), the HVM attributes (kvm_xen_hvm_{set,get}_attr),
 * the vCPU attributes (kvm_xen_vcpu_{set,get}_attr), the hypercall page
 * (kvm_xen_write_hypercall_page), the shared_info wall clock (kvm_xen_shared_info_init)
 * and the Xen pvclock copies (x86.c kvm_guest_time_update -> kvm_setup_guest_pvclock). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi/abi_internal.h"
#include "abi/xen.h"

#define PAGE 4096ull
#define TASK_SIZE_MAX ((1ull << 47) - PAGE) /* x86-64 user address space (access_ok) */
#define VCPU_INFO_SIZE 64                  /* struct vcpu_info == struct compat_vcpu_info */
#define VCPU_INFO_TIME 0x20                /* offsetof(struct compat_vcpu_info, time) */
#define PVCLOCK_SIZE 32
#define PVCLOCK_TSC_STABLE_BIT 1
/* struct shared_info / compat_shared_info: wc and wc_sec_hi (xen.c BUILD_BUG_ONs) */
#define SHINFO_WC 0xc00
#define SHINFO_WC_SEC_HI 0xc0c
#define COMPAT_SHINFO_WC 0x900
#define COMPAT_SHINFO_WC_SEC_HI 0x924
#define MAX_VCPUS 1024 /* KVM_MAX_VCPUS (KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID bound) */
#define EFER_LMA (1ull << 10)

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------- lifecycle ---------------- */

struct abi_xen_vm *abi_xen_vm_create(void)
{
    struct abi_xen_vm *x = calloc(1, sizeof *x);
    if (x)
        pthread_mutex_init(&x->lock, NULL);
    return x;
}

void abi_xen_vm_destroy(struct abi_xen_vm *x)
{
    if (!x)
        return;
    abi_xen_evtchn_free(x);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

struct abi_xen_vcpu *abi_xen_vcpu_create(uint32_t vcpu_idx)
{
    struct abi_xen_vcpu *x = calloc(1, sizeof *x);
    if (x)
        x->vcpu_id = vcpu_idx; /* kvm_xen_init_vcpu */
    return x;
}

void abi_xen_vcpu_destroy(struct abi_xen_vcpu *x)
{
    free(x);
}

/* x86.c kvm_vm_ioctl_check_extension(KVM_CAP_XEN_HVM): only what works here. Missing:
 * EVTCHN_2LEVEL / EVTCHN_SEND (routing, irqfd and KVM_XEN_HVM_EVTCHN_SEND delivery, the
 * in-kernel SCHEDOP_poll/timers). RUNSTATE needs sched_info_on(): the schedstat file
 * abi/vcpu_run.c reads (run_delay 0 without it). */
uint32_t abi_xen_caps(void)
{
    return KVM_XEN_HVM_CONFIG_HYPERCALL_MSR | KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL |
           KVM_XEN_HVM_CONFIG_SHARED_INFO | KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA |
           KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE | KVM_XEN_HVM_CONFIG_RUNSTATE |
           KVM_XEN_HVM_CONFIG_RUNSTATE_UPDATE_FLAG;
}

/* ---------------- guest memory through a cache ---------------- */

void *abi_xen_gpc_host(struct abi_vm *vm, const struct abi_xen_gpc *g, uint64_t off, size_t len)
{
    if (!g->active)
        return NULL;
    if (g->gpa != ABI_XEN_INVALID_GPA)
        return emu_gpa_to_host(&vm->as[0].mem, g->gpa + off, len, true);
    return (void *)(uintptr_t)(g->uhva + off);
}

int abi_xen_gpc_read(struct abi_vm *vm, const struct abi_xen_gpc *g, uint64_t off, void *dst,
                     size_t len)
{
    void *h = abi_xen_gpc_host(vm, g, off, len);
    return h && !abi_copy_from_user(dst, h, len) ? 0 : -EFAULT;
}

int abi_xen_gpc_write(struct abi_vm *vm, const struct abi_xen_gpc *g, uint64_t off,
                      const void *src, size_t len)
{
    void *h = abi_xen_gpc_host(vm, g, off, len);
    if (!h || abi_copy_to_user(h, src, len))
        return -EFAULT;
    if (g->gpa != ABI_XEN_INVALID_GPA) /* kvm_gpc_mark_dirty_in_slot */
        abi_vm_mark_dirty(vm, g->gpa + off, len);
    return 0;
}

/* kvm_gpc_activate / kvm_gpc_activate_hva (virt/kvm/pfncache.c): -EINVAL for a range
 * crossing its page (kvm_gpc_is_valid_len) or an HVA outside user space (access_ok),
 * else the cache is active even when the refresh then fails with -EFAULT (no memslot,
 * unmapped HVA), as __kvm_gpc_activate leaves it. mem_lock held for reading. */
static int gpc_activate(struct abi_vm *vm, struct abi_xen_gpc *g, uint64_t gpa, uint64_t hva,
                        size_t len)
{
    uint64_t addr = gpa != ABI_XEN_INVALID_GPA ? gpa : hva;
    if ((addr & (PAGE - 1)) + len > PAGE)
        return -EINVAL;
    if (gpa == ABI_XEN_INVALID_GPA && (hva > TASK_SIZE_MAX || len > TASK_SIZE_MAX - hva))
        return -EINVAL;
    g->active = true;
    g->gpa = gpa;
    g->uhva = gpa == ABI_XEN_INVALID_GPA ? hva : 0;
    uint8_t probe;
    return abi_xen_gpc_read(vm, g, 0, &probe, 1);
}

static void gpc_deactivate(struct abi_xen_gpc *g)
{
    *g = (struct abi_xen_gpc){.active = false, .gpa = ABI_XEN_INVALID_GPA};
}

static bool gpc_is_gpa_active(const struct abi_xen_gpc *g)
{
    return g->active && g->gpa != ABI_XEN_INVALID_GPA;
}

static bool gpc_is_hva_active(const struct abi_xen_gpc *g)
{
    return g->active && g->gpa == ABI_XEN_INVALID_GPA;
}

/* ---------------- KVM_XEN_HVM_CONFIG ---------------- */

long abi_xen_hvm_config(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_xen_hvm_config c;
    if (abi_copy_from_user(&c, (void *)arg, sizeof c))
        return -EFAULT;
    /* only these flags are enabled by user space (the others are capabilities) */
    uint32_t permitted = KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL | KVM_XEN_HVM_CONFIG_EVTCHN_SEND |
                         KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE;
    if (c.flags & ~permitted)
        return -EINVAL;
    /* with interception KVM writes the page itself: no blobs */
    if ((c.flags & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL) &&
        (c.blob_addr_32 || c.blob_addr_64 || c.blob_size_32 || c.blob_size_64))
        return -EINVAL;
    struct abi_xen_vm *x = vm->xen;
    pthread_mutex_lock(&x->lock);
    uint32_t old = x->cfg.flags;
    x->cfg = c;
    atomic_store(&x->flags, c.flags);
    atomic_store_explicit(&vm->msr.xen_hypercall_msr, c.msr, memory_order_release);
    pthread_mutex_unlock(&x->lock);
    if ((old ^ c.flags) & KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE)
        atomic_fetch_add(&vm->clock_gen, 1); /* KVM_REQ_CLOCK_UPDATE on every vCPU */
    return 0;
}

/* ---------------- shared_info ---------------- */

/* kvm_xen_shared_info_init(): the wall clock at the long-mode or compat offset, version
 * odd while it changes (kvm_get_wall_clock_epoch: realtime minus kvmclock). Caller holds
 * x->lock and mem_lock (read). */
static int shared_info_init(struct abi_vm *vm)
{
    struct abi_xen_vm *x = vm->xen;
    uint64_t wc_off = x->long_mode ? SHINFO_WC : COMPAT_SHINFO_WC;
    uint64_t hi_off = x->long_mode ? SHINFO_WC_SEC_HI : COMPAT_SHINFO_WC_SEC_HI;
    uint32_t version;
    if (abi_xen_gpc_read(vm, &x->shinfo, wc_off, &version, 4))
        return -EFAULT;
    version = (version + 1) | 1;
    if (abi_xen_gpc_write(vm, &x->shinfo, wc_off, &version, 4))
        return -EFAULT;
    uint64_t kvmclock = now_ns(CLOCK_BOOTTIME) - vm->msr.boot_ns_at_create;
    uint64_t wall = now_ns(CLOCK_REALTIME) - kvmclock;
    uint32_t wc[2] = {(uint32_t)(wall / 1000000000ull), (uint32_t)(wall % 1000000000ull)};
    uint32_t hi = (uint32_t)((wall / 1000000000ull) >> 32);
    abi_xen_gpc_write(vm, &x->shinfo, wc_off + 4, wc, sizeof wc);
    abi_xen_gpc_write(vm, &x->shinfo, hi_off, &hi, sizeof hi);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    version++;
    return abi_xen_gpc_write(vm, &x->shinfo, wc_off, &version, 4);
}

static long hvm_set_attr(struct abi_vm *vm, struct kvm_xen_hvm_attr *a)
{
    struct abi_xen_vm *x = vm->xen;
    long r = -ENOENT;
    switch (a->type) {
    case KVM_XEN_ATTR_TYPE_LONG_MODE:
        pthread_mutex_lock(&x->lock);
        __atomic_store_n(&x->long_mode, a->u.long_mode != 0, __ATOMIC_RELEASE);
        /* the wall clock moves with the layout */
        r = x->shinfo.active ? shared_info_init(vm) : 0;
        pthread_mutex_unlock(&x->lock);
        break;
    case KVM_XEN_ATTR_TYPE_SHARED_INFO:
    case KVM_XEN_ATTR_TYPE_SHARED_INFO_HVA:
        pthread_mutex_lock(&x->lock);
        if (a->type == KVM_XEN_ATTR_TYPE_SHARED_INFO) {
            if (a->u.shared_info.gfn == KVM_XEN_INVALID_GFN) {
                gpc_deactivate(&x->shinfo);
                r = 0;
            } else {
                r = gpc_activate(vm, &x->shinfo, a->u.shared_info.gfn * PAGE, 0, PAGE);
            }
        } else if (ABI_XEN_SHINFO_HVA(a) & (PAGE - 1)) {
            r = -EINVAL;
        } else if (!ABI_XEN_SHINFO_HVA(a)) {
            gpc_deactivate(&x->shinfo);
            r = 0;
        } else {
            r = gpc_activate(vm, &x->shinfo, ABI_XEN_INVALID_GPA, ABI_XEN_SHINFO_HVA(a), PAGE);
        }
        if (!r && x->shinfo.active)
            r = shared_info_init(vm);
        pthread_mutex_unlock(&x->lock);
        break;
    case KVM_XEN_ATTR_TYPE_UPCALL_VECTOR:
        if (a->u.vector && a->u.vector < 0x10) {
            r = -EINVAL;
        } else {
            atomic_store(&x->upcall_vector, a->u.vector);
            r = 0;
        }
        break;
    case KVM_XEN_ATTR_TYPE_EVTCHN:
        r = abi_xen_setattr_evtchn(vm, a);
        break;
    case KVM_XEN_ATTR_TYPE_XEN_VERSION:
        pthread_mutex_lock(&x->lock);
        x->xen_version = a->u.xen_version;
        pthread_mutex_unlock(&x->lock);
        r = 0;
        break;
    case KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG:
        pthread_mutex_lock(&x->lock);
        __atomic_store_n(&x->runstate_update_flag, ABI_XEN_RUNSTATE_UPDATE_FLAG(a) != 0,
                         __ATOMIC_RELEASE);
        pthread_mutex_unlock(&x->lock);
        r = 0;
        break;
    default:
        break;
    }
    return r;
}

static long hvm_get_attr(struct abi_vm *vm, struct kvm_xen_hvm_attr *a)
{
    struct abi_xen_vm *x = vm->xen;
    long r = 0;
    pthread_mutex_lock(&x->lock);
    switch (a->type) {
    case KVM_XEN_ATTR_TYPE_LONG_MODE:
        a->u.long_mode = x->long_mode;
        break;
    case KVM_XEN_ATTR_TYPE_SHARED_INFO:
        a->u.shared_info.gfn =
            gpc_is_gpa_active(&x->shinfo) ? x->shinfo.gpa / PAGE : KVM_XEN_INVALID_GFN;
        break;
    case KVM_XEN_ATTR_TYPE_SHARED_INFO_HVA:
        ABI_XEN_SHINFO_HVA(a) = gpc_is_hva_active(&x->shinfo) ? x->shinfo.uhva : 0;
        break;
    case KVM_XEN_ATTR_TYPE_UPCALL_VECTOR:
        a->u.vector = atomic_load(&x->upcall_vector);
        break;
    case KVM_XEN_ATTR_TYPE_XEN_VERSION:
        a->u.xen_version = x->xen_version;
        break;
    case KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG:
        ABI_XEN_RUNSTATE_UPDATE_FLAG(a) = x->runstate_update_flag;
        break;
    default:
        r = -ENOENT; /* KVM_XEN_ATTR_TYPE_EVTCHN has no GET either */
        break;
    }
    pthread_mutex_unlock(&x->lock);
    return r;
}

/* KVM_XEN_HVM_SET_ATTR / GET_ATTR (x86.c kvm_arch_vm_ioctl): the whole struct is copied
 * in, and for GET copied back only on success. */
long abi_xen_hvm_attr(struct abi_vm *vm, unsigned long arg, bool set)
{
    struct kvm_xen_hvm_attr a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    pthread_rwlock_rdlock(&vm->mem_lock);
    long r = set ? hvm_set_attr(vm, &a) : hvm_get_attr(vm, &a);
    pthread_rwlock_unlock(&vm->mem_lock);
    if (!set && !r && abi_copy_to_user((void *)arg, &a, sizeof a))
        r = -EFAULT;
    return r;
}

/* ---------------- vCPU attributes ---------------- */

static long vcpu_set_attr(struct abi_vcpu *v, struct kvm_xen_vcpu_attr *a)
{
    struct abi_vm *vm = v->vm;
    struct abi_xen_vcpu *x = v->xen;
    long r = -ENOENT;
    switch (a->type) {
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO:
        if (a->u.gpa == KVM_XEN_INVALID_GPA) {
            gpc_deactivate(&x->vcpu_info);
            r = 0;
            break;
        }
        if (a->u.gpa & 3) {
            r = -ENXIO;
            break;
        }
        r = gpc_activate(vm, &x->vcpu_info, a->u.gpa, 0, VCPU_INFO_SIZE);
        if (!r)
            x->clock_update = true;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO_HVA:
        if (!ABI_XEN_VCPU_HVA(a)) {
            gpc_deactivate(&x->vcpu_info);
            r = 0;
            break;
        }
        if (ABI_XEN_VCPU_HVA(a) & 3) {
            r = -ENXIO;
            break;
        }
        r = gpc_activate(vm, &x->vcpu_info, ABI_XEN_INVALID_GPA, ABI_XEN_VCPU_HVA(a), VCPU_INFO_SIZE);
        if (!r)
            x->clock_update = true;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO:
        if (a->u.gpa == KVM_XEN_INVALID_GPA) {
            gpc_deactivate(&x->time_info);
            r = 0;
            break;
        }
        r = gpc_activate(vm, &x->time_info, a->u.gpa, 0, PVCLOCK_SIZE);
        if (!r)
            x->clock_update = true;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR:
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT:
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_DATA:
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADJUST:
        r = abi_xen_runstate_attr(v, a, true);
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID:
        if (a->u.vcpu_id >= MAX_VCPUS) {
            r = -EINVAL;
        } else {
            x->vcpu_id = a->u.vcpu_id;
            r = 0;
        }
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR:
        if (a->u.vector && a->u.vector < 0x10) {
            r = -EINVAL;
        } else {
            x->upcall_vector = a->u.vector;
            r = 0;
        }
        break;
    default: /* KVM_XEN_VCPU_ATTR_TYPE_TIMER: no Xen timers here (see abi/xen.h) */
        break;
    }
    return r;
}

static long vcpu_get_attr(struct abi_vcpu *v, struct kvm_xen_vcpu_attr *a)
{
    struct abi_xen_vcpu *x = v->xen;
    long r = 0;
    switch (a->type) {
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO:
        a->u.gpa = gpc_is_gpa_active(&x->vcpu_info) ? x->vcpu_info.gpa : KVM_XEN_INVALID_GPA;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO_HVA:
        ABI_XEN_VCPU_HVA(a) = gpc_is_hva_active(&x->vcpu_info) ? x->vcpu_info.uhva : 0;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO:
        a->u.gpa = x->time_info.active ? x->time_info.gpa : KVM_XEN_INVALID_GPA;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR:
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT:
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_DATA:
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADJUST: /* write-only: -EINVAL */
        r = abi_xen_runstate_attr(v, a, false);
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID:
        a->u.vcpu_id = x->vcpu_id;
        break;
    case KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR:
        a->u.vector = x->upcall_vector;
        break;
    default:
        r = -ENOENT;
        break;
    }
    return r;
}

/* KVM_XEN_VCPU_SET_ATTR / GET_ATTR (x86.c kvm_arch_vcpu_ioctl); vCPU mutex held. */
long abi_xen_vcpu_attr(struct abi_vcpu *v, unsigned long arg, bool set)
{
    struct kvm_xen_vcpu_attr a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    struct abi_vm *vm = v->vm;
    pthread_mutex_lock(&vm->xen->lock);
    pthread_rwlock_rdlock(&vm->mem_lock);
    long r = set ? vcpu_set_attr(v, &a) : vcpu_get_attr(v, &a);
    pthread_rwlock_unlock(&vm->mem_lock);
    pthread_mutex_unlock(&vm->xen->lock);
    if (!set && !r && abi_copy_to_user((void *)arg, &a, sizeof a))
        r = -EFAULT;
    return r;
}

/* ---------------- the hypercall page ---------------- */

/* kvm_xen_write_hypercall_page(). The guest's mode decides long_mode (moving the wall
 * clock); with INTERCEPT_HCALL page 0 gets 128 stubs "mov $i, %eax; vmcall|vmmcall; ret"
 * padded with int3 (patch_hypercall: the flavour's instruction), otherwise page N of the
 * VMM's 32- or 64-bit blob is copied. Runs in the vCPU's thread inside emu_run or for
 * KVM_SET_MSRS; returns 1 (refused) on any failure. */
int abi_xen_write_hypercall_page(void *vcpu, uint64_t data, bool host)
{
    (void)host;
    struct abi_vcpu *v = vcpu;
    struct abi_vm *vm = v->vm;
    struct abi_xen_vm *x = vm->xen;
    uint32_t page_num = (uint32_t)(data & (PAGE - 1));
    uint64_t page_addr = data & ~(PAGE - 1);
    bool lm = (emu_cpu(v->emu)->efer & EFER_LMA) != 0;
    pthread_mutex_lock(&x->lock);
    int r = 0;
    if (x->long_mode != lm) {
        __atomic_store_n(&x->long_mode, lm, __ATOMIC_RELEASE);
        if (x->shinfo.active && shared_info_init(vm))
            r = 1;
    }
    struct kvm_xen_hvm_config c = x->cfg;
    pthread_mutex_unlock(&x->lock);
    if (r)
        return r;
    if (c.flags & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL) {
        if (page_num)
            return 1;
        uint8_t insn[32];
        insn[0] = 0xb8; /* mov imm32, %eax */
        insn[5] = 0x0f;
        insn[6] = 0x01;
        insn[7] = vm->sys->vendor == ABI_VENDOR_AMD ? 0xd9 : 0xc1;
        insn[8] = 0xc3; /* ret */
        memset(insn + 9, 0xcc, sizeof insn - 9);
        for (uint32_t i = 0; i < PAGE / sizeof insn; i++) {
            memcpy(insn + 1, &i, 4);
            if (abi_hv_guest_write(vm, page_addr + i * sizeof insn, insn, sizeof insn))
                return 1;
        }
        return 0;
    }
    uint64_t blob = lm ? c.blob_addr_64 : c.blob_addr_32;
    uint8_t size = lm ? c.blob_size_64 : c.blob_size_32;
    if (page_num >= size)
        return 1;
    uint8_t *page = malloc(PAGE);
    if (!page)
        return 1;
    r = abi_copy_from_user(page, (void *)(uintptr_t)(blob + page_num * PAGE), PAGE) ||
        abi_hv_guest_write(vm, page_addr, page, PAGE);
    free(page);
    return r ? 1 : 0;
}

/* ---------------- pvclock ---------------- */

/* kvm_setup_guest_pvclock() for one Xen copy at `off` in the cache: version odd, the
 * fields, version even; PVCLOCK_GUEST_STOPPED kept from the guest's copy. */
static void setup_pvclock(struct abi_vcpu *v, const struct abi_xen_gpc *g, uint64_t off,
                          const struct msr_pvclock *clk, bool tsc_unstable)
{
    struct abi_vm *vm = v->vm;
    struct msr_pvclock t;
    if (abi_xen_gpc_read(vm, g, off, &t, sizeof t))
        return;
    uint32_t version = (t.version + 1) | 1;
    if (abi_xen_gpc_write(vm, g, off, &version, 4))
        return;
    uint8_t stopped = t.flags & 2;
    t = *clk;
    t.version = version;
    t.flags |= stopped;
    if (tsc_unstable)
        t.flags &= (uint8_t)~PVCLOCK_TSC_STABLE_BIT;
    abi_xen_gpc_write(vm, g, off, &t, sizeof t);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    version++;
    abi_xen_gpc_write(vm, g, off, &version, 4);
}

void abi_xen_clock_update(struct abi_vcpu *v, bool clock_changed)
{
    struct abi_xen_vcpu *x = v->xen;
    if (!clock_changed && !x->clock_update)
        return;
    x->clock_update = false;
    if (!x->vcpu_info.active && !x->time_info.active)
        return;
    struct msr_pvclock clk;
    if (!msr_vcpu_pvclock(v->msr, &clk))
        return;
    bool unstable = atomic_load(&v->vm->xen->flags) & KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE;
    pthread_rwlock_rdlock(&v->vm->mem_lock);
    if (x->vcpu_info.active)
        setup_pvclock(v, &x->vcpu_info, VCPU_INFO_TIME, &clk, unstable);
    if (x->time_info.active)
        setup_pvclock(v, &x->time_info, 0, &clk, unstable);
    pthread_rwlock_unlock(&v->vm->mem_lock);
}
