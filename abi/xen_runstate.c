/* abi/: the Xen runstate area (Linux 6.12 xen.c kvm_xen_update_runstate,
 * kvm_xen_update_runstate_guest and the RUNSTATE_* vCPU attributes). Times are kvmclock
 * ns; the time a running vCPU's thread waited for a host CPU (schedstat run_delay) is
 * moved from "running" to "runnable", which is KVM's steal accounting for Xen guests
 * (x86.c record_steal_time calls kvm_xen_runstate_set_running instead of writing the KVM
 * steal-time page when the Xen MSR is set). The area may sit at any byte and cross a page
 * (and a memslot): it is written page by page. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "abi/abi_internal.h"
#include "abi/xen.h"

#define RUNSTATE_running 0
#define RUNSTATE_runnable 1
#define RUNSTATE_offline 3
#define XEN_RUNSTATE_UPDATE (1ull << 63)
#define RS_SIZE 48        /* struct vcpu_runstate_info */
#define RS_TIMES 8        /* offsetof(..., state_entry_time) */
#define COMPAT_RS_SIZE 44 /* struct compat_vcpu_runstate_info (packed) */
#define COMPAT_RS_TIMES 4

static uint64_t kvmclock_ns(struct abi_vm *vm)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - vm->msr.boot_ns_at_create;
}

/* guest-physical write split at page boundaries (each page may be in another slot) */
static int gpa_write(struct abi_vm *vm, uint64_t gpa, const void *src, size_t len)
{
    const uint8_t *p = src;
    while (len) {
        size_t n = 4096 - (gpa & 4095);
        if (n > len)
            n = len;
        if (abi_hv_guest_write(vm, gpa, p, n))
            return -EFAULT;
        gpa += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* kvm_xen_update_runstate_guest(): state, then state_entry_time and the four times, with
 * the XEN_RUNSTATE_UPDATE bit (the last byte of state_entry_time) set first and cleared
 * last when KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG is on; the 64-bit padding after
 * `state` is not touched. mem_lock held for reading. */
static void update_guest(struct abi_vcpu *v)
{
    struct abi_xen_vcpu *x = v->xen;
    if (!x->runstate.active)
        return;
    struct abi_vm *vm = v->vm;
    /* read without xen->lock: attribute callers hold it already */
    bool lm = __atomic_load_n(&vm->xen->long_mode, __ATOMIC_ACQUIRE);
    bool flag = __atomic_load_n(&vm->xen->runstate_update_flag, __ATOMIC_ACQUIRE);
    uint64_t gpa = x->runstate.gpa, ofs = lm ? RS_TIMES : COMPAT_RS_TIMES;
    uint64_t t[5];
    t[0] = x->rs_entry_time;
    memcpy(&t[1], x->rs_times, sizeof x->rs_times);
    if (flag) {
        uint8_t b = (uint8_t)((t[0] | XEN_RUNSTATE_UPDATE) >> 56);
        t[0] |= XEN_RUNSTATE_UPDATE;
        if (gpa_write(vm, gpa + ofs + 7, &b, 1))
            return;
        __atomic_thread_fence(__ATOMIC_RELEASE);
    }
    uint32_t state = (uint32_t)x->rs_current;
    gpa_write(vm, gpa, &state, 4);
    gpa_write(vm, gpa + ofs, t, sizeof t);
    if (flag) {
        __atomic_thread_fence(__ATOMIC_RELEASE);
        uint8_t b = (uint8_t)((t[0] & ~XEN_RUNSTATE_UPDATE) >> 56);
        gpa_write(vm, gpa + ofs + 7, &b, 1);
    }
}

/* kvm_xen_update_runstate(); mem_lock held for reading */
static void update_runstate(struct abi_vcpu *v, int state, uint64_t run_delay)
{
    struct abi_xen_vcpu *x = v->xen;
    uint64_t now = kvmclock_ns(v->vm), delta = now - x->rs_entry_time;
    if (!x->rs_entry_time)
        x->rs_current = RUNSTATE_offline;
    if (x->rs_current == RUNSTATE_running) { /* waiting for a host CPU is stolen time */
        uint64_t steal = run_delay - x->rs_last_steal;
        delta -= steal;
        x->rs_times[RUNSTATE_runnable] += steal;
    }
    x->rs_last_steal = run_delay;
    x->rs_times[x->rs_current] += delta;
    x->rs_current = state;
    x->rs_entry_time = now;
    update_guest(v);
}

bool abi_xen_msr_enabled(struct abi_vm *vm)
{
    return atomic_load_explicit(&vm->msr.xen_hypercall_msr, memory_order_acquire) != 0;
}

void abi_xen_runstate_running(struct abi_vcpu *v, uint64_t run_delay)
{
    pthread_rwlock_rdlock(&v->vm->mem_lock);
    update_runstate(v, RUNSTATE_running, run_delay);
    pthread_rwlock_unlock(&v->vm->mem_lock);
}

static bool adds_up(const struct kvm_xen_vcpu_attr *a)
{
    return a->u.runstate.state_entry_time ==
           a->u.runstate.time_running + a->u.runstate.time_runnable +
               a->u.runstate.time_blocked + a->u.runstate.time_offline;
}

/* the RUNSTATE_* cases of kvm_xen_vcpu_set_attr / get_attr; mem_lock held for reading */
long abi_xen_runstate_attr(struct abi_vcpu *v, struct kvm_xen_vcpu_attr *a, bool set)
{
    struct abi_xen_vcpu *x = v->xen;
    struct abi_vm *vm = v->vm;
    if (!set) {
        switch (a->type) {
        case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR:
            if (!x->runstate.active)
                return -ENOENT;
            a->u.gpa = x->runstate.gpa;
            return 0;
        case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT:
            a->u.runstate.state = (uint64_t)x->rs_current;
            return 0;
        case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_DATA:
            a->u.runstate.state = (uint64_t)x->rs_current;
            a->u.runstate.state_entry_time = x->rs_entry_time;
            a->u.runstate.time_running = x->rs_times[0];
            a->u.runstate.time_runnable = x->rs_times[1];
            a->u.runstate.time_blocked = x->rs_times[2];
            a->u.runstate.time_offline = x->rs_times[3];
            return 0;
        default: /* RUNSTATE_ADJUST is write-only */
            return -EINVAL;
        }
    }
    switch (a->type) {
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR: {
        x->runstate.active = false;
        if (a->u.gpa == KVM_XEN_INVALID_GPA)
            return 0;
        /* kvm_gpc_activate of the first page's rest, and of the second page if the
         * struct (for the current mode) crosses: -EFAULT without a memslot */
        uint64_t sz = vm->xen->long_mode ? RS_SIZE : COMPAT_RS_SIZE; /* xen->lock held */
        uint64_t sz1 = 4096 - (a->u.gpa & 4095);
        if (!emu_gpa_to_host(&vm->as[0].mem, a->u.gpa, sz1, true) ||
            (sz1 < sz && !emu_gpa_to_host(&vm->as[0].mem, a->u.gpa + sz1, sz - sz1, true)))
            return -EFAULT;
        x->runstate = (struct abi_xen_gpc){.active = true, .gpa = a->u.gpa};
        update_guest(v);
        return 0;
    }
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT:
        if (a->u.runstate.state > RUNSTATE_offline)
            return -EINVAL;
        update_runstate(v, (int)a->u.runstate.state, abi_vcpu_run_delay(v));
        return 0;
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_DATA:
        if (a->u.runstate.state > RUNSTATE_offline || !adds_up(a) ||
            kvmclock_ns(vm) < a->u.runstate.state_entry_time)
            return -EINVAL;
        x->rs_current = (int)a->u.runstate.state;
        x->rs_entry_time = a->u.runstate.state_entry_time;
        x->rs_times[0] = a->u.runstate.time_running;
        x->rs_times[1] = a->u.runstate.time_runnable;
        x->rs_times[2] = a->u.runstate.time_blocked;
        x->rs_times[3] = a->u.runstate.time_offline;
        x->rs_last_steal = abi_vcpu_run_delay(v);
        return 0;
    case KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADJUST:
        if ((a->u.runstate.state > RUNSTATE_offline && a->u.runstate.state != (uint64_t)-1) ||
            !adds_up(a) || kvmclock_ns(vm) < x->rs_entry_time + a->u.runstate.state_entry_time)
            return -EINVAL;
        x->rs_entry_time += a->u.runstate.state_entry_time;
        x->rs_times[0] += a->u.runstate.time_running;
        x->rs_times[1] += a->u.runstate.time_runnable;
        x->rs_times[2] += a->u.runstate.time_blocked;
        x->rs_times[3] += a->u.runstate.time_offline;
        if (a->u.runstate.state <= RUNSTATE_offline)
            update_runstate(v, (int)a->u.runstate.state, abi_vcpu_run_delay(v));
        else
            update_guest(v);
        return 0;
    default:
        return -ENOENT;
    }
}
