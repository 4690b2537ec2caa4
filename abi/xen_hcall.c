/* abi/: Xen hypercalls (Linux 6.12 xen.c kvm_xen_hypercall). With
 * KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL every VMCALL/VMMCALL comes here first
 * (x86.c kvm_emulate_hypercall); EAX bit 31 with Hyper-V enabled goes to Hyper-V (the
 * prefix KVM's Hyper-V hypercall page carries then). At CPL 0 KVM serves a few calls in
 * the kernel; this file serves those that need no event channels or timers:
 * xen_version(XENVER_version) once user space set KVM_XEN_ATTR_TYPE_XEN_VERSION, and
 * sched_op SCHEDOP_yield / SCHEDOP_poll (without EVTCHN_SEND a poll is a yield,
 * kvm_xen_hcall_sched_op's fallthrough). Everything else is KVM_EXIT_XEN, whose result
 * user space leaves in run->xen.u.hcall.result for the next KVM_RUN. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "abi/abi_internal.h"
#include "abi/xen.h"

#define HYPERVISOR_xen_version 17
#define HYPERVISOR_sched_op 29
#define HYPERVISOR_event_channel_op 32
#define EVTCHNOP_send 4
#define XENVER_version 0
#define SCHEDOP_yield 0
#define SCHEDOP_poll 3
#define XEN_ENOSYS 38 /* r = -ENOSYS until handled */

bool abi_xen_hypercall_enabled(struct abi_vm *vm)
{
    return atomic_load_explicit(&vm->msr.xen_hypercall_msr, memory_order_acquire) &&
           (atomic_load(&vm->xen->flags) & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL);
}

static bool is_64bit(const struct cpu *c)
{
    return (c->efer & (1ull << 10)) && c->seg[EMU_CS].l; /* is_64_bit_hypercall */
}

int abi_xen_read_guest_virt(struct abi_vcpu *v, uint64_t gva, void *dst, size_t len)
{
    uint8_t *out = dst;
    int r = 0;
    pthread_rwlock_rdlock(&v->vm->mem_lock);
    while (len && !r) {
        size_t n = 4096 - (gva & 4095);
        if (n > len)
            n = len;
        uint64_t gpa;
        bool w, u;
        if (!emu_translate(v->emu, gva, &gpa, &w, &u) || abi_hv_guest_read(v->vm, gpa, out, n))
            r = -EFAULT;
        gva += n;
        out += n;
        len -= n;
    }
    pthread_rwlock_unlock(&v->vm->mem_lock);
    return r;
}

/* kvm_xen_hypercall_set_result(): RAX (RIP is already past the instruction here) */
static void set_result(struct abi_vcpu *v, uint64_t r)
{
    emu_cpu(v->emu)->gpr[EMU_RAX] = r;
}

int abi_xen_hypercall(struct abi_vcpu *v)
{
    struct cpu *c = emu_cpu(v->emu);
    uint64_t input = c->gpr[EMU_RAX];
    if ((input & 0x80000000u) && abi_hv_hypercall_enabled(v)) {
        int r = abi_hv_hypercall(v);
        if (!r)
            v->xen->hcall_in_user = false; /* a Hyper-V exit, completed by Hyper-V */
        return r;
    }
    bool lm = is_64bit(c);
    uint64_t p[6];
    if (lm) {
        p[0] = c->gpr[EMU_RDI];
        p[1] = c->gpr[EMU_RSI];
        p[2] = c->gpr[EMU_RDX];
        p[3] = c->gpr[EMU_R10];
        p[4] = c->gpr[EMU_R8];
        p[5] = c->gpr[EMU_R9];
    } else {
        static const int regs[6] = {EMU_RBX, EMU_RCX, EMU_RDX, EMU_RSI, EMU_RDI, EMU_RBP};
        for (int i = 0; i < 6; i++)
            p[i] = (uint32_t)c->gpr[regs[i]];
    }
    uint8_t cpl = (uint8_t)c->cpl;
    /* only CPL 0 is accelerated; user space gets the rest */
    if (cpl == 0) {
        bool handled = false;
        uint64_t r = (uint64_t)-XEN_ENOSYS;
        switch (input) {
        case HYPERVISOR_xen_version: {
            pthread_mutex_lock(&v->vm->xen->lock);
            uint32_t ver = v->vm->xen->xen_version;
            pthread_mutex_unlock(&v->vm->xen->lock);
            if (p[0] == XENVER_version && ver) {
                r = ver;
                handled = true;
            }
            break;
        }
        case HYPERVISOR_event_channel_op:
            if (p[0] == EVTCHNOP_send)
                handled = abi_xen_hcall_evtchn_send(v, p[1], &r);
            break;
        case HYPERVISOR_sched_op:
            /* SCHEDOP_poll needs EVTCHN_SEND (not offered) and falls through to a yield
             * (kvm_vcpu_on_spin) */
            if (p[0] == SCHEDOP_poll || p[0] == SCHEDOP_yield) {
                sched_yield();
                r = 0;
                handled = true;
            }
            break;
        default:
            break;
        }
        if (handled) {
            set_result(v, r);
            return 1;
        }
    }
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_XEN;
    memset(&run->xen, 0, sizeof run->xen);
    run->xen.type = KVM_EXIT_XEN_HCALL;
    run->xen.u.hcall.longmode = lm;
    run->xen.u.hcall.cpl = cpl;
    run->xen.u.hcall.input = input;
    memcpy(run->xen.u.hcall.params, p, sizeof p);
    v->xen->hcall_rip = c->seg[EMU_CS].base + c->rip; /* kvm_get_linear_rip */
    v->xen->hcall_in_user = true;
    return 0;
}

/* kvm_xen_hypercall_complete_userspace(): the result, unless user space moved RIP */
bool abi_xen_complete_user(struct abi_vcpu *v)
{
    if (!v->xen->hcall_in_user)
        return false;
    v->xen->hcall_in_user = false;
    struct cpu *c = emu_cpu(v->emu);
    if (c->seg[EMU_CS].base + c->rip == v->xen->hcall_rip)
        set_result(v, v->run->xen.u.hcall.result);
    return true;
}
