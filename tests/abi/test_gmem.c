/* guest_memfd (abi/gmem.c) as 6.12 virt/kvm/guest_memfd.c and kvm_main.c:
 *   - KVM_CAP_GUEST_MEMFD: 1 on /dev/kvm, kvm_arch_has_private_mem() on a VM (0: no VM
 *     type with private memory is offered);
 *   - KVM_CREATE_GUEST_MEMFD: any flag, a size of 0 or not page-aligned is EINVAL
 *     (kvm_gmem_create); the fd's size is the size asked for, each fd its own inode;
 *   - read/write fail with EINVAL, mmap with ENODEV (the shim asks abi_gmem_file_op);
 *   - fallocate needs KEEP_SIZE (EOPNOTSUPP), page-aligned ranges (EINVAL), allocates
 *     only within the size (EINVAL), punches holes anywhere (kvm_gmem_fallocate). */
#include <errno.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "abi/kvm_compat.h"
#include "tests/abi/abi_test_guest.h"
#include "tests/check_main.h"

static int gmem(struct abi_process *p, int vm, uint64_t size, uint64_t flags)
{
    struct kvm_create_guest_memfd a = {.size = size, .flags = flags};
    return (int)abi_ioctl(p, vm, KVM_CREATE_GUEST_MEMFD, (uintptr_t)&a);
}

static long fa(struct abi_process *p, int fd, int mode, int64_t off, int64_t len)
{
    bool ours = false;
    long r = abi_gmem_fallocate(p, fd, mode, off, len, &ours);
    ck_assert(ours);
    return r;
}

START_TEST(guest_memfd_as_6_12)
{
    struct abi_process *p = abi_process_create();
    int sys = abi_open_dev_kvm(p, 0);
    int vm = (int)abi_ioctl(p, sys, KVM_CREATE_VM, 0);
    ck_assert_int_ge(vm, 0);
    ck_assert_int_eq(abi_ioctl(p, sys, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), 1);
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), 0);
    ck_assert_int_eq(gmem(p, vm, 0, 0), -EINVAL);
    ck_assert_int_eq(gmem(p, vm, 100, 0), -EINVAL);
    ck_assert_int_eq(gmem(p, vm, 4096, 1), -EINVAL);
    ck_assert_int_eq(gmem(p, vm, 4096, 1ull << 63), -EINVAL);
    ck_assert_int_eq(gmem(p, vm, (uint64_t)-4096, 0), -EINVAL); /* loff_t size <= 0 */
    ck_assert_int_eq(abi_ioctl(p, vm, KVM_CREATE_GUEST_MEMFD, 8), -EFAULT);
    int a = gmem(p, vm, 4096, 0), b = gmem(p, vm, 4 * 4096, 0);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    struct stat sa, sb;
    ck_assert_int_eq(fstat(a, &sa), 0);
    ck_assert_int_eq(fstat(b, &sb), 0);
    ck_assert_int_eq(sa.st_size, 4096);
    ck_assert_int_eq(sb.st_size, 4 * 4096);
    ck_assert_int_eq(sb.st_blksize, 4096);
    ck_assert_uint_ne(sa.st_ino, sb.st_ino);
    ck_assert_int_eq(abi_gmem_file_op(p, b, ABI_GMEM_RW), -EINVAL);
    ck_assert_int_eq(abi_gmem_file_op(p, b, ABI_GMEM_MMAP), -ENODEV);
    ck_assert_int_eq(abi_gmem_file_op(p, vm, ABI_GMEM_RW), 0); /* not a guest_memfd */
    ck_assert_int_eq(abi_ioctl(p, b, KVM_CHECK_EXTENSION, 0), -ENOTTY); /* no ioctls */
    const int K = FALLOC_FL_KEEP_SIZE, H = FALLOC_FL_PUNCH_HOLE;
    ck_assert_int_eq(fa(p, b, K, 0, 4 * 4096), 0);
    ck_assert_int_eq(fa(p, b, 0, 0, 4096), -EOPNOTSUPP);
    ck_assert_int_eq(fa(p, b, K | FALLOC_FL_ZERO_RANGE, 0, 4096), -EOPNOTSUPP);
    ck_assert_int_eq(fa(p, b, K | H, 4095, 4096), -EINVAL);
    ck_assert_int_eq(fa(p, b, K | H, 4096, 4095), -EINVAL);
    ck_assert_int_eq(fa(p, b, K, 4 * 4096, 4096), -EINVAL);  /* allocate at the size */
    ck_assert_int_eq(fa(p, b, K, 5 * 4096, 4096), -EINVAL);  /* and after it */
    ck_assert_int_eq(fa(p, b, K | H, 4 * 4096, 4096), 0);    /* punching there is fine */
    ck_assert_int_eq(fa(p, b, K | H, 4096, 4096), 0);
    ck_assert_int_eq(fa(p, b, K, 4096, 4096), 0);
    ck_assert_int_eq(fa(p, b, K, -4096, 4096), -EINVAL);     /* vfs_fallocate */
    ck_assert_int_eq(fstat(b, &sb), 0);
    ck_assert_int_eq(sb.st_size, 4 * 4096); /* KEEP_SIZE throughout */
    bool ours = true;
    ck_assert_int_eq(abi_gmem_fallocate(p, vm, K, 0, 4096, &ours), 0);
    ck_assert(!ours);
    abi_test_close_all(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gmem");
    TCase *tc = tcase_create("gmem");
    tcase_add_test(tc, guest_memfd_as_6_12);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
