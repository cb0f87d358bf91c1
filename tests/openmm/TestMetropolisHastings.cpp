// The acceptance rule of BoltzmannGeneratorProposal (internal/MetropolisHastings.h), term by term:
// log alpha = [-U'/kT + log pi' - log q'] - [-U/kT + log pi - log q].
#include "internal/MetropolisHastings.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace OpenMMBG;

namespace {

const ExtendedState zero{0.0, 0.0, 0.0};

}  // namespace

TEST(MetropolisHastings, EachTermHasItsSignAndScale) {
    const double kT = 2.5;
    // A higher trial energy lowers log alpha by dU/kT.
    EXPECT_DOUBLE_EQ(logAcceptanceRatio(zero, {5.0, 0, 0}, kT), -2.0);
    // A higher current energy raises it.
    EXPECT_DOUBLE_EQ(logAcceptanceRatio({5.0, 0, 0}, zero, kT), 2.0);
    // The auxiliary target counts with the target: + log pi(aux'|x') - log pi(aux|x).
    EXPECT_DOUBLE_EQ(logAcceptanceRatio(zero, {0, 1.5, 0}, kT), 1.5);
    EXPECT_DOUBLE_EQ(logAcceptanceRatio({0, 1.5, 0}, zero, kT), -1.5);
    // The proposal density counts against: - log q(x', aux') + log q(x, aux).
    EXPECT_DOUBLE_EQ(logAcceptanceRatio(zero, {0, 0, 0.75}, kT), -0.75);
    EXPECT_DOUBLE_EQ(logAcceptanceRatio({0, 0, 0.75}, zero, kT), 0.75);
}

TEST(MetropolisHastings, AllTermsTogether) {
    const ExtendedState current{-10.0, 0.5, -3.0}, trial{-12.0, -0.25, -1.0};
    const double kT = 4.0;
    const double expected = (12.0 / 4.0 - 0.25 + 1.0) - (10.0 / 4.0 + 0.5 + 3.0);
    EXPECT_DOUBLE_EQ(logAcceptanceRatio(current, trial, kT), expected);
    // A move and its reverse have opposite ratios (detailed balance of the independence sampler).
    EXPECT_DOUBLE_EQ(logAcceptanceRatio(trial, current, kT), -expected);
}

TEST(MetropolisHastings, ATargetDensityProposalIsAlwaysAccepted) {
    // q(x, aux) = p(x) pi(aux|x) exactly: log q = -U/kT + log pi - log Z, so log alpha = 0.
    const double kT = 2.0, logZ = 7.0;
    auto state = [&](double u, double logPi) { return ExtendedState{u, logPi, -u / kT + logPi - logZ}; };
    EXPECT_NEAR(logAcceptanceRatio(state(3.0, -1.0), state(-8.0, 0.4), kT), 0.0, 1e-12);
}

TEST(MetropolisHastings, NonFiniteTrialsAreRejected) {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(logAcceptanceRatio(zero, {inf, 0, 0}, 1.0), -inf);
    EXPECT_EQ(logAcceptanceRatio(zero, {-inf, 0, 0}, 1.0), -inf) << "an energy of -infinity is a broken System";
    EXPECT_EQ(logAcceptanceRatio(zero, {nan, 0, 0}, 1.0), -inf);
    EXPECT_EQ(logAcceptanceRatio(zero, {0, nan, 0}, 1.0), -inf);
    EXPECT_EQ(logAcceptanceRatio(zero, {0, 0, nan}, 1.0), -inf);
    // A trial the model gives zero density (log q = -inf) is a draw outside its valid domain (the
    // internal-coordinate family's negative bonds) or a numerical breakdown: rejected, although the
    // formula alone would give +inf.
    EXPECT_EQ(logAcceptanceRatio(zero, {0, 0, -inf}, 1.0), -inf);
    EXPECT_EQ(logAcceptanceRatio(zero, {0, 0, inf}, 1.0), -inf);
}

TEST(MetropolisHastings, AcceptMoveDrawsOnlyWhenItMustAndHasTheRightRate) {
    std::mt19937_64 random(42), untouched(42);
    EXPECT_TRUE(acceptMove(0.0, random));
    EXPECT_TRUE(acceptMove(3.0, random));
    EXPECT_EQ(random(), untouched()) << "no number may be drawn for log alpha >= 0";
    EXPECT_FALSE(acceptMove(-std::numeric_limits<double>::infinity(), random));
    // Rate exp(-1) = 0.3679 over 20,000 draws: standard error 0.0034; tolerance 4 of them.
    int accepted = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++)
        accepted += acceptMove(-1.0, random);
    EXPECT_NEAR(double(accepted) / n, std::exp(-1.0), 4 * std::sqrt(std::exp(-1.0) * (1 - std::exp(-1.0)) / n));
}
