"""Alanine dipeptide (ACE-ALA-NME, 22 atoms) as the project uses it: the System from
``../shared/data/aldp`` (Amber prmtop, implicit solvent, no cutoff, no constraints), its backbone
dihedrals and the alpha carbon's chirality.

Atom indices are 0-based in the prmtop's order: phi = C(4)-N(6)-CA(8)-C(14),
psi = N(6)-CA(8)-C(14)-N(16); the alpha carbon CA(8) carries N(6), C(14), CB(10) and HA(9).
"""
import os

import numpy as np

PHI_ATOMS = (4, 6, 8, 14)
PSI_ATOMS = (6, 8, 14, 16)
#: (CA, N, C, CB): its signed volume has one sign for every L-alanine configuration; pass it to
#: BoltzmannGeneratorProposal.setChiralCenters([CHIRAL_CENTER]) to keep proposals L-form.
CHIRAL_CENTER = (8, 6, 14, 10)
NUM_ATOMS = 22


def data_directory(data_dir=None):
    """The folder holding the prmtop/inpcrd: `data_dir`, else $OPENMMBG_DATA_DIR/aldp, else
    ../shared/data/aldp beside the repository."""
    if data_dir:
        return str(data_dir)
    root = os.environ.get("OPENMMBG_DATA_DIR")
    if root:
        return os.path.join(root, "aldp")
    here = os.path.dirname(os.path.abspath(__file__))
    for up in (os.path.join(here, "..", "..", "..", ".."), os.path.join(here, "..", "..", "..")):
        candidate = os.path.normpath(os.path.join(up, "..", "shared", "data", "aldp"))
        if os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError("no alanine dipeptide data: pass data_dir or set OPENMMBG_DATA_DIR")


def model_metadata(model):
    """The JSON written beside a model (``aldp-spherical.bgm`` -> ``aldp-spherical.json``: its
    ``implicit_solvent``, ``temperature``, metrics and commands) as a dict; {} when there is none."""
    import json

    path = os.path.splitext(str(model))[0] + ".json"
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def create_system(implicit_solvent="OBC1", data_dir=None):
    """(system, topology, positions) for the given implicit solvent ("OBC1" as in the paper, or "OBC2")."""
    import openmm.app as app

    solvents = {"OBC1": app.OBC1, "OBC2": app.OBC2}
    if implicit_solvent not in solvents:
        raise ValueError(f"implicit_solvent must be OBC1 or OBC2, not {implicit_solvent!r}")
    directory = data_directory(data_dir)
    prmtop = app.AmberPrmtopFile(os.path.join(directory, "alanine-dipeptide-implicit.prmtop"))
    inpcrd = app.AmberInpcrdFile(os.path.join(directory, "alanine-dipeptide-implicit.inpcrd"))
    system = prmtop.createSystem(implicitSolvent=solvents[implicit_solvent], constraints=None,
                                 nonbondedMethod=app.NoCutoff)
    return system, prmtop.topology, inpcrd.getPositions(asNumpy=True)


def dihedral(x, atoms):
    """Dihedral angles (radians, in (-pi, pi]) of atoms (i, j, k, l) for x [n, N, 3] (or [N, 3])."""
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 2
    x = x[None] if single else x
    b0 = x[:, atoms[0]] - x[:, atoms[1]]
    b1 = x[:, atoms[2]] - x[:, atoms[1]]
    b2 = x[:, atoms[3]] - x[:, atoms[2]]
    b1 = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1, axis=-1, keepdims=True) * b1
    w = b2 - np.sum(b2 * b1, axis=-1, keepdims=True) * b1
    angle = np.arctan2(np.sum(np.cross(b1, v) * w, axis=-1), np.sum(v * w, axis=-1))
    return angle[0] if single else angle


def phi_psi(x):
    """(phi, psi) in radians for x [n, 22, 3]."""
    return dihedral(x, PHI_ATOMS), dihedral(x, PSI_ATOMS)


def chirality(x):
    """Sign of the alpha carbon's signed volume (+1 or -1) for x [n, 22, 3] (or [22, 3])."""
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 2
    x = x[None] if single else x
    a, b, c, d = CHIRAL_CENTER
    volume = np.einsum("ij,ij->i", x[:, b] - x[:, a], np.cross(x[:, c] - x[:, a], x[:, d] - x[:, a]))
    sign = np.sign(volume)
    return sign[0] if single else sign


#: Conformational basins as (name, test on phi and psi in radians); they partition the plane.
#: phi > 0 holds C7ax and alpha_L, rare at 300 K in implicit solvent; phi < 0 splits into the
#: extended basins (C5, C7eq, PII: psi > 2 or psi < -2.5 rad, about > 115 or < -145 degrees) and the
#: helical one (alpha_R: -2.5 < psi < 2 rad).
BASINS = (
    ("C5/C7eq/PII (phi < 0, extended)", lambda phi, psi: (phi <= 0) & ((psi > 2.0) | (psi < -2.5))),
    ("alpha_R (phi < 0, helical)", lambda phi, psi: (phi <= 0) & (psi >= -2.5) & (psi <= 2.0)),
    ("C7ax/alpha_L (phi > 0)", lambda phi, psi: phi > 0),
)


def basin_populations(phi, psi, weights=None):
    """Fractions of (phi, psi) (radians) in each of BASINS, as a dict name -> fraction (sums to 1)."""
    phi, psi = np.asarray(phi, dtype=np.float64), np.asarray(psi, dtype=np.float64)
    weights = np.ones_like(phi) if weights is None else np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    if phi.size == 0 or not total > 0:
        raise ValueError("basin_populations: no (phi, psi) points with positive weight")
    return {name: float(weights[test(phi, psi)].sum() / total) for name, test in BASINS}


def ramachandran_histogram(phi, psi, bins=64, weights=None):
    """Density histogram of (phi, psi) on [-pi, pi]^2 with `bins` x `bins` cells (integrates to 1)."""
    h, _, _ = np.histogram2d(np.asarray(phi), np.asarray(psi), bins=bins, range=[[-np.pi, np.pi], [-np.pi, np.pi]],
                             density=True, weights=weights)
    return h


def ramachandran_kld(phi_psi_data, phi_psi_model, bins=64, eps=1e-10, model_weights=None):
    """KL(data || model) of the Ramachandran distributions, as in docs/eacf-mapping.md#ramachandran-kld: 64 x 64 density
    histograms on [-pi, pi]^2, eps = 1e-10, KLD = sum h_data log((h_data + eps) / (h_model + eps)) (2 pi / bins)^2.
    `model_weights` (e.g. importance weights of flow samples) reweight the model histogram."""
    h_data = ramachandran_histogram(*phi_psi_data, bins=bins)
    h_model = ramachandran_histogram(*phi_psi_model, bins=bins, weights=model_weights)
    cell = (2 * np.pi / bins) ** 2
    return float(np.sum(h_data * np.log((h_data + eps) / (h_model + eps))) * cell)


def plot_ramachandran(panels, path, bins=64):
    """Write a PNG with one Ramachandran plot (log density) per panel: panels is a list of
    (title, phi, psi) or (title, phi, psi, weights)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        title, phi, psi = panel[:3]
        weights = panel[3] if len(panel) > 3 else None
        h = ramachandran_histogram(phi, psi, bins=bins, weights=weights)
        with np.errstate(divide="ignore"):
            image = np.log(h.T)
        ax.imshow(image, origin="lower", extent=[-np.pi, np.pi, -np.pi, np.pi], cmap="viridis", aspect="equal")
        ax.set_title(title)
        ax.set_xlabel("phi (rad)")
        ax.set_ylabel("psi (rad)")
    fig.tight_layout()
    tmp = str(path) + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
