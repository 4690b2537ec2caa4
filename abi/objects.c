/* abi/: the fd table and object lifetimes.
 *
 * KVM hands out anonymous-inode fds; we hand out memfds so every fd operation the
 * program does (close, dup, fcntl, poll, mmap of the vCPU's kvm_run) is real. The
 * table maps each fd number to the object it stands for. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi_internal.h"

struct abi_process *abi_process_create(void)
{
    struct abi_process *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

void abi_process_destroy(struct abi_process *p)
{
    if (!p)
        return;
    for (int fd = 0; fd < p->nfds; fd++)
        if (p->fds[fd])
            abi_obj_put(p->fds[fd]);
    free(p->fds);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int abi_memfd(const char *name, size_t size, int open_flags)
{
    int fd = memfd_create(name, (open_flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd < 0)
        return -errno;
    if (size && ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Record `o` as the object behind `fd`; takes over one reference. */
int abi_obj_install(struct abi_process *p, struct abi_obj *o, int fd)
{
    pthread_mutex_lock(&p->lock);
    if (fd >= p->nfds) {
        int n = p->nfds ? p->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct abi_obj **t = realloc(p->fds, (size_t)n * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&p->lock);
            return -ENOMEM;
        }
        memset(t + p->nfds, 0, (size_t)(n - p->nfds) * sizeof *t);
        p->fds = t;
        p->nfds = n;
    }
    struct abi_obj *old = p->fds[fd];
    p->fds[fd] = o;
    pthread_mutex_unlock(&p->lock);
    if (old) /* a stale entry: the fd was closed behind our back (e.g. raw syscall) */
        abi_obj_put(old);
    return fd;
}

struct abi_obj *abi_obj_get(struct abi_process *p, int fd)
{
    struct abi_obj *o = NULL;
    pthread_mutex_lock(&p->lock);
    if (fd >= 0 && fd < p->nfds && p->fds[fd]) {
        o = p->fds[fd];
        atomic_fetch_add(&o->refs, 1);
    }
    pthread_mutex_unlock(&p->lock);
    return o;
}

bool abi_owns_fd(struct abi_process *p, int fd)
{
    bool r;
    pthread_mutex_lock(&p->lock);
    r = fd >= 0 && fd < p->nfds && p->fds[fd] != NULL;
    pthread_mutex_unlock(&p->lock);
    return r;
}

void abi_fd_closed(struct abi_process *p, int fd)
{
    struct abi_obj *o = NULL;
    pthread_mutex_lock(&p->lock);
    if (fd >= 0 && fd < p->nfds) {
        o = p->fds[fd];
        p->fds[fd] = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (o)
        abi_obj_put(o);
}

void abi_fd_duped(struct abi_process *p, int oldfd, int newfd)
{
    struct abi_obj *o = abi_obj_get(p, oldfd);
    if (o && abi_obj_install(p, o, newfd) < 0)
        abi_obj_put(o);
}

static void system_free(struct abi_system *s)
{
    free(s);
}

static void vm_free(struct abi_vm *vm)
{
    abi_irqfd_free(vm); /* its thread injects into the irqchip: stop it first */
    abi_vm_free_slots(vm);
    abi_memattr_free(&vm->memattr);
    abi_ioeventfd_free(vm);
    abi_coalesced_free(vm);
    abi_pit_destroy(vm->pit); /* its timer thread drives the irqchip */
    if (vm->irqchip_state)
        abi_irqchip_destroy(vm->irqchip_state);
    msr_vm_destroy(&vm->msr);
    abi_hv_vm_destroy(vm->hv);
    abi_xen_vm_destroy(vm->xen);
    pthread_mutex_destroy(&vm->lock);
    pthread_rwlock_destroy(&vm->mem_lock);
    struct abi_system *s = vm->sys;
    free(vm);
    abi_obj_put(&s->obj);
}

static void vcpu_free(struct abi_vcpu *v)
{
    struct abi_vm *vm = v->vm;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nvcpus; i++)
        if (vm->vcpus[i] == v) {
            vm->vcpus[i] = vm->vcpus[--vm->nvcpus];
            break;
        }
    pthread_mutex_unlock(&vm->lock);
    if (v->lapic)
        abi_lapic_destroy(v->lapic);
    if (v->msr)
        msr_vcpu_destroy(v->msr);
    abi_hv_vcpu_destroy(v->hv);
    abi_xen_vcpu_destroy(v->xen);
    if (v->emu)
        emu_vcpu_destroy(v->emu);
    if (v->schedstat_tid)
        close(v->schedstat_fd);
    if (v->run)
        munmap(v->run, v->run_size);
    free(v->cpuid);
    free(v->emu_cpuid);
    pthread_mutex_destroy(&v->lock);
    free(v);
    abi_obj_put(&vm->obj);
}

/* Drop a reference; the last one frees the object. The memfd itself is owned by the
 * program's fds (it closes them), except the one we keep for the vCPU mapping, which
 * munmap releases. */
void abi_obj_put(struct abi_obj *o)
{
    if (atomic_fetch_sub(&o->refs, 1) != 1)
        return;
    switch (o->kind) {
    case ABI_SYSTEM:
        system_free((struct abi_system *)o);
        break;
    case ABI_VM:
        vm_free((struct abi_vm *)o);
        break;
    case ABI_VCPU:
        vcpu_free((struct abi_vcpu *)o);
        break;
    case ABI_GMEM:
        abi_gmem_free((struct abi_gmem *)o);
        break;
    }
}

int abi_open_dev_kvm(struct abi_process *p, int flags)
{
    struct abi_system *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int fd = abi_memfd("kvm", 0, flags);
    if (fd < 0) {
        free(s);
        return fd;
    }
    s->obj.kind = ABI_SYSTEM;
    atomic_init(&s->obj.refs, 1);
    s->obj.memfd = fd;
    s->vendor = abi_vendor_current();
    int r = abi_obj_install(p, &s->obj, fd);
    if (r < 0) {
        close(fd);
        free(s);
    }
    return r;
}

long abi_ioctl(struct abi_process *p, int fd, unsigned long request, unsigned long arg)
{
    struct abi_obj *o = abi_obj_get(p, fd);
    if (!o)
        return -EBADF;
    /* the ioctl syscall takes `unsigned int cmd`: a request passed as a negative int
     * (QEMU's kvm_ioctl) arrives sign-extended and must still match */
    request = (uint32_t)request;
    long r;
    switch (o->kind) {
    case ABI_SYSTEM:
        r = abi_system_ioctl(p, (struct abi_system *)o, request, arg);
        break;
    case ABI_VM:
        r = abi_vm_ioctl(p, (struct abi_vm *)o, request, arg);
        break;
    case ABI_VCPU:
        r = abi_vcpu_ioctl(p, (struct abi_vcpu *)o, request, arg);
        break;
    default:
        r = -ENOTTY;
    }
    abi_obj_put(o);
    return r;
}
