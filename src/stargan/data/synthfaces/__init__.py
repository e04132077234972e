"""SynthFaces: procedurally rendered cartoon faces with exact ground truth for every translation.

Two styles share one renderer, so they differ in distribution the way CelebA and RaFD do:

- ``"celeba"``: varied backgrounds and patterns, position/rotation/scale jitter, a lighting
  gradient; binary attributes with CelebA's names (:data:`CELEBA_ATTRIBUTES`).
- ``"rafd"``: frontal, centred, plain light background, black shirts; each subject shows all 8
  RaFD expressions (:data:`EXPRESSIONS`), attributes fixed per subject.

A face is ``render(identity, state, size)``: the :class:`Identity` holds everything kept fixed
under translation, the :class:`FaceState` what labels control. Rendering is a pure function,
so the true counterfactual of any image under any target label is one call away
(:meth:`SynthFaces.counterfactual`). Use it in memory (:class:`SynthFaces`) or exported in the
official CelebA / RaFD layouts (:func:`export_celeba`, :func:`export_rafd`), with the factors
saved alongside so :func:`load_ground_truth` can rebuild ground truth for exported files.

Smiling and the expression are one thing: ``"Smiling"`` is CelebA's name for the ``"happy"``
expression. A state keeps them in step (see :class:`FaceState`); celeba-style states are
``"neutral"`` or ``"happy"``; giving a celeba face an RaFD expression replaces its brows, eyes
and mouth.

Example:
    >>> ds = SynthFaces("celeba", size=32, n=100, seed=0)
    >>> x, c = ds[0]                      # x: [3, 32, 32] in [-1, 1], c: [5] multi-hot
    >>> m = ds.label_spec.index("Male")
    >>> target = c.clone(); target[m] = 1 - c[m]                # flip Male
    >>> y_true = ds.counterfactual(0, target)   # what a perfect G(x, target) would output
"""

from stargan.data.synthfaces.dataset import (
    SynthFaces,
    export_celeba,
    export_rafd,
    load_ground_truth,
)
from stargan.data.synthfaces.faces import (
    ATTRIBUTE_PARTS,
    CELEBA_ATTRIBUTES,
    DEFAULT_SELECTED_ATTRS,
    EXPRESSION_PARTS,
    EXPRESSIONS,
    HAIR_COLOURS,
    PARTS,
    STYLES,
    FaceState,
    Identity,
    sample_identity,
    sample_state,
)
from stargan.data.synthfaces.render import part_mask, render

__all__ = [
    "ATTRIBUTE_PARTS",
    "CELEBA_ATTRIBUTES",
    "DEFAULT_SELECTED_ATTRS",
    "EXPRESSIONS",
    "EXPRESSION_PARTS",
    "HAIR_COLOURS",
    "PARTS",
    "STYLES",
    "FaceState",
    "Identity",
    "SynthFaces",
    "export_celeba",
    "export_rafd",
    "load_ground_truth",
    "part_mask",
    "render",
    "sample_identity",
    "sample_state",
]
