/* bench/emu_bench_guest.S: a 64 KiB firmware image (loaded at 0xffff0000, entered at the
 * reset vector) that goes real mode -> protected mode -> long mode with 4-level paging
 * and then runs a CPU-bound integer workload: arithmetic, branches, memory and calls.
 * The iteration count is the quad at offset ITER_OFF (patched by the bench driver).
 * Ends with OUT to port 0xf4 (QEMU isa-debug-exit), value = low byte of the checksum. */
    .set ROM, 0xffff0000
    .set RAM_CODE, 0x100000
    .set ARRAY, 0x200000
    .set ITER_OFF, 0x8000

    .code16
    .text
    .globl _start
_start:
    cli
    cld
    lgdtl %cs:gdt_desc
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $(ROM + prot32)

    .code32
prot32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    /* page tables: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 (512 x 2 MiB identity), */
    movl $0x1000, %edi
    xorl %eax, %eax
    movl $(4 * 4096 / 4), %ecx
    rep stosl
    movl $0x2003, 0x1000
    movl $0x3003, 0x2000
    /* the ROM itself (this code) stays mapped: PDPT[3] -> PD 0x4000, last 2 MiB */
    movl $0x4003, 0x2018
    movl $0xffe00083, 0x4000 + 511 * 8
    movl $0x3000, %edi
    movl $0x83, %eax
    movl $512, %ecx
1:  movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b
    /* copy the 64-bit part to RAM */
    movl $(ROM + long_start), %esi
    movl $RAM_CODE, %edi
    movl $(long_end - long_start), %ecx
    rep movsb
    /* iteration count for the 64-bit code */
    movl $(ROM + ITER_OFF), %esi
    movl (%esi), %eax
    movl %eax, 0x5000
    movl 4(%esi), %eax
    movl %eax, 0x5004
    /* long mode: PAE, CR3, EFER.LME, paging */
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $0x1000, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ljmpl $0x08, $RAM_CODE

    .code64
long_start:
    movq $0x90000, %rsp
    movq 0x5000, %r15          /* iterations */
    movq $ARRAY, %rdi
    xorq %rbx, %rbx            /* checksum */
    movq $0x12345678, %rax
outer:
    xorl %ecx, %ecx
inner:
    /* integer mix + memory read-modify-write */
    movq (%rdi,%rcx,8), %rdx
    addq %rax, %rdx
    imulq $0x2545f491, %rdx, %rdx
    movq %rdx, %rsi
    shrq $17, %rsi
    xorq %rsi, %rdx
    movq %rdx, (%rdi,%rcx,8)
    /* data-dependent branch */
    testb $1, %dl
    jz 2f
    addq %rdx, %rbx
    jmp 3f
2:  subq %rdx, %rbx
3:  /* a call every 4th element */
    testb $3, %cl
    jnz 4f
    call mix
4:  incl %ecx
    cmpl $256, %ecx
    jb inner
    decq %r15
    jnz outer
    movl %ebx, %eax
    outb %al, $0xf4
    hlt
    jmp .

mix:
    pushq %rbx
    movq %rax, %rbx
    rolq $13, %rbx
    leaq 7(%rbx,%rax,2), %rax
    popq %rbx
    ret
long_end:

    .code16
    .p2align 3
gdt:
    .quad 0
    .quad 0x00af9b000000ffff   /* 0x08: 64-bit code */
    .quad 0x00cf93000000ffff   /* 0x10: flat data */
    .quad 0x00cf9b000000ffff   /* 0x18: 32-bit code */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long ROM + gdt

    .org ITER_OFF
iterations:
    .quad 1000

    .org 0xfff0
reset:
    jmp _start
    .org 0x10000
