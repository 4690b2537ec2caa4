/* abi/: Xen 2-level event channels (Linux 6.12 xen.c): the outbound port table of
 * KVM_XEN_ATTR_TYPE_EVTCHN (kvm_xen_setattr_evtchn: assign, update, deassign, reset), the
 * delivery into shared_info/vcpu_info (kvm_xen_set_evtchn_fast), the in-kernel
 * EVTCHNOP_send (kvm_xen_hcall_evtchn_send) and the upcall vector the LAPIC takes as an
 * ExtINT-like source (kvm_xen_has_interrupt, irq.c kvm_cpu_get_extint). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi/abi_internal.h"
#include "abi/xen.h"

#define EVTCHN_2L_NR_CHANNELS 4096        /* 64-bit shared_info: 64 x 64 bits */
#define COMPAT_EVTCHN_2L_NR_CHANNELS 1024 /* compat: 32 x 32 bits */
#define SHINFO_PENDING 0x800              /* evtchn_pending[], both layouts */
#define SHINFO_MASK 0xa00
#define COMPAT_SHINFO_MASK 0x880
#define VI_PENDING_SEL 8                  /* vcpu_info.evtchn_pending_sel (compat: 4) */
#define COMPAT_VI_PENDING_SEL 4
#define EVTCHNSTAT_interdomain 2
#define EVTCHNSTAT_ipi 5

/* struct evtchnfd */
struct abi_xen_port {
    uint32_t send_port, type;
    uint32_t port;     /* local delivery: port, vcpu, priority; 0 = eventfd */
    uint32_t vcpu_id, priority;
    int fd;            /* our dup of the eventfd */
};

static int max_port(const struct abi_xen_vm *x)
{
    return x->long_mode ? EVTCHN_2L_NR_CHANNELS : COMPAT_EVTCHN_2L_NR_CHANNELS;
}

static struct abi_xen_port *find_port(struct abi_xen_vm *x, uint32_t send_port)
{
    for (unsigned i = 0; i < x->nports; i++)
        if (x->ports[i].send_port == send_port)
            return &x->ports[i];
    return NULL;
}

static void drop_port(struct abi_xen_vm *x, unsigned i)
{
    if (!x->ports[i].port)
        close(x->ports[i].fd);
    x->ports[i] = x->ports[--x->nports];
}

void abi_xen_evtchn_free(struct abi_xen_vm *x)
{
    while (x->nports)
        drop_port(x, x->nports - 1);
    free(x->ports);
}

/* kvm_xen_eventfd_assign(), x->lock held */
static int port_assign(struct abi_xen_vm *x, const struct kvm_xen_hvm_attr *a)
{
    struct abi_xen_port p = {.send_port = a->u.evtchn.send_port, .type = a->u.evtchn.type,
                             .fd = -1};
    switch (a->u.evtchn.type) {
    case EVTCHNSTAT_ipi: /* must map back to the same port */
        if (a->u.evtchn.deliver.port.port != a->u.evtchn.send_port)
            return -EINVAL;
        break;
    case EVTCHNSTAT_interdomain:
        if (a->u.evtchn.deliver.port.port) {
            if (a->u.evtchn.deliver.port.port >= (uint32_t)max_port(x))
                return -EINVAL;
        } else {
            int r = abi_eventfd_check(a->u.evtchn.deliver.eventfd.fd);
            if (r)
                return r;
            p.fd = dup(a->u.evtchn.deliver.eventfd.fd);
            if (p.fd < 0)
                return -ENOMEM;
        }
        break;
    default: /* virq, closed, unbound, pirq, unknown */
        return -EINVAL;
    }
    if (p.fd < 0) {
        if (a->u.evtchn.deliver.port.priority != KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL)
            return -EINVAL;
        p.port = a->u.evtchn.deliver.port.port;
        p.vcpu_id = a->u.evtchn.deliver.port.vcpu;
        p.priority = a->u.evtchn.deliver.port.priority;
    }
    int r = 0;
    if (find_port(x, p.send_port)) {
        r = -EEXIST; /* idr_alloc -ENOSPC */
    } else if (x->nports == x->cap) {
        unsigned cap = x->cap ? x->cap * 2 : 8;
        struct abi_xen_port *n = realloc(x->ports, cap * sizeof *n);
        if (!n)
            r = -ENOMEM;
        else
            x->ports = n, x->cap = cap;
    }
    if (r) {
        if (p.fd >= 0)
            close(p.fd);
        return r;
    }
    x->ports[x->nports++] = p;
    return 0;
}

/* kvm_xen_eventfd_update(), x->lock held: only vcpu and priority may change */
static int port_update(struct abi_xen_vm *x, const struct kvm_xen_hvm_attr *a)
{
    struct abi_xen_port *p = find_port(x, a->u.evtchn.send_port);
    if (!p)
        return -ENOENT;
    if (p->type != a->u.evtchn.type || !p->port || p->port != a->u.evtchn.deliver.port.port ||
        a->u.evtchn.deliver.port.priority != KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL)
        return -EINVAL;
    p->priority = a->u.evtchn.deliver.port.priority;
    p->vcpu_id = a->u.evtchn.deliver.port.vcpu;
    return 0;
}

/* kvm_xen_setattr_evtchn() */
long abi_xen_setattr_evtchn(struct abi_vm *vm, const struct kvm_xen_hvm_attr *a)
{
    struct abi_xen_vm *x = vm->xen;
    pthread_mutex_lock(&x->lock);
    uint32_t port = a->u.evtchn.send_port;
    long r;
    if (a->u.evtchn.flags == KVM_XEN_EVTCHN_RESET) {
        while (x->nports)
            drop_port(x, x->nports - 1);
        r = 0;
    } else if (!port || port >= (uint32_t)max_port(x)) {
        r = -EINVAL;
    } else if (a->u.evtchn.flags == KVM_XEN_EVTCHN_DEASSIGN) {
        struct abi_xen_port *p = find_port(x, port);
        r = p ? 0 : -ENOENT;
        if (p)
            drop_port(x, (unsigned)(p - x->ports));
    } else if (a->u.evtchn.flags == KVM_XEN_EVTCHN_UPDATE) {
        r = port_update(x, a);
    } else if (a->u.evtchn.flags) {
        r = -EINVAL;
    } else {
        r = port_assign(x, a);
    }
    pthread_mutex_unlock(&x->lock);
    return r;
}

static struct abi_vcpu *vcpu_by_id(struct abi_vm *vm, uint32_t id)
{
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if (vm->vcpus[i]->id == id)
            return vm->vcpus[i];
    return NULL;
}

static void kick(struct abi_vcpu *t)
{
    emu_kick(t->emu);
    if (t->lapic)
        abi_lapic_kick(t->lapic);
}

/* kvm_xen_set_evtchn_fast(): 1 delivered, 0 already pending, -ENOTCONN masked, -EINVAL
 * bad target, -EWOULDBLOCK shared_info or vcpu_info unusable. x->lock and mem_lock
 * (read) held. The bit operations are atomic: the guest changes these words itself. */
static int set_evtchn(struct abi_vm *vm, uint32_t port, uint32_t vcpu_id)
{
    struct abi_xen_vm *x = vm->xen;
    struct abi_vcpu *t = vcpu_by_id(vm, vcpu_id);
    if (!t)
        return -EINVAL;
    if (port >= (uint32_t)max_port(x))
        return -EINVAL;
    bool lm = x->long_mode;
    unsigned wbits = lm ? 64 : 32, word = port / wbits;
    uint64_t mask_off = lm ? SHINFO_MASK : COMPAT_SHINFO_MASK;
    size_t wsize = wbits / 8;
    uint8_t *pend = abi_xen_gpc_host(vm, &x->shinfo, SHINFO_PENDING + word * wsize, wsize);
    uint8_t *mask = abi_xen_gpc_host(vm, &x->shinfo, mask_off + word * wsize, wsize);
    if (!pend || !mask)
        return -EWOULDBLOCK;
    uint64_t bit = 1ull << (port % wbits);
    uint64_t old = lm ? __atomic_fetch_or((uint64_t *)pend, bit, __ATOMIC_SEQ_CST)
                      : __atomic_fetch_or((uint32_t *)pend, (uint32_t)bit, __ATOMIC_SEQ_CST);
    if (old & bit)
        return 0;
    uint64_t m = lm ? __atomic_load_n((uint64_t *)mask, __ATOMIC_SEQ_CST)
                    : __atomic_load_n((uint32_t *)mask, __ATOMIC_SEQ_CST);
    if (m & bit)
        return -ENOTCONN;
    uint8_t *vi = abi_xen_gpc_host(vm, &t->xen->vcpu_info, 0, 16);
    if (!vi)
        return 1; /* KVM keeps it in evtchn_pending_sel for the vCPU: not modelled */
    uint64_t sel = 1ull << word;
    bool first = lm ? !(__atomic_fetch_or((uint64_t *)(vi + VI_PENDING_SEL), sel,
                                          __ATOMIC_SEQ_CST) & sel)
                    : !(__atomic_fetch_or((uint32_t *)(vi + COMPAT_VI_PENDING_SEL),
                                          (uint32_t)sel, __ATOMIC_SEQ_CST) & sel);
    if (first) {
        __atomic_store_n(vi, 1, __ATOMIC_SEQ_CST); /* evtchn_upcall_pending */
        if (t->xen->upcall_vector && t->lapic) /* the per-vCPU vector goes as an MSI */
            abi_lapic_deliver_fixed(t->lapic, t->xen->upcall_vector);
        kick(t);
    }
    return 1;
}

/* kvm_xen_hcall_evtchn_send(): true if the port is registered (result in *r). The
 * caller (vCPU thread in handle_exit) holds no lock. */
bool abi_xen_hcall_evtchn_send(struct abi_vcpu *v, uint64_t param, uint64_t *r)
{
    struct abi_vm *vm = v->vm;
    uint32_t port;
    if (abi_xen_read_guest_virt(v, param, &port, sizeof port)) {
        *r = (uint64_t)-EFAULT;
        return true;
    }
    struct abi_xen_vm *x = vm->xen;
    bool handled = true;
    pthread_mutex_lock(&x->lock);
    struct abi_xen_port *p = find_port(x, port);
    if (!p) {
        handled = false;
    } else if (p->port) {
        pthread_rwlock_rdlock(&vm->mem_lock);
        int ret = set_evtchn(vm, p->port, p->vcpu_id);
        pthread_rwlock_unlock(&vm->mem_lock);
        if (ret < 0 && ret != -ENOTCONN)
            handled = false; /* user space sees it (KVM: slow path failed) */
    } else {
        uint64_t one = 1;
        ssize_t n = write(p->fd, &one, sizeof one);
        (void)n;
    }
    pthread_mutex_unlock(&x->lock);
    if (handled)
        *r = 0;
    return handled;
}

/* kvm_xen_has_interrupt(): called by the LAPIC's pending hook inside emu_run (mem_lock
 * held for reading by this vCPU thread) or by the vCPU's own HLT wait. */
int abi_xen_upcall_extint(void *vcpu)
{
    struct abi_vcpu *v = vcpu;
    uint8_t vec = atomic_load_explicit(&v->vm->xen->upcall_vector, memory_order_relaxed);
    if (!vec || !v->xen->vcpu_info.active)
        return -1;
    uint8_t *vi = abi_xen_gpc_host(v->vm, &v->xen->vcpu_info, 0, 1);
    return vi && __atomic_load_n(vi, __ATOMIC_ACQUIRE) ? vec : -1;
}
