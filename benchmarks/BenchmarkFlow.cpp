/**
 * Throughput of the E-ACF flows with the paper's architectures (docs/benchmarks.md).
 *
 * Two operations, both under torch::NoGradGuard:
 *   Sample/<system>/<projection>/batch:B   flow->sample(B): B configurations (x, a) with their joint log q(x, a)
 *   LogProb/<system>/<projection>/batch:B  flow->logProb(x, a) on a batch of B flow samples
 * items_per_second counts configurations; the "params" counter is the flow's parameter count.
 *
 * Systems (the architectures of Midgley et al. 2023 and its reference implementation):
 *   DW4   N=4,  D=2, 12 blocks, EGNN 3 blocks, MLP [64, 64], 128 hidden features, float32
 *   LJ13  N=13, D=3, as DW4
 *   ALDP  N=22, D=3, 20 blocks, EGNN MLP [128, 128], 22 atom types, aug_scale 0.5, float64
 * DW4 and LJ13 run every projection (spherical, vector, cartesian, none = Non-E-ACF) at batch 32
 * and the spherical projection also at batches 1 and 256; ALDP runs the spherical projection at
 * batches 1 and 32.
 *
 * Extra flag (before or among Google Benchmark's own flags):
 *   --threads=N   LibTorch intra-op threads (default 1; inter-op threads are always 1)
 * Example: OMP_NUM_THREADS=1 build-bench/BenchmarkFlow --benchmark_min_time=0.5
 */
#include "openmmbg/eacf/AugmentedCouplingFlowModel.h"
#include "openmmbg/training/Training.h"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace OpenMMBG;

namespace {

FlowConfig systemConfig(const std::string& system, const std::string& projection) {
    FlowConfig c;  // defaults: the DW4/LJ13 architecture
    c.projection = projection;
    c.identityInit = false;  // random final layers, so the flow is not the identity (cost is the same)
    if (system == "DW4") {
        c.numParticles = 4;
        c.dim = 2;
    } else if (system == "LJ13") {
        c.numParticles = 13;
        c.dim = 3;
    } else if (system == "ALDP") {
        c.numParticles = 22;
        c.dim = 3;
        c.numLayers = 20;
        c.egnnMlpUnits = {128, 128};
        c.dtype = "float64";
        c.augScale = 0.5;
        c.auxLossWeight = 1.0;
        c.transformerHeads = 3;
        for (int i = 0; i < c.numParticles; i++)
            c.atomTypes.push_back(i);
    } else {
        throw std::invalid_argument("BenchmarkFlow: unknown system " + system);
    }
    c.validate();
    return c;
}

struct Model {
    AugmentedCouplingFlow flow{nullptr};
    int64_t numParameters = 0;
    std::map<int64_t, FlowSample> inputs;  // flow samples per batch size, the LogProb inputs
};

/** One flow per (system, projection), built on first use and kept for the whole run. */
Model& model(const std::string& system, const std::string& projection) {
    static std::map<std::string, std::unique_ptr<Model>> cache;
    std::unique_ptr<Model>& m = cache[system + "/" + projection];
    if (!m) {
        m = std::make_unique<Model>();
        m->flow = AugmentedCouplingFlow(systemConfig(system, projection));
        m->flow->eval();
        for (const torch::Tensor& p : m->flow->parameters())
            m->numParameters += p.numel();
    }
    return *m;
}

const FlowSample& logProbInput(Model& m, int64_t batch) {
    auto it = m.inputs.find(batch);
    if (it == m.inputs.end()) {
        torch::NoGradGuard noGrad;
        torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1234);
        it = m.inputs.emplace(batch, m.flow->sample(batch, gen)).first;
    }
    return it->second;
}

void setCounters(benchmark::State& state, const Model& m, int64_t batch) {
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["params"] = double(m.numParameters);
}

void BM_Sample(benchmark::State& state, const std::string& system, const std::string& projection) {
    torch::NoGradGuard noGrad;
    Model& m = model(system, projection);
    const int64_t batch = state.range(0);
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(42);
    FlowSample check = m.flow->sample(batch, gen);  // warm-up, and a sanity check outside the timing
    if (!torch::isfinite(check.logQ).all().item<bool>()) {
        state.SkipWithError("non-finite log q from sample()");
        return;
    }
    for (auto _ : state) {
        FlowSample s = m.flow->sample(batch, gen);
        benchmark::DoNotOptimize(s.logQ.data_ptr());
    }
    setCounters(state, m, batch);
}

void BM_LogProb(benchmark::State& state, const std::string& system, const std::string& projection) {
    torch::NoGradGuard noGrad;
    Model& m = model(system, projection);
    const int64_t batch = state.range(0);
    const FlowSample& in = logProbInput(m, batch);
    torch::Tensor check = m.flow->logProb(in.x, in.a);  // warm-up, and a sanity check outside the timing
    if (!torch::isfinite(check).all().item<bool>()) {
        state.SkipWithError("non-finite log q from logProb()");
        return;
    }
    for (auto _ : state) {
        torch::Tensor logQ = m.flow->logProb(in.x, in.a);
        benchmark::DoNotOptimize(logQ.data_ptr());
    }
    setCounters(state, m, batch);
}

// One maximum-likelihood training step: masked loss, backward pass and an Adam update, on a
// batch of the flow's own samples (the data's values do not change the cost).
void BM_TrainStep(benchmark::State& state, const std::string& system, const std::string& projection) {
    Model& m = model(system, projection);
    const int64_t batch = state.range(0);
    torch::Tensor data = logProbInput(m, batch).x.detach().clone();
    AugmentedCouplingFlowModel flowModel(m.flow);
    AdamOptimizer adam(m.flow->parameters());
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
    // The maximum-likelihood update of the training loop: fresh aux ~ pi(aux|x), the masked loss and
    // its gradients. The benchmark's random-weight flows can give log q < -1e4 on fresh aux; masking
    // would then drop samples and change the cost being measured, so nothing is masked.
    auto trainStep = [&] {
        torch::Tensor aux = flowModel.sampleAuxiliary(data, gen);
        zeroGradients(adam.params);
        return maskedBackward(
            [&](const torch::Tensor&) {
                ModelDensity d = flowModel.logProbAndPenalty(data, aux);
                return std::make_pair(-d.logQ + d.penalty, d.logQ);
            },
            batch, -std::numeric_limits<double>::infinity());
    };
    m.flow->train();
    if (!std::isfinite(trainStep())) {
        state.SkipWithError("non-finite training loss");
        return;
    }
    for (auto _ : state) {
        double loss = trainStep();
        adam.step(1e-7);  // tiny steps keep the flow (and so the cost) as it is
        benchmark::DoNotOptimize(loss);
    }
    m.flow->eval();
    setCounters(state, m, batch);
}

void registerAll() {
    struct Entry {
        std::string system, projection;
        std::vector<int64_t> batches;
    };
    const std::vector<Entry> entries = {
        {"DW4", "spherical", {1, 32, 256}},  {"DW4", "vector", {32}},  {"DW4", "cartesian", {32}},
        {"DW4", "none", {32}},               {"LJ13", "spherical", {1, 32, 256}},
        {"LJ13", "vector", {32}},            {"LJ13", "cartesian", {32}}, {"LJ13", "none", {32}},
        {"ALDP", "spherical", {1, 32}},
    };
    for (const Entry& e : entries) {
        if (e.system == "ALDP")
            continue;  // one ALDP training step at batch 32 takes tens of seconds on this CPU
        const std::string name = "TrainStep/" + e.system + "/" + e.projection;
        benchmark::RegisterBenchmark(name.c_str(), BM_TrainStep, e.system, e.projection)
            ->ArgName("batch")->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime()->Arg(32);
    }
    for (const char* op : {"Sample", "LogProb"}) {
        for (const Entry& e : entries) {
            const std::string name = std::string(op) + "/" + e.system + "/" + e.projection;
            benchmark::internal::Benchmark* b =
                std::string(op) == "Sample"
                    ? benchmark::RegisterBenchmark(name.c_str(), BM_Sample, e.system, e.projection)
                    : benchmark::RegisterBenchmark(name.c_str(), BM_LogProb, e.system, e.projection);
            b->ArgName("batch")->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
            for (int64_t batch : e.batches)
                b->Arg(batch);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    std::vector<char*> args;
    for (int i = 0; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg.rfind("--threads=", 0) == 0)
            threads = std::atoi(arg.c_str() + 10);
        else
            args.push_back(argv[i]);
    }
    if (threads < 1) {
        std::fprintf(stderr, "BenchmarkFlow: --threads must be a positive integer\n");
        return 1;
    }
    torch::set_num_interop_threads(1);
    torch::set_num_threads(threads);
    int newArgc = int(args.size());
    args.push_back(nullptr);  // argv[argc] is null

    benchmark::AddCustomContext("torch_version", std::to_string(TORCH_VERSION_MAJOR) + "." +
                                                     std::to_string(TORCH_VERSION_MINOR) + "." +
                                                     std::to_string(TORCH_VERSION_PATCH));
    benchmark::AddCustomContext("torch_intraop_threads", std::to_string(at::get_num_threads()));
    benchmark::AddCustomContext("torch_interop_threads", std::to_string(at::get_num_interop_threads()));
    const char* omp = std::getenv("OMP_NUM_THREADS");
    benchmark::AddCustomContext("OMP_NUM_THREADS", omp ? omp : "(unset)");

    registerAll();
    benchmark::Initialize(&newArgc, args.data());
    if (benchmark::ReportUnrecognizedArguments(newArgc, args.data()))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
