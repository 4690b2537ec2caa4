/* `softkvm run -- CMD ARGS`: run CMD with softkvm serving /dev/kvm.
 * Owned by the abi/ work (issue 6); until the preload transport exists this
 * reports that plainly instead of pretending. */
#include <stdio.h>

int softkvm_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "softkvm run: the /dev/kvm transport is not built yet\n");
    return 2;
}
