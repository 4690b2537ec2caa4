/* `softkvm selftests`: build and run the Linux KVM selftests under softkvm.
 * Owned by issue 7; until it exists this reports that plainly. */
#include <stdio.h>

int softkvm_cmd_selftests(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "softkvm selftests: not built yet\n");
    return 2;
}
