"""The interface every ppnets model implements: :class:`ClassificationModel` (timm's names).

A family declares *what* its network is — its stem, its stages and its head — in its
``__init__``; this base class implements everything else once, for every family:

- ``forward_features`` / ``forward_intermediates`` / ``forward_head`` / ``forward``;
- ``feature_info``, the single description of the stages (read by ``features_only``,
  ``freeze_stages``, Grad-CAM and the analysis tools);
- ``get_classifier`` / ``reset_classifier`` (keeping PaddleClas's classifier key);
- ``freeze_stages`` and the constructor keys ``features_only``, ``out_indices`` and
  ``freeze_stages`` that every registered model accepts (so ``Arch`` accepts them too).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import paddle
import paddle.nn as nn

from ..errors import ConfigError
from .interface import INTERFACE_KWARGS, FeatureInfo, check_class_num as _check_class_num, with_interface_kwargs
from .layers import FastConv2D, make_act, use_fast_convs
from .reparam import assert_trainable, reparameterize

__all__ = ["ClassificationModel", "FamilyHead", "INTERFACE_KWARGS"]

class FamilyHead(nn.Layer):
    """A head a family defines itself, for heads the shared one cannot express (RepViT's
    BatchNorm → Linear with a distillation branch averaged at inference, …).

    It maps the ``forward_features`` map to logits: ``forward(x, pre_logits=False)`` (with
    ``pre_logits`` it stops before the classifier and returns ``(N, hidden_size)`` features;
    with ``class_num`` 0 it always does), and owns the classifier: ``get_classifier()`` and
    ``reset_classifier(class_num)`` (fresh weights, same keys). ``hidden_size`` is the width
    of the pre-logits features. The model declares it with
    :meth:`ClassificationModel.init_family_head`."""

    hidden_size: int
    class_num: int

    def forward(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:  # pragma: no cover
        raise NotImplementedError

    def get_classifier(self) -> nn.Layer:  # pragma: no cover
        raise NotImplementedError

    def reset_classifier(self, class_num: int) -> None:  # pragma: no cover
        raise NotImplementedError


class ClassificationModel(nn.Layer):
    """Base class of every registered model. The contract a family follows:

    **In ``__init__``** (after building its layers, with PaddleClas's attribute names):

    1. ``self.stem_modules = ("conv1",)`` — dotted names of the sublayers run before the first
       stage, in order (a name may repeat, e.g. a shared pooling layer);
    2. one ``self.add_stage(modules, num_chs, reduction)`` per stage, in order: the sublayers the
       stage runs (dotted names, e.g. ``["blocks.1", "blocks.2"]`` or one container ``"conv3"``),
       the channels of its output map and its total stride. A stage starts with its downsampling
       block, so each stage's map is the last one at its resolution or width.
       :meth:`add_stages_by_stride` declares a flat run of blocks grouped by resolution;
    3. ``self.neck_modules = ("conv9",)`` — sublayers after the last stage that still belong to
       ``forward_features`` (the final 1×1 conv), or leave it empty;
    4. ``self.init_head(num_features, class_num, classifier="fc", dropout=…)`` — the shared
       classifier head: global average pool → [``hidden`` layer + act, e.g. MobileNetV3's 1280-wide
       ``last_conv``] → flatten → dropout → classifier. ``classifier`` is the classifier's attribute
       name (its ``state_dict`` key); ``conv_classifier=True`` puts a 1×1 conv classifier before the
       pooling instead (SqueezeNet). ``num_features`` is the channel count ``forward_features``
       returns; ``class_num=0`` builds no classifier (``forward`` returns the pooled features).
       A family with a head of its own builds a :class:`FamilyHead` and calls
       ``self.init_family_head("head", num_features, class_num)`` instead.

    Convolutions may be built as plain ``nn.Conv2D``: the finished model puts every one of them on
    ppnets's fast CPU path (:func:`~ppnets.arch.layers.use_fast_convs`). A block with a fused
    inference form defines ``reparameterize()`` (:mod:`ppnets.arch.reparam`).

    That is all: do not override ``forward*``. The family's blocks may define
    ``block_paths()`` (see :mod:`ppnets.arch.blocks`) so the analysis tools can draw them.

    **What the base class provides**

    - ``feature_info`` (a :class:`~ppnets.arch.interface.FeatureInfo` list, with timm's ``channels()``,
      ``reduction()`` and ``module_name()``): one dict per stage, ``{"module": name of the sublayer
      whose output is the stage map, "num_chs": C, "reduction": stride, "modules": the stage's
      sublayers, "index": its position}``; a ``features_only`` model's has one per output map.
      ``stage_info`` always describes every stage the model runs;
    - ``forward_features(x)``: stem → every stage → neck, the map fed to the head;
    - ``forward_intermediates(x, indices=None)``: the list of stage maps (``indices``: ints, negative
      from the end, or an int n for the last n stages; only the stages needed are run);
    - ``forward_head(x, pre_logits=False)`` and ``forward(x)``; ``num_features``, ``head_hidden_size``
      (width of what ``pre_logits`` returns) and ``class_num``;
    - ``get_classifier()``, ``reset_classifier(class_num)`` (same key name, fresh weights);
    - ``reparameterize()``: every block with a fused form is fused in place (eval mode; the model then
      refuses ``train()``);
    - ``freeze_stages(k)``: the stem and the first ``k`` stages (and the neck when ``k`` is every
      stage) stop training: ``stop_gradient`` parameters, their BatchNorm/dropout in eval mode, also
      after ``model.train()``. ``-1`` freezes nothing;
    - constructor keys (every family's signature gets them): ``features_only=True`` turns the model
      into a backbone whose ``forward`` returns the list of maps of ``out_indices`` (default: every
      stage) — neck, head and unused stages are removed; ``freeze_stages=k`` calls
      :meth:`freeze_stages`.
    """

    class_num: int
    num_features: int
    head_hidden_size: int
    stem_modules: Tuple[str, ...] = ()
    neck_modules: Tuple[str, ...] = ()
    features_only: bool = False
    out_indices: Tuple[int, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_ppnets_interface", False):
            cls.__init__ = with_interface_kwargs(init)

    # ------------------------------------------------------------------ declaration (family __init__)

    def add_stage(self, modules: Union[str, Sequence[str]], num_chs: int, reduction: int) -> None:
        """Declare the next stage: the sublayers it runs, its output channels and total stride."""
        names = (modules,) if isinstance(modules, str) else tuple(modules)
        if not names:
            raise ValueError(f"{type(self).__name__}.add_stage: a stage needs at least one module")
        if "stage_info" not in self.__dict__:
            self.stage_info = FeatureInfo()
        self.stage_info.append({"module": names[-1], "num_chs": int(num_chs), "reduction": int(reduction),
                                "modules": names, "index": len(self.stage_info)})
        self.feature_info = self.stage_info

    def add_stages_by_stride(self, names: Sequence[str], strides: Sequence[int], channels: Sequence[int],
                             reduction: int) -> None:
        """Declare stages over a flat run of blocks (``names``, with each block's stride and output
        channels): a new stage starts at the first block and at every block with stride > 1.
        ``reduction`` is the total stride before the first block (the stem's)."""
        stage: List[str] = []
        for i, (name, stride) in enumerate(zip(names, strides)):
            if stage and stride > 1:
                self.add_stage(stage, channels[i - 1], reduction)
                stage = []
            reduction *= stride
            stage.append(name)
        self.add_stage(stage, channels[len(names) - 1], reduction)

    def init_head(self, num_features: int, class_num: int, *, classifier: str = "fc", dropout: float = 0.0,
                  dropout_mode: str = "upscale_in_train", hidden: Optional[str] = None,
                  hidden_size: Optional[int] = None, hidden_act: Optional[str] = None,
                  hidden_post: Optional[str] = None, conv_classifier: bool = False,
                  classifier_act: Optional[str] = None) -> None:
        """Build the shared classifier head (see the class docstring).

        Args:
            num_features: channels of the map ``forward_features`` returns.
            class_num: number of classes; 0 = no classifier (features out), None is an error.
            classifier: attribute name of the classifier (PaddleClas's key: ``fc``, ``out``, ``_fc`` …).
            dropout, dropout_mode: dropout before the classifier (``nn.Dropout``'s ``p`` and ``mode``).
            hidden: name of an already built sublayer applied to the pooled features (a 1×1 conv,
                MobileNetV3's ``last_conv``), ``hidden_size`` its output width, ``hidden_act`` the
                activation after it.
            conv_classifier: the classifier is a 1×1 convolution applied before the pooling,
                followed by ``classifier_act`` (SqueezeNet); dropout comes before it.
        """
        self.class_num = _check_class_num(type(self).__name__, class_num)
        self.num_features = int(num_features)
        if (hidden is None) != (hidden_size is None):
            raise ValueError("init_head: hidden and hidden_size go together")
        if hidden_post is not None and hidden is None:
            raise ValueError("init_head: hidden_post follows a hidden layer")
        self.head_hidden_size = int(hidden_size) if hidden is not None else self.num_features
        self._head = {"classifier": classifier, "hidden": hidden, "conv": conv_classifier, "post": hidden_post}
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.head_act = make_act(hidden_act) if hidden is not None else None
        self.head_drop = nn.Dropout(dropout, mode=dropout_mode) if dropout > 0 else None
        self.classifier_act = make_act(classifier_act) if conv_classifier else None
        self.add_sublayer(classifier, self._make_classifier(self.class_num))

    def init_family_head(self, head: str, num_features: int, class_num: int) -> None:
        """Declare the family's own head: ``head`` names an already built :class:`FamilyHead`
        sublayer, fed the ``num_features``-channel map of ``forward_features``."""
        self.class_num = _check_class_num(type(self).__name__, class_num)
        self.num_features = int(num_features)
        layer = getattr(self, head, None)
        if not isinstance(layer, FamilyHead):
            raise TypeError(f"{type(self).__name__}.init_family_head: '{head}' is not a built FamilyHead sublayer")
        self.head_hidden_size = int(layer.hidden_size)
        self._head = {"classifier": head, "hidden": None, "conv": False, "family": head}

    def _make_classifier(self, class_num: int) -> nn.Layer:
        if class_num == 0:
            return nn.Identity()
        if self._head["conv"]:
            return FastConv2D(self.head_hidden_size, class_num, 1)
        return nn.Linear(self.head_hidden_size, class_num)

    # ------------------------------------------------------------------ finishing (after __init__)

    def _resolve(self, names: Sequence[str]) -> List[nn.Layer]:
        subs = self._named()
        missing = [n for n in names if n not in subs]
        if missing:
            raise TypeError(f"{type(self).__name__}: declared module(s) {', '.join(missing)} do not exist")
        return [subs[n] for n in names]

    def _named(self) -> Dict[str, nn.Layer]:
        return dict(self.named_sublayers())

    def _finish_model(self, features_only: bool, out_indices: Optional[Sequence[int]], freeze_stages: int) -> None:
        cls = type(self).__name__
        if not self.__dict__.get("stage_info"):
            raise TypeError(f"{cls}: declares no stages (call self.add_stage(...) in __init__)")
        if "_head" not in self.__dict__:
            raise TypeError(f"{cls}: has no head (call self.init_head(...) in __init__)")
        use_fast_convs(self)
        self._stem_layers = self._resolve(self.stem_modules)
        self._stage_layers = [self._resolve(info["modules"]) for info in self.stage_info]
        self._neck_layers = self._resolve(self.neck_modules)
        self._frozen: List[nn.Layer] = []
        if freeze_stages != -1:
            self.freeze_stages(freeze_stages)
        if features_only:
            self._to_backbone(out_indices)
        elif out_indices is not None:
            raise ConfigError(f"{cls}: out_indices is only used with features_only: true")

    def stage_indices(self, indices: Union[None, int, Sequence[int]] = None) -> Tuple[int, ...]:
        """Normalise ``indices`` (None = every stage, an int n = the last n, else a list with negatives
        counted from the end) to sorted stage positions; ConfigError if out of range."""
        n = len(self.stage_info)
        if indices is None:
            return tuple(range(n))
        if isinstance(indices, int) and not isinstance(indices, bool):
            if not 1 <= indices <= n:
                raise ConfigError(f"{type(self).__name__}: the last {indices} stages requested, it has {n}")
            return tuple(range(n - indices, n))
        out = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
                raise ConfigError(f"{type(self).__name__}: out_indices/indices must be stage numbers in "
                                  f"[{-n}, {n - 1}] ({n} stages), got {list(indices)!r}")
            out.append(i % n)
        if not out or len(set(out)) != len(out):
            raise ConfigError(f"{type(self).__name__}: out_indices/indices must be distinct and not empty, "
                              f"got {list(indices)!r}")
        return tuple(sorted(out))

    def _to_backbone(self, out_indices: Optional[Sequence[int]]) -> None:
        keep = self.stage_indices(out_indices)
        last = keep[-1]
        used = {id(layer) for layer in self._stem_layers + [m for s in self._stage_layers[:last + 1] for m in s]}
        drop = [n for info in self.stage_info[last + 1:] for n in info["modules"]]
        drop += list(self.neck_modules) + self._head_names()
        for name in dict.fromkeys(drop):
            parent, _, leaf = name.rpartition(".")
            owner = self._named()[parent] if parent else self
            if leaf in owner._sub_layers and id(owner._sub_layers[leaf]) not in used:
                delattr(owner, leaf)
        self.stage_info = FeatureInfo(self.stage_info[:last + 1])
        self.feature_info = FeatureInfo(self.stage_info[i] for i in keep)  # one entry per output map
        self._stage_layers = self._stage_layers[:last + 1]
        self._neck_layers, self.neck_modules = [], ()
        self.features_only, self.out_indices = True, keep

    def _head_names(self) -> List[str]:
        if self._head.get("family"):
            return [self._head["family"]]
        names = ["global_pool", "head_act", "head_drop", "classifier_act", self._head["classifier"]]
        names += [self._head[k] for k in ("hidden", "post") if self._head.get(k)]
        return [n for n in names if n in self._sub_layers]

    # ------------------------------------------------------------------ forward

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        for layer in self._stem_layers:
            x = layer(x)
        for stage in self._stage_layers:
            for layer in stage:
                x = layer(x)
        for layer in self._neck_layers:
            x = layer(x)
        return x

    def forward_intermediates(self, x: paddle.Tensor,
                              indices: Union[None, int, Sequence[int]] = None) -> List[paddle.Tensor]:
        """The output maps of the stages ``indices`` (default: every stage), in stage order."""
        keep = self.stage_indices(indices)
        for layer in self._stem_layers:
            x = layer(x)
        out = []
        for i, stage in enumerate(self._stage_layers[:keep[-1] + 1]):
            for layer in stage:
                x = layer(x)
            if i in keep:
                out.append(x)
        return out

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        """Pool and classify a ``forward_features`` map; ``pre_logits``: stop before the dropout and
        classifier and return the (N, ``head_hidden_size``) features."""
        if self.features_only:
            raise ConfigError(f"{type(self).__name__}: a features_only model has no head")
        if self._head.get("family"):
            return getattr(self, self._head["family"])(x, pre_logits=pre_logits)
        if self._head["conv"] and not pre_logits and self.class_num:
            if self.head_drop is not None:
                x = self.head_drop(x)
            x = self.classifier_act(self.get_classifier()(x))
            return paddle.flatten(self.global_pool(x), 1)
        x = self.global_pool(x)
        if self._head["hidden"] is not None:
            x = self.head_act(getattr(self, self._head["hidden"])(x))
            if self._head.get("post") is not None:
                x = getattr(self, self._head["post"])(x)
        x = paddle.flatten(x, 1)
        if pre_logits or not self.class_num:
            return x
        if self.head_drop is not None:
            x = self.head_drop(x)
        return self.get_classifier()(x)

    def forward(self, x: paddle.Tensor) -> Union[paddle.Tensor, List[paddle.Tensor]]:
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices)
        return self.forward_head(self.forward_features(x))

    # ------------------------------------------------------------------ classifier

    def get_classifier(self) -> nn.Layer:
        """The classifier layer (``nn.Identity`` when ``class_num`` is 0)."""
        if self.features_only:
            raise ConfigError(f"{type(self).__name__}: a features_only model has no classifier")
        if self._head.get("family"):
            return getattr(self, self._head["family"]).get_classifier()
        return getattr(self, self._head["classifier"])

    def reset_classifier(self, class_num: int) -> None:
        """Replace the classifier by a freshly initialised one for ``class_num`` classes (0 = none),
        under the same attribute name, so the ``state_dict`` keys stay PaddleClas's."""
        self.get_classifier()
        self.class_num = _check_class_num(type(self).__name__, class_num)
        if self._head.get("family"):
            getattr(self, self._head["family"]).reset_classifier(self.class_num)
        else:
            setattr(self, self._head["classifier"], self._make_classifier(self.class_num))

    # ------------------------------------------------------------------ re-parameterization

    def reparameterize(self) -> "ClassificationModel":
        """Fuse every block that has an inference form (:func:`ppnets.arch.reparam.reparameterize`),
        in place; returns the model, in eval mode. A no-op for families without such blocks."""
        return reparameterize(self)

    # ------------------------------------------------------------------ freezing

    def freeze_stages(self, k: int) -> None:
        """Stop training the stem and the first ``k`` stages (``k`` = every stage: the neck too).

        Their parameters become ``stop_gradient`` (the optimizer leaves them unchanged) and their
        BatchNorm (and dropout) layers stay in eval mode, using and keeping their running
        statistics, even after ``model.train()``. ``k = -1`` freezes nothing.
        """
        n = len(self.stage_info)
        if isinstance(k, bool) or not isinstance(k, int) or not -1 <= k <= n:
            raise ConfigError(f"{type(self).__name__}: freeze_stages must be -1 (nothing), 0 (the stem) … "
                              f"{n} (every stage), got {k!r}")
        if k < 0:
            return
        layers = self._stem_layers + [m for stage in self._stage_layers[:k] for m in stage]
        if k == n:
            layers += self._neck_layers
        for layer in layers:
            for p in layer.parameters():
                p.stop_gradient = True
            if not any(layer is f for f in self._frozen):
                self._frozen.append(layer)
        if not hasattr(self, "_frozen_hook"):
            # wrappers (DataParallel, to_static) switch sublayers to train mode without calling
            # our train(): re-assert eval mode on every call
            self._frozen_hook = self.register_forward_pre_hook(lambda layer, inputs: layer._keep_frozen_eval())
        self._keep_frozen_eval()

    def _keep_frozen_eval(self) -> None:
        for layer in self._frozen:
            for sub in layer.sublayers(include_self=True):
                sub.training = False

    def train(self, mode: bool = True) -> "ClassificationModel":
        if mode:
            assert_trainable(self)
        super().train(mode)
        if self.__dict__.get("_frozen"):
            self._keep_frozen_eval()
        return self
