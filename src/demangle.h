/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel names as people read them: C++ symbols demangled with the C++ runtime's own demangler
 * (libstdc++'s __cxa_demangle), never a hand-written one. */
#ifndef TFPROF_DEMANGLE_H
#define TFPROF_DEMANGLE_H

/* Returns a malloc'd demangled form of name, or NULL when name is not a mangled C++ symbol (the
 * caller then keeps name as it is). Thread-safe. */
char *tfprof__demangle(const char *name);

#endif
