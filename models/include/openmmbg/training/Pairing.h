#pragma once
/**
 * Pairing of prior draws with data for flow-matching training (Klein, Kraemer, Noe, "Equivariant
 * flow matching", NeurIPS 2023; arXiv:2306.15030): independent pairs, minibatch optimal transport
 * (OT) and equivariant OT, which also permutes identical particles and rotates each prior draw
 * onto its data point. Pure functions, no gradients.
 *
 * Shapes: configurations x [B, N, D] (B samples of N particles in D dimensions) with zero centroid
 * (the unweighted mean over particles). Costs are squared Euclidean distances summed over particles
 * and dimensions.
 */
#include <torch/torch.h>

#include <string>

namespace OpenMMBG {

/**
 * Hungarian algorithm (Kuhn-Munkres with potentials, shortest augmenting paths, O(n^3)): the
 * assignment of rows to columns of a square cost matrix [n, n] with the least total cost. The cost
 * may have any floating dtype and live on any device (it is solved in float64 on the CPU); its
 * entries must be finite. Ties are broken deterministically.
 *
 * @return perm [n] (int64, CPU): row i goes to column perm[i]; n = 0 gives an empty tensor
 * @throws std::invalid_argument for a non-square, non-floating or non-finite cost matrix
 */
torch::Tensor linearSumAssignment(const torch::Tensor& cost);

/**
 * Kabsch: the proper rotations R [B, D, D] (det R = +1, any D >= 2) minimising
 * sum_i ||x_i R^T - y_i||^2, i.e. R x_i ~ y_i, for x, y [B, N, D] already centred (the rotation is
 * about the origin). By the SVD of the covariance H = x^T y = U S V^T, R = V diag(1, ..., 1, d) U^T
 * with d = sign det(V U^T): the sign correction means a reflection is never returned (for data
 * whose best orthogonal map is a reflection, R is the best proper rotation instead). Computed in
 * float64; returned in x's dtype.
 *
 * @throws std::invalid_argument unless x and y are floating [B, N, D] of equal shape with D >= 2
 */
torch::Tensor kabschRotation(const torch::Tensor& x, const torch::Tensor& y);

/** How prior draws are paired with data in a flow-matching batch (see pairPriorWithData). */
enum class Pairing { Independent, MinibatchOT, EquivariantOT };

/**
 * "independent", "ot", "equivariant-ot" (the names pairingName returns).
 *
 * @throws std::invalid_argument for any other name, naming the accepted values
 */
Pairing pairingFromString(const std::string& name);
/** The name pairingFromString accepts for `pairing`. */
std::string pairingName(Pairing pairing);

struct PairingResult {
    /**
     * [B, N, D] in x0's dtype and device: the prior draws paired with x1 row by row (reordered; for
     * equivariant OT also particle-permuted and rotated).
     */
    torch::Tensor x0;
    /** Mean over the batch of ||x0_paired - x1||^2 (summed over particles and dimensions; in float64). */
    double meanCost;
};

/**
 * Pair prior draws x0 [B, N, D] with data x1 [B, N, D] (both zero-centroid, same dtype and device,
 * B >= 1) for one flow-matching batch:
 *  - Independent: x0 unchanged.
 *  - MinibatchOT: x0 rows reordered by the Hungarian assignment on the B x B squared Euclidean
 *    distances of the flattened configurations (an exact OT plan between the two empirical
 *    distributions of equal weights).
 *  - EquivariantOT: for every pair (data i, prior draw j): (1) the particle permutation of x0_j that
 *    best matches x1_i (Hungarian on the N x N squared particle distances), (2) then the best proper
 *    rotation of the permuted x0_j onto x1_i (Kabsch), giving the aligned cost; (3) Hungarian on the
 *    B x B aligned costs; (4) each x1 row gets its matched x0 with that pair's permutation and
 *    rotation applied. The aligned cost of a pair is never above its plain cost (the identity is a
 *    candidate in both steps), so the mean cost is never above MinibatchOT's. The permutation is
 *    chosen once, on the unrotated positions (no alternating minimisation), so the joint minimum
 *    over permutations and rotations is not guaranteed (a permuted copy, or a slightly rotated one,
 *    is matched exactly).
 *    Computed in float64.
 * The data are never moved (x0 is rotated, not the data): the prior and the data distribution are
 * both invariant under rotations and permutations of identical particles, so the pairs keep the
 * marginals.
 *
 * @param particleTypes optional [N] integer tensor: only particles of equal type may be permuted
 *        (one Hungarian problem per type); undefined or empty = all particles identical. Used by
 *        EquivariantOT only (validated for every pairing).
 *
 * Runs under NoGradGuard. Cost of EquivariantOT: B^2 Hungarian problems of size N (on the CPU) and
 * one batched SVD of B^2 [D, D] covariances.
 *
 * @throws std::invalid_argument for mismatched shapes or dtypes, an empty batch or malformed particleTypes
 */
PairingResult pairPriorWithData(const torch::Tensor& x0, const torch::Tensor& x1, Pairing pairing,
                                const torch::Tensor& particleTypes = {});

}  // namespace OpenMMBG
