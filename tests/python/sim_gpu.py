# SPDX-License-Identifier: Apache-2.0
"""The CUPTI simulator (tests/cupti_sim) driven from Python through ctypes: a simulated device and
stream on which test code launches kernels, copies and memsets. Each call fires the CUDA API
callbacks on the calling thread, as the CUDA runtime does, so the launches nest inside the
Python scopes around them. Test code only: the tfprof package itself never uses ctypes."""

import ctypes


class Dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint32), ("z", ctypes.c_uint32)]


HTOD, DTOH = 1, 2


class SimGpu:
    def __init__(self, path):
        # RTLD_GLOBAL and the same path as TFPROF_CUPTI_LIBRARY: libtfprof's dlopen of its
        # "libcupti" then finds this very copy, with the same simulated GPU.
        lib = self.lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        lib.tfsim_device_add.argtypes = [ctypes.c_void_p]
        lib.tfsim_device_add.restype = ctypes.c_int
        lib.tfsim_stream_create.argtypes = [ctypes.c_int]
        lib.tfsim_stream_create.restype = ctypes.c_uint32
        lib.tfsim_launch_kernel.argtypes = [ctypes.c_uint32, ctypes.c_char_p, Dim3, Dim3,
                                            ctypes.c_uint32]
        lib.tfsim_launch_kernel.restype = ctypes.c_uint32
        lib.tfsim_memcpy.argtypes = [ctypes.c_uint32, ctypes.c_int, ctypes.c_uint64,
                                     ctypes.c_uint32, ctypes.c_int]
        lib.tfsim_memcpy.restype = ctypes.c_uint32
        lib.tfsim_stream_synchronize.argtypes = [ctypes.c_uint32]
        lib.tfsim_stream_synchronize.restype = ctypes.c_uint32
        self.device = lib.tfsim_device_add(None)
        if self.device < 0:
            raise RuntimeError("the simulator has no room for another device")
        self.stream = lib.tfsim_stream_create(self.device)

    def launch(self, mangled_name, duration_ns=20000):
        return self.lib.tfsim_launch_kernel(self.stream, mangled_name.encode(), Dim3(64, 1, 1),
                                            Dim3(128, 1, 1), duration_ns)

    def copy(self, kind, nbytes, duration_ns=0):
        return self.lib.tfsim_memcpy(self.stream, kind, nbytes, duration_ns, 1)

    def synchronize(self):
        return self.lib.tfsim_stream_synchronize(self.stream)
