#include "train/distributed.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#ifdef GPTNEO_HAVE_MPI
#include <mpi.h>
#endif

namespace gptneo::training {

namespace {

// Set by mpirun/mpiexec (OpenMPI, PMIx, MPICH/Hydra) in each process it starts.
bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

// Large buffers are reduced in pieces, so MPI's internal buffers stay small.
constexpr size_t kChunk = size_t(1) << 24;

}  // namespace

Comm& Comm::world() {
  static Comm c;
  return c;
}

Comm::Comm() {
#ifdef GPTNEO_HAVE_MPI
  if (!launched_by_mpirun()) return;
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  initialised_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
#endif
}

Comm::~Comm() {
#ifdef GPTNEO_HAVE_MPI
  if (initialised_) MPI_Finalize();
#endif
}

void Comm::allreduce_sum(float* data, size_t n) {
#ifdef GPTNEO_HAVE_MPI
  if (size_ == 1) return;
  for (size_t i = 0; i < n; i += kChunk)
    MPI_Allreduce(MPI_IN_PLACE, data + i, static_cast<int>(std::min(kChunk, n - i)), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
#else
  (void)data, (void)n;
#endif
}

void Comm::allreduce_sum(double* data, size_t n) {
#ifdef GPTNEO_HAVE_MPI
  if (size_ == 1) return;
  for (size_t i = 0; i < n; i += kChunk)
    MPI_Allreduce(MPI_IN_PLACE, data + i, static_cast<int>(std::min(kChunk, n - i)), MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
#else
  (void)data, (void)n;
#endif
}

void Comm::barrier() {
#ifdef GPTNEO_HAVE_MPI
  if (size_ > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void Comm::abort(int code) {
#ifdef GPTNEO_HAVE_MPI
  if (initialised_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

std::string Comm::describe() const {
#ifdef GPTNEO_HAVE_MPI
  if (initialised_) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, static_cast<size_t>(len));
    v = v.substr(0, v.find(','));
    return fmt::format("MPI ({}), {} ranks", v, size_);
  }
#endif
  return "single process";
}

bool Comm::compiled_with_mpi() {
#ifdef GPTNEO_HAVE_MPI
  return true;
#else
  return false;
#endif
}

}  // namespace gptneo::training
