/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder entry point; replaced by the wiring of the reconciler. */
#include <stdio.h>

int main(void) {
        fprintf(stderr, "pullpolicy-controller: not wired yet\n");
        return 1;
}
