/* SPDX-License-Identifier: Apache-2.0 */
/* Test API of the CUPTI simulator (libtfprof_cupti_sim.so): tests create simulated devices and
 * streams, launch simulated work and inject faults, while the code under test talks to the same
 * library through the ordinary CUPTI entry points (it dlopens it via TFPROF_CUPTI_LIBRARY).
 *
 * One instance per process: a test links the library and tfprof dlopens it by the same path, so
 * both see the same simulated GPU. This header needs no CUDA header; values that are CUPTI enums
 * (callback domains and ids, memcpy kinds) use the CUPTI numbers.
 *
 * Threading: every function here may be called from any thread, concurrently with the CUPTI
 * entry points, except tfsim_reset(), which must run while no other thread uses the simulator
 * and never from inside a CUPTI callback. Launch functions run the subscriber's API callbacks on
 * the calling thread and may call the client's buffer-request callback on the calling thread, so
 * call them without holding a lock that those callbacks take. Buffer completion callbacks run on
 * the simulator's own delivery thread.
 *
 * Time: all timestamps are CUPTI timestamps (CLOCK_REALTIME in ns, or the client's clock after
 * cuptiActivityRegisterTimestampCallback). Simulated GPU time never blocks the caller.
 *
 * What a CUPTI client sees (the behaviour tfprof must cope with):
 * - Per-thread buffers (CUDA 13's default; CUPTI_ACTIVITY_ATTR_PER_THREAD_ACTIVITY_BUFFER = 0
 *   shares one): every producing thread asks for its own buffer, on that thread, when it has
 *   none or the next record does not fit. maxNumRecords is honoured. A NULL or 0-size answer
 *   drops the record that needed the buffer (counted for cuptiActivityGetNumDroppedRecords);
 *   the next record asks again. A misaligned or too-small buffer is returned empty.
 * - Records sit at 8-byte aligned offsets, struct sizes from the CUDA 13 headers, and in
 *   shuffled order inside each buffer. Buffers are completed on the simulator's delivery
 *   thread: when full, when their oldest record is 10 ms old (cuptiActivityFlushPeriod changes
 *   that), and on cuptiActivityFlushAll, which returns after those completion callbacks
 *   returned. A forced flush also returns buffers that hold no records, so every buffer the
 *   client handed over comes back. Completion callbacks may call any CUPTI function; a flush
 *   from inside one returns at once.
 * - DEVICE and CONTEXT records appear for devices added while the kind is enabled, or for
 *   existing devices through cuptiActivityEnableAndDump; plain cuptiActivityEnable does not
 *   replay them (real CUPTI attached after CUDA initialization does not either).
 * - RUNTIME/DRIVER kinds produce CUpti_ActivityAPI records for the simulated calls, preceded by
 *   EXTERNAL_CORRELATION records while the calling thread's external id stacks are non-empty. */
#ifndef TFPROF_TESTS_CUPTI_SIM_H
#define TFPROF_TESTS_CUPTI_SIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TFSIM_API __attribute__((visibility("default")))

/* Capacity limits; functions that would exceed them fail as documented. */
#define TFSIM_MAX_DEVICES 16
#define TFSIM_MAX_STREAMS 1024

/* Callback domains, same values as CUpti_CallbackDomain. */
#define TFSIM_DOMAIN_DRIVER 1u
#define TFSIM_DOMAIN_RUNTIME 2u

/* Delay between an API call and the earliest start of the work it queues on an idle stream. */
#define TFSIM_LAUNCH_LATENCY_NS 5000u

/* Properties of a simulated device. Zero fields take the defaults in brackets (an H100-like
 * part). The name is copied. */
struct tfsim_device_desc {
    const char *name;             /* ["Simulated GPU"] */
    int cc_major;                 /* [9] compute capability */
    int cc_minor;                 /* [0] used only when cc_major is set */
    uint32_t sm_count;            /* [132] */
    uint64_t global_memory_bytes; /* [80 GiB] */
    uint64_t memory_bandwidth;    /* bytes per second [3.35e12]; the DEVICE record holds kB/s */
    uint32_t core_clock_khz;      /* [1980000] */
    /* The occupancy limits the DEVICE record reports. Zero fields take the values of the
     * compute capability (CUDA C++ Programming Guide, "Technical Specifications per Compute
     * Capability"): 7.0, 7.5, 8.0, 8.6, 8.9 as listed, any other as 9.0 (H100). */
    uint32_t max_warps_per_sm;    /* [64; 32 on 7.5; 48 on 8.6 and 8.9] */
    uint32_t max_blocks_per_sm;   /* [32; 16 on 7.5 and 8.6; 24 on 8.9] */
    uint32_t regs_per_sm;         /* [65536] */
    uint32_t smem_per_sm;         /* bytes [228 KiB; 96 KiB on 7.0, 64 KiB on 7.5, 164 KiB on
                                     8.0, 100 KiB on 8.6 and 8.9] */
    int no_occupancy_limits;      /* nonzero: the record leaves all of these 0 (not reported) */
    /* Bytes per second of the host link [25e9: PCIe 4.0 x16 as measured, not its 32 GB/s
     * peak], which H2D, D2H and H2H copies of duration 0 run at; device-side copies, P2P and
     * memsets run at memory_bandwidth. Not in the DEVICE record (CUPTI has no such field). */
    uint64_t host_link_bandwidth;
};

/* Adds a device with its primary context (context id = ordinal + 1) and its null stream.
 * d may be NULL for all defaults. Returns the ordinal (0, 1, ...) or -1 when TFSIM_MAX_DEVICES
 * exist. Fires the CONTEXT_CREATED resource callback and, when the kinds are enabled, produces
 * DEVICE and CONTEXT records on the calling thread (like CUDA initialization with CUPTI
 * attached). */
TFSIM_API int tfsim_device_add(const struct tfsim_device_desc *d);
TFSIM_API int tfsim_device_count(void);

/* Creates a stream on a device. Stream ids are unique within the process since the last
 * tfsim_reset() and never 0. Returns 0 for a bad device or when TFSIM_MAX_STREAMS exist.
 * Fires the STREAM_CREATED resource callback. */
TFSIM_API uint32_t tfsim_stream_create(int device);
/* The id of a device's null (default) stream, 0 for a bad device. */
TFSIM_API uint32_t tfsim_null_stream(int device);
/* The device of a stream, -1 for an unknown stream. */
TFSIM_API int tfsim_stream_device(uint32_t stream);
/* Opaque CUcontext / CUstream handles that the simulator's cuptiGetContextId, cuptiGetDeviceId
 * and cuptiGetStreamId accept, and that callback data carry. NULL for unknown ids. Valid until
 * tfsim_reset(). */
TFSIM_API void *tfsim_context_handle(int device);
TFSIM_API void *tfsim_stream_handle(uint32_t stream);

struct tfsim_dim3 {
    uint32_t x, y, z; /* 0 counts as 1 */
};

/* A kernel launch. Zero-initialize and set what matters (designated initializers). */
struct tfsim_launch {
    uint32_t stream;
    const char *name;               /* mangled name; interned, so records outlive the caller */
    struct tfsim_dim3 grid, block;
    uint32_t duration_ns;           /* simulated execution time; 0 counts as 1 */
    uint16_t registers_per_thread;  /* [32] */
    int32_t static_shared_bytes;
    int32_t dynamic_shared_bytes;
    /* The API that launches it: domain TFSIM_DOMAIN_RUNTIME or TFSIM_DOMAIN_DRIVER and a CUPTI
     * cbid of that domain. 0/0 means runtime cudaLaunchKernel_v7000. Cooperative cbids make a
     * cooperative launch type. */
    uint32_t domain;
    uint32_t cbid;
    const char *function_name;      /* NULL: derived from the cbid ("cudaLaunchKernel", ...) */
    uint32_t graph_id;              /* nonzero for kernels that are graph nodes */
    uint64_t graph_node_id;
    /* Nonzero: no API call is simulated and the record carries this correlation id. Use it for
     * the second and later kernels of one graph launch. */
    uint32_t correlation_id;
    /* The shared memory the driver configured per SM for the launch (the carveout, the record's
     * sharedMemoryExecuted), bytes; 0: the device's smem_per_sm. */
    uint32_t shared_memory_executed;
};

/* Launches a kernel: on the calling thread runs the API ENTER/EXIT callbacks (if the subscriber
 * enabled that domain/cbid), then queues a kernel record (CONCURRENT_KERNEL, else KERNEL, if
 * enabled) timed on the stream's timeline: start = max(stream tail, now + launch latency),
 * end = start + duration. Returns the correlation id, 0 for an unknown stream or name NULL. */
TFSIM_API uint32_t tfsim_launch_kernel(uint32_t stream, const char *name, struct tfsim_dim3 grid,
                                       struct tfsim_dim3 block, uint32_t duration_ns);
TFSIM_API uint32_t tfsim_launch_kernel_ex(const struct tfsim_launch *l);

/* Copy directions, same values as CUpti_ActivityMemcpyKind. */
enum tfsim_copy_kind {
    TFSIM_COPY_HTOD = 1,
    TFSIM_COPY_DTOH = 2,
    TFSIM_COPY_DTOD = 8,
    TFSIM_COPY_HTOH = 9,
    TFSIM_COPY_PTOP = 10,
};

struct tfsim_memcpy {
    uint32_t stream;
    enum tfsim_copy_kind kind;
    uint64_t bytes;
    uint32_t duration_ns;  /* 0: bytes / device bandwidth + 1 us */
    int async;             /* async copies read pinned host memory and set the ASYNC flag */
    int peer_device;       /* PTOP destination; -1 or out of range: the next device ordinal */
    uint32_t domain;       /* 0/0: cudaMemcpy[Async]_v3020, or cudaMemcpyPeer[Async]_v4000 */
    uint32_t cbid;
    const char *function_name;
};

/* A memory copy: API callbacks, then a MEMCPY record (CUpti_ActivityMemcpy6), or for PTOP a
 * MEMCPY2 record (CUpti_ActivityMemcpyPtoP4) when MEMCPY2 is enabled, else a MEMCPY record
 * with copyKind PTOP. Returns the correlation id, 0 for an unknown stream. */
TFSIM_API uint32_t tfsim_memcpy(uint32_t stream, enum tfsim_copy_kind kind, uint64_t bytes,
                                uint32_t duration_ns, int async);
TFSIM_API uint32_t tfsim_memcpy_ex(const struct tfsim_memcpy *m);

/* An asynchronous device memset (cudaMemsetAsync): MEMSET record (CUpti_ActivityMemset4).
 * duration 0 is derived from the bandwidth. Returns the correlation id, 0 for a bad stream. */
TFSIM_API uint32_t tfsim_memset(uint32_t stream, uint64_t bytes, uint32_t value,
                                uint32_t duration_ns);

/* Memory kinds, same values as CUpti_ActivityMemoryKind. */
enum tfsim_memory_kind {
    TFSIM_MEM_PINNED = 2,
    TFSIM_MEM_DEVICE = 3,
    TFSIM_MEM_MANAGED = 5,
};

/* An allocation: cudaMalloc (kind 0 or DEVICE), cudaMallocHost (PINNED), cudaMallocManaged
 * (MANAGED), or, with a stream, cudaMallocAsync (device memory from the device's stream-ordered
 * pool; the first one also produces a MEMORY_POOL record, CREATED). */
struct tfsim_alloc {
    int device;                  /* ignored with a stream: the stream's device */
    uint32_t stream;             /* nonzero: cudaMallocAsync on this stream */
    enum tfsim_memory_kind kind; /* 0: device */
    uint64_t bytes;
};

/* Plays the allocation call (API callbacks) and, when MEMORY2 is enabled, produces an
 * ALLOCATION record (CUpti_ActivityMemory4) with the call's correlation id, timestamped inside
 * the call. Returns the address (256-byte aligned, unique per device and kind, never reused),
 * 0 for a bad device or stream, 0 bytes, or a stream-ordered allocation of another kind. The
 * correlation id goes to *correlation_id when it is not NULL. */
TFSIM_API uint64_t tfsim_malloc_ex(const struct tfsim_alloc *a, uint32_t *correlation_id);
TFSIM_API uint64_t tfsim_malloc(int device, uint64_t bytes);
TFSIM_API uint64_t tfsim_malloc_async(uint32_t stream, uint64_t bytes);
TFSIM_API uint64_t tfsim_malloc_managed(int device, uint64_t bytes);
/* cudaFree (cudaFreeHost for pinned memory), or cudaFreeAsync on a stream (0: the device's null
 * stream) for stream-ordered memory: a RELEASE record with the allocation's bytes. Returns the
 * correlation id, or 0 when address is not a live allocation (nothing is played). */
TFSIM_API uint32_t tfsim_free(uint64_t address);
TFSIM_API uint32_t tfsim_free_async(uint32_t stream, uint64_t address);
/* Fault: cudaFree of device memory allocated before CUPTI was attached, so a RELEASE record
 * (address, bytes) comes with no ALLOCATION record. Returns the correlation id, 0 for a bad
 * device. */
TFSIM_API uint32_t tfsim_free_unknown(int device, uint64_t address, uint64_t bytes);
/* Bytes the simulator's live allocations on a device hold, every kind: the truth for tests. */
TFSIM_API uint64_t tfsim_memory_in_use(int device);

/* cudaStreamSynchronize / cudaDeviceSynchronize: API callbacks, the SYNCHRONIZE-domain
 * callback, and a SYNCHRONIZATION record whose end is the stream's (device's) tail in simulated
 * time. Nothing blocks. Returns the correlation id, 0 for a bad stream or device. */
TFSIM_API uint32_t tfsim_stream_synchronize(uint32_t stream);
TFSIM_API uint32_t tfsim_device_synchronize(int device);

/* Faults. For the counted ones, arg is how many times it strikes; arg 0 means every time until
 * tfsim_fault_clear(). Injecting a fault again replaces its count. */
enum tfsim_fault {
    /* cuptiActivityEnable, cuptiActivityEnableAndDump, cuptiSubscribe, cuptiActivityFlushAll
     * and cuptiActivityRegisterTimestampCallback return CUPTI_ERROR_UNKNOWN (999), like
     * libcupti on a machine without a driver. arg is ignored. */
    TFSIM_FAULT_NO_GPU = 1,
    /* cuptiActivityEnable / EnableAndDump / cuptiSubscribe return
     * CUPTI_ERROR_INSUFFICIENT_PRIVILEGES. arg is ignored. */
    TFSIM_FAULT_INSUFFICIENT_PRIVILEGES,
    /* cuptiSubscribe returns CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED as if another tool
     * (Nsight Systems) held the subscription. arg is ignored. */
    TFSIM_FAULT_MULTIPLE_SUBSCRIBERS,
    /* The next arg records are dropped and counted for cuptiActivityGetNumDroppedRecords. */
    TFSIM_FAULT_DROP_RECORDS,
    /* The next arg buffer requests are answered as if the client's request callback had
     * returned no buffer (the callback is not called): the record that needed the buffer is
     * dropped and counted, exactly as when the client really returns NULL or size 0. */
    TFSIM_FAULT_REFUSE_BUFFER,
    /* The next arg timed records get start = end = 0 (CUPTI_TIMESTAMP_UNKNOWN). */
    TFSIM_FAULT_ZERO_TIMESTAMPS,
};

/* Returns 0, or -1 for an unknown fault. */
TFSIM_API int tfsim_inject(enum tfsim_fault f, uint64_t arg);
TFSIM_API void tfsim_fault_clear(void);

/* Counters since the last tfsim_reset(). After a forced flush with no work in flight:
 * records_produced == records_delivered + records_dropped, and every buffer the client handed
 * over has come back: buffers_requested == buffers_refused + buffers_completed. */
struct tfsim_stats {
    uint64_t records_produced;  /* records generated for enabled kinds */
    uint64_t records_delivered; /* records inside buffers handed to the completion callback */
    uint64_t records_dropped;   /* dropped by a fault or for lack of a buffer */
    uint64_t buffers_requested; /* buffer requests, including refused ones */
    uint64_t buffers_refused;   /* requests answered with no usable buffer */
    uint64_t buffers_completed; /* completion callbacks that returned */
    uint64_t api_callbacks;     /* subscriber callback invocations */
};
TFSIM_API void tfsim_stats(struct tfsim_stats *out);

/* Back to an empty GPU: no devices, streams, subscriber, buffer callbacks, enabled kinds,
 * faults or counters. Waits for a delivery in progress to finish, then discards undelivered
 * buffers without calling the completion callback (their memory stays the client's). Interned
 * kernel names and the correlation id counter survive, so records from before stay valid. */
TFSIM_API void tfsim_reset(void);

/* 1 when cuptiActivityGetNextRecord forwards to a real libcupti (so NVIDIA's code checks the
 * record layout), 0 when the simulator iterates itself. tfsim_real_cupti_path() names the
 * library, or returns NULL. Set TFSIM_REAL_CUPTI to a path to choose it, or to "none". */
TFSIM_API int tfsim_using_real_iterator(void);
TFSIM_API const char *tfsim_real_cupti_path(void);

#ifdef __cplusplus
}
#endif

#endif /* TFPROF_TESTS_CUPTI_SIM_H */
