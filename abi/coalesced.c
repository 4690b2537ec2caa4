/* abi/: coalesced MMIO/PIO (KVM_REGISTER/UNREGISTER_COALESCED_MMIO, api.rst 4.67).
 * Guest writes to a registered zone are appended to the VM's ring page instead of
 * exiting; when the ring is full (last + 1 == first, modulo the ring size) the write
 * exits to user space normally. The ring is one page of a VM-wide memfd that every
 * vCPU mapping shows at KVM_COALESCED_MMIO_PAGE_OFFSET (the preload maps it there).
 * Mirrors virt/kvm/coalesced_mmio.c (Linux 6.12). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "abi/abi_internal.h"

#define RING_MAX                                                                           \
    ((ABI_PAGE_SIZE - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))

int abi_coalesced_init(struct abi_vm *vm)
{
    int fd = abi_memfd("kvm-coalesced-mmio", ABI_PAGE_SIZE, O_CLOEXEC);
    if (fd < 0)
        return fd;
    void *p = mmap(NULL, ABI_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return -ENOMEM;
    }
    vm->ring_fd = fd;
    vm->ring = p;
    return 0;
}

void abi_coalesced_free(struct abi_vm *vm)
{
    if (vm->ring)
        munmap(vm->ring, ABI_PAGE_SIZE);
    if (vm->ring_fd > 0)
        close(vm->ring_fd);
}

long abi_vm_coalesced_zone(struct abi_vm *vm, unsigned long arg, bool reg)
{
    struct kvm_coalesced_mmio_zone z;
    if (abi_copy_from_user(&z, (void *)arg, sizeof z))
        return -EFAULT;
    if (z.pio != 1 && z.pio != 0)
        return -EINVAL;
    long r = 0;
    pthread_mutex_lock(&vm->lock);
    if (reg) {
        if (vm->nzones == ABI_MAX_COALESCED_ZONES)
            r = -ENOSPC;
        else
            vm->zones[vm->nzones++] = z;
    } else {
        /* KVM removes every zone of that kind lying inside the given range */
        for (unsigned i = 0; i < vm->nzones;) {
            const struct kvm_coalesced_mmio_zone *c = &vm->zones[i];
            if (c->pio == z.pio && c->addr >= z.addr && c->addr + c->size <= z.addr + z.size)
                vm->zones[i] = vm->zones[--vm->nzones];
            else
                i++;
        }
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

bool abi_coalesced_write(struct abi_vm *vm, bool pio, uint64_t addr, const void *data,
                         unsigned len)
{
    bool done = false;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nzones && !done; i++) {
        const struct kvm_coalesced_mmio_zone *z = &vm->zones[i];
        if (z->pio != (uint32_t)pio || addr < z->addr || addr + len > z->addr + z->size)
            continue;
        struct kvm_coalesced_mmio_ring *ring = vm->ring;
        uint32_t last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
        uint32_t first = __atomic_load_n(&ring->first, __ATOMIC_ACQUIRE);
        if (last >= RING_MAX || (last + 1) % RING_MAX == first)
            break; /* full (or corrupted by user space): exit as a normal write */
        struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[last];
        e->phys_addr = addr;
        e->len = len;
        e->pio = pio;
        memset(e->data, 0, sizeof e->data);
        memcpy(e->data, data, len > 8 ? 8 : len);
        __atomic_store_n(&ring->last, (last + 1) % RING_MAX, __ATOMIC_RELEASE);
        done = true;
    }
    pthread_mutex_unlock(&vm->lock);
    return done;
}

int abi_vcpu_ring_fd(struct abi_process *p, int fd)
{
    struct abi_obj *o = abi_obj_get(p, fd);
    if (!o)
        return -1;
    int r = o->kind == ABI_VCPU ? ((struct abi_vcpu *)o)->vm->ring_fd : -1;
    abi_obj_put(o);
    return r;
}
