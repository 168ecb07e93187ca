// The GEMM driver: the BLIS loop nest, packing decisions, threads, epilogue.
//
//   loop 5  jc: column blocks of C and B, nc wide          (B block in L3)
//   loop 4  pc: k-blocks, kc deep; B block packed here      (micro-panel in L1)
//   loop 3  ic: row blocks of C and A, mc tall; A packed    (A block in L2)
//   loop 2  jr: micro-panels of B, nr wide    } the macro-kernel, one per ISA
//   loop 1  ir: micro-panels of A, mr tall    } (gemm_avx2.cpp, gemm_generic.cpp)
//           microkernel: an mr x nr tile of C in registers, k-loop of rank-1 updates
//
// Small and skinny shapes (every GEMM of MLP training has a dimension below
// 256) take the same loops with packing elided where it buys nothing: the
// microkernel broadcasts A element by element, so A is read in place with
// whatever strides it has; B is read in place when its rows are contiguous
// (unit column stride), and only its last partial micro-panel is copied. The
// k-blocks are equal-sized, so a short k is one block and C is written once.
//
// Threads split C into ranges of whole micro-panel columns (or rows). Where
// they split k instead (the batch-1 row, row_product; a short C of two
// k-blocks, k_block_split), each thread sums whole k-blocks from zero and the
// sums are added in k-block order, as one thread adds them. The k-blocking
// depends only on k and the ISA: every element of C gets the same operations
// in the same order for any thread count.
#include "gemm/gemm.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "common/dispatch.h"
#include "common/thread_pool.h"
#include "gemm/gemm_kernels.h"

namespace pb {
namespace {

using gemm_detail::BlockSizes;
using gemm_detail::MacroArgs;

inline index_t imin(index_t x, index_t y) { return x < y ? x : y; }
inline index_t ceil_div(index_t x, index_t y) { return (x + y - 1) / y; }

// Per-thread packing buffers, grown on demand and reused across calls (the
// pool's workers live as long as the process).
class Buffer {
public:
    ~Buffer() { std::free(p_); }
    void* get(std::size_t bytes) {
        if (bytes > bytes_) {
            std::free(p_);
            bytes = (bytes + 4095) & ~static_cast<std::size_t>(4095);
            p_ = std::aligned_alloc(64, bytes);
            if (p_ == nullptr) {
                bytes_ = 0;
                throw std::bad_alloc();
            }
            bytes_ = bytes;
        }
        return p_;
    }

private:
    void* p_ = nullptr;
    std::size_t bytes_ = 0;
};

thread_local Buffer tl_pack_a, tl_pack_b, tl_row, tl_partial;

// ---- the kernel table, indexed by pb::active_isa(): generic, avx2, and
// avx512 (the AVX2 kernels and block sizes but for the microkernels, which
// take two micro-panels of B at once, the row and the narrow dW)

#if defined(__x86_64__) || defined(_M_X64)
#define PB_X86_KERNELS 1
#else
#define PB_X86_KERNELS 0
#endif

template <typename T>
struct Kernels {
    BlockSizes bs;
    index_t b_panels;  // micro-panels of B the macro-kernel takes at once (avx512: 2, gemm_avx512.cpp's ukr2)
    void (*tiny)(index_t, index_t, index_t, T, const T*, index_t, index_t, const T*, index_t, index_t, T, T*, index_t,
                 index_t);
    void (*row)(index_t, index_t, index_t, T, const T*, index_t, const T*, index_t, T, T*, RowEpilogue<T>);
    void (*row_narrow)(index_t, index_t, T, const T*, index_t, const T*, index_t, T, T*, RowEpilogue<T>);  // or null
    void (*macro)(const MacroArgs<T>&);
    void (*narrow_tn)(index_t, index_t, index_t, T, const T*, index_t, const T*, index_t, T, T*, index_t);  // or null
    void (*pack_a)(index_t, index_t, const T*, index_t, index_t, T*);
    void (*pack_b)(index_t, index_t, const T*, index_t, index_t, T*);
};

template <typename T>
const Kernels<T>& kernels();

template <>
const Kernels<float>& kernels<float>() {
    static const Kernels<float> table[kNumIsa] = {
        {gemm_detail::kBlocksGenericF32, 1, generic::gemm_tiny_f32, generic::gemm_row_f32, nullptr, generic::gemm_macro_f32,
         nullptr, generic::gemm_pack_a_f32, generic::gemm_pack_b_f32},
#if PB_X86_KERNELS  // elsewhere only the portable path exists (active_isa() is generic)
        {gemm_detail::kBlocksAvx2F32, 1, avx2::gemm_tiny_f32, avx2::gemm_row_f32, avx2::gemm_row_narrow_f32,
         avx2::gemm_macro_f32, nullptr,
         avx2::gemm_pack_a_f32, avx2::gemm_pack_b_f32},
        {gemm_detail::kBlocksAvx2F32, 2, avx2::gemm_tiny_f32, avx512::gemm_row_f32, avx2::gemm_row_narrow_f32,
         avx512::gemm_macro_f32, avx512::gemm_narrow_tn_f32,
         avx2::gemm_pack_a_f32, avx2::gemm_pack_b_f32},
#endif
    };
    return table[static_cast<int>(active_isa())];
}

template <>
const Kernels<double>& kernels<double>() {
    static const Kernels<double> table[kNumIsa] = {
        {gemm_detail::kBlocksGenericF64, 1, generic::gemm_tiny_f64, generic::gemm_row_f64, nullptr, generic::gemm_macro_f64,
         nullptr, generic::gemm_pack_a_f64, generic::gemm_pack_b_f64},
#if PB_X86_KERNELS  // elsewhere only the portable path exists (active_isa() is generic)
        {gemm_detail::kBlocksAvx2F64, 1, avx2::gemm_tiny_f64, avx2::gemm_row_f64, avx2::gemm_row_narrow_f64,
         avx2::gemm_macro_f64, nullptr,
         avx2::gemm_pack_a_f64, avx2::gemm_pack_b_f64},
        {gemm_detail::kBlocksAvx2F64, 2, avx2::gemm_tiny_f64, avx512::gemm_row_f64, avx2::gemm_row_narrow_f64,
         avx512::gemm_macro_f64, avx512::gemm_narrow_tn_f64,
         avx2::gemm_pack_a_f64, avx2::gemm_pack_b_f64},
#endif
    };
    return table[static_cast<int>(active_isa())];
}

template <typename T>
struct Problem {
    index_t m, n, k;
    T alpha;
    const T* a;
    index_t rs_a, cs_a;
    const T* b;
    index_t rs_b, cs_b;
    T beta;
    T* c;
    index_t rs_c, cs_c;
    const GemmEpilogue<T>* epi;
};

struct Plan {
    index_t kc;   // k-block depth (all blocks but the last are kc deep)
    bool pack_a;  // copy A blocks into micro-panels (else read in place)
    bool pack_b;  // copy B blocks into micro-panels (else read in place; needs cs_b == 1)
};

template <typename T>
Plan make_plan(const Problem<T>& p, const BlockSizes& bs) {
    Plan plan;
    // Equal k-blocks of at most kc: k = 1500 with kc 512 gives 504/504/492.
    const index_t nk = ceil_div(p.k, bs.kc);
    plan.kc = imin(p.k, (ceil_div(p.k, nk) + 7) / 8 * 8);
    // B in place needs unit stride along j. Packing it (k x n copies) pays off
    // once a micro-panel is reused by many A micro-panels (m >= 96), or when
    // the kc rows of a micro-panel collide in a few cache sets (a row stride
    // that is a multiple of 1 KiB) or in the TLB (> 16 KiB). Measured on
    // Zen 4: 64x784 @ 784x128 and 64x128 @ 128x784 run 5% faster in place,
    // 784x64 @ 64x128 10% faster packed, 64x1024 @ 1024x1024 1.7x faster packed.
    const bool b_rows_ok = p.cs_b == 1;
    const double b_stride = static_cast<double>(p.rs_b < 0 ? -p.rs_b : p.rs_b) * sizeof(T);
    const bool b_far = (b_stride >= 1024.0 && std::fmod(b_stride, 1024.0) == 0.0) || b_stride > 16384.0;
    plan.pack_b = !b_rows_ok || p.m >= 96 || b_far;
    // A in place costs nothing while few B micro-panels reuse it; pack it when
    // n is wide and the A matrix no longer fits in half of L2 (its rows then
    // alias in the caches): +7% at n = 2048, neutral at 1024, -3% at 512.
    plan.pack_a = p.n >= 768 && static_cast<double>(p.m) * static_cast<double>(p.k) * sizeof(T) >= 512.0 * 1024.0;
    return plan;
}

template <typename T>
void apply_epilogue(const Problem<T>& p, index_t i0, index_t rows, index_t j0, index_t cols) {
    const GemmEpilogue<T>& e = *p.epi;
    if (e.bias != nullptr || e.act != Activation::identity || e.preact != nullptr)
        bias_act_forward<T>(e.act, e.params, p.c + i0 * p.rs_c + j0, rows, cols, p.rs_c,
                            e.bias ? e.bias + j0 : nullptr, e.preact ? e.preact + i0 * e.ld_preact + j0 : nullptr,
                            e.ld_preact);
    if (e.tile.fn != nullptr) e.tile.fn(e.tile.ctx, i0, rows, j0, cols);
}

// One block of B (kc x nc, a k-block of a column block), packed once into the
// calling thread's buffer and read by every thread of a row split (BLIS's loop
// 3 in parallel): the threads then claim rows of C in chunks, each packing
// only its own rows of A, and no operand is packed twice.
template <typename T>
const T* pack_shared_b_block(const Problem<T>& p, const Kernels<T>& kern, index_t jc, index_t nc, index_t pc,
                             index_t kc) {
    const index_t NR = kern.bs.nr, panels = ceil_div(nc, NR);
    T* dst = static_cast<T*>(tl_pack_b.get(sizeof(T) * static_cast<std::size_t>(panels * NR * kc)));
    // A copy streams memory: it counts as 32 flops an element, so from 125k
    // elements on (32 k n >= 2 kMinWorkPerThread) both threads pack.
    parallel_for(panels, 32.0 * static_cast<double>(kc) * static_cast<double>(nc), [&](index_t t0, index_t t1) {
        kern.pack_b(kc, imin(t1 * NR, nc) - t0 * NR, p.b + pc * p.rs_b + (jc + t0 * NR) * p.cs_b, p.rs_b, p.cs_b,
                    dst + t0 * NR * kc);
    });
    return dst;
}

// The k-blocks of a row, a function of k alone: up to 256 rows, one; beyond,
// an even number of equal blocks of at most 512 rows, so that two threads
// each stream one block of a 784-deep layer (2 x 392) rather than two (the
// 4 x 196 it took when it followed the blocked path's 256-deep k-blocks:
// every block pays for starting its stream and for a partial row added at
// the end). 784 x 128 float on Zen 4, medians of 6 alternations: 2.70 ->
// 2.61 us on two threads, 4.10 -> 3.93 on one.
inline index_t row_k_blocks(index_t k) { return k <= 256 ? 1 : 2 * ceil_div(k, 1024); }

// ...and the first of several k-blocks is this many rows longer than the
// others: the pool gives it to the calling thread, which starts a handoff
// (about 0.1 us) before the worker does. 784-128-10 float forward, two
// threads, two runs of 41 alternations, medians: 2.54 -> 2.46 and 2.45 -> 2.38
// us (with the caller's block 32 rows shorter instead: 2.75 and 2.54).
constexpr index_t kRowLeadRows = 32;

// One row of C (m == 1, B with unit column stride): c = alpha a B + beta c,
// then the epilogue. Bound by how fast B streams from L2 (about 30 bytes per
// cycle, against 64 flops per cycle of FMA), so its work is counted in bytes
// of B.
//
// k is cut into row_k_blocks(k) k-blocks, and each task sums one k-block
// over a chunk of columns from zero into a partial row. Threads then stream
// whole rows of B, each from its own L2, rather than half of every row (784 x
// 128 float on Zen 4, medians of alternating runs: 3.0-3.3 -> 2.9-3.1 us on
// two threads over 4, 4.7-4.8 -> 4.5-4.6 on one over 3). The partial rows are
// then added in k-block order by the row kernel itself (a product of a row of
// ones with the partials, then the write-back alpha x + beta c and the
// epilogue), so the sums depend on k alone, never on the thread count. One
// k-block (k <= 256) needs no partials: threads split the columns, each
// finishing its own.
//
// A row of at most kNarrowRowCols columns is one task (kCols wide) and every
// call covers it whole: the ISA's narrow kernel then takes it (its sums split
// k into chains by n and k alone).
//
// The row kernels' write-back adds the bias and applies ReLU (RowEpilogue):
// the epilogue of a batch-1 dense forward then costs no pass of its own over
// c (784-128-10 float forward, two threads, medians over 6 alternations:
// 2.61 -> 2.49 us; one thread 3.93 -> 3.85). Other activations, or a saved pre-activation, take
// apply_epilogue after the row.
template <typename T>
void row_product(const Problem<T>& p, const Kernels<T>& kern) {
    constexpr index_t kCols = 64;  // the unit of a column split
    static_assert(kNarrowRowCols <= kCols, "a narrow row must be a single task");
    const bool narrow = p.n <= kNarrowRowCols && kern.row_narrow != nullptr;
    const GemmEpilogue<T>* e = p.epi;
    const bool fused = e == nullptr || (e->preact == nullptr && e->tile.fn == nullptr &&
                                        (e->act == Activation::identity || e->act == Activation::relu));
    RowEpilogue<T> epi;
    if (e != nullptr && fused) epi = RowEpilogue<T>{e->bias, e->act == Activation::relu};
    const auto row = [&](index_t j0, index_t j1, index_t k, T alpha, const T* a, index_t inc_a, const T* b,
                         index_t rs_b, T beta, T* c, RowEpilogue<T> fin) {
        if (narrow)  // (then j0 == 0 and j1 == n)
            kern.row_narrow(j1, k, alpha, a, inc_a, b, rs_b, beta, c, fin);
        else
            kern.row(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, fin);
    };
    const index_t blocks = row_k_blocks(p.k), lead = blocks > 1 ? kRowLeadRows : 0;
    const index_t kc = ceil_div(p.k - lead, blocks);  // block 0: lead + kc rows
    const double work = 16.0 * sizeof(T) * static_cast<double>(p.k) * static_cast<double>(p.n);
    if (blocks == 1) {
        parallel_for(ceil_div(p.n, kCols), work, [&](index_t t0, index_t t1) {
            row(t0 * kCols, imin(t1 * kCols, p.n), p.k, p.alpha, p.a, p.cs_a, p.b, p.rs_b, p.beta, p.c, epi);
        });
    } else {
        // A task: one k-block over a chunk of at most 4 x 64 columns, the
        // chunks of a row as equal as whole 64s allow.
        const index_t chunks = ceil_div(p.n, 4 * kCols), width = kCols * ceil_div(ceil_div(p.n, kCols), chunks);
        // [blocks ones][blocks partial rows of n], in the calling thread's buffer.
        T* ones = static_cast<T*>(tl_row.get(sizeof(T) * static_cast<std::size_t>(blocks * (p.n + 1))));
        T* partial = ones + blocks;
        for (index_t i = 0; i < blocks; ++i) ones[i] = T(1);
        parallel_for(blocks * chunks, work, [&](index_t t0, index_t t1) {
            for (index_t t = t0; t < t1; ++t) {
                const index_t kb = t / chunks, j0 = (t % chunks) * width, p0 = kb == 0 ? 0 : lead + kb * kc;
                const index_t rows = kb == 0 ? lead + kc : imin(kc, p.k - p0);
                row(j0, imin(j0 + width, p.n), rows, T(1), p.a + p0 * p.cs_a, p.cs_a,
                    p.b + p0 * p.rs_b, p.rs_b, T(0), partial + kb * p.n, RowEpilogue<T>{});
            }
        });
        row(0, p.n, blocks, p.alpha, ones, 1, partial, p.n, p.beta, p.c, epi);
    }
    if (!fused) apply_epilogue(p, 0, 1, 0, p.n);
}

// A narrow C (fewer columns than a micro-panel: on the avx512 path a zmm,
// 16 floats or 8 doubles) whose A is stored transposed, as in dW = X^T G of a
// layer with few outputs, takes the ISA's narrow_tn kernel (gemm_avx512.cpp):
// vectors run down the columns of C, every lane used, no edge tiles. The same
// k-blocks as the blocked path and the same arithmetic per element, so the
// bits do not change (tested against the avx2 path); threads split the rows,
// and each finished block of rows gets the epilogue (the compiled step's
// optimiser update). Zen 4, the GEMM alone, medians of 31 runs (m x n x k):
//   128 x 10 x 64   (workload A's output layer)  3.4 -> 1.7 us, one thread
//   128 x 10 x 128  (B's)                         6.0 -> 3.1 us, one thread
//   1024 x 10 x 512 (C's)  302 -> 97 us on one thread, 172 -> 48 us on two
// (C's case ran at 35 GFLOP/s in the blocked path: its 6-row tiles re-read
// A's lines, 4 KiB apart, which L1 presumably could not keep). Whole native
// training steps of A, B and C: unchanged within the noise (at most 1%).
//
// The forward of such a layer (A row-major) stays in the blocked path, which
// fills 10 of 16 lanes: a vector down C's columns would need A transposed.
template <typename T>
void narrow_tn_product(const Problem<T>& p, const Kernels<T>& kern, index_t kc, double work) {
    constexpr index_t kRows = 64;  // a task: 64 rows of C
    parallel_for(ceil_div(p.m, kRows), work, [&](index_t t0, index_t t1) {
        const index_t i0 = t0 * kRows, i1 = imin(t1 * kRows, p.m);
        for (index_t pc = 0; pc < p.k; pc += kc)
            kern.narrow_tn(i1 - i0, p.n, imin(kc, p.k - pc), p.alpha, p.a + i0 + pc * p.cs_a, p.cs_a,
                           p.b + pc * p.rs_b, p.rs_b, pc == 0 ? p.beta : T(1), p.c + i0 * p.rs_c, p.rs_c);
        if (p.epi != nullptr) apply_epilogue(p, i0, i1 - i0, 0, p.n);
    });
}

// Loops 5, 4, 3 over the block C[i0:i1, j0:j1] (j0 a multiple of nr, i0 of mr)
// and the k-blocks starting in [k0, k1) (k0 a multiple of kc). `b_packed`:
// null, or the packed B block of a single column block and k-block: shared
// by the threads (pack_shared_b_block) or this thread's own (rows_own_b).
template <typename T>
void run_block(const Problem<T>& p, const Plan& plan, const Kernels<T>& kern, index_t i0, index_t i1, index_t j0,
               index_t j1, index_t k0, index_t k1, const T* b_packed) {
    const BlockSizes& bs = kern.bs;
    const index_t MR = bs.mr, NR = bs.nr;
    T* pack_a = nullptr;
    T* pack_b = nullptr;
    if (plan.pack_a)
        pack_a = static_cast<T*>(tl_pack_a.get(sizeof(T) * static_cast<std::size_t>(ceil_div(imin(bs.mc, i1 - i0), MR) * MR * plan.kc)));
    // Packed B block, or (B in place) just its last partial micro-panel.
    if (b_packed == nullptr) {
        const index_t b_cols = plan.pack_b ? ceil_div(imin(bs.nc, j1 - j0), NR) * NR : NR;
        pack_b = static_cast<T*>(tl_pack_b.get(sizeof(T) * static_cast<std::size_t>(b_cols * plan.kc)));
    }

    MacroArgs<T> g;
    g.c_cs = p.cs_c;
    g.c_rs = p.rs_c;
    g.alpha = p.alpha;
    for (index_t jc = j0; jc < j1; jc += bs.nc) {  // loop 5: column blocks
        const index_t nc = imin(bs.nc, j1 - jc);
        for (index_t pc = k0; pc < k1; pc += plan.kc) {  // loop 4: k-blocks
            const index_t kc = imin(plan.kc, p.k - pc);
            // Apply beta only on the first k-block; later k-blocks add to C.
            g.beta = pc == 0 ? p.beta : T(1);
            const bool last_k = pc + kc == p.k;
            const T* b_blk = p.b + pc * p.rs_b + jc * p.cs_b;
            const index_t n_full = nc / NR * NR;
            // A single row block (small m) uses each B micro-panel once, right
            // after packing it: then pack one micro-panel (or the b_panels the
            // macro-kernel takes at once) at a time in loop 3, so the packed
            // panels are still in L1 when the microkernels read them.
            const bool b_per_panel = b_packed == nullptr && plan.pack_b && i1 - i0 <= bs.mc;
            if (b_per_panel) {
                // packed in loop 3
            } else if (b_packed != nullptr) {
                g.b = b_packed;
                g.b_rs = NR;
                g.b_ps = NR * kc;
                g.b_edge = b_packed + n_full * kc;
            } else if (plan.pack_b) {
                kern.pack_b(kc, nc, b_blk, p.rs_b, p.cs_b, pack_b);
                g.b = pack_b;
                g.b_rs = NR;
                g.b_ps = NR * kc;
                g.b_edge = pack_b + n_full * kc;
            } else {
                g.b = b_blk;
                g.b_rs = p.rs_b;
                g.b_ps = NR;
                g.b_edge = nullptr;
                if (n_full < nc) {
                    kern.pack_b(kc, nc - n_full, b_blk + n_full, p.rs_b, 1, pack_b);
                    g.b_edge = pack_b;
                }
            }
            g.k = kc;
            g.n = nc;
            for (index_t ic = i0; ic < i1; ic += bs.mc) {  // loop 3: row blocks
                const index_t mc = imin(bs.mc, i1 - ic);
                const T* a_blk = p.a + ic * p.rs_a + pc * p.cs_a;
                if (plan.pack_a) {
                    kern.pack_a(mc, kc, a_blk, p.rs_a, p.cs_a, pack_a);
                    g.a = pack_a;
                    g.a_rs = 1;
                    g.a_cs = MR;
                    g.a_ps = MR * kc;
                } else {
                    g.a = a_blk;
                    g.a_rs = p.rs_a;
                    g.a_cs = p.cs_a;
                    g.a_ps = MR * p.rs_a;
                }
                g.m = mc;
                g.c = p.c + ic * p.rs_c + jc * p.cs_c;
                if (b_per_panel) {
                    const index_t step = kern.b_panels * NR;
                    for (index_t jp = 0; jp < nc; jp += step) {
                        const index_t cols = imin(step, nc - jp);
                        kern.pack_b(kc, cols, b_blk + jp * p.cs_b, p.rs_b, p.cs_b, pack_b);
                        g.b = pack_b;
                        g.b_edge = pack_b + cols / NR * NR * kc;
                        g.b_rs = NR;
                        g.b_ps = NR * kc;
                        g.n = cols;
                        g.c = p.c + ic * p.rs_c + (jc + jp) * p.cs_c;
                        kern.macro(g);  // loop 1 (loop 2 is this jp loop)
                    }
                } else {
                    kern.macro(g);  // loops 2 and 1
                }
                // The write-back epilogue, while this block of C is still in cache.
                if (last_k && p.epi != nullptr) apply_epilogue(p, ic, mc, jc, nc);
            }
        }
    }
}

// A row split in which each thread packs the B block (kc x nc, the k-block pc
// of the column block jc) itself, on its first claim, and reuses it for its
// later claims of the same call. The shared path (pack_shared_b_block) has
// each thread pack part of the block and read the rest from the other core.
// (A tile hook must not call gemm: it would overwrite this thread's packed B.)
// Claims stay dynamic (a slow core does fewer). Used for every row split with
// packed B blocks of at most 2 MiB (own_b_fits), first:
// - for a B of one block small enough that one thread packs it alone: the
//   shared path would pack on the calling thread while the other waits, and
//   have the other core read the packed B from the packer's L2. Zen 4, two
//   threads, new/old medians of 7-11 alternations (m x n x k):
//     784 x 256 x 128 (B's dW of layer 0)  0.95 [0.93-0.98], 0.95 [0.93-1.00]
//     256 x 128 x 128 (B's dW of layer 1)  0.77 [0.71-1.01], 1.02 [0.65-1.10]
//     native training steps: B 0.998 and 0.986, A 0.989 and 0.986 (ranges
//     +-5%); per phase, B's dW of layer 0 (Adam fused) 292 -> 286 us.
// - then for all of them: a packed block costs less to pack again than to
//   read half of it from the other core (see own_b_fits).
template <typename T>
void rows_own_b(const Problem<T>& p, const Plan& plan, const Kernels<T>& kern, double work, index_t grain,
                index_t jc, index_t nc, index_t pc, index_t kc) {
    static std::atomic<std::uint64_t> calls{0};
    const std::uint64_t call = calls.fetch_add(1, std::memory_order_relaxed) + 1;
    thread_local std::uint64_t packed_for = 0;  // the call whose B block this thread's buffer holds
    const index_t MR = kern.bs.mr, NR = kern.bs.nr;
    parallel_for(ceil_div(p.m, MR), work, grain, [&](index_t t0, index_t t1) {
        T* b = static_cast<T*>(tl_pack_b.get(sizeof(T) * static_cast<std::size_t>(ceil_div(nc, NR) * NR * kc)));
        if (packed_for != call) {
            packed_for = 0;  // (if packing throws, the buffer holds nothing usable)
            kern.pack_b(kc, nc, p.b + pc * p.rs_b + jc * p.cs_b, p.rs_b, p.cs_b, b);
            packed_for = call;
        }
        run_block<T>(p, plan, kern, t0 * MR, imin(t1 * MR, p.m), jc, jc + nc, pc, pc + kc, b);
    });
}

// Whether a row split packs B per thread (rows_own_b) rather than shared: for
// B blocks of at most 2 MiB, the largest block of workload C
// (784-1024-1024-10, batch 512), where it was measured. Zen 5 (the avx512
// path, two threads, the cores close: a 29 ns handoff), switching the layout
// in one process every window, 10 alternations a shape: C's GEMMs
// 1.02-1.11x (512 x 1024 x 784 1.063; its dX, 512 x 1024 x 1024 with B
// transposed, 1.109; its dW, 1024 x 1024 x 512, 1.016), C's compiled step
// 1.024 [0.990-1.053] and 1.032 [0.983-1.057] (12 and 24 alternations).
// On the Zen 4 VM before it, with one-tile microkernels, it was taken only
// while the cores were far apart (a handoff over 80 ns: C's step 0.94x
// there), as it cost 2.6% near. Larger blocks (E's 4096-wide layers: 6 MiB)
// keep the shared path: E's step 1.004 [0.912-1.054] with them per thread.
// (C's forward GEMMs and its dX have since moved to k_block_split; its dW
// GEMMs, one k-block of 512, still come here.)
inline bool own_b_fits(const Plan& plan, index_t nc, std::size_t elem) {
    return static_cast<double>(plan.kc) * static_cast<double>(nc) * static_cast<double>(elem) <= 2.0 * 1024 * 1024;
}

// Two k-blocks on two threads (a short C whose k is cut in two, as in the
// first layer's forward of an MNIST MLP, 128 x 256 x 784): each thread
// computes the product of one k-block from zero, the first into C, the second
// into a partial; then the threads add the partial to C by rows and apply the
// epilogue. The blocked path computes exactly these two sums and adds them in
// the same way (the second k-block's write-back is C + acc), so the bits are
// those of one thread.
//
// Why: each thread then reads only its k-block's rows of B. When B is a
// weight that the training step updates by rows of dW (one thread a half of
// the rows), no thread writes lines that the other thread read. On this VM a
// write to a line the other core holds as a reader waits for that copy to be
// invalidated, and at times (when the two vCPUs are far apart, about 172 ns a
// handoff against 26) that dominated Adam's update. The column split that it
// replaces had each thread read half of every row of W. Zen 4, native steps,
// two threads, alternating, tagged by the measured handoff latency:
//   B (784-256-128-10, Adam): near 703 -> 703 us, far 1097 -> 914 us
//   A (784-128-10, SGD):      near 154 -> 150 us, far 237 -> 193 us
// It is taken for C of up to kKSplitRows rows. Zen 5, workload C (batch 512:
// its forward 512 x 1024 x 784 and 512 x 1024 x 1024, and the dX 512 x 1024
// x 1024 with B transposed), switching in one process every window, 10
// alternations, against the row split: the GEMMs alone 1.007, 1.022, 1.026;
// C's compiled step 1.020 [0.993-1.068] and 1.033 [0.991-1.057] (the
// forward's alone: 1.018). Each thread reads half of W, the half it updated
// in the last step's dW, and packs only that, where the row split had both
// threads pack all of it; the partial costs a pass over C.
constexpr index_t kKSplitRows = 512;

template <typename T>
void k_block_split(const Problem<T>& p, const Plan& plan, const Kernels<T>& kern, double work) {
    T* partial = static_cast<T*>(tl_partial.get(sizeof(T) * static_cast<std::size_t>(p.m * p.n)));
    Problem<T> first = p, second = p;
    first.epi = second.epi = nullptr;
    first.k = plan.kc;
    second.k = p.k - plan.kc;
    second.a = p.a + plan.kc * p.cs_a;
    second.b = p.b + plan.kc * p.rs_b;
    second.c = partial;
    second.rs_c = p.n;
    const Plan plan_first = make_plan(first, kern.bs), plan_second = make_plan(second, kern.bs);
    parallel_for(2, work, kStaticSplit, [&](index_t t0, index_t t1) {
        for (index_t t = t0; t < t1; ++t) {
            if (t == 0)
                run_block<T>(first, plan_first, kern, 0, p.m, 0, p.n, 0, first.k, nullptr);
            else
                run_block<T>(second, plan_second, kern, 0, p.m, 0, p.n, 0, second.k, nullptr);
        }
    });
    const index_t MR = kern.bs.mr;
    parallel_for(ceil_div(p.m, MR), 2.0 * kMinWorkPerThread, kStaticSplit, [&](index_t t0, index_t t1) {
        const index_t i0 = t0 * MR, i1 = imin(t1 * MR, p.m);
        for (index_t i = i0; i < i1; ++i) {
            T* c = p.c + i * p.rs_c;
            const T* q = partial + i * p.n;
            for (index_t j = 0; j < p.n; ++j) c[j] += q[j];
        }
        if (p.epi != nullptr) apply_epilogue(p, i0, i1 - i0, 0, p.n);
    });
}

// Tiny products (each GEMM of a 2-4-1 XOR net has under 40 multiply-adds)
// cost more in the blocked path's set-up (plan, edge tiles through a stack
// tile, B's partial micro-panel copied) than in arithmetic: they take the
// ISA's straight-loop kernel, on one thread (native XOR training step on
// Zen 4: 1.27 -> 0.96 us).
constexpr double kTinyMacs = 512;

// C = beta * C (k == 0 or alpha == 0: A and B are not read).
template <typename T>
void scale_c(const Problem<T>& p) {
    for (index_t i = 0; i < p.m; ++i)
        for (index_t j = 0; j < p.n; ++j) {
            T& x = p.c[i * p.rs_c + j * p.cs_c];
            x = p.beta == T(0) ? T(0) : p.beta * x;
        }
}

}  // namespace

template <typename T>
void gemm(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rs_a, index_t cs_a, const T* b,
          index_t rs_b, index_t cs_b, T beta, T* c, index_t rs_c, index_t cs_c, const GemmEpilogue<T>* epilogue) {
    if (m < 0 || n < 0 || k < 0)
        throw std::invalid_argument("gemm: negative dimension (m=" + std::to_string(m) + ", n=" + std::to_string(n) +
                                    ", k=" + std::to_string(k) + ")");
    if (epilogue != nullptr && cs_c != 1)
        throw std::invalid_argument("gemm: an epilogue needs C with unit column stride");
    if (m == 0 || n == 0) return;
    Problem<T> p{m, n, k, alpha, a, rs_a, cs_a, b, rs_b, cs_b, beta, c, rs_c, cs_c, epilogue};
    if (k == 0 || alpha == T(0)) {
        scale_c(p);
        if (epilogue != nullptr) apply_epilogue(p, 0, m, 0, n);
        return;
    }
    // Column-major C: compute C^T = op(B)^T op(A)^T, whose rows are contiguous.
    if (cs_c != 1 && rs_c == 1 && epilogue == nullptr) {
        p = Problem<T>{n, m, k, alpha, b, cs_b, rs_b, a, cs_a, rs_a, beta, c, cs_c, rs_c, nullptr};
    }
    const Kernels<T>& kern = kernels<T>();
    const double work = 2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
    if (work <= 2.0 * kTinyMacs && p.k <= kern.bs.kc) {
        kern.tiny(p.m, p.n, p.k, p.alpha, p.a, p.rs_a, p.cs_a, p.b, p.rs_b, p.cs_b, p.beta, p.c, p.rs_c, p.cs_c);
        if (p.epi != nullptr) apply_epilogue(p, 0, p.m, 0, p.n);
        return;
    }
    // A single row of C (batch-1 inference) is a vector-matrix product: stream
    // B once rather than fill one of the microkernel's mr rows.
    if (p.m == 1 && p.cs_b == 1 && p.cs_c == 1) {
        row_product(p, kern);
        return;
    }
    const Plan plan = make_plan(p, kern.bs);
    if (kern.narrow_tn != nullptr && p.n < kern.bs.nr && p.rs_a == 1 && p.cs_b == 1 && p.cs_c == 1) {
        narrow_tn_product(p, kern, plan.kc, work);
        return;
    }
    const index_t MR = kern.bs.mr, NR = kern.bs.nr;
    const index_t tiles_m = ceil_div(p.m, MR), tiles_n = ceil_div(p.n, NR);
    // Split C into whole micro-panels (but see k_block_split). Splitting n makes every thread
    // read all of A, splitting m all of B: split the side that duplicates the
    // smaller operand (m x k vs k x n), as long as it has tiles to share.
    // Threads claim tiles in chunks (thread_pool.h), so what a claim packs
    // must not be packed again by the next claim:
    // - a column split packs B per column (or reads it in place) and reads A
    //   in place;
    // - a row split with packed B packs each B block once per thread (blocks
    //   of at most 2 MiB: rows_own_b) or once, shared (pack_shared_b_block),
    //   then the threads claim rows, each packing its own rows of A. Large
    //   GEMMs whose A is packed take this path even when n >= m (A is then
    //   packed once in all, not once per thread).
    const bool threaded = get_num_threads() > 1 && work >= 2.0 * kMinWorkPerThread;
    // A short C (at most kKSplitRows rows) over exactly two k-blocks: one
    // k-block a thread (k_block_split). Only for C = A B, where the sum of the
    // two blocks is the blocked path's own.
    if (threaded && get_num_threads() == 2 && p.m <= kKSplitRows && ceil_div(p.k, plan.kc) == 2 && p.alpha == T(1) &&
        p.beta == T(0) && p.cs_c == 1) {
        k_block_split(p, plan, kern, work);
        return;
    }
    // A short k (k <= kShortK: a classifier head's dX, C = G W^T with 10
    // classes) makes C's traffic, not the arithmetic, the cost: threads split
    // rows, so each writes whole rows of C and the tile hook reads whole rows
    // of what it needs (the layer below's g: BelowGrad in mlp_plan.cpp). The
    // column split before it gave each task 16 columns of every row, a
    // 64-byte piece of every 4 KiB row. Zen 5, two threads, C's 512 x 1024 x
    // 10 with its hook: 195 -> 143 us; the narrow dW after it 39-47 -> 52 us
    // and the bias sum 45 -> 73 us (half its rows now on the other core):
    // about 15 us a step net.
    constexpr index_t kShortK = 32;
    const bool row_split_packed_b = threaded && plan.pack_b && tiles_m >= 8 &&
                                    (plan.pack_a || p.n < p.m || tiles_n < 2 || p.k <= kShortK);
    // Claims of at least 12 micro-panels of rows (72 float rows) keep each B
    // micro-panel reused a dozen times from L1 before the next.
    constexpr index_t kRowGrain = 12;
    if (row_split_packed_b && own_b_fits(plan, imin(kern.bs.nc, p.n), sizeof(T))) {
        for (index_t jc = 0; jc < p.n; jc += kern.bs.nc)
            for (index_t pc = 0; pc < p.k; pc += plan.kc)
                rows_own_b(p, plan, kern, work, kRowGrain, jc, imin(kern.bs.nc, p.n - jc), pc,
                           imin(plan.kc, p.k - pc));
    } else if (row_split_packed_b) {
        for (index_t jc = 0; jc < p.n; jc += kern.bs.nc) {
            const index_t nc = imin(kern.bs.nc, p.n - jc);
            for (index_t pc = 0; pc < p.k; pc += plan.kc) {
                const index_t kc = imin(plan.kc, p.k - pc);
                const T* b_blk = pack_shared_b_block(p, kern, jc, nc, pc, kc);
                // (The whole GEMM's work decides the threads, as for the other
                // splits: a narrow C, n = 10, is worth two threads in all.)
                parallel_for(tiles_m, work, kRowGrain, [&](index_t t0, index_t t1) {
                    run_block<T>(p, plan, kern, t0 * MR, imin(t1 * MR, p.m), jc, jc + nc, pc, pc + kc, b_blk);
                });
            }
        }
    } else if ((p.n >= p.m && tiles_n >= 2) || tiles_m < 2) {
        // (A packed here only on one thread or with few rows: static split.)
        parallel_for(tiles_n, work, plan.pack_a ? kStaticSplit : 1, [&](index_t t0, index_t t1) {
            run_block<T>(p, plan, kern, 0, p.m, t0 * NR, imin(t1 * NR, p.n), 0, p.k, nullptr);
        });
    } else {
        // (B packed here only on one thread or with few rows: static split.)
        parallel_for(tiles_m, work, plan.pack_b ? kStaticSplit : 1, [&](index_t t0, index_t t1) {
            run_block<T>(p, plan, kern, t0 * MR, imin(t1 * MR, p.m), 0, p.n, 0, p.k, nullptr);
        });
    }
}

template void gemm<float>(index_t, index_t, index_t, float, const float*, index_t, index_t, const float*, index_t,
                          index_t, float, float*, index_t, index_t, const GemmEpilogue<float>*);
template void gemm<double>(index_t, index_t, index_t, double, const double*, index_t, index_t, const double*,
                           index_t, index_t, double, double*, index_t, index_t, const GemmEpilogue<double>*);

}  // namespace pb
