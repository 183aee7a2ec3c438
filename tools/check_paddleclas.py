"""Run PaddleClas's own ``deploy/python/predict_cls.py`` on a ppnets export and compare it with ppnets's Predictor.

``python tools/check_paddleclas.py --paddleclas PATH --model_dir ./inference --image dataset/digits/val/7``

``PATH`` is a PaddleClas checkout or bare git directory; its ``deploy/`` code is copied to a
temporary folder (as the package ``paddleclas.deploy``, which its imports expect) and run
unchanged with the export's ``inference_cls.yaml``: once on paddle.inference and, when the
export has ``inference.onnx``, once with ``-o Global.use_onnx=True``.

On Paddle 3.3 PaddleClas's ``create_paddle_predictor`` calls ``config.enable_memory_optim()``,
which fails for every PIR program ("Not find predictor_id 0 and pass_name
memory_optimize_pass"); the paddle run therefore starts the script through a launcher that
makes that call a no-op before running ``predict_cls.py`` (``runpy``), leaving its files as they are.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


from ppnets.deploy import Predictor
from ppnets.deploy.inputs import classify_files, list_inputs
from ppnets.errors import DataError
from ppnets.cli import run

LAUNCHER = ("import runpy, sys, paddle.inference; "
            "paddle.inference.Config.enable_memory_optim = lambda self, *a, **k: None; "
            "sys.argv = ['python/predict_cls.py'] + sys.argv[1:]; "
            "runpy.run_path('python/predict_cls.py', run_name='__main__')")
FILES = ("deploy/__init__.py", "deploy/python", "deploy/utils")


def extract_deploy(source: str, dst: str) -> str:
    """Copy PaddleClas's deploy code (no fonts) into ``dst/paddleclas/deploy``; returns that folder."""
    root = os.path.join(dst, "paddleclas")
    if os.path.isdir(os.path.join(source, "deploy")):
        for item in FILES:
            src = os.path.join(source, item)
            target = os.path.join(root, item)
            if os.path.isdir(src):
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("*.ttf"))
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(src, target)
    else:   # a bare git directory
        names = subprocess.run(["git", f"--git-dir={source}", "ls-tree", "-r", "--name-only", "HEAD", *FILES],
                               capture_output=True, text=True, check=True).stdout.split()
        if not names:
            raise DataError(f"--paddleclas: {source} has no deploy/ code")
        for name in names:
            if name.endswith(".ttf"):
                continue
            target = os.path.join(root, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(subprocess.run(["git", f"--git-dir={source}", "show", f"HEAD:{name}"],
                                       capture_output=True, check=True).stdout)
    return os.path.join(root, "deploy")


def parse(stdout: str) -> dict:
    """``{file name: (class ids, scores)}`` from predict_cls.py's output lines."""
    out = {}
    for m in re.finditer(r"^(\S+):\s+class id\(s\): \[([^\]]*)\], score\(s\): \[([^\]]*)\]", stdout, re.M):
        out[m[1]] = ([int(v) for v in m[2].split(",")], [float(v) for v in m[3].split(",")])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paddleclas", required=True, help="PaddleClas checkout or bare git directory")
    p.add_argument("--model_dir", required=True, help="a ppnets export (with inference_cls.yaml)")
    p.add_argument("--image", required=True, help="an image or a folder of images")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = p.parse_args(argv)
    config = os.path.join(os.path.abspath(args.model_dir), "inference_cls.yaml")
    if not os.path.isfile(config):
        raise DataError(f"{config}: not found; export with tools/export_model.py first")
    files = list_inputs(args.image)
    runs = {}
    if os.path.isfile(os.path.join(args.model_dir, "inference.json")):
        runs["paddle"] = []
    if os.path.isfile(os.path.join(args.model_dir, "inference.onnx")):
        runs["onnx"] = ["-o", "Global.use_onnx=True"]
    failed = False
    with tempfile.TemporaryDirectory(prefix="paddleclas_deploy_") as tmp:
        deploy = extract_deploy(args.paddleclas, tmp)
        env = dict(os.environ, PYTHONPATH=tmp)
        for name, extra in runs.items():
            cmd = [sys.executable, "-c", LAUNCHER] if name == "paddle" else [sys.executable, "python/predict_cls.py"]
            r = subprocess.run(cmd + ["-c", config, "-o", f"Global.infer_imgs={os.path.abspath(args.image)}", *extra],
                               cwd=deploy, env=env, capture_output=True, text=True, timeout=600)
            got = parse(r.stdout)
            backend = "paddle" if name == "paddle" else "onnxruntime"
            predictor = Predictor(args.model_dir, backend=backend)
            topk = len(next(iter(got.values()))[0]) if got else 5
            ours = {os.path.basename(x["file"]): x for x in
                    classify_files(files, predictor.transform, 8, predictor.run, topk, predictor.label_names)}
            same = [f for f in ours if f in got and got[f][0] == ours[f]["class_ids"]
                    and max(abs(a - b) for a, b in zip(got[f][1], ours[f]["scores"])) <= 0.0051]
            ok = r.returncode == 0 and len(same) == len(files)
            failed |= not ok
            print(f"PaddleClas predict_cls.py ({name}): exit {r.returncode}, {len(got)}/{len(files)} images answered, "
                  f"{len(same)} with ppnets's top-{topk} classes and scores (±0.005)" + ("" if ok else "  FAIL"))
            if r.returncode != 0:
                print(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "(no stderr)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run(main)
