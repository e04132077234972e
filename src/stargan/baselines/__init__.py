"""The paper's baselines (Table 3), trained and evaluated like StarGAN on the same data.

- ``cyclegan``: two generators and two discriminators per pair neutral <-> expression
  (:mod:`stargan.baselines.cyclegan`);
- ``diat``: one generator and discriminator per direction neutral -> expression, with an
  identity feature term (:mod:`stargan.baselines.diat`, :mod:`stargan.baselines.identity`);
- ``icgan``: a conditional GAN with encoders to z and to the label
  (:mod:`stargan.baselines.icgan`).

Every baseline has ``translate(x, source_label, target_name)``, ``num_parameters()`` ->
(per model, models) and is saved by :func:`save_baseline` / read by :func:`load_baseline`.
:class:`BaselineTrainer` trains any of them stage by stage, checkpointing a run folder so
that a killed run resumes exactly. docs/baselines.md maps each method to the paper.

Example:
    >>> from stargan.baselines import BaselineConfig, train, save_baseline
    >>> model = train(BaselineConfig.synth("cyclegan", 32, iters=3000))   # doctest: +SKIP
    >>> y = model.translate(x, "neutral", "happy")                         # doctest: +SKIP
"""

from stargan.baselines.common import (
    METHODS,
    Baseline,
    BaselineConfig,
    BaselineError,
    ExpressionData,
    Stage,
    build_baseline,
    register_baseline,
)
from stargan.baselines.cyclegan import CycleGAN
from stargan.baselines.diat import DIAT
from stargan.baselines.icgan import IcGAN
from stargan.baselines.identity import IdentityFeatures, train_identity_classifier
from stargan.baselines.paper import (
    PAPER_TABLE3,
    RAFD_EXPRESSIONS,
    format_parameters,
    paper_scale_parameters,
)
from stargan.baselines.training import (
    BASELINE_FORMAT,
    STATE_FORMAT,
    BaselineTrainer,
    load_baseline,
    save_baseline,
    train,
)
from stargan.training.runfolder import RunFolderError

__all__ = [
    "BASELINE_FORMAT",
    "DIAT",
    "METHODS",
    "PAPER_TABLE3",
    "RAFD_EXPRESSIONS",
    "STATE_FORMAT",
    "Baseline",
    "BaselineConfig",
    "BaselineError",
    "BaselineTrainer",
    "CycleGAN",
    "ExpressionData",
    "IcGAN",
    "IdentityFeatures",
    "RunFolderError",
    "Stage",
    "build_baseline",
    "format_parameters",
    "load_baseline",
    "paper_scale_parameters",
    "register_baseline",
    "save_baseline",
    "train",
    "train_identity_classifier",
]
