/* Shared helpers for the ABI tests that run guests in-process through abi_ioctl (not a test
 * executable itself): closing a process's KVM fds, and the flat segment/control state of a
 * 32-bit or 64-bit guest with code selector 8 and data selector 0x10. */
#ifndef SOFTKVM_TESTS_ABI_TEST_GUEST_H
#define SOFTKVM_TESTS_ABI_TEST_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "abi/abi.h"
#include "abi/abi_internal.h"

/* Close every fd softkvm handed out (as the process exiting would) and free the process. */
static inline void abi_test_close_all(struct abi_process *p)
{
    for (int fd = 0; fd < p->nfds; fd++)
        if (p->fds[fd]) {
            close(fd);
            abi_fd_closed(p, fd);
        }
    abi_process_destroy(p);
}

/* Flat protected mode: 64-bit long mode with 4-level paging at `cr3` (PAE, EFER.LME|LMA),
 * or 32-bit without paging (cr3 unused). GDT at `gdt` (null, code, data), IDT at `idt`. */
static inline void abi_test_flat_sregs(struct kvm_sregs *s, bool long_mode, uint64_t gdt,
                                       uint64_t idt, uint16_t idt_limit, uint64_t cr3)
{
    s->cs = (struct kvm_segment){.limit = 0xffffffff, .selector = 8, .type = 0xb, .present = 1,
                                 .s = 1, .l = long_mode, .db = !long_mode, .g = 1};
    struct kvm_segment ds = {.limit = 0xffffffff, .selector = 0x10, .type = 3, .present = 1,
                             .s = 1, .db = 1, .g = 1};
    s->ds = s->es = s->fs = s->gs = s->ss = ds;
    s->gdt.base = gdt;
    s->gdt.limit = 23;
    s->idt.base = idt;
    s->idt.limit = idt_limit;
    s->cr0 = long_mode ? 0x80000011 : 0x11;
    s->cr3 = long_mode ? cr3 : 0;
    s->cr4 = long_mode ? 0x20 : 0;
    s->efer = long_mode ? 0x500 : 0;
}

#endif
