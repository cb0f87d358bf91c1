#pragma once
/**
 * The thread policy of the flow library: how many LibTorch intra-op (OpenMP) threads it uses, set in
 * code so that no user has to know about OpenMP.
 *
 * Default: one thread. LibTorch's default (one thread per core, OpenMP threads that spin while they
 * wait) makes a flow 2-25x slower on cores that other work keeps busy (an OpenMM simulation,
 * replicas, a second training run), while a second thread gains at most 1.6x on idle cores for the
 * work openmmbg does (docs/benchmarks.md, "Threads"). More threads are an explicit choice:
 * the environment variable OPENMMBG_NUM_THREADS, else OMP_NUM_THREADS, or setNumThreads().
 * LibTorch-free.
 */

namespace OpenMMBG {

/** The threads the policy picks: OPENMMBG_NUM_THREADS, else OMP_NUM_THREADS, else 1 (bad values: 1). */
int defaultNumThreads();
/**
 * Applies the policy once per process (later calls do nothing): sets LibTorch's intra-op threads to
 * defaultNumThreads(). Every entry point that builds or loads a model calls it (makeModel), so the
 * plugin, the command-line tool and the Python package all run under it.
 */
void applyThreadPolicy();
/** Sets LibTorch's intra-op threads (>= 1) explicitly, replacing the policy's choice. */
void setNumThreads(int n);
/** LibTorch's intra-op threads now. */
int getNumThreads();

}  // namespace OpenMMBG
