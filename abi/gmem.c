/* abi/: guest_memfd (6.12 virt/kvm/guest_memfd.c). KVM_CREATE_GUEST_MEMFD gives a file of
 * its own: no read/write (the VFS answers EINVAL when a file has no read/write ops), no
 * mmap (ENODEV: no mmap op), an fstat size equal to the size asked for, and a fallocate
 * that only allocates within that size or punches page-aligned holes. softkvm's file is a
 * memfd of that size; the preload shim routes the operations a memfd would allow to
 * abi_gmem_file_op / abi_gmem_fallocate. softkvm maps the file itself (gmem->map): a
 * KVM_X86_SW_PROTECTED_VM's slot bound to it (KVM_MEM_GUEST_MEMFD, abi/memslot.c) reads
 * its private gfns there (abi/memattr.c). A punched hole reads zeros again through that
 * shared mapping, as kvm_gmem_get_pfn allocates a zeroed folio. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi/abi_internal.h"
#include "abi/kvm_compat.h"

#define PAGE 4096ull

/* kvm_gmem_create */
long abi_vm_create_guest_memfd(struct abi_process *p, struct abi_vm *vm, unsigned long arg)
{
    struct kvm_create_guest_memfd a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    if (a.flags) /* valid_flags = 0 */
        return -EINVAL;
    if ((int64_t)a.size <= 0 || (a.size & (PAGE - 1)))
        return -EINVAL;
    struct abi_gmem *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    int fd = abi_memfd("kvm-gmem", a.size, 0); /* get_unused_fd_flags(0): no O_CLOEXEC */
    if (fd < 0) {
        free(g);
        return fd;
    }
    /* the raw syscall: the shim's mmap refuses guest_memfd files (ENODEV, as 6.12) */
    void *map = (void *)syscall(SYS_mmap, NULL, a.size, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        free(g);
        return -ENOMEM;
    }
    g->map = map;
    g->obj.kind = ABI_GMEM;
    atomic_init(&g->obj.refs, 1);
    g->obj.memfd = fd;
    g->size = a.size;
    g->flags = a.flags;
    g->vm = vm;
    atomic_fetch_add(&vm->obj.refs, 1);
    atomic_fetch_add(&p->gmem_made, 1);
    long r = abi_obj_install(p, &g->obj, fd);
    if (r < 0) {
        close(fd);
        abi_gmem_free(g);
    }
    return r;
}

void abi_gmem_free(struct abi_gmem *g)
{
    struct abi_vm *vm = g->vm;
    if (vm)
        abi_vm_gmem_unbind(vm, g); /* kvm_gmem_release: its slots' private gfns now fault */
    if (g->map && !g->map_pinned)
        munmap(g->map, g->size);
    free(g);
    if (vm)
        abi_obj_put(&vm->obj);
}

static struct abi_gmem *gmem_get(struct abi_process *p, int fd)
{
    if (!atomic_load_explicit(&p->gmem_made, memory_order_relaxed))
        return NULL; /* every read/write of the program comes here: no lock before the first */
    struct abi_obj *o = abi_obj_get(p, fd);
    if (o && o->kind != ABI_GMEM) {
        abi_obj_put(o);
        o = NULL;
    }
    return (struct abi_gmem *)o;
}

struct abi_gmem *abi_gmem_from_fd(struct abi_process *p, int fd, long *err)
{
    struct abi_obj *o = abi_obj_get(p, fd);
    if (o && o->kind == ABI_GMEM)
        return (struct abi_gmem *)o;
    if (o)
        abi_obj_put(o);
    /* kvm_gmem_prepare_memory_region: fget fails (EBADF), or not a guest_memfd (EINVAL) */
    *err = o || fcntl(fd, F_GETFD) >= 0 ? -EINVAL : -EBADF;
    return NULL;
}

int abi_gmem_file_op(struct abi_process *p, int fd, enum abi_gmem_op op)
{
    struct abi_gmem *g = gmem_get(p, fd);
    if (!g)
        return 0;
    abi_obj_put(&g->obj);
    return op == ABI_GMEM_MMAP ? -ENODEV : -EINVAL;
}

/* vfs_fallocate's checks, then kvm_gmem_fallocate / kvm_gmem_allocate */
long abi_gmem_fallocate(struct abi_process *p, int fd, int mode, int64_t off, int64_t len,
                        bool *ours)
{
    struct abi_gmem *g = gmem_get(p, fd);
    *ours = g != NULL;
    if (!g)
        return 0;
    long r = 0;
    if (off < 0 || len <= 0)
        r = -EINVAL;
    else if (!(mode & FALLOC_FL_KEEP_SIZE) || (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)))
        r = -EOPNOTSUPP;
    else if (((uint64_t)off & (PAGE - 1)) || ((uint64_t)len & (PAGE - 1)))
        r = -EINVAL;
    else if (!(mode & FALLOC_FL_PUNCH_HOLE) && (uint64_t)off + (uint64_t)len > g->size)
        r = -EINVAL; /* "Dedicated guest is immutable by default" */
    else if (syscall(SYS_fallocate, g->obj.memfd, mode, off, len) < 0)
        r = -errno; /* the syscall: in the preload library fallocate() is the shim's own */
    abi_obj_put(&g->obj);
    return r;
}
