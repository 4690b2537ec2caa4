/* abi/: access to caller memory that never crashes on a bad pointer.
 *
 * Linux KVM uses copy_from_user/copy_to_user and returns -EFAULT for an unmapped or
 * unreadable pointer. In user space the same effect comes from process_vm_readv/writev
 * on our own pid: the kernel does the copy and reports EFAULT instead of us faulting. */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "abi/abi_internal.h"

static int copy_self(void *local, void *remote, size_t len, bool write)
{
    if (len == 0)
        return 0;
    if (remote == NULL)
        return -EFAULT;
    struct iovec l = {.iov_base = local, .iov_len = len};
    struct iovec r = {.iov_base = remote, .iov_len = len};
    ssize_t n = write ? process_vm_writev(getpid(), &l, 1, &r, 1, 0)
                      : process_vm_readv(getpid(), &l, 1, &r, 1, 0);
    if (n == (ssize_t)len)
        return 0;
    if (n < 0 && errno != EFAULT) {
        /* process_vm_* unavailable (seccomp, old kernel): fall back to a direct copy,
         * which is what the caller's own code would do with the pointer. */
        if (errno == ENOSYS || errno == EPERM) {
            if (write)
                memcpy(remote, local, len);
            else
                memcpy(local, remote, len);
            return 0;
        }
    }
    return -EFAULT;
}

int abi_copy_from_user(void *dst, const void *user_src, size_t len)
{
    return copy_self(dst, (void *)user_src, len, false);
}

int abi_copy_to_user(void *user_dst, const void *src, size_t len)
{
    return copy_self((void *)src, user_dst, len, true);
}
