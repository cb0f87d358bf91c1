"""The ``openmmbg.Flow`` class: numpy front end of the C++ ``OpenMMBG::FlowModel``."""
import errno
import json
import math
import operator
import os
import sys
from collections.abc import Mapping

import numpy as np

from . import _catalog
from . import openmmbg_swig as _swig

__all__ = ["Flow"]

# Names of config["length_unit"] and the openmm.unit attribute of each.
_LENGTH_UNITS = {
    "nm": "nanometer",
    "nanometer": "nanometer",
    "nanometers": "nanometer",
    "angstrom": "angstrom",
    "angstroms": "angstrom",
    "A": "angstrom",
    "\u00c5": "angstrom",
    "pm": "picometer",
    "picometer": "picometer",
    "picometers": "picometer",
}

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def _json_default(value):
    """Let json.dumps take numpy scalars and arrays in a configuration."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"flow config: value {value!r} of type {type(value).__name__} is not JSON serializable")


def _non_finite(value, path=""):
    """(key path, value) of each non-finite float in a JSON-like value."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        return [found for key, v in value.items() for found in _non_finite(v, f"{path}.{key}" if path else str(key))]
    if isinstance(value, (list, tuple)):
        return [found for i, v in enumerate(value) for found in _non_finite(v, f"{path}[{i}]")]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return [(path or "value", value)]
    return []


def _to_json(value, what):
    """``value`` as JSON text for the C++ side; NaN and infinity (which JSON cannot hold) are a
    ValueError naming the key, not a later 'not valid JSON'."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False)
    except ValueError:
        bad = ", ".join(f"'{key}' must be finite (got {v})" for key, v in _non_finite(value))
        raise ValueError(f"{what}: {bad or 'values must be finite'}") from None


def _as_int(value, name):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None


def _as_seed(seed):
    seed = _as_int(seed, "seed")
    if not _INT64_MIN <= seed <= _INT64_MAX:
        raise ValueError(f"seed must fit in a signed 64-bit integer (got {seed})")
    return seed


def _as_path(path):
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None


def _from_bytes(data):
    """Unpickle helper: Flow.from_bytes."""
    return Flow.from_bytes(data)


class Flow:
    """An E-ACF augmented coupling flow q(x, a) over N particles in D dimensions.

    ``x`` are particle positions, ``a`` the A = ``num_aug`` sets of augmented variables per
    particle. All arrays are numpy float64 (inputs are converted; a float32 model computes in
    float32 internally but takes and returns float64):

    - ``x``: ``[n, N, D]``, positions in the model's length unit (``config["length_unit"]``,
      ``"nm"`` by default);
    - ``a``: ``[n, N, A, D]``, in the same length unit;
    - log-densities: ``[n]``, natural log, with respect to the Lebesgue measure of the
      zero-centre-of-mass subspace for ``x`` (inputs are centred on the centre of mass of ``x``).

    Plain arrays are taken to be in the model's length unit. When openmm is installed, ``x`` and
    ``a`` may also be ``openmm.unit.Quantity`` lengths (e.g. ``positions * angstrom``); they are
    converted with ``value_in_unit`` to the model's length unit. Densities are not rescaled:
    log-densities are always per the model's length unit.

    Build an untrained flow with ``Flow(config)``; load a trained one with ``Flow.load(path)``.
    """

    def __init__(self, config):
        """Build an untrained flow from a configuration dict.

        ``config`` must have the keys ``num_particles``, ``dim`` (2 or 3) and ``projection``
        (``"spherical"``, ``"cartesian"``, ``"vector"`` or ``"none"``); every other key has a
        default (docs/flow-config.md). Unknown keys, missing keys and bad values raise ValueError.
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"Flow(config): config must be a dict, got {type(config).__name__}")
        text = _to_json(dict(config), "flow config")
        self._init(_swig.FlowModel(text))

    @classmethod
    def _wrap(cls, model):
        flow = cls.__new__(cls)
        flow._init(model)
        return flow

    def _init(self, model):
        self._model = model
        self._config_json = model.getConfigJson()
        config = json.loads(self._config_json)
        self._num_particles = int(model.getNumParticles())
        self._dim = int(model.getDim())
        self._family = model.getFamily()
        # Per-configuration shape of the auxiliary variables a: (N, A, D) for E-ACF, (0,) for none.
        self._aux_shape = tuple(int(s) for s in model.getAuxiliaryShape())
        self._num_aug = self._aux_shape[1] if len(self._aux_shape) == 3 else 0
        self._length_unit = config.get("length_unit", "nm")
        self._summary = (
            f"family={self._family!r}, num_particles={self._num_particles}, dim={self._dim}, projection={config.get('projection')!r}, "
            f"num_aug={self._num_aug}, num_layers={config.get('num_layers')}, dtype={config.get('dtype')!r}"
        )

    # ---- Construction, files and bytes ----

    @classmethod
    def load(cls, path):
        """Load a ``.bgm`` model file (str or os.PathLike).

        Raises FileNotFoundError if there is no such file, and RuntimeError (naming the problem,
        e.g. "truncated" or "checksum mismatch") if the file is not a valid model.
        """
        path = _as_path(path)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "no such model file", path)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "model path is a directory", path)
        return cls._wrap(_swig.FlowModel.load(path))

    def save(self, path):
        """Save the model as a ``.bgm`` file (str or os.PathLike), written atomically.

        The file is torch-free (docs/model-format.md): an 8-byte little-endian header length, a
        JSON header, then the raw parameter tensors.
        """
        path = _as_path(path)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(errno.ENOENT, "directory does not exist", parent)
        self._model.save(path)

    def to_bytes(self):
        """The bytes of the ``.bgm`` file of this model (``bytes``)."""
        return self._model.toPyBytes()

    @classmethod
    def from_bytes(cls, data):
        """Rebuild a model from the bytes of a ``.bgm`` file (any bytes-like object)."""
        return cls._wrap(_swig.FlowModel.fromBytes(data))

    def __reduce__(self):
        return (_from_bytes, (self.to_bytes(),))

    # ---- Properties ----

    @property
    def config(self):
        """The full configuration (a new dict on each access), every key filled in."""
        return json.loads(self._config_json)

    @property
    def num_particles(self):
        """N, the number of particles."""
        return self._num_particles

    @property
    def dim(self):
        """D, the spatial dimension (2 or 3)."""
        return self._dim

    @property
    def num_aug(self):
        """A, the number of augmented variables per particle (0 for families without them)."""
        return self._num_aug

    @property
    def family(self):
        """The model family (the configuration's ``"family"``): ``"eacf"``, ..."""
        return self._family

    @property
    def num_parameters(self):
        """The number of trainable parameters."""
        return int(self._model.getNumParameters())

    def __repr__(self):
        return f"openmmbg.Flow({self._summary}, num_parameters={self.num_parameters})"

    # ---- Array conversion ----

    def _length(self):
        import openmm.unit as unit

        name = _LENGTH_UNITS.get(self._length_unit, self._length_unit)
        target = getattr(unit, name, None)
        if not isinstance(target, unit.Unit) or not target.is_compatible(unit.nanometer):
            raise ValueError(
                f"cannot convert a Quantity to this model's length unit {self._length_unit!r}: "
                "pass plain arrays in that unit instead"
            )
        return target

    def _float64(self, value, name):
        unit = sys.modules.get("openmm.unit")  # a Quantity can only exist if openmm.unit is loaded
        if unit is not None and isinstance(value, unit.Quantity):
            target = self._length()
            try:
                value = value.value_in_unit(target)
            except TypeError as e:
                raise ValueError(f"{name}: cannot express a quantity in {value.unit} as {target}: {e}") from None
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: cannot convert to a float64 array: {e}") from None

    def _batch(self, value, name, tail, labels):
        """value as a C-contiguous float64 array [n, *tail]; one configuration [*tail] becomes n = 1."""
        arr = self._float64(value, name)
        if arr.shape == tail:
            arr = arr[np.newaxis]
        elif arr.ndim != len(tail) + 1 or arr.shape[1:] != tail:
            want = ", ".join(str(t) for t in tail)
            raise ValueError(
                f"{name} has shape {arr.shape}, expected [{labels}] = [n, {want}] "
                f"(or [{want}] for one configuration)"
            )
        return np.ascontiguousarray(arr, dtype=np.float64)

    def _x(self, x):
        return self._batch(x, "x", (self._num_particles, self._dim), "n, N, D")

    def _xa(self, x, a):
        x = self._x(x)
        if a is None:
            if self._num_aug:
                raise ValueError(f"a is required: the family {self._family!r} has auxiliary variables")
            a = np.empty((x.shape[0],) + self._aux_shape)
        a = self._batch(a, "a", self._aux_shape, "n, N, A, D")
        if x.shape[0] != a.shape[0]:
            raise ValueError(f"x holds {x.shape[0]} configurations but a holds {a.shape[0]}")
        return x, a

    @staticmethod
    def _array(raw, n):
        out = np.frombuffer(raw, dtype=np.float64).copy()
        if out.size != n:
            raise RuntimeError(f"openmmbg: expected {n} values from the C++ model, got {out.size}")
        return out

    # ---- Densities and sampling ----

    def sample(self, n, seed=0):
        """Draw ``n`` samples (x, a) ~ q.

        Returns ``(x, a, log_q)``: float64 arrays of shapes ``[n, N, D]`` (zero centre of mass,
        model length unit), ``[n, N, A, D]`` (model length unit) and ``[n]`` (the joint
        log q(x, a)). The same ``seed`` gives the same samples.
        """
        n = _as_int(n, "n")
        if n < 0:
            raise ValueError(f"sample: n must be non-negative (got {n})")
        N, D = self._num_particles, self._dim
        if n == 0:
            return np.empty((0, N, D)), np.empty((0,) + self._aux_shape), np.empty(0)
        nx, na = n * N * D, n * int(np.prod(self._aux_shape))
        out = self._array(self._model.sample(n, _as_seed(seed)), nx + na + n)
        return out[:nx].reshape(n, N, D), out[nx : nx + na].reshape((n,) + self._aux_shape), out[nx + na :]

    def log_prob(self, x, a=None):
        """Joint log-density log q(x, a), shape ``[n]``.

        ``x``: ``[n, N, D]`` and ``a``: ``[n, N, A, D]`` in the model's length unit (or openmm
        Quantity lengths). One configuration ``[N, D]`` with ``[N, A, D]`` is a batch of one and
        gives shape ``[1]``. ``a`` may be left out for families without auxiliary variables
        (``"ic"``: log q(x) is then exact). Wrong shapes raise ValueError.
        """
        x, a = self._xa(x, a)
        if x.shape[0] == 0:
            return np.empty(0)
        return self._array(self._model.logProb(x, a), x.shape[0])

    def marginal_log_prob(self, x, num_aug_samples=20, seed=0):
        """Estimate of the marginal log-density log q(x), shape ``[n]``.

        Importance sampling over the augmented variables: with ``K = num_aug_samples`` draws
        a_k ~ pi(a|x), log q(x) ~ logsumexp_k [log q(x, a_k) - log pi(a_k|x)] - log K (a lower
        bound in expectation; exact for an identity flow). ``x``: ``[n, N, D]`` (or one
        configuration ``[N, D]``, giving ``[1]``) in the model's length unit (or an openmm
        Quantity). The same ``seed`` gives the same estimate.
        """
        x = self._x(x)
        num_aug_samples = _as_int(num_aug_samples, "num_aug_samples")
        if num_aug_samples < 1:
            raise ValueError(f"marginal_log_prob: num_aug_samples must be positive (got {num_aug_samples})")
        if x.shape[0] == 0:
            return np.empty(0)
        return self._array(self._model.marginalLogProb(x, num_aug_samples, _as_seed(seed)), x.shape[0])

    def log_augmented_target(self, x, a):
        """The augmented target log pi(a|x), shape ``[n]``.

        pi(a|x) is the Gaussian centred on each particle of x with standard deviation
        ``config["aug_scale"]`` (model length unit). ``x``: ``[n, N, D]``, ``a``: ``[n, N, A, D]``
        (or one configuration, giving ``[1]``), in the model's length unit or as openmm Quantities.
        """
        x, a = self._xa(x, a)
        if x.shape[0] == 0:
            return np.empty(0)
        return self._array(self._model.logAugmentedTarget(x, a), x.shape[0])

    # ---- Training and evaluation ----

    def train(self, x, validation=None, verbose=True, **options):
        """Train in place by maximum likelihood on target samples ``x`` ``[n, N, D]``.

        ``validation`` (``[m, N, D]``, optional) selects the model: after training the flow holds
        the parameters with the best validation NLL. ``options`` (all optional) use the names of
        the C++ ``MaximumLikelihoodOptions``: ``epochs`` (100), ``batch_size`` (32),
        ``initial_learning_rate`` / ``peak_learning_rate`` / ``final_learning_rate``
        (2e-5 / 2e-4 / 2e-5, warmup-cosine), ``warmup_epochs`` (30), ``gradient_window`` (100),
        ``skip_factor`` (10), ``clip_factor`` (2), ``min_log_q`` (-1e4), ``time_limit`` (seconds,
        0 = none), ``validate_every`` (10 epochs), ``validation_aug_samples`` (20), ``patience``
        (0 = no early stopping), ``seed`` (0), ``random_rotations`` (default: on for projection
        "none"), ``checkpoint`` (path; resumed if it exists) and ``checkpoint_every`` (1 epoch).
        Progress goes to stderr when ``verbose``. Returns the per-epoch reports (list of dicts).
        Data may be mdtraj/MDAnalysis coordinates converted to numpy, or openmm Quantities.
        """
        x = self._x(x)
        val = self._x(validation) if validation is not None else np.empty(0)
        if "checkpoint" in options:
            options["checkpoint"] = _as_path(options["checkpoint"])
        reports = self._model.trainMaximumLikelihood(
            x, np.ascontiguousarray(val.reshape(-1)), _to_json(options, "training options"), bool(verbose))
        return json.loads(reports)

    def train_flow_matching(self, x, validation=None, verbose=True, **options):
        """Train a continuous flow (family ``"ecnf"``) in place by flow matching on samples ``x``
        ``[n, N, D]`` (docs/ecnf.md).

        ``options`` are those of :meth:`train` (except ``validation_aug_samples``, ``min_log_q``
        and ``random_rotations``, which do not apply) plus ``pairing`` (``"independent"``,
        ``"ot"`` or ``"equivariant-ot"``, the default) and ``sigma`` (0.01, the path's noise).
        ``validation`` selects the model by its exact NLL. Returns the per-epoch reports.
        """
        x = self._x(x)
        val = self._x(validation) if validation is not None else np.empty(0)
        if "checkpoint" in options:
            options["checkpoint"] = _as_path(options["checkpoint"])
        reports = self._model.trainFlowMatching(
            x, np.ascontiguousarray(val.reshape(-1)), _to_json(options, "training options"), bool(verbose))
        return json.loads(reports)

    def train_energy(self, target, objective="fab", verbose=True, **options):
        """Train in place against a built-in target (``"dw4"``, ``"lj13"``, ``"lj55"``) from its
        energy alone, without samples of it.

        ``objective`` is ``"fab"`` (flow annealed importance sampling bootstrap: AIS from the flow
        to p^alpha q^(1-alpha) with HMC transitions and a prioritised replay buffer) or
        ``"reverse-kl"`` (KL(q || p) on reparameterised flow samples). ``options`` (all optional)
        use the names of the C++ ``EnergyTrainingOptions`` (docs/training.md). ``iterations``,
        ``batch_size`` and ``num_intermediate`` default to the target's, the paper's settings in
        the catalog (``openmmbg.builtin_systems()[target]["energy_training"]``, as ``openmmbg
        train --system`` takes them); a target without a default iteration count (LJ55) needs
        ``iterations``. The others: ``alpha`` (2), ``num_leapfrog`` (5), ``initial_step_size``
        (1.0, length units), ``updates_per_iteration`` (8), ``buffer_max_batches`` (512),
        ``buffer_min_batches`` (64), ``max_importance_weight`` (10), the learning rate and
        gradient-guard options of :meth:`train` (``warmup_iterations``: -1 = 30% of the run),
        ``report_every`` (100), ``evaluate_every`` (1000, each also a report; 0 = never),
        ``num_ess_samples`` (10000), ``ais_ess`` (True), ``time_limit`` (seconds, 0 = none),
        ``seed`` (0), ``checkpoint`` (path; resumed if it exists) and ``checkpoint_every`` (100
        iterations). Progress goes to stderr when ``verbose``. Returns the reports (list of dicts
        with ``iteration``, ``total_iterations``, ``loss``, ``learning_rate``, ``step_sizes``,
        ``acceptance``, ``reverse_ess``, ``ais_ess``, ...). The flow keeps the final parameters.
        """
        target = str(target)
        options = dict(options)
        system = _catalog._system(target)
        if system is not None:  # another name is refused by the C++ library, naming the targets
            for key, default in system["energy_training"].items():
                if key in options:
                    continue
                if default is None:
                    raise ValueError(f"train_energy: {target} has no default {key} in the catalog of built-in "
                                     f"systems: give {key}=...")
                options[key] = default
        options["objective"] = str(objective)
        if "checkpoint" in options:
            options["checkpoint"] = _as_path(options["checkpoint"])
        reports = self._model.trainEnergy(target, _to_json(options, "training options"), bool(verbose))
        return json.loads(reports)

    def evaluate(self, target, x, num_aug_samples=20, num_ess_samples=10000, seed=0):
        """Evaluate against a built-in target (``"dw4"``, ``"lj13"``, ``"lj55"``) on test samples ``x``.

        Returns a dict with ``nll`` (mean marginal NLL over test points, ``num_aug_samples``
        augmented samples each), ``nll_sem`` (its standard error over test points),
        ``reverse_ess`` (fraction, on ``num_ess_samples`` flow samples) and ``forward_ess``
        (fraction, on the test points), both unclipped, and the counts used.
        """
        x = self._x(x)
        out = self._model.evaluate(str(target), x, _as_int(num_aug_samples, "num_aug_samples"),
                                   _as_int(num_ess_samples, "num_ess_samples"), _as_seed(seed))
        return json.loads(out)


def target_energies(target, x):
    """Reduced energies U(x)/kT ``[n]`` of a built-in target (``"dw4"``, ``"lj13"``, ``"lj55"``)
    for configurations ``x`` ``[n, N, D]`` or one ``[N, D]`` (reduced length units), N and D
    those of the catalog (:func:`openmmbg.builtin_systems`). Another shape raises ValueError."""
    target = str(target)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if x.ndim == 2:
        x = x[np.newaxis]
    system = _catalog._system(target)
    if system is not None:  # another name is refused by the C++ library, naming the targets
        shape = (system["num_particles"], system["dim"])
        if x.ndim != 3 or x.shape[1:] != shape:
            raise ValueError(f"target_energies: x has shape {x.shape}, {target} needs [n, {shape[0]}, {shape[1]}]")
    return np.frombuffer(_swig.builtinTargetEnergies(target, x.reshape(-1)), dtype=np.float64).copy()


def read_dcd(path, particles=None, begin=0, end=None, stride=1, allow_truncated=False):
    """Read a DCD trajectory (as written by OpenMM's DCDReporter) into a float64 array
    ``[frames, n, 3]`` in nm, e.g. to train a flow with :meth:`Flow.train`.

    ``particles``: indices to keep, in that order (default all); ``begin``/``end``/``stride`` select
    frames. Malformed files raise RuntimeError naming the problem, and so does a partial last frame
    unless ``allow_truncated`` (then the complete frames are read); a missing file raises
    FileNotFoundError.
    """
    path = _as_path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such DCD file", path)
    if particles is not None and len(particles) == 0:
        raise ValueError("read_dcd: particles is empty (give None for all particles)")
    selected = np.ascontiguousarray(np.asarray([] if particles is None else particles, dtype=np.float64).reshape(-1))
    n = len(selected) if particles is not None else _swig.dcdNumParticles(path)
    flat = np.frombuffer(_swig.readDcdFlat(path, selected, int(begin), -1 if end is None else int(end), int(stride),
                                           bool(allow_truncated)),
                         dtype=np.float64).copy()
    return flat.reshape(-1, n, 3)
