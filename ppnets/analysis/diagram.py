"""Block-level architecture diagrams (Graphviz DOT → SVG/PNG) and the VisualDL model graph.

:func:`model_dot` draws input → stem → every block, grouped in one box per stage → head.
Each block shows its kernel, stride, expansion, squeeze-excite, activation and output
shape; its paths are drawn as they are computed: a residual block as the block plus a
dashed identity edge into an ⊕ node, a ShuffleNetV2 unit as channel split → branch ‖
identity → concat → shuffle, a down-sampling unit as two branches into a concat, a Fire
module as squeeze → (1×1 ‖ 3×3) → concat.

Rendering needs Graphviz's ``dot`` program, a system package (Debian/Ubuntu:
``apt-get install graphviz``; macOS: ``brew install graphviz``; conda:
``conda install -c conda-forge graphviz``), not a pip one. The DOT file is always
written; :func:`render_dot` renders it when ``dot`` is on the PATH and otherwise
returns nothing, and the command-line tool prints the command to run.

VisualDL's graph view (``add_graph``) fails under Paddle 3's PIR program format, so
:func:`log_graph_to_visualdl` runs it in a child process started with
``FLAGS_enable_pir_api=0``.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import paddle.nn as nn

from ..arch.layers import ConvBNLayer, SamePad2D
from .blocks import BlockInfo, Op, act_name, conv_op, pool_label
from .summary import BlockRecord, ModelSummary, fmt_int, fmt_si

__all__ = ["model_dot", "render_dot", "dot_available", "RENDER_HINT", "log_graph_to_visualdl", "layer_labels"]

RENDER_HINT = ("Graphviz 'dot' is not installed, so only the .dot file was written. Install it "
               "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
               "conda: conda install -c conda-forge graphviz) and run: dot -Tsvg {dot} -o {stem}.svg && "
               "dot -Tpng {dot} -o {stem}.png")

_FONT = "DejaVu Sans"
_COLORS = {"io": "#ffffff", "stem": "#fdf0d5", "head": "#fdf0d5", "block": "#e3ecf7", "branch": "#e6f4ea",
           "merge": "#ffffff", "other": "#f2f2f2"}


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape[1:]) if shape else ""


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


# --------------------------------------------------------------------------- non-block layers


def layer_labels(model: nn.Layer, layers) -> List[Tuple[str, Tuple[int, ...]]]:
    """Readable (label, output shape) for a run of leaf layers outside blocks (stem, head, pools).

    A convolution inside a :class:`ConvBNLayer` is described with its BN and activation,
    which are then not listed again; parameter-free identity-like layers are dropped.
    """
    subs: Dict[str, nn.Layer] = dict(model.named_sublayers())
    out: List[Tuple[str, Tuple[int, ...]]] = []
    for stat in layers:
        layer = subs.get(stat.name)
        if layer is None:
            continue
        parent_name = stat.name.rsplit(".", 1)[0] if "." in stat.name else ""
        parent = subs.get(parent_name)
        if isinstance(parent, ConvBNLayer):
            if layer is parent.conv_layer:
                out.append((conv_op(parent).label, stat.out_shape))
            elif out:  # BN / activation of that conv: the conv's row shows the final shape
                out[-1] = (out[-1][0], stat.out_shape)
            continue
        if isinstance(layer, nn.Conv2D):
            out.append((conv_op(layer).label, stat.out_shape))
        elif isinstance(layer, nn.Linear):
            out.append((f"FC {layer.weight.shape[0]}→{layer.weight.shape[1]}", stat.out_shape))
        elif "Pool" in type(layer).__name__:
            out.append((pool_label(layer), stat.out_shape))
        elif isinstance(layer, nn.Dropout):
            out.append((f"dropout {layer.p:g}", stat.out_shape))
        elif isinstance(layer, (nn.Identity, SamePad2D)) or stat.type in ("BatchNorm2D",):
            continue
        elif act_name(layer):
            if out:
                out[-1] = (f"{out[-1][0]}, {act_name(layer)}", stat.out_shape)
            else:
                out.append((act_name(layer), stat.out_shape))
        else:
            out.append((type(layer).__name__, stat.out_shape))
    return out


# --------------------------------------------------------------------------- DOT


class _Dot:
    def __init__(self) -> None:
        self.lines: List[str] = []
        self.edges: List[str] = []  # kept apart: an edge inside a cluster would pull its nodes into it
        self.count = 0

    def node(self, label: str, fill: str, shape: str = "box", **attrs: str) -> str:
        self.count += 1
        nid = f"n{self.count}"
        style = attrs.pop("style", "rounded,filled" if shape == "box" else "filled")
        extra = "".join(f', {k}="{v}"' for k, v in attrs.items())
        self.lines.append(f'  {nid} [label=<{label}>, shape={shape}, style="{style}", fillcolor="{fill}"{extra}];')
        return nid

    def edge(self, a: str, b: str, **attrs: str) -> None:
        extra = ", ".join(f'{k}="{v}"' if k != "label" else f"label=<{v}>" for k, v in attrs.items())
        self.edges.append(f"  {a} -> {b}" + (f" [{extra}];" if extra else ";"))


def _stack(cells: Sequence[str]) -> str:
    """HTML-like label with one table row per line (``<br/>`` lines are set too tight for underscores)."""
    return ('<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
            + "".join(f"<tr><td>{c}</td></tr>" for c in cells) + "</table>")


def _rows(title: str, lines: Sequence[str], shape: str = "", bold_title: bool = True) -> str:
    parts = [f"<b>{_esc(title)}</b>" if bold_title else _esc(title)]
    parts += [f'<font point-size="9">{_esc(line)}</font>' for line in lines if line]
    if shape:
        parts.append(f'<font point-size="9" color="#1f4e9c">→ {_esc(shape)}</font>')
    return _stack(parts)


def _ops_text(ops: Sequence[Op]) -> List[str]:
    return [op.label for op in ops]


def _same(a: BlockRecord, b: BlockRecord) -> bool:
    ia, ib = a.info, b.info
    return (ia.title, ia.summary(), ia.merge, ia.split, a.out_shape, a.in_shape) == \
        (ib.title, ib.summary(), ib.merge, ib.split, b.out_shape, b.in_shape) and \
        [_ops_text(x) for x in ia.branches] == [_ops_text(x) for x in ib.branches]


def _emit_block(g: _Dot, prev: str, rec: BlockRecord, repeat: int, detail: bool) -> str:
    """Draw one block (or ``repeat`` identical ones) after node ``prev``; return its output node."""
    info: BlockInfo = rec.info
    times = f" ×{repeat}" if repeat > 1 else ""
    name = rec.name if repeat == 1 else f"{rec.name} (+{repeat - 1} more)"
    shape = _shape(rec.out_shape)
    head = f"{info.title}{times}"
    sub = f"{name} · {info.summary()}"
    if info.merge is None or (info.residual and len(info.branches) == 2):
        main = next(b for b in info.branches if b)
        show = detail or any(op.kind == "shuffle" for op in main)  # a shuffle inside the path is always drawn
        lines = [sub] + (_ops_text(info.pre + main) if show else [])
        node = g.node(_rows(head, lines, shape), _COLORS["block"])
        g.edge(prev, node)
        if info.merge is None:
            return node
        post = ", ".join(op.label for op in info.post)
        add = g.node("+" if not post else _stack(["+", f'<font point-size="8">{_esc(post)}</font>']), _COLORS["merge"],
                     shape="circle", width="0.3", margin="0.02")
        g.edge(node, add)
        g.edge(prev, add, style="dashed", color="#c0392b",
               label='<font point-size="8">&#160;&#160;identity</font>')
        return add
    # several paths: a head node (with the ops every path shares, and the channel split), one node per
    # path that computes something, identity paths as dashed edges, then the merge node
    lines = [sub] + _ops_text(info.pre)
    half = info.in_channels // 2
    if info.split:
        lines.append(f"channel split {info.in_channels} → {half} + {half}")
    src = g.node(_rows(head, lines), _COLORS["block"])
    g.edge(prev, src)
    post = [op.label for op in info.post]
    merge = "concat" if info.merge == "concat" else "+ (add)"
    out = g.node(_rows(merge + (f" → {', '.join(post)}" if post else ""), [], shape, bold_title=False),
                 _COLORS["merge"], style="filled")
    for branch in info.branches:
        if not branch:
            label = f"identity ({half} ch)" if info.split else "identity"
            g.edge(src, out, style="dashed", color="#c0392b",
                   label=f'<font point-size="8">&#160;&#160;{_esc(label)}</font>')
            continue
        bnode = g.node(_stack([f'<font point-size="9">{_esc(t)}</font>' for t in _ops_text(branch)]),
                       _COLORS["branch"])
        g.edge(src, bnode)
        g.edge(bnode, out)
    return out


def model_dot(summary: ModelSummary, model: nn.Layer, detail: bool = False, compact: bool = False) -> str:
    """The Graphviz DOT source of ``model``'s block-level diagram.

    Args:
        summary: :func:`~ppnets.analysis.summary.summarize` of ``model``.
        detail: list every convolution inside single-path blocks (multi-path blocks always do).
        compact: draw consecutive identical blocks of a stage once, marked ``×n``.
    """
    g = _Dot()
    n, c, h, w = summary.input_shape
    title = ('<table border="0" cellspacing="3" cellpadding="0">'
             f"<tr><td><b>{_esc(summary.name)}</b>  ·  input {c}×{h}×{w}  ·  {fmt_int(summary.params)} params  ·  "
             f"{fmt_si(summary.macs)} MACs ({fmt_si(2 * summary.macs)} FLOPs; batch 1)</td></tr>"
             '<tr><td><font point-size="9">blocks: kernel k, stride s, expansion e, SE = squeeze-excite; '
             "→ output C×H×W; dashed red = identity path, + = add"
             + ('</font></td></tr><tr><td><font point-size="9">×n = n identical blocks in a row, each with its own '
                'paths' if compact else "")
             + "</font></td></tr></table>")
    prev = g.node(_rows("input", [], f"{c}×{h}×{w}"), _COLORS["io"])
    stem = summary.stem
    stem_lines = [lbl for lbl, _ in layer_labels(model, stem.layers)]
    if stem_lines:
        node = g.node(_rows("stem", stem_lines, _shape(stem.out_shape)), _COLORS["stem"])
        g.edge(prev, node)
        prev = node
    for si, sec in enumerate(summary.stages):
        label = sec.name  # kept short: the edge entering the cluster crosses its top centre
        g.lines.append(f"  subgraph cluster_{si} {{")
        g.lines.append(f'    label=<<font point-size="10">{_esc(label)}</font>>; labeljust=l; style="rounded,dashed"; '
                       'color="#8899aa";')
        block_ids = {id(layer): b for b in sec.blocks for layer in b.layers}
        done = set()
        items: List[Tuple[str, object]] = []
        for layer in sec.layers:  # execution order: blocks and the layers between them
            b = block_ids.get(id(layer))
            if b is None:
                items.append(("layer", layer))
            elif b.name not in done:
                done.add(b.name)
                items.append(("block", b))
        i = 0
        while i < len(items):
            kind, obj = items[i]
            if kind == "block":
                repeat = 1
                while compact and i + repeat < len(items) and items[i + repeat][0] == "block" \
                        and _same(obj, items[i + repeat][1]):
                    repeat += 1
                prev = _emit_block(g, prev, obj, repeat, detail)
                i += repeat
                continue
            run = []
            while i < len(items) and items[i][0] == "layer":
                run.append(items[i][1])
                i += 1
            labels = layer_labels(model, run)
            if labels:
                node = g.node(_rows(", ".join(lbl for lbl, _ in labels), [], _shape(labels[-1][1]), bold_title=False),
                              _COLORS["other"])
                g.edge(prev, node)
                prev = node
        g.lines.append("  }")
    head = summary.head
    head_lines = [lbl for lbl, _ in layer_labels(model, head.layers)]
    if head_lines:
        node = g.node(_rows("head", head_lines), _COLORS["head"])
        g.edge(prev, node)
        prev = node
    out_shape = head.out_shape
    classes = out_shape[1] if len(out_shape) > 1 else summary.class_num
    node = g.node(_rows("output", [f"{classes} class scores"]), _COLORS["io"])
    g.edge(prev, node)
    header = [f'digraph "{_esc(summary.name)}" {{',
              f'  graph [rankdir=TB, fontname="{_FONT}", fontsize=12, labelloc=t, label=<{title}>, '
              'nodesep=0.3, ranksep=0.28, newrank=true, bgcolor="white", pad=0.2];',
              f'  node [fontname="{_FONT}", fontsize=10, color="#5b6b80", penwidth=0.8, margin="0.12,0.05"];',
              f'  edge [fontname="{_FONT}", fontsize=8, color="#444444", arrowsize=0.6];']
    return "\n".join(header + g.lines + g.edges + ["}"]) + "\n"


def dot_available() -> Optional[str]:
    """Path of Graphviz's ``dot`` program, or None."""
    return shutil.which("dot")


def render_dot(dot_path: str, formats: Sequence[str] = ("svg", "png"), dpi: int = 96) -> List[str]:
    """Render ``dot_path`` next to itself in each format; [] if ``dot`` is not installed."""
    exe = dot_available()
    if exe is None:
        return []
    stem = os.path.splitext(dot_path)[0]
    out = []
    for fmt in formats:
        target = f"{stem}.{fmt}"
        cmd = [exe, f"-T{fmt}", dot_path, "-o", target] + ([f"-Gdpi={dpi}"] if fmt == "png" else [])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"dot failed on {dot_path}: {res.stderr.strip()}")
        out.append(target)
    return out


# --------------------------------------------------------------------------- VisualDL


_CHILD = """
import json
import sys
import paddle
from visualdl import LogWriter
import ppnets
name, h, w, logdir, kwargs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
model = ppnets.build_model(name, **kwargs)
model.eval()
with LogWriter(logdir=logdir) as writer:
    writer.add_graph(model=model, input_spec=[paddle.static.InputSpec([1, 3, h, w], "float32", name="x")],
                     verbose=False)
"""


def log_graph_to_visualdl(name: str, input_size: Union[int, Sequence[int]], logdir: str,
                          model_kwargs: Optional[Dict[str, Any]] = None, timeout: float = 600) -> str:
    """Write the graph of ``build_model(name, **model_kwargs)`` to a VisualDL log in ``logdir``.

    View it with ``visualdl --logdir LOGDIR`` (the "Graphs" tab). Runs in a child process
    with ``FLAGS_enable_pir_api=0``: VisualDL 2.5.3 cannot read Paddle 3's PIR programs.
    Returns the graph file written; raises RuntimeError with the child's last error line.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else (int(input_size[0]), int(input_size[1]))
    os.makedirs(logdir, exist_ok=True)
    before = set(os.listdir(logdir))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, FLAGS_enable_pir_api="0",
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, "-c", _CHILD, name, str(h), str(w), logdir,
                          json.dumps(model_kwargs or {})], env=env, capture_output=True, text=True, timeout=timeout)
    graphs = sorted(f for f in set(os.listdir(logdir)) - before if f.startswith("vdlgraph"))
    if res.returncode != 0 or not graphs:
        tail = (res.stderr.strip().splitlines() or ["no graph file written"])[-1]
        raise RuntimeError(f"VisualDL add_graph failed for {name}: {tail}")
    return os.path.join(logdir, graphs[-1])
