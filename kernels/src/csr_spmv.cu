// CSR sparse matrix times a dense vector or a small dense matrix: Y = A X.
//
// A is (rows x cols) in CSR with int32 row_ptr / col_idx and fp32 or fp16 values. X is (cols x k),
// row-major, k <= 16 (several clips at once; k = 1 is SpMV); Y is (rows x k), same dtype as the values.
// Accumulation is in fp32 for both dtypes.
//
// Two variants, chosen on the host by mean row length (what a pruned fully-connected layer looks like
// decides which one wins):
//   thread-per-row ("scalar"): one thread walks a whole row; best for short rows (few nonzeros),
//   warp-per-row ("vector"): 32 lanes split a row's nonzeros and reduce with warp shuffles; best for long
//   rows, where the scalar variant leaves lanes idle and reads col_idx/values uncoalesced.
//
// Plain CUDA C++ that builds with CUDA 11.4 (JetPack 5) and CUDA 13; extern "C" launchers for ctypes.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define MAX_K 16

namespace {

template <typename T>
__device__ __forceinline__ float ld(const T* p) { return (float)__ldg(p); }
template <>
__device__ __forceinline__ float ld<__half>(const __half* p) { return __half2float(__ldg(p)); }

template <typename T>
__device__ __forceinline__ T from_f(float v) { return (T)v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half(v); }

template <typename T, int K>
__global__ void spmm_thread_per_row(int rows, const int* __restrict__ row_ptr, const int* __restrict__ col_idx,
                                    const T* __restrict__ vals, const T* __restrict__ x, T* __restrict__ y) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float acc[K];
#pragma unroll
  for (int j = 0; j < K; ++j) acc[j] = 0.0f;
  for (int p = row_ptr[r]; p < row_ptr[r + 1]; ++p) {
    const float a = ld(vals + p);
    const T* xr = x + (long long)col_idx[p] * K;
#pragma unroll
    for (int j = 0; j < K; ++j) acc[j] += a * ld(xr + j);
  }
#pragma unroll
  for (int j = 0; j < K; ++j) y[(long long)r * K + j] = from_f<T>(acc[j]);
}

template <typename T, int K>
__global__ void spmm_warp_per_row(int rows, const int* __restrict__ row_ptr, const int* __restrict__ col_idx,
                                  const T* __restrict__ vals, const T* __restrict__ x, T* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (r >= rows) return;  // whole warp exits together: r is uniform across the warp
  float acc[K];
#pragma unroll
  for (int j = 0; j < K; ++j) acc[j] = 0.0f;
  for (int p = row_ptr[r] + lane; p < row_ptr[r + 1]; p += 32) {
    const float a = ld(vals + p);
    const T* xr = x + (long long)col_idx[p] * K;
#pragma unroll
    for (int j = 0; j < K; ++j) acc[j] += a * ld(xr + j);
  }
#pragma unroll
  for (int j = 0; j < K; ++j) {
    float v = acc[j];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) y[(long long)r * K + j] = from_f<T>(v);
  }
}

template <typename T, int K>
int launch(int warp_per_row, int rows, const int* row_ptr, const int* col_idx, const void* vals, const void* x,
           void* y, cudaStream_t stream) {
  const int block = 256;
  if (warp_per_row) {
    const long long threads = (long long)rows * 32;
    spmm_warp_per_row<T, K><<<(unsigned)((threads + block - 1) / block), block, 0, stream>>>(
        rows, row_ptr, col_idx, (const T*)vals, (const T*)x, (T*)y);
  } else {
    spmm_thread_per_row<T, K><<<(unsigned)((rows + block - 1) / block), block, 0, stream>>>(
        rows, row_ptr, col_idx, (const T*)vals, (const T*)x, (T*)y);
  }
  return (int)cudaGetLastError();
}

// K is a template parameter so the accumulators stay in registers; the host rounds k up to one of these
// by padding X/Y columns (1, 2, 4, 8 or 16).
template <typename T>
int dispatch_k(int k, int warp_per_row, int rows, const int* rp, const int* ci, const void* v, const void* x,
               void* y, cudaStream_t s) {
  switch (k) {
    case 1: return launch<T, 1>(warp_per_row, rows, rp, ci, v, x, y, s);
    case 2: return launch<T, 2>(warp_per_row, rows, rp, ci, v, x, y, s);
    case 4: return launch<T, 4>(warp_per_row, rows, rp, ci, v, x, y, s);
    case 8: return launch<T, 8>(warp_per_row, rows, rp, ci, v, x, y, s);
    case 16: return launch<T, 16>(warp_per_row, rows, rp, ci, v, x, y, s);
    default: return (int)cudaErrorInvalidValue;
  }
}

}  // namespace

// dtype: 0 = float32, 1 = float16; k in {1, 2, 4, 8, 16}; variant: 0 thread-per-row, 1 warp-per-row.
extern "C" int csr_spmm(int dtype, int variant, int rows, int k, const int* row_ptr, const int* col_idx,
                        const void* vals, const void* x, void* y, void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  return dtype == 0 ? dispatch_k<float>(k, variant, rows, row_ptr, col_idx, vals, x, y, s)
                    : dispatch_k<__half>(k, variant, rows, row_ptr, col_idx, vals, x, y, s);
}
