/* x86 intrinsics in the WebAssembly sandbox: see anneval_x86.h. */
#include "anneval_x86.h"
