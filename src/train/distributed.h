// Data-parallel training across processes with MPI (OpenMPI): every rank
// holds the whole model, computes the gradients of its share of each global
// batch, and the gradients are summed by MPI_Allreduce before the (identical)
// optimizer step on every rank. Rank 0 alone writes logs and checkpoints.
//
// MPI is used only when gptneo was built with it (GPTNEO_HAVE_MPI) and the
// process was started by mpirun / mpiexec; otherwise this is one process of
// rank 0 in a world of 1, and every call is a no-op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gptneo::training {

class Comm {
 public:
  // The process-wide communicator (initialises MPI on first use when
  // launched by mpirun).
  static Comm& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  // Element-wise sum over all ranks, in place (every rank gets the result).
  void allreduce_sum(float* data, size_t n);
  void allreduce_sum(double* data, size_t n);
  void barrier();
  // Ends every rank of the job after an error on this one (a rank that
  // stopped alone would leave the others waiting in the all-reduce).
  [[noreturn]] void abort(int code);

  // "MPI (OpenMPI 4.1.4), 2 ranks" or "single process".
  std::string describe() const;
  static bool compiled_with_mpi();

 private:
  Comm();
  ~Comm();
  int rank_ = 0, size_ = 1;
  bool initialised_ = false;
};

}  // namespace gptneo::training
