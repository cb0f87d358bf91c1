"""Internal-coordinate models (family ``"ic"``) from an OpenMM ``Topology``.

A flow on internal coordinates needs the molecule's Z-matrix: which atoms each atom is placed from
by a bond, an angle and a dihedral. :func:`zmatrix` builds it from the bonded graph of a
``Topology`` (heavy atoms first; docs/internal-coordinates.md); :func:`config` makes a complete model
configuration for :class:`openmmbg.Flow`::

    pdb = app.PDBFile("alanine-dipeptide.pdb")
    flow = openmmbg.Flow(openmmbg.internal_coordinates.config(pdb.topology, temperature=300))
    flow.train(x_train, validation=x_val, epochs=50, batch_size=256)   # statistics fitted from x_train
"""
import json

from . import openmmbg_swig as _swig


def zmatrix(topology):
    """The Z-matrix rows ``[[atom, bond, angle, dihedral], ...]`` (-1 where a row has none) of a
    ``Topology``'s molecule: its bonds from ``topology.bonds()``, its hydrogens the atoms whose
    element is hydrogen (atoms without an element count as heavy). Raises ValueError if the
    molecule is not connected or a hydrogen is bonded to no heavy atom."""
    atoms = list(topology.atoms())
    index = {atom: i for i, atom in enumerate(atoms)}
    bonds = [[index[a], index[b]] for a, b in topology.bonds()]
    heavy = [atom.element is None or atom.element.symbol != "H" for atom in atoms]
    molecule = {"num_atoms": len(atoms), "bonds": bonds, "heavy": heavy}
    return json.loads(_swig.zmatrixFromBonds(json.dumps(molecule)))


def config(topology, **keys):
    """A model configuration (dict) of family ``"ic"`` for the molecule of ``topology``: its
    ``num_particles`` and ``zmatrix``, with any further configuration key given as a keyword
    (``num_layers``, ``hidden_units``, ``dtype``, ``temperature`` in K, ...; defaults in
    docs/flow-config.md)."""
    result = {"family": "ic", "num_particles": topology.getNumAtoms(), "zmatrix": zmatrix(topology)}
    result.update(keys)
    return result
